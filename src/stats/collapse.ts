/**
 * Collapse detection over a sliding window: rules evaluated every `stride` tokens once the window is full, each
 * with hysteresis (a rule that fired clears only when the value is back past the threshold by a relative margin),
 * so a value hovering at the threshold fires once, not on every evaluation. Incremental: the live views feed it
 * the same WindowCounts the batch command does. Definitions: docs/metrics.md § Collapse detection.
 */
import { UserError } from '../core/errors.js';
import { cvFromSums, JsDivergenceFromReference, loadEntropy, loadMaxVio, maxVioFromMax } from './load.js';
import { hasZeroExperts, realLoad } from './zero-experts.js';
import type { WindowCounts } from './window.js';

export type CollapseRuleName = 'dead-expert' | 'hot-expert' | 'low-entropy' | 'max-vio' | 'drift';

/** Thresholds; `null` turns a rule off. Defaults in `defaultCollapseRules`. */
export interface CollapseRules {
  /** Warn when an expert gets no assignment in a whole window. */
  dead: boolean;
  /** Warn when one expert's share of a layer's assignments in the window exceeds this (balanced share = 1/E). */
  hotShare: number | null;
  /** Warn when the normalised load entropy of a layer in the window falls below this (balanced = 1). */
  minEntropy: number | null;
  /** Warn when a layer's MaxVio in the window exceeds this (balanced = 0). */
  maxVio: number | null;
  /** Warn when the Jensen–Shannon divergence (bits) of a layer's window load from the first full window exceeds this. */
  drift: number | null;
  /**
   * How far a value must move back past its threshold before the warning clears, relative to the threshold
   * (dead: back to this fraction of a fair share; entropy: this fraction of the way from the threshold to 1).
   */
  hysteresis: number;
  /** Tokens between evaluations (1 = every token). */
  stride: number;
}

export function defaultCollapseRules(experts: number, window: number): CollapseRules {
  return {
    dead: true,
    hotShare: Math.min(1, 3 / experts),
    minEntropy: 0.8,
    maxVio: 1.5,
    drift: 0.05,
    hysteresis: 0.25,
    stride: Math.max(1, Math.floor(window / 16)),
  };
}

export interface CollapseWarning {
  rule: CollapseRuleName;
  /** The model's own layer index. */
  layer: number;
  /** Position of the layer among the MoE layers (0 … L−1). */
  layerIndex: number;
  /** The expert concerned, or null for a layer-wide rule. */
  expert: number | null;
  /** The window (stream token indices, end exclusive) in which the rule first held. */
  window: { start: number; end: number };
  /** The measured value when it first held. */
  value: number;
  threshold: number;
  /** Index of the first token at which the rule held (the last token of that window). */
  firstToken: number;
  /** Index of the token at which it stopped holding (past the hysteresis margin), or null while active. */
  clearedAt: number | null;
  message: string;
}

/** At most this many warnings of each rule are kept; later ones are only counted (`suppressed`), so a rule that
 * flaps on a skewed trace cannot crowd out the others. */
export const MAX_WARNINGS_PER_RULE = 2_000;

const DEAD_ACTIVE = 1;
const HOT_ACTIVE = 2;
const flagOf = (rule: CollapseRuleName): number => (rule === 'dead-expert' ? DEAD_ACTIVE : HOT_ACTIVE);

export class CollapseDetector {
  readonly rules: CollapseRules;
  readonly layerIds: readonly number[];
  /** How a warning's message names each layer: its id, or (routers of several roles) its model layer and role. */
  readonly layerLabels: readonly string[];
  readonly experts: number;
  /** Every warning fired, oldest first (cleared ones keep their clearedAt). */
  readonly warnings: CollapseWarning[] = [];
  suppressed = 0;
  /**
   * Active warning per (rule, layer[, expert]): per-expert rules index l·E + e, layer rules index l. Plain arrays
   * indexed by number, because the rules run over all L·E experts at every evaluation.
   */
  private readonly activeExpert: Record<'dead-expert' | 'hot-expert', (CollapseWarning | undefined)[]>;
  private readonly activeLayer: Record<'low-entropy' | 'max-vio' | 'drift', (CollapseWarning | undefined)[]>;
  /** The same for the per-expert rules as bits (DEAD_ACTIVE, HOT_ACTIVE) per l·E + e: the hot loop reads these. */
  private readonly expertFlags: Uint8Array;
  private activeCount = 0;
  private readonly kept: Partial<Record<CollapseRuleName, number>> = {};
  /** Drift from the first full window (set at the first evaluation). */
  private drift: JsDivergenceFromReference | null = null;

  /** Zero-computation experts (1 per l·E + e; src/stats/zero-experts.ts): left out of every load rule but drift. */
  readonly zeroMask: Uint8Array | null;

  constructor(
    layerIds: readonly number[],
    experts: number,
    rules: CollapseRules,
    zeroMask: Uint8Array | null = null,
    layerLabels?: readonly string[],
  ) {
    this.layerLabels = layerLabels ?? layerIds.map(String);
    for (const [k, v] of Object.entries(rules)) {
      if (typeof v === 'number' && !(Number.isFinite(v) && v >= 0))
        throw new UserError(`collapse rule ${k} must be a non-negative number, got ${v}`);
    }
    if (!Number.isInteger(rules.stride) || rules.stride < 1)
      throw new UserError(`collapse stride must be a positive integer, got ${rules.stride}`);
    this.rules = rules;
    this.layerIds = layerIds;
    this.experts = experts;
    const le = layerIds.length * experts;
    const l = layerIds.length;
    const slots = (n: number) => new Array<CollapseWarning | undefined>(n).fill(undefined); // packed, not holey
    this.activeExpert = { 'dead-expert': slots(le), 'hot-expert': slots(le) };
    this.activeLayer = { 'low-entropy': slots(l), 'max-vio': slots(l), drift: slots(l) };
    this.expertFlags = new Uint8Array(le);
    this.zeroMask = zeroMask;
  }

  /** Warnings fired per rule, kept or not (what a merge of layer ranges needs to re-apply the kept limit). */
  firedByRule(): Partial<Record<CollapseRuleName, number>> {
    return { ...this.kept };
  }

  /** Warnings currently holding. */
  activeWarnings(): CollapseWarning[] {
    if (this.activeCount === 0) return [];
    const out: CollapseWarning[] = [];
    for (const list of [...Object.values(this.activeExpert), ...Object.values(this.activeLayer)])
      for (const w of list) if (w) out.push(w);
    return out.sort((a, b) => a.firstToken - b.firstToken);
  }

  /** Evaluates every rule on a full window; returns the warnings that fired now. */
  evaluate(w: WindowCounts): CollapseWarning[] {
    const fired: CollapseWarning[] = [];
    const E = this.experts;
    const r = this.rules;
    const h = r.hysteresis;
    const total = w.tokens * w.topK;
    if (total === 0) return fired;
    const mean = total / E;
    if (!this.drift && r.drift !== null) this.drift = new JsDivergenceFromReference(w.counts, E);
    // The hot rule's share as a count: share = c / total > hotShare exactly when c ≥ hotMin.
    const hotMin = r.hotShare === null ? Infinity : smallestAbove(total, r.hotShare);
    for (let l = 0; l < w.layers; l++) {
      const base = l * E;
      if (hasZeroExperts(this.zeroMask, l, E)) {
        this.evaluateReal(fired, w, l);
        continue;
      }
      // One pass over the layer's counts: its largest (MaxVio) and the per-expert rules.
      const counts = w.counts;
      let max = 0;
      if (r.dead || r.hotShare !== null) {
        // check() acts only when a rule holds or its warning is active; testing that here first (with the
        // active flags in a byte array, and the hot share as a count) spares the call for nearly all of the L·E
        // experts.
        const flags = this.expertFlags;
        const dead = r.dead;
        const hotShare = r.hotShare;
        for (let e = 0, i = base; e < E; e++, i++) {
          const c = counts[i]!;
          if (c > max) max = c;
          const f = flags[i]!;
          if (c !== 0 && c < hotMin && f === 0) continue;
          // check() changes something only when an active warning clears or an inactive rule holds.
          if (dead && ((f & DEAD_ACTIVE) !== 0 ? c / mean >= h : c === 0))
            this.check(fired, w, 'dead-expert', l, e, c === 0, c / mean >= h, c, 0);
          if (hotShare !== null) {
            const share = c / total;
            if ((f & HOT_ACTIVE) !== 0 ? share < hotShare * (1 - h) : share > hotShare)
              this.check(fired, w, 'hot-expert', l, e, share > hotShare, share < hotShare * (1 - h), share, hotShare);
          }
        }
      } else for (let i = base, end = base + E; i < end; i++) if (counts[i]! > max) max = counts[i]!;
      if (r.minEntropy !== null) {
        const ent = w.entropy(l);
        this.check(
          fired,
          w,
          'low-entropy',
          l,
          null,
          ent < r.minEntropy,
          ent > r.minEntropy + h * (1 - r.minEntropy),
          ent,
          r.minEntropy,
        );
      }
      if (r.maxVio !== null) {
        // The window's counts of a layer add up to tokens · K (every id < E: RoutingStats checks them).
        const mv = maxVioFromMax(max, total, E);
        this.check(fired, w, 'max-vio', l, null, mv > r.maxVio, mv < r.maxVio * (1 - h), mv, r.maxVio);
      }
      if (r.drift !== null && this.drift) {
        const d = this.drift.divergence(w.counts, l, total);
        this.check(fired, w, 'drift', l, null, d > r.drift, d < r.drift * (1 - h), d, r.drift);
      }
    }
    return fired;
  }

  /**
   * The load rules of a layer with zero-computation experts, over its real experts only: shares of the real
   * experts' assignments, their entropy and MaxVio (LongCat balances those; the zero experts' share is a metric of
   * its own). Drift stays over every expert: a change in how often the zero experts are picked is a routing change.
   */
  private evaluateReal(fired: CollapseWarning[], w: WindowCounts, l: number): void {
    const E = this.experts;
    const r = this.rules;
    const h = r.hysteresis;
    const base = l * E;
    const mask = this.zeroMask!;
    const real = realLoad(w.counts, base, E, mask, base);
    let total = 0;
    for (const c of real) total += c;
    if (total > 0) {
      const mean = total / real.length;
      for (let e = 0; e < E; e++) {
        if (mask[base + e]) continue;
        const c = w.counts[base + e]!;
        const f = this.expertFlags[base + e]!;
        if (r.dead && (c === 0 || (f & DEAD_ACTIVE) !== 0))
          this.check(fired, w, 'dead-expert', l, e, c === 0, c / mean >= h, c, 0);
        if (r.hotShare !== null) {
          const share = c / total;
          if (share > r.hotShare || (f & HOT_ACTIVE) !== 0)
            this.check(
              fired,
              w,
              'hot-expert',
              l,
              e,
              share > r.hotShare,
              share < r.hotShare * (1 - h),
              share,
              r.hotShare,
            );
        }
      }
      if (r.minEntropy !== null) {
        const ent = loadEntropy(real, 0, real.length);
        this.check(
          fired,
          w,
          'low-entropy',
          l,
          null,
          ent < r.minEntropy,
          ent > r.minEntropy + h * (1 - r.minEntropy),
          ent,
          r.minEntropy,
        );
      }
      if (r.maxVio !== null) {
        const mv = loadMaxVio(real, 0, real.length);
        this.check(fired, w, 'max-vio', l, null, mv > r.maxVio, mv < r.maxVio * (1 - h), mv, r.maxVio);
      }
    }
    if (r.drift !== null && this.drift) {
      const d = this.drift.divergence(w.counts, l);
      this.check(fired, w, 'drift', l, null, d > r.drift, d < r.drift * (1 - h), d, r.drift);
    }
  }

  private check(
    fired: CollapseWarning[],
    w: WindowCounts,
    rule: CollapseRuleName,
    l: number,
    expert: number | null,
    holds: boolean,
    clears: boolean,
    value: number,
    threshold: number,
  ): void {
    const slots = expert === null ? this.activeLayer[rule as 'low-entropy'] : this.activeExpert[rule as 'dead-expert'];
    const slot = expert === null ? l : l * this.experts + expert;
    const cur = slots[slot];
    if (cur) {
      if (clears) {
        cur.clearedAt = w.end - 1;
        slots[slot] = undefined;
        if (expert !== null) this.expertFlags[slot]! &= ~flagOf(rule);
        this.activeCount--;
      }
      return;
    }
    if (!holds) return;
    const warning: CollapseWarning = {
      rule,
      layer: this.layerIds[l]!,
      layerIndex: l,
      expert,
      window: { start: w.start, end: w.end },
      value,
      threshold,
      firstToken: w.end - 1,
      clearedAt: null,
      message: describeWarning(rule, this.layerLabels[l]!, expert, value, threshold),
    };
    slots[slot] = warning;
    if (expert !== null) this.expertFlags[slot]! |= flagOf(rule);
    this.activeCount++;
    const kept = (this.kept[rule] = (this.kept[rule] ?? 0) + 1);
    if (kept <= MAX_WARNINGS_PER_RULE) this.warnings.push(warning);
    else this.suppressed++;
    fired.push(warning);
  }
}

/** The smallest whole c ≥ 0 with c / total > share, as floating-point division decides it (monotone in c). */
function smallestAbove(total: number, share: number): number {
  let c = Math.min(total + 1, Math.max(0, Math.floor(share * total)));
  while (c > 0 && (c - 1) / total > share) c--;
  while (!(c / total > share) && c <= total) c++;
  return c;
}

function describeWarning(
  rule: CollapseRuleName,
  layer: string,
  expert: number | null,
  value: number,
  threshold: number,
): string {
  const where = expert === null ? `layer ${layer}` : `layer ${layer} expert ${expert}`;
  switch (rule) {
    case 'dead-expert':
      return `${where}: no tokens in the window`;
    case 'hot-expert':
      return `${where}: ${(value * 100).toFixed(1)}% of assignments (threshold ${(threshold * 100).toFixed(1)}%)`;
    case 'low-entropy':
      return `${where}: load entropy ${value.toFixed(3)} < ${threshold}`;
    case 'max-vio':
      return `${where}: MaxVio ${value.toFixed(2)} > ${threshold}`;
    case 'drift':
      return `${where}: load drifted ${value.toFixed(3)} bits (JS) from the first window > ${threshold}`;
  }
}

/** CV of a window layer from its running sums (exported for views that show window CV without rescanning). */
export function windowCv(w: WindowCounts, l: number): number {
  return cvFromSums(w.tokens * w.topK, w.sumSq[l]!, w.experts);
}
