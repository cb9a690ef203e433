/**
 * Expert load per producer rank of a merged multi-rank stream (`moescope listen`, `merge`): which rank's tokens go
 * to which experts. Each rank has its own L·E assignment counts; the merged stream's load is their sum
 * (docs/metrics.md § Per-rank load). Rows of a batch without a `rank` column count as rank 0.
 */
import type { RoutingBatch } from '../core/batch.js';
import { countAssignments } from './counts.js';
import { loadMaxVio, loadShares } from './load.js';

export interface RankLoad {
  rank: number;
  /** Tokens of this rank. */
  tokens: number;
  /** Assignments per (layer, expert): counts[l·E + e]. */
  counts: Float64Array;
}

export class RankLoads {
  private readonly byRank = new Map<number, RankLoad>();

  constructor(
    readonly layers: number,
    readonly experts: number,
    readonly topK: number,
  ) {}

  private of(rank: number): RankLoad {
    let r = this.byRank.get(rank);
    if (!r) this.byRank.set(rank, (r = { rank, tokens: 0, counts: new Float64Array(this.layers * this.experts) }));
    return r;
  }

  /** Counts a batch's assignments into its rows' ranks (runs of one rank are counted in one pass). */
  add(b: RoutingBatch): void {
    const n = b.length;
    const ranks = b.rank;
    let from = 0;
    while (from < n) {
      const rank = ranks ? ranks[from]! : 0;
      let to = from + 1;
      if (ranks) while (to < n && ranks[to] === rank) to++;
      else to = n;
      const r = this.of(rank);
      countAssignments(b.experts, from, to, this.layers, this.topK, this.experts, r.counts);
      r.tokens += to - from;
      from = to;
    }
  }

  /** The ranks seen, ascending. */
  ranks(): RankLoad[] {
    return [...this.byRank.values()].sort((a, b) => a.rank - b.rank);
  }

  /** Share of rank `rank`'s assignments in layer `l` going to each expert (zeros when it has none). */
  shares(rank: number, l: number): Float64Array {
    const r = this.byRank.get(rank);
    if (!r) return new Float64Array(this.experts);
    return loadShares(r.counts, l * this.experts, this.experts);
  }

  /** MaxVio of rank `rank`'s own load in layer `l` (docs/metrics.md). */
  maxVio(rank: number, l: number): number {
    const r = this.byRank.get(rank);
    return r ? loadMaxVio(r.counts, l * this.experts, this.experts) : 0;
  }

  /** Σ over ranks: the merged stream's counts (equal to counting the merged stream directly). */
  total(): Float64Array {
    const out = new Float64Array(this.layers * this.experts);
    for (const r of this.byRank.values()) for (let i = 0; i < out.length; i++) out[i]! += r.counts[i]!;
    return out;
  }
}
