/**
 * Memory numbers of the Devices view from MemorySamples (src/core/memory.ts). Formulas: docs/metrics.md § Token
 * rate and memory.
 */

/** Share of a GPU's memory in use, used / total; NaN when the total is unknown (≤ 0). */
export function memoryUsedShare(usedBytes: number, totalBytes: number): number {
  return totalBytes > 0 ? usedBytes / totalBytes : NaN;
}

/** Mean time between n samples taken from firstNs to lastNs: (last − first) / (n − 1) in ms; null when n < 2. */
export function meanSampleIntervalMs(firstNs: bigint, lastNs: bigint, n: number): number | null {
  return n >= 2 ? Number(lastNs - firstNs) / 1e6 / (n - 1) : null;
}
