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
import { readdirSync } from 'node:fs';
import { FIXTURES } from '../../src/core/paths.js';
import { allocCountBatch } from '../../src/core/count-batch.js';
import { CountTraceWriter } from '../../src/trace/count-writer.js';

const SERVING_FIXTURES = join(FIXTURES, 'serving');
const SGLANG_FIXTURES = join(FIXTURES, 'sglang');
const firstFile = (dir: string) => join(dir, readdirSync(dir).sort()[0]!);

/** The seed count trace: 6 steps × 3 layers × 8 experts, uneven loads. */
export function writeSeedCountTrace(path: string): void {
  const w = CountTraceWriter.create(path, {
    schema: { layers: [0, 2, 5], experts: 8, topK: 2, scoring: 'softmax', hasLogits: false },
    meta: { model: 'fuzz-model', routers: [], tokenizer: null, devices: [], source: 'test' },
    axis: 'expert',
    bins: 8,
  });
  const b = allocCountBatch(6, 3, 'expert', 8);
  for (let r = 0; r < 6; r++) {
    b.step[r] = r;
    b.tNs[r] = 1_700_000_000_000_000_000n + BigInt(r) * 1_000_000n;
    for (let i = 0; i < 24; i++) b.counts[r * 24 + i] = ((r + 1) * (i + 3) * 7) % 23;
  }
  w.write(b);
  w.close();
}

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
  seed(ctx: FuzzContext): Uint8Array | string | Promise<Uint8Array | string>;
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
  JSON.stringify({
    step,
    stage: 'pre_dispatch',
    block: 'decoder',
    layer,
    rank,
    num_tokens: rows.length,
    topk: 2,
    top_indices: rows,
  });

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
    seed: async (ctx) => {
      const p = join(ctx.dir, 'seed.jsonl');
      await exportTrace(ctx.trace, { jsonl: p });
      return readFileSync(p, 'utf8').split('\n').slice(0, 40).join('\n') + '\n';
    },
    commands: [(f, c) => ['import', 'jsonl', f, '-o', c.out('i.arrows')]],
  },
  {
    name: 'megatron',
    ext: 'jsonl',
    kind: 'text',
    seed: () =>
      [
        rec(0, 2, 0, [
          [0, 1],
          [2, 3],
        ]),
        rec(0, 5, 0, [
          [4, 5],
          [6, 7],
        ]),
        rec(1, 2, 0, [[1, 0]]),
        rec(1, 5, 0, [[5, 4]]),
      ].join('\n') + '\n',
    commands: [
      (f, c) => ['import', 'megatron', f, '-o', c.out('m.arrows')],
      (f, c) => ['import', 'megatron', f, '--experts', '8', '-o', c.out('m.arrows')],
    ],
  },
  {
    name: 'npy',
    ext: 'npy',
    kind: 'binary',
    seed: () =>
      npy(
        '<f4',
        [6, 2, 8],
        Float32Array.from({ length: 96 }, (_, i) => Math.sin(i) * 3),
      ),
    commands: [(f, c) => ['import', 'npy', f, '--top-k', '2', '-o', c.out('n.arrows')]],
  },
  {
    // Saved per-request routing (vLLM base64 .npy; SGLang flat base64 int32): docs/serving.md.
    name: 'routed-experts',
    ext: 'json',
    kind: 'text',
    seed: () => readFileSync(join(SERVING_FIXTURES, 'vllm-completion.json'), 'utf8'),
    commands: [
      (f, c) => ['import', 'routed-experts', f, '-o', c.out('r.arrows')],
      (f, c) => ['import', 'routed-experts', f, '--top-k', '2', '-o', c.out('r.arrows')],
    ],
  },
  {
    name: 'routed-experts-sglang',
    ext: 'json',
    kind: 'text',
    seed: () => readFileSync(join(SERVING_FIXTURES, 'sglang-generate.json'), 'utf8'),
    commands: [(f, c) => ['import', 'routed-experts', f, '--top-k', '2', '--experts', '8', '-o', c.out('r.arrows')]],
  },
  {
    // Server logs with SGLang's balancedness lines.
    name: 'server-log',
    ext: 'log',
    kind: 'text',
    seed: () =>
      readFileSync(join(SERVING_FIXTURES, 'logs', 'sglang.log'), 'utf8')
        .split('\n')
        .slice(0, 24)
        .join('\n') + '\n',
    commands: [(f, c) => ['import', 'log', f, '-o', c.out('s.arrows')]],
  },
  {
    // SGLang expert-distribution dumps (torch.save zip + pickle), read by moescope's own unpickler.
    name: 'sglang-stat',
    ext: 'pt',
    kind: 'binary',
    seed: () => readFileSync(firstFile(join(SGLANG_FIXTURES, 'stat'))),
    commands: [(f, c) => ['import', 'sglang', f, '-o', c.out('g.arrows')]],
  },
  {
    name: 'sglang-per-token',
    ext: 'pt',
    kind: 'binary',
    seed: () => readFileSync(firstFile(join(SGLANG_FIXTURES, 'per_token'))),
    commands: [(f, c) => ['import', 'sglang', f, '-o', c.out('g.arrows')]],
  },
  {
    // A count trace (the second kind of trace): every analysing command reads it.
    name: 'count-trace',
    ext: 'arrows',
    kind: 'binary',
    seed: (ctx) => {
      const p = join(ctx.dir, 'seed-counts.arrows');
      writeSeedCountTrace(p);
      return readFileSync(p);
    },
    commands: [
      (f) => ['stats', f, '--json'],
      (f) => ['check', f, '--max-maxvio', '100'],
      (f) => ['plan', f, '--replicas', '10', '--gpus', '2'],
      (f, c) => ['report', f, '-o', c.out('r.html')],
      (f, c) => ['export', f, '--jsonl', c.out('e.jsonl')],
    ],
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
    commands: [
      (f, c) => ['check', c.trace, '--config', f],
      (f, c) => ['diff', c.trace, c.trace, '--config', f, '--format', 'markdown'],
    ],
  },
  {
    name: 'weights',
    ext: 'json',
    kind: 'text',
    seed: () =>
      JSON.stringify([
        [5, 1, 0, 9, 3, 3, 2, 7],
        [1, 1, 1, 1, 8, 2, 0, 4],
      ]),
    commands: [
      (f) => ['plan', '--weights', f, '--replicas', '12', '--gpus', '4'],
      (f) => ['plan', '--weights', f, '--replicas', '16', '--gpus', '4', '--groups', '2', '--nodes', '2', '--json'],
    ],
  },
];

export async function writeSeed(t: FuzzTarget, ctx: FuzzContext): Promise<string> {
  const p = join(ctx.dir, `seed-${t.name}.${t.ext}`);
  writeFileSync(p, await t.seed(ctx));
  return p;
}
