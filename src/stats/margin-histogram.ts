/**
 * Histogram of router margins (K-th minus (K+1)-th score, RowScorer.margin) over [0, 1] in equal bins — the layer
 * view's picture of how close selections are to flipping. Formula: docs/metrics.md § Router-margin histogram.
 */
import { fractionsOfPeak } from './expert-groups.js';

/** Bins of the layer view's margin histogram (width 0.05). */
export const MARGIN_BINS = 20;

export interface MarginHistogram {
  /** Lower edge of bin i is edges[i] = i / bins; the last bin's upper edge is edges[bins] = 1. */
  edges: number[];
  counts: number[];
  /** Margins counted (finite ones). */
  total: number;
  /** counts ÷ the largest count (0 … 1), for drawing. */
  heights: number[];
}

/** Bin of margin m among `bins` equal bins of [0, 1]: ⌊m·bins⌋, values below 0 in the first, 1 and above in the last. */
export function marginBin(m: number, bins: number): number {
  return Math.min(bins - 1, Math.max(0, Math.floor(m * bins)));
}

/** Counts margins into `bins` equal bins of [0, 1]; NaN and ±∞ (no (K+1)-th score) are left out. */
export function marginHistogram(margins: Iterable<number>, bins = MARGIN_BINS): MarginHistogram {
  const counts = new Array<number>(bins).fill(0);
  let total = 0;
  for (const m of margins) {
    if (!Number.isFinite(m)) continue;
    counts[marginBin(m, bins)]!++;
    total++;
  }
  return marginHistogramOfCounts(counts, total);
}

/** The histogram of margins already counted into bins (marginBin): LogitSums' and an engine's per-layer counts. */
export function marginHistogramOfCounts(counts: number[], total = counts.reduce((a, c) => a + c, 0)): MarginHistogram {
  const bins = counts.length;
  return {
    edges: Array.from({ length: bins + 1 }, (_, i) => i / bins),
    counts,
    total,
    heights: fractionsOfPeak(counts),
  };
}
