/**
 * Load counts: the second kind of record a stream carries (HELPERS contract 2). Much of what servers and
 * trainers emit is not one row per token but tokens per (step, layer, expert) — SGLang's expert-distribution
 * recorder, vLLM's EPLB window, Prometheus histograms — or per (step, layer, GPU) with no expert ids at all.
 * A CountBatch holds such rows; stats compute every count-defined metric from them with the same formulas as
 * from tokens (src/stats/load.ts), and the trace stores them as a count trace (docs/trace-format.md).
 *
 * Layout of `counts`: row-major, then layer, then bin:  index = (r·L + l)·bins + b.
 */

import type { CountBatch } from './routing-stream.js';

export type { CountBatch };

/** What one bin of a count row is. */
export type CountAxis = CountBatch['axis'];

/** A zeroed batch of n rows. */
export function allocCountBatch(n: number, layers: number, axis: CountAxis, bins: number): CountBatch {
  return {
    length: n,
    step: new Float64Array(n),
    tNs: new BigInt64Array(n),
    axis,
    bins,
    counts: new Float64Array(n * layers * bins),
  };
}

/**
 * Throws a RangeError when the columns do not have the sizes `layers` implies, or a count is negative, NaN or
 * infinite (a count trace must never carry a number a metric cannot use).
 */
export function checkCountBatch(b: CountBatch, layers: number): void {
  const n = b.length;
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`CountBatch.length must be an integer ≥ 0, got ${n}`);
  if (b.axis !== 'expert' && b.axis !== 'device')
    throw new RangeError(`CountBatch.axis must be expert or device, got ${String(b.axis)}`);
  if (!Number.isInteger(b.bins) || b.bins < 1)
    throw new RangeError(`CountBatch.bins must be an integer ≥ 1, got ${b.bins}`);
  if (b.step.length !== n) throw new RangeError(`CountBatch.step has ${b.step.length} elements, expected ${n}`);
  if (b.tNs.length !== n) throw new RangeError(`CountBatch.tNs has ${b.tNs.length} elements, expected ${n}`);
  const want = n * layers * b.bins;
  if (b.counts.length !== want)
    throw new RangeError(
      `CountBatch.counts has ${b.counts.length} elements, expected ${want} (${n} rows × ${layers} layers × ${b.bins} bins)`,
    );
  const c = b.counts;
  for (let i = 0; i < c.length; i++) {
    const v = c[i]!;
    if (!(v >= 0) || v === Infinity)
      throw new RangeError(`CountBatch.counts[${i}] is ${v}; counts must be finite numbers ≥ 0`);
  }
}
