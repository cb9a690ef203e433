/**
 * The count records an engine returns: assignments per (step window, MoE layer, expert), summed over every file of
 * the dataset (each rank's rows included: the load of a step is the sum of the ranks' loads). Held as one L·E
 * matrix per window; handed on as a CountBatch (src/core/count-batch.ts) in step order, which stats turn into
 * metrics with the same formulas as a count trace's rows.
 */
import { allocCountBatch, type CountBatch } from '../core/count-batch.js';
import { UserError } from '../core/errors.js';

/** Most cells (windows × layers × experts) held: 2 GiB of float64. */
export const MAX_CELLS = 1 << 28;

export class CountTable {
  private readonly rows = new Map<number, Float64Array>();
  constructor(
    readonly layers: number,
    readonly experts: number,
  ) {}

  /** The matrix of a step window, created zeroed on first use. */
  window(step: number): Float64Array {
    let m = this.rows.get(step);
    if (!m) {
      if ((this.rows.size + 1) * this.layers * this.experts > MAX_CELLS)
        throw new UserError(
          `more than ${this.rows.size} step windows of ${this.layers} × ${this.experts} counts: give a larger --step-window`,
        );
      m = new Float64Array(this.layers * this.experts);
      this.rows.set(step, m);
    }
    return m;
  }

  /** Adds `n` assignments of expert `e` in MoE layer `l` during window `step`; refuses ids the schema lacks. */
  add(step: number, l: number, e: number, n: number): void {
    if (!(l >= 0 && l < this.layers))
      throw new UserError(`layer ${l} out of range: the schema has ${this.layers} MoE layers`);
    if (!(e >= 0 && e < this.experts))
      throw new UserError(`expert id ${e} out of range: the schema has ${this.experts} experts per layer`);
    this.window(step)[l * this.experts + e]! += n;
  }

  /** Adds another table into this one (a file counted apart). */
  merge(o: CountTable): void {
    for (const [step, m] of o.rows) {
      const into = this.window(step);
      for (let i = 0; i < m.length; i++) into[i]! += m[i]!;
    }
  }

  get windows(): number {
    return this.rows.size;
  }

  /** The rows in step order, one CountBatch row per window. */
  toBatch(): CountBatch {
    const steps = [...this.rows.keys()].sort((a, b) => a - b);
    const W = this.layers * this.experts;
    const b = allocCountBatch(steps.length, this.layers, 'expert', this.experts);
    steps.forEach((s, r) => {
      b.step[r] = s;
      b.counts.set(this.rows.get(s)!, r * W);
    });
    return b;
  }
}
