/**
 * Tokens per second of stream time over the most recent tokens — the status bar's rate. Formula:
 * docs/metrics.md § Token rate and memory.
 */

/**
 * Rate over tokens [start, end) whose capture times (ms) `timeMs(i)` gives: i₀ is the earliest token with
 * t_last − t_{i₀} ≤ spanMs (consecutive from the newest); rate = (end − 1 − i₀) · 1000 / (t_last − t_{i₀}), i.e. the
 * intervals between those tokens per second. null with fewer than two tokens or when they share one timestamp.
 */
export function recentTokenRate(
  timeMs: (i: number) => number,
  start: number,
  end: number,
  spanMs: number,
): number | null {
  if (end - start < 2) return null;
  const last = timeMs(end - 1);
  let i = end - 1;
  while (i > start && last - timeMs(i - 1) <= spanMs) i--;
  const span = last - timeMs(i);
  const n = end - 1 - i;
  return span > 0 && n > 0 ? (n * 1000) / span : null;
}
