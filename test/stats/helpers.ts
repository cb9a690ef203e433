/** Batches for the stats tests, built with the core RoutingBatchBuilder (the same path the engine uses). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RoutingBatchBuilder, type RoutingBatch, type RoutingSchema } from '../../src/core/batch.js';
import { PACKAGE_ROOT } from '../../src/core/paths.js';

export interface TokenSpec {
  seq?: number;
  pos?: number;
  tokenId?: number;
  tag?: string | null;
  /** [layer][slot] */
  experts: number[][];
  weights?: number[][];
  /** [layer][expert] */
  logits?: number[][];
}

/** Splits tokens into batches of `chunk` (stream order kept). */
export function buildBatches(schema: RoutingSchema, tokens: TokenSpec[], chunk = tokens.length): RoutingBatch[] {
  const out: RoutingBatch[] = [];
  const size = Math.max(1, chunk);
  const b = new RoutingBatchBuilder(schema, size);
  tokens.forEach((tk, i) => {
    const K = schema.topK;
    b.push({
      seq: tk.seq ?? 0,
      pos: tk.pos ?? i,
      tokenId: tk.tokenId ?? 0,
      token: `t${tk.tokenId ?? 0}`,
      isPrompt: false,
      tNs: BigInt(i),
      experts: tk.experts.flat(),
      weights: tk.weights ? tk.weights.flat() : tk.experts.flat().map((_, j) => 1 - (j % K) / (K + 1)),
      logits: tk.logits ? tk.logits.flat() : null,
      tag: tk.tag ?? null,
    });
    if (b.full) out.push(b.finish());
  });
  if (b.length > 0) out.push(b.finish());
  return out;
}

export interface ReferenceCase {
  input: {
    name: string;
    schema: RoutingSchema;
    seq: number[];
    pos: number[];
    tokenId: number[];
    tag: (string | null)[];
    experts: number[][][];
    weights: number[][][];
    logits: number[][][];
  };
  params: { cf: number; cap_batch: number; bias_rate: number; bias_step: number };
  expected: {
    hfAuxLossPooled: number;
    layers: Record<string, number | number[]>[];
    capacity: {
      droppedPerExpert: number[];
      droppedShare: number;
      probs: Record<string, number>;
      position: Record<string, number>;
    }[];
    coactivation: (number | null)[][][];
    repeat: { pairs: number; firstChoice: number; topTwoOverlap: number }[];
    randomTopTwoOverlap: number;
    domains: Record<string, number[][]>;
    vocabMeanMaxShare: number;
    lossFree: {
      bias: number[][];
      maxVioOnline: number[];
      loadFinal: number[][];
      maxVioFinal: number[];
      changedShare: number[];
    };
  };
}

/** Cases written by test/stats/reference/make_vectors.py (numpy + HF transformers). */
export function referenceCases(): ReferenceCase[] {
  const file = join(PACKAGE_ROOT, 'test', 'stats', 'reference', 'vectors.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { cases: ReferenceCase[] }).cases;
}

export function caseTokens(c: ReferenceCase): TokenSpec[] {
  const i = c.input;
  return i.seq.map((seq, t) => ({
    seq,
    pos: i.pos[t]!,
    tokenId: i.tokenId[t]!,
    tag: i.tag[t] ?? null,
    experts: i.experts[t]!,
    weights: i.weights[t]!,
    logits: i.logits[t]!,
  }));
}

/** |a − b| ≤ rel·max(|b|, 1e-12) + abs. */
export function close(a: number | null | undefined, b: number, rel = 1e-9, abs = 1e-12): boolean {
  return a !== null && a !== undefined && Math.abs(a - b) <= rel * Math.max(Math.abs(b), 1e-12) + abs;
}
