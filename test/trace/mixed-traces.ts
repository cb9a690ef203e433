/**
 * Mixed-shape traces for the batch commands' tests, with their independent reference: one JSONL interchange file
 * whose layers differ in E and K (header layerExperts / layerTopK, docs/trace-format.md) and, for the same tokens,
 * one uniform JSONL per shape holding only that shape's layers. Both are made traces by `moescope import jsonl`, so
 * a command run on the mixed trace can be compared with the same command run on each uniform sub-trace — the
 * uniform path every command has long had.
 */
import { writeFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { moescope } from './cli.js';

export interface LayerShape {
  /** Model layer id. */
  id: number;
  E: number;
  K: number;
}

export interface MixedSpec {
  layers: LayerShape[];
  tokens: number;
  seed?: number;
  /** Write router logits too (their values are random; the selection is given, not derived from them). */
  logits?: boolean;
  /** Experts of a layer never chosen: { layer id: [expert ids] }. */
  dead?: Record<number, number[]>;
  /** Sequences the tokens are spread over (seq = token mod seqs). */
  seqs?: number;
}

export interface MixedTraces {
  mixed: string;
  /** One uniform trace per shape, in the order the shape's first layer appears. */
  parts: { path: string; layers: number[]; E: number; K: number }[];
}

/** mulberry32: a small seeded generator, so every run writes the same routing. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Tok {
  experts: number[][];
  weights: number[][];
  logits: number[][] | null;
}

/** Skewed popularity per layer (p ∝ 1/(rank+1)), K distinct experts drawn without replacement. */
function routing(spec: MixedSpec): Tok[] {
  const r = rng(spec.seed ?? 1);
  const pop = spec.layers.map((s) =>
    Array.from({ length: s.E }, (_, e) => ((spec.dead?.[s.id] ?? []).includes(e) ? 0 : 1 / (((e * 5) % s.E) + 1))),
  );
  const out: Tok[] = [];
  for (let t = 0; t < spec.tokens; t++) {
    const experts: number[][] = [];
    const weights: number[][] = [];
    const logits: number[][] = [];
    spec.layers.forEach((s, l) => {
      const p = [...pop[l]!];
      const sel: number[] = [];
      for (let k = 0; k < s.K; k++) {
        const total = p.reduce((a, b) => a + b, 0);
        let u = r() * total;
        let e = 0;
        while (e < s.E - 1 && (u -= p[e]!) > 0) e++;
        while (p[e] === 0) e = (e + 1) % s.E;
        sel.push(e);
        p[e] = 0;
      }
      const w = sel.map(() => 0.25 + r());
      const sum = w.reduce((a, b) => a + b, 0);
      experts.push(sel);
      // Weights exact in float16 (multiples of 1/1024), so both traces hold the same bits.
      weights.push(w.map((x) => Math.round((x / sum) * 1024) / 1024));
      logits.push(Array.from({ length: s.E }, () => Math.round((r() * 8 - 4) * 64) / 64));
    });
    out.push({ experts, weights, logits: spec.logits ? logits : null });
  }
  return out;
}

function jsonl(layers: LayerShape[], toks: Tok[], pick: number[], seqs: number): string {
  const E = Math.max(...layers.map((s) => s.E));
  const K = Math.max(...layers.map((s) => s.K));
  const mixed = layers.some((s) => s.E !== E || s.K !== K);
  const lines = [
    JSON.stringify({
      moescope: 1,
      layers: layers.length,
      experts: E,
      topK: K,
      ...(mixed ? { layerExperts: layers.map((s) => s.E), layerTopK: layers.map((s) => s.K) } : {}),
      scoring: 'softmax',
      layerIds: layers.map((s) => s.id),
      model: 'mixed-test',
    }),
  ];
  toks.forEach((t, i) => {
    const seq = i % seqs;
    lines.push(
      JSON.stringify({
        seq,
        tokenId: (i * 7919) % 50000,
        token: `t${i}`,
        experts: pick.map((l) => t.experts[l]),
        weights: pick.map((l) => t.weights[l]),
        ...(t.logits ? { logits: pick.map((l) => t.logits![l]) } : {}),
      }),
    );
  });
  return lines.join('\n') + '\n';
}

function importJsonl(src: string, out: string): void {
  const r = moescope('import', 'jsonl', src, '-o', out);
  assert.equal(r.code, 0, r.stderr);
}

/** Writes the mixed trace and its uniform sub-traces under `path(name)`; `name` prefixes every file. */
export function mixedTraces(path: (n: string) => string, name: string, spec: MixedSpec): MixedTraces {
  const toks = routing(spec);
  const seqs = spec.seqs ?? 4;
  const all = spec.layers.map((_, l) => l);
  writeFileSync(path(`${name}.jsonl`), jsonl(spec.layers, toks, all, seqs));
  importJsonl(path(`${name}.jsonl`), path(`${name}.arrows`));
  const groups: { E: number; K: number; at: number[] }[] = [];
  spec.layers.forEach((s, l) => {
    let g = groups.find((x) => x.E === s.E && x.K === s.K);
    if (!g) groups.push((g = { E: s.E, K: s.K, at: [] }));
    g.at.push(l);
  });
  const parts = groups.map((g, i) => {
    const layers = g.at.map((l) => spec.layers[l]!);
    const src = path(`${name}-part${i}.jsonl`);
    writeFileSync(src, jsonl(layers, toks, g.at, seqs));
    const out = path(`${name}-part${i}.arrows`);
    importJsonl(src, out);
    return { path: out, layers: layers.map((s) => s.id), E: g.E, K: g.K };
  });
  return { mixed: path(`${name}.arrows`), parts };
}
