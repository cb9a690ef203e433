/**
 * Routing fixtures for the gate and report tests: deterministic traces with balanced routing, a planted collapse
 * (one expert of one layer takes most tokens from some point on), dead experts, domain tags and logits — written
 * with the real TraceWriter so tests read them through the real reader.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RoutingBatchBuilder, type RoutingBatch, type RoutingSchema } from '../../src/core/batch.js';
import type { StreamMeta } from '../../src/core/stream.js';
import { TraceWriter } from '../../src/trace/index.js';
import { Rng } from '../../src/trace/rng.js';

export interface TraceSpec {
  layers?: number[];
  experts?: number;
  topK?: number;
  tokens: number;
  /** Tokens per sequence (default 32). */
  seqLen?: number;
  /** Seed of the token ids (two traces with the same seed hold the same tokens). */
  tokenSeed?: number;
  /** Seed of the routing choices. */
  routeSeed?: number;
  /** From `from` (fraction of the run) on, `share` of layer `layer`'s first choices go to `expert`. */
  collapse?: { layer: number; expert: number; from: number; share?: number };
  /** Experts never chosen, per model layer id. */
  dead?: Record<number, number[]>;
  /** Tag of each sequence, cycling; tag i prefers expert i in every layer. */
  tags?: string[];
  logits?: boolean;
  /** Size of the logits (drives the z-loss). */
  logitScale?: number;
  model?: string;
}

export const META: StreamMeta = {
  model: 'fixture-moe',
  routers: [],
  tokenizer: null,
  devices: ['cpu'],
  source: 'test',
};

/** Uniform numbers in (0, 1) from the trace module's seeded generator. */
export function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.open01();
}

export function schemaOf(spec: TraceSpec): RoutingSchema {
  return {
    layers: spec.layers ?? [0, 1, 2, 3],
    experts: spec.experts ?? 8,
    topK: spec.topK ?? 2,
    scoring: 'softmax',
    hasLogits: spec.logits ?? false,
  };
}

/** The routing of `spec` as batches of at most 256 tokens. */
export function makeBatches(spec: TraceSpec): RoutingBatch[] {
  const schema = schemaOf(spec);
  const { experts: E, topK: K } = schema;
  const L = schema.layers.length;
  const seqLen = spec.seqLen ?? 32;
  const tokRand = rng(spec.tokenSeed ?? 1);
  const routeRand = rng(spec.routeSeed ?? 2);
  const out: RoutingBatch[] = [];
  const b = new RoutingBatchBuilder(schema, 256);
  for (let t = 0; t < spec.tokens; t++) {
    const seq = Math.floor(t / seqLen);
    const tag = spec.tags ? spec.tags[seq % spec.tags.length]! : null;
    const tagIndex = spec.tags ? seq % spec.tags.length : -1;
    const experts: number[] = [];
    const weights: number[] = [];
    const logits: number[] = [];
    for (let l = 0; l < L; l++) {
      const id = schema.layers[l]!;
      const banned = new Set(spec.dead?.[id] ?? []);
      const chosen: number[] = [];
      const c = spec.collapse;
      const collapsed = c && c.layer === id && t >= c.from * spec.tokens && routeRand() < (c.share ?? 0.9);
      if (collapsed) chosen.push(c.expert);
      else if (tagIndex >= 0 && routeRand() < 0.6 && !banned.has(tagIndex % E)) chosen.push(tagIndex % E);
      while (chosen.length < K) {
        const e = Math.floor(routeRand() * E);
        if (!chosen.includes(e) && !banned.has(e)) chosen.push(e);
      }
      experts.push(...chosen);
      weights.push(...chosen.map((_, j) => (j === 0 ? 0.7 : 0.3 / (K - 1))));
      if (spec.logits) {
        const s = spec.logitScale ?? 1;
        for (let e = 0; e < E; e++)
          logits.push(s * ((chosen.includes(e) ? 2 - chosen.indexOf(e) * 0.5 : 0) + (routeRand() - 0.5)));
      }
    }
    b.push({
      seq,
      pos: t % seqLen,
      tokenId: Math.floor(tokRand() * 2000),
      token: `t${t}`,
      isPrompt: t % seqLen < 8,
      tNs: 1_700_000_000_000_000_000n + BigInt(t) * 1000n,
      experts,
      weights,
      logits: spec.logits ? logits : null,
      tag,
    });
    if (b.full) out.push(b.finish());
  }
  if (b.length > 0) out.push(b.finish());
  return out;
}

export function writeTrace(path: string, spec: TraceSpec): string {
  const w = TraceWriter.create(path, { schema: schemaOf(spec), meta: { ...META, model: spec.model ?? META.model } });
  for (const batch of makeBatches(spec)) w.write(batch);
  w.close();
  return path;
}

export function tempDir(): { dir: string; path: (name: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-gate-'));
  return { dir, path: (name) => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
