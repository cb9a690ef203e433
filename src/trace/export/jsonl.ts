/** `export --jsonl`: the trace as moescope's JSONL interchange format (docs/trace-format.md). */
import { expertsAt, NO_STEP, topKAt } from '../../core/batch.js';
import { F16_TO_F32 } from '../../core/f16.js';
import type { RoutingStream } from '../../core/routing-stream.js';
import type { TextSink } from './sink.js';

/**
 * Float16 bits as the exact decimal of their value. JSON has no Infinity or NaN: ±Inf are written as the strings
 * "Infinity" / "-Infinity" and NaN as "NaN" (import jsonl reads them back, so the round trip holds); a NaN logit
 * marks a token whose logits were not captured and is written as null, as import writes NaN for null.
 */
function f16(bits: number): number | string {
  const v = F16_TO_F32[bits]!;
  return Number.isFinite(v) ? v : String(v);
}

function f16Logit(bits: number): number | string | null {
  const v = F16_TO_F32[bits]!;
  return Number.isNaN(v) ? null : Number.isFinite(v) ? v : String(v);
}

type Cell = number | string | null;

/**
 * One token's values as L arrays: layer l's block of `stride` values starts at start + l·stride, and only its
 * first `len(l)` are written (a layer's own K or E: the padding of mixed layer shapes is left out).
 */
function perLayer(
  src: Uint16Array,
  start: number,
  L: number,
  stride: number,
  len: (l: number) => number,
  map: (x: number) => Cell,
): Cell[][] {
  const out: Cell[][] = [];
  for (let l = 0; l < L; l++) {
    const n = len(l);
    const row: Cell[] = new Array(n);
    for (let k = 0; k < n; k++) row[k] = map(src[start + l * stride + k]!);
    out.push(row);
  }
  return out;
}

/** Writes a token stream's header line, then its memory samples and tokens in stream order; returns the tokens. */
export async function writeJsonl(stream: RoutingStream, out: TextSink): Promise<number> {
  const s = stream.schema;
  const m = stream.meta;
  const columns = stream.columns ?? [];
  const L = s.layers.length;
  out.line(
    JSON.stringify({
      moescope: 1,
      layers: L,
      experts: s.experts,
      topK: s.topK,
      // Layers that differ: each one's E and K (its arrays below have that many values; experts/topK the largest).
      ...(s.layerExperts ? { layerExperts: s.layerExperts, layerTopK: s.layerTopK } : {}),
      scoring: s.scoring,
      layerIds: s.layers,
      model: m.model,
      tokenizer: m.tokenizer,
      devices: m.devices,
      // Routers of more than one role (JetMoE): which model layer and role each stream layer is.
      ...(new Set(m.routers.map((r) => r.role ?? 'mlp')).size > 1
        ? {
            routers: m.routers.map((r) => ({
              layer: r.layer,
              modelLayer: r.modelLayer ?? null,
              role: r.role ?? 'mlp',
            })),
          }
        : {}),
      // Optional columns the trace holds (import jsonl recreates them).
      ...(columns.length ? { columns } : {}),
    }),
  );
  const id = (x: number) => x;
  const kOf = (l: number) => topKAt(s, l);
  const eOf = (l: number) => expertsAt(s, l);
  let tokens = 0;
  for await (const c of stream.items()) {
    if (c.kind !== 'tokens') continue;
    const b = c.batch;
    let mi = 0;
    for (let i = 0; i < b.length; i++) {
      for (; mi < c.memory.length && c.memory[mi]!.token === c.firstToken + i; mi++) {
        const smp = c.memory[mi]!.sample;
        out.line(JSON.stringify({ memory: { ...smp, tNs: smp.tNs.toString() } }));
      }
      const o: Record<string, unknown> = {
        seq: b.seq[i],
        pos: b.pos[i],
        tokenId: b.tokenId[i],
        token: b.token[i],
        isPrompt: b.isPrompt[i] === 1,
        tNs: b.tNs[i]!.toString(),
        experts: perLayer(b.experts, i * L * s.topK, L, s.topK, kOf, id),
        weights: perLayer(b.weights, i * L * s.topK, L, s.topK, kOf, f16),
      };
      if (b.logits) o.logits = perLayer(b.logits, i * L * s.experts, L, s.experts, eOf, f16Logit);
      const tag = b.tag?.[i];
      if (tag != null) o.tag = tag;
      if (b.step) o.step = b.step[i] === NO_STEP ? null : b.step[i];
      if (b.rank) o.rank = b.rank[i];
      if (b.dropped && b.dropped[i]! > 0) o.dropped = b.dropped[i];
      out.line(JSON.stringify(o));
      tokens++;
    }
  }
  return tokens;
}
