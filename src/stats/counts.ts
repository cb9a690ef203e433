/**
 * The hot loop: counting expert assignments over a batch's N·L·K `experts` column into an L·E matrix.
 * Plain typed-array loops, no allocation per token (bench/stats.ts measures it against numpy).
 */
import { UserError } from '../core/errors.js';

/**
 * Adds tokens [from, to) of `experts` (layout (t·L + l)·K + k) to `out[l·E + e]`.
 * Throws a UserError on an expert id ≥ E (a corrupt trace would otherwise count into the next layer).
 */
export function countAssignments(
  experts: Uint16Array,
  from: number,
  to: number,
  layers: number,
  k: number,
  e: number,
  out: Float64Array,
): void {
  let i = from * layers * k;
  let bad = -1;
  if ((k & 3) === 0) {
    // Four ids at a time (top-8, top-4, …): about twice the speed of the plain loop in V8 (bench/listen.ts counts
    // 464 ids a token per rank); a group with an id out of range takes the checked path.
    const W = layers * e;
    for (let t = from; t < to; t++) {
      for (let base = 0; base < W; base += e) {
        for (let j = 0; j < k; j += 4, i += 4) {
          const a = experts[i]!;
          const b = experts[i + 1]!;
          const c = experts[i + 2]!;
          const d = experts[i + 3]!;
          if (a < e && b < e && c < e && d < e) {
            out[base + a]!++;
            out[base + b]!++;
            out[base + c]!++;
            out[base + d]!++;
          } else
            for (let q = i; q < i + 4; q++) {
              const x = experts[q]!;
              if (x >= e) bad = x;
              else out[base + x]!++;
            }
        }
      }
    }
  } else
    for (let t = from; t < to; t++) {
      for (let l = 0, base = 0; l < layers; l++, base += e) {
        for (let j = 0; j < k; j++, i++) {
          const x = experts[i]!;
          if (x >= e) bad = x;
          else out[base + x]!++;
        }
      }
    }
  if (bad >= 0) throw new UserError(`expert id ${bad} out of range: the schema has ${e} experts per layer`);
}

/**
 * countAssignments for layers that differ in E and K (src/core/batch.ts § RoutingSchema): `experts` holds
 * `slots` ids per layer (the largest K), of which layer l's first `topK[l]` are its own; the rest are NO_EXPERT
 * padding and never counted. Adds into `out[l·width + e]`, `width` the largest E; throws on an id ≥ the layer's E.
 */
export function countShapedAssignments(
  experts: Uint16Array,
  from: number,
  to: number,
  slots: number,
  width: number,
  layerTopK: readonly number[],
  layerExperts: readonly number[],
  out: Float64Array,
): void {
  const L = layerTopK.length;
  let bad = -1;
  let badE = 0;
  for (let t = from; t < to; t++)
    for (let l = 0; l < L; l++) {
      const i = (t * L + l) * slots;
      const e = layerExperts[l]!;
      for (let j = 0, k = layerTopK[l]!; j < k; j++) {
        const x = experts[i + j]!;
        if (x >= e) {
          bad = x;
          badE = e;
        } else out[l * width + x]!++;
      }
    }
  if (bad >= 0) throw new UserError(`expert id ${bad} out of range: its layer has ${badE} experts`);
}

/**
 * The count-trace twin of countAssignments: adds `rows` rows of an (r·L + l)·bins + b count matrix into
 * `out[l·bins + b]` (the same L·E layout countAssignments fills), so load metrics read one matrix whichever kind
 * of record fed it. Returns Σ of the first layer's counts (= tokens × K, the assignments of one layer).
 */
export function addCountRows(
  counts: Float64Array,
  rows: number,
  layers: number,
  bins: number,
  out: Float64Array,
): number {
  const W = layers * bins;
  let firstLayer = 0;
  for (let r = 0, i = 0; r < rows; r++) {
    for (let b = 0; b < bins; b++) firstLayer += counts[i + b]!;
    for (let j = 0; j < W; j++, i++) out[j]! += counts[i]!;
  }
  return firstLayer;
}
