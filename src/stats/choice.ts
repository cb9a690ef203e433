/** Which of a token's K recorded slots counts as its first choice. */
import type { RoutingBatch } from '../core/batch.js';
import { F16_TO_F32 } from '../core/f16.js';

/** The expert in the highest-weight slot (ties: the earlier slot). */
export function firstChoice(b: Pick<RoutingBatch, 'experts' | 'weights'>, offset: number, k: number): number {
  let best = -Infinity;
  let e = b.experts[offset]!;
  for (let j = 0; j < k; j++) {
    const w = F16_TO_F32[b.weights[offset + j]!]!;
    if (w > best) {
      best = w;
      e = b.experts[offset + j]!;
    }
  }
  return e;
}
