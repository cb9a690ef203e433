/**
 * Expert bins for drawing: one column per expert up to MAX_BINS experts, otherwise ⌈E/MAX_BINS⌉ consecutive experts
 * per column, so a 256-expert layer still fits on a screen. A bin's value is the sum of its experts' shares.
 */
const MAX_BINS = 128;

export interface ExpertBin {
  /** First and last expert id in the bin. */
  first: number;
  last: number;
}

export function expertBins(experts: number, maxBins = MAX_BINS): ExpertBin[] {
  return expertBinsOf(experts, Math.ceil(experts / maxBins));
}

/**
 * Bins of `size` consecutive experts over `experts` (the last one shorter): layers of different E (mixed shapes)
 * binned alike, so a column means the same experts in every row.
 */
export function expertBinsOf(experts: number, size: number): ExpertBin[] {
  const out: ExpertBin[] = [];
  for (let first = 0; first < experts; first += size) out.push({ first, last: Math.min(experts, first + size) - 1 });
  return out;
}

/** Sum of `values` over each bin's experts. */
export function binValues(values: ArrayLike<number>, bins: readonly ExpertBin[]): number[] {
  return bins.map((b) => {
    let s = 0;
    for (let e = b.first; e <= b.last; e++) s += values[e]!;
    return s;
  });
}

export function binLabel(b: ExpertBin): string {
  return b.first === b.last ? `expert ${b.first}` : `experts ${b.first}–${b.last}`;
}
