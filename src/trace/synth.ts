/**
 * Synthetic traces at any scale, with controlled skew and an optional planted collapse — for tests, demos and
 * benchmarks (docs/trace-format.md#synthetic-traces).
 *
 * Each layer has an expert popularity p (uniform, or Zipf: p ∝ rank^-s, ranks shuffled per layer). A token's
 * selection is K distinct experts drawn in order with probability ∝ p (sampling without replacement, i.e. the
 * Plackett–Luce law). Without --logits it is drawn directly (alias table + rejection of repeats); with --logits,
 * each logit is log p + Gumbel noise, rounded to float16, and the selection is selectTopK of the stored logits —
 * the same law (Gumbel-top-k), and consistent with the logits bit for bit.
 * Collapse `layer=I,expert=J,from=F`: from token ⌊F·N⌋ on, layer I puts expert J first in every token's
 * selection with most of the routing weight (0.9 without logits; a logit 4 above the rest with them).
 */
import { sliceBatch, type RoutingSchema, type Scoring } from '../core/batch.js';
import { F16_TO_F32, f32ToF16 } from '../core/f16.js';
import { statfsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UserError } from '../core/errors.js';
import { checkShape } from './arrow-schema.js';
import { allocBatch } from '../core/batch.js';
import { Rng } from './rng.js';
import { selectTopKInto } from '../core/topk.js';
import { TraceWriter, defaultBatchTokens } from './writer.js';

export type Skew = { kind: 'uniform' } | { kind: 'zipf'; s: number };
export interface Collapse {
  /** Layer id (synthetic layer ids are 0…L-1). */
  layer: number;
  expert: number;
  /** Fraction of the run after which the collapse starts, 0…1. */
  from: number;
}

export interface SynthSpec {
  layers: number;
  experts: number;
  topK: number;
  tokens: number;
  skew: Skew;
  collapse: Collapse | null;
  logits: boolean;
  seed: number;
  scoring?: Scoring;
  /** Tokens per sequence (default 512), of which the first quarter are prompt. */
  seqLen?: number;
  /** Write a `rank` column with this rank (a trace as one rank of a multi-process run would record it). */
  rank?: number | null;
  /** Write a `step` column: token g belongs to step ⌊g / stepTokens⌋. */
  stepTokens?: number | null;
}

export function parseSkew(spec: string): Skew {
  if (spec === 'uniform') return { kind: 'uniform' };
  const m = /^zipf:(\d+(?:\.\d+)?)$/.exec(spec.trim());
  if (!m) throw new UserError(`--skew must be "uniform" or "zipf:S" (S ≥ 0, e.g. zipf:1.1), got "${spec}"`);
  return { kind: 'zipf', s: Number(m[1]) };
}

export function parseCollapse(spec: string, layers: number, experts: number): Collapse {
  const kv = new Map<string, string>();
  for (const part of spec.split(',')) {
    const [k, v] = part.split('=').map((x) => x.trim());
    if (!k || v === undefined) throw new UserError(`--collapse must look like layer=I,expert=J,from=F, got "${spec}"`);
    kv.set(k, v);
  }
  const num = (key: string, def?: number): number => {
    const raw = kv.get(key);
    if (raw === undefined) {
      if (def !== undefined) return def;
      throw new UserError(`--collapse needs ${key}=…, got "${spec}"`);
    }
    const n = Number(raw);
    if (raw === '' || !Number.isFinite(n)) throw new UserError(`--collapse ${key} must be a number, got "${raw}"`);
    return n;
  };
  for (const k of kv.keys())
    if (!['layer', 'expert', 'from'].includes(k))
      throw new UserError(`--collapse: unknown key "${k}" (layer, expert, from)`);
  const c = { layer: num('layer'), expert: num('expert'), from: num('from', 0) };
  if (!Number.isInteger(c.layer) || c.layer < 0 || c.layer >= layers)
    throw new UserError(`--collapse layer must be 0…${layers - 1}, got ${c.layer}`);
  if (!Number.isInteger(c.expert) || c.expert < 0 || c.expert >= experts)
    throw new UserError(`--collapse expert must be 0…${experts - 1}, got ${c.expert}`);
  if (c.from < 0 || c.from > 1) throw new UserError(`--collapse from must be within 0…1, got ${c.from}`);
  return c;
}

/** Expert popularity of each layer, L·E, each layer summing to 1. */
function popularity(spec: SynthSpec, rng: Rng): Float64Array {
  const { layers: L, experts: E } = spec;
  const p = new Float64Array(L * E);
  for (let l = 0; l < L; l++) {
    const perm = rng.permutation(E);
    let sum = 0;
    for (let r = 0; r < E; r++) {
      const w = spec.skew.kind === 'uniform' ? 1 : (r + 1) ** -spec.skew.s;
      p[l * E + perm[r]!] = w;
      sum += w;
    }
    for (let e = 0; e < E; e++) p[l * E + e]! /= sum;
  }
  return p;
}

/** Vose alias tables with 16-bit acceptance thresholds: one uint32 draws one expert. */
function aliasTables(p: Float64Array, L: number, E: number): { prob: Uint32Array; alias: Uint16Array } {
  const prob = new Uint32Array(L * E);
  const alias = new Uint16Array(L * E);
  const scaled = new Float64Array(E);
  const small: number[] = [];
  const large: number[] = [];
  for (let l = 0; l < L; l++) {
    const o = l * E;
    small.length = large.length = 0;
    for (let e = 0; e < E; e++) {
      scaled[e] = p[o + e]! * E;
      (scaled[e]! < 1 ? small : large).push(e);
    }
    while (small.length && large.length) {
      const s = small.pop()!;
      const g = large.pop()!;
      prob[o + s] = Math.round(scaled[s]! * 65536);
      alias[o + s] = g;
      scaled[g] = scaled[g]! + scaled[s]! - 1;
      (scaled[g]! < 1 ? small : large).push(g);
    }
    for (const e of [...small, ...large]) {
      prob[o + e] = 65536;
      alias[o + e] = e;
    }
  }
  return { prob, alias };
}

export interface SynthResult {
  tokens: number;
  bytes: number;
  schema: RoutingSchema;
}

/** Writes the synthetic trace to `path` (atomically), synchronously (tests, benchmarks). */
export function synthesize(path: string, spec: SynthSpec): SynthResult {
  const steps = synthSteps(path, spec);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * As synthesize(), yielding to the event loop after every batch so that SIGINT / SIGTERM / SIGHUP are handled
 * while it runs: the temporary file is removed and nothing is left at `path` (the `moescope synth` command).
 */
export async function synthesizeInterruptible(path: string, spec: SynthSpec): Promise<SynthResult> {
  const steps = synthSteps(path, spec);
  let hooked = false;
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (!hooked) {
      r.value.closeOnExit(); // atomic: aborts on a signal or exit, then the signal ends the process as usual
      hooked = true;
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** Bytes of trace per token of a schema, roughly (routing columns, logits, per-token columns and string). */
function traceBytesPerToken(L: number, E: number, K: number, logits: boolean): number {
  return 40 + L * K * 4 + (logits ? L * E * 2 : 0);
}

/** Refuses a synthetic trace larger than the free space where it would be written, before writing a byte. */
function checkRoom(path: string, spec: SynthSpec): void {
  const bytes = spec.tokens * traceBytesPerToken(spec.layers, spec.experts, spec.topK, spec.logits);
  let free = Infinity;
  try {
    const st = statfsSync(dirname(resolve(path)));
    free = st.bavail * st.bsize;
  } catch {
    /* the output check names a missing folder */
  }
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(b < 2 ** 30 ? 3 : 1)} GiB`;
  if (bytes > free)
    throw new UserError(
      `this trace would take about ${gib(bytes)} (${spec.tokens.toLocaleString('en-US')} tokens × ${traceBytesPerToken(spec.layers, spec.experts, spec.topK, spec.logits).toLocaleString('en-US')} bytes); only ${gib(free)} is free there`,
    );
}

function* synthSteps(path: string, spec: SynthSpec): Generator<TraceWriter, SynthResult> {
  const { layers: L, experts: E, topK: K, tokens: N } = spec;
  if (E > 65536) throw new UserError(`--experts must be ≤ 65536, got ${E}`);
  if (K > E) throw new UserError(`--top-k (${K}) cannot exceed --experts (${E})`);
  // Shape limits first (the same as every trace's: src/trace/arrow-schema.ts), then the size against the disk.
  checkShape(L, E, K, (why) => {
    throw new UserError(`--layers/--experts: ${why}`);
  });
  if (!Number.isSafeInteger(N) || N < 1) throw new UserError(`--tokens must be a positive integer, got ${N}`);
  checkRoom(path, spec);
  const scoring = spec.scoring ?? 'softmax';
  const schema: RoutingSchema = {
    layers: Array.from({ length: L }, (_, i) => i),
    experts: E,
    topK: K,
    scoring,
    hasLogits: spec.logits,
  };
  const rng = new Rng(spec.seed);
  const p = popularity(spec, rng);
  const logp = p.map(Math.log);
  const { prob, alias } = aliasTables(p, L, E);
  const seqLen = spec.seqLen ?? 512;
  const collapseFrom = spec.collapse ? Math.floor(spec.collapse.from * N) : Infinity;
  const C = defaultBatchTokens(schema);
  const columns = [
    ...(spec.stepTokens != null ? (['step'] as const) : []),
    ...(spec.rank != null ? (['rank'] as const) : []),
  ];
  const batch = allocBatch(schema, C, columns);
  if (batch.rank) batch.rank.fill(spec.rank!);
  const stamp = new Uint32Array(E);
  let stampId = 0;
  const w = new Float64Array(K);
  const ids = new Uint16Array(K);
  const scratchLogits = new Float32Array(E);
  const selW = new Float32Array(K);
  const t0 = 1_700_000_000_000_000_000n;

  const writer = TraceWriter.create(path, {
    schema,
    meta: { model: null, routers: [], tokenizer: null, devices: [], source: 'synth' },
    batchTokens: C,
    atomic: true,
    columns,
  });
  try {
    for (let start = 0; start < N; start += C) {
      const n = Math.min(C, N - start);
      for (let i = 0; i < n; i++) {
        const g = start + i;
        batch.seq[i] = Math.floor(g / seqLen);
        if (batch.step) batch.step[i] = Math.floor(g / spec.stepTokens!);
        const pos = g % seqLen;
        batch.pos[i] = pos;
        batch.isPrompt[i] = pos < seqLen / 4 ? 1 : 0;
        const id = rng.int(32000);
        batch.tokenId[i] = id;
        batch.token[i] = `t${id}`;
        batch.tNs[i] = t0 + BigInt(g) * 1_000_000n;
        for (let l = 0; l < L; l++) {
          const o = (i * L + l) * K;
          const collapsed = spec.collapse !== null && l === spec.collapse.layer && g >= collapseFrom;
          if (batch.logits) {
            // Gumbel-top-k: logits = log p + Gumbel(0, 1); selection = top-k of the float16-rounded logits.
            const lo = (i * L + l) * E;
            let max = -Infinity;
            for (let e = 0; e < E; e++) {
              const v = logp[l * E + e]! - Math.log(-Math.log(rng.open01()));
              scratchLogits[e] = v;
              if (v > max) max = v;
            }
            if (collapsed) scratchLogits[spec.collapse!.expert] = max + 4;
            for (let e = 0; e < E; e++) {
              const h = f32ToF16(scratchLogits[e]!);
              batch.logits[lo + e] = h;
              scratchLogits[e] = F16_TO_F32[h]!;
            }
            selectTopKInto(scratchLogits, 0, E, K, scoring, ids, selW, 0);
            for (let k = 0; k < K; k++) {
              batch.experts[o + k] = ids[k]!;
              batch.weights[o + k] = f32ToF16(selW[k]!);
            }
            continue;
          }
          if (++stampId === 0xffffffff) {
            stamp.fill(0);
            stampId = 1;
          }
          let k0 = 0;
          if (collapsed) {
            const J = spec.collapse!.expert;
            ids[0] = J;
            stamp[J] = stampId;
            k0 = 1;
          }
          for (let k = k0; k < K; k++) {
            let e = -1;
            for (let tries = 0; tries < 64; tries++) {
              const r = rng.u32();
              const c = ((r >>> 16) * E) >>> 16;
              const cand = (r & 0xffff) < prob[l * E + c]! ? c : alias[l * E + c]!;
              if (stamp[cand] !== stampId) {
                e = cand;
                break;
              }
            }
            if (e < 0) e = drawExact(p, l * E, E, stamp, stampId, rng); // heavy skew: repeats keep coming
            stamp[e] = stampId;
            ids[k] = e;
            w[k] = p[l * E + e]! * (0.25 + rng.open01());
          }
          let sum = 0;
          for (let k = k0; k < K; k++) sum += w[k]!;
          const rest = collapsed ? (K > 1 ? 0.1 : 0) : 1;
          if (collapsed) w[0] = K > 1 ? 0.9 : 1;
          for (let k = k0; k < K; k++) w[k] = (w[k]! / sum) * rest;
          // Slots in descending weight, like a top-k router's output.
          for (let a = 1; a < K; a++) {
            const wv = w[a]!;
            const iv = ids[a]!;
            let b = a;
            while (b > 0 && w[b - 1]! < wv) {
              w[b] = w[b - 1]!;
              ids[b] = ids[b - 1]!;
              b--;
            }
            w[b] = wv;
            ids[b] = iv;
          }
          for (let k = 0; k < K; k++) {
            batch.experts[o + k] = ids[k]!;
            batch.weights[o + k] = f32ToF16(w[k]!);
          }
        }
      }
      writer.write(n === C ? batch : sliceBatch(batch, schema, 0, n));
      yield writer;
    }
    writer.close();
  } finally {
    if (!writer.closed) writer.abort(); // an error, or a caller that stopped iterating
  }
  return { tokens: N, bytes: writer.bytesWritten, schema };
}

/** Draws an expert not yet stamped, with probability ∝ p, by a linear scan (rarely needed). */
function drawExact(p: Float64Array, o: number, E: number, stamp: Uint32Array, id: number, rng: Rng): number {
  let mass = 0;
  for (let e = 0; e < E; e++) if (stamp[e] !== id) mass += p[o + e]!;
  let u = rng.open01() * mass;
  let last = -1;
  for (let e = 0; e < E; e++) {
    if (stamp[e] === id) continue;
    last = e;
    u -= p[o + e]!;
    if (u <= 0) return e;
  }
  return last;
}
