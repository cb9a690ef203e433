/**
 * What the fuzz test mutates: one row per input format — a seed file made by the real writers, and the commands
 * that read it. To fuzz a new format (an SGLang .pt dump, a Prometheus page), add a row: `seed` returns a valid
 * file's bytes (or text), `commands` the argv (after `moescope`) that read the mutant `file`; outputs go under
 * `ctx.out(name)`, and `ctx.trace` is a valid trace when a command needs a second input.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RoutingSchema } from '../../src/core/batch.js';
import { TraceWriter } from '../../src/trace/writer.js';
import { exportTrace } from '../../src/trace/export/index.js';
import { makeBatch, npy } from '../trace/helpers.js';

export interface FuzzContext {
  dir: string;
  /** A valid trace (the seed of the `trace` row). */
  trace: string;
  /** A fresh output path for case-specific files. */
  out(name: string): string;
}

export interface FuzzTarget {
  name: string;
  ext: string;
  kind: 'binary' | 'text';
  seed(ctx: FuzzContext): Uint8Array | string;
  commands: ((file: string, ctx: FuzzContext) => string[])[];
}

const SCHEMA: RoutingSchema = { layers: [0, 2, 5], experts: 8, topK: 2, scoring: 'softmax', hasLogits: true };

/** The seed trace: logits, tags, a memory sample, two batches. */
export function writeSeedTrace(path: string): void {
  const w = TraceWriter.create(path, {
    schema: SCHEMA,
    meta: { model: 'fuzz-model', routers: [], tokenizer: null, devices: ['cpu'], source: 'test' },
    batchTokens: 48,
  });
  w.writeMemory({ tNs: 1_700_000_000_000_000_000n, gpus: null, hostRssBytes: 1 << 20, ortBytes: null });
  w.write(makeBatch(SCHEMA, 96, 0, { tags: true }));
  w.close();
}

const rec = (step: number, layer: number, rank: number, rows: number[][]) =>
  JSON.stringify({ step, stage: 'pre_dispatch', block: 'decoder', layer, rank, num_tokens: rows.length, topk: 2, top_indices: rows });

export const TARGETS: FuzzTarget[] = [
  {
    name: 'trace',
    ext: 'arrows',
    kind: 'binary',
    seed: (ctx) => readFileSync(ctx.trace),
    commands: [
      (f) => ['stats', f],
      (f) => ['stats', f, '--json'],
      (f) => ['check', f, '--max-maxvio', '100', '--max-z-loss', '1000', '--format', 'json'],
      (f, c) => ['export', f, '--jsonl', c.out('e.jsonl'), '--parquet', c.out('e.parquet')],
      (f) => ['replay', f, '--no-ui'],
      (f) => ['plan', f, '--replicas', '10', '--gpus', '2'],
      (f, c) => ['report', f, '-o', c.out('r.html')],
      (f, c) => ['diff', c.trace, f],
    ],
  },
  {
    name: 'jsonl',
    ext: 'jsonl',
    kind: 'text',
    seed: (ctx) => {
      const p = join(ctx.dir, 'seed.jsonl');
      exportTrace(ctx.trace, { jsonl: p });
      return readFileSync(p, 'utf8').split('\n').slice(0, 40).join('\n') + '\n';
    },
    commands: [(f, c) => ['import', 'jsonl', f, '-o', c.out('i.arrows')]],
  },
  {
    name: 'megatron',
    ext: 'jsonl',
    kind: 'text',
    seed: () =>
      [rec(0, 2, 0, [[0, 1], [2, 3]]), rec(0, 5, 0, [[4, 5], [6, 7]]), rec(1, 2, 0, [[1, 0]]), rec(1, 5, 0, [[5, 4]])].join('\n') + '\n',
    commands: [(f, c) => ['import', 'megatron', f, '-o', c.out('m.arrows')], (f, c) => ['import', 'megatron', f, '--experts', '8', '-o', c.out('m.arrows')]],
  },
  {
    name: 'npy',
    ext: 'npy',
    kind: 'binary',
    seed: () => npy('<f4', [6, 2, 8], Float32Array.from({ length: 96 }, (_, i) => Math.sin(i) * 3)),
    commands: [(f, c) => ['import', 'npy', f, '--top-k', '2', '-o', c.out('n.arrows')]],
  },
  {
    name: 'config',
    ext: 'json',
    kind: 'text',
    seed: () =>
      JSON.stringify({
        thresholds: { maxMaxvio: 50, maxCv: 5, minEntropy: 0.1, maxHotShare: 0.9, maxZLoss: 1000 },
        overall: { maxMaxvio: 40, maxDead: 8 },
        perLayer: { '2': { maxMaxvio: 60 } },
        layers: [0, 2, 5],
        diff: { maxDrift: 0.5, maxTv: 0.9, minAgreement: 0 },
      }),
    commands: [(f, c) => ['check', c.trace, '--config', f], (f, c) => ['diff', c.trace, c.trace, '--config', f, '--format', 'markdown']],
  },
  {
    name: 'weights',
    ext: 'json',
    kind: 'text',
    seed: () => JSON.stringify([[5, 1, 0, 9, 3, 3, 2, 7], [1, 1, 1, 1, 8, 2, 0, 4]]),
    commands: [(f) => ['plan', '--weights', f, '--replicas', '12', '--gpus', '4'], (f) => ['plan', '--weights', f, '--replicas', '16', '--gpus', '4', '--groups', '2', '--nodes', '2', '--json']],
  },
];

export function writeSeed(t: FuzzTarget, ctx: FuzzContext): string {
  const p = join(ctx.dir, `seed-${t.name}.${t.ext}`);
  writeFileSync(p, t.seed(ctx));
  return p;
}
