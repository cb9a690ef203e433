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
