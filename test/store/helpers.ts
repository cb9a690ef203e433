/** Routing batches and traces for the store and view tests: explicit tokens, the recorded fixture, synthetic traces. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RoutingBatchBuilder, type RoutingBatch, type RoutingSchema } from '../../src/core/batch.js';
import type { StreamMeta } from '../../src/core/stream.js';
import { FIXTURES } from '../../src/core/paths.js';

/** A trace recorded from the bundled demo model (tiny-moe: 4 MoE layers × 8 experts, top-2, with logits). */
export const DEMO_TRACE = join(FIXTURES, 'traces', 'tiny-moe-demo.arrows');

export const META: StreamMeta = { model: null, routers: [], tokenizer: null, devices: [], source: 'synth' };

export interface Tok {
  text?: string;
  seq?: number;
  isPrompt?: boolean;
  /** Capture time in ms from the start. */
  ms?: number;
  /** [layer][slot] */
  experts: number[][];
  weights?: number[][];
  /** [layer][expert] */
  logits?: number[][];
  tag?: string | null;
}

/** Tokens as batches of `chunk`, in stream order, with positions counted per sequence. */
export function batches(schema: RoutingSchema, tokens: Tok[], chunk = tokens.length): RoutingBatch[] {
  const out: RoutingBatch[] = [];
  const b = new RoutingBatchBuilder(schema, Math.max(1, chunk));
  const pos = new Map<number, number>();
  tokens.forEach((t, i) => {
    const seq = t.seq ?? 0;
    const p = pos.get(seq) ?? 0;
    pos.set(seq, p + 1);
    b.push({
      seq,
      pos: p,
      tokenId: i,
      token: t.text ?? `t${i}`,
      isPrompt: t.isPrompt ?? false,
      tNs: BigInt(Math.round((t.ms ?? i) * 1e6)) + 1_700_000_000_000_000_000n,
      experts: t.experts.flat(),
      weights: t.weights
        ? t.weights.flat()
        : t.experts.flat().map((_, j) => (j % schema.topK === 0 ? 0.75 : 0.25 / Math.max(1, schema.topK - 1))),
      logits: t.logits ? t.logits.flat() : null,
      tag: t.tag ?? null,
    });
    if (b.full) out.push(b.finish());
  });
  if (b.length > 0) out.push(b.finish());
  return out;
}

/** A temporary directory removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-tui-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
