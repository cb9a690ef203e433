/**
 * What `moescope plan` reports: balancedness and per-GPU load before (contiguous placement, no replicas) and after
 * (DeepSeek EPLB's placement), from per-layer expert loads. All arithmetic here; the command only formats.
 */
import { balancedness, type Balancedness } from './balancedness.js';
import { rebalanceExperts, type EplbPlan } from './eplb.js';
import { checkLoads, contiguousPlacement, type LayerLoads } from './placement.js';
import { deviceTotals } from './device-load.js';

export interface PlanOptions {
  replicas: number;
  groups: number;
  nodes: number;
  gpus: number;
}

export interface PlacementSummary extends Balancedness {
  /** Per GPU, its load summed over layers. */
  gpuTotals: number[];
  /** Σ_layers max / Σ_layers mean: how much longer the busiest GPU works than the average one (1/vLLM's value). */
  maxOverMean: number;
  /** GPUs with the largest and the smallest summed load (lowest index on ties). */
  busiestGpu: number;
  idlestGpu: number;
}

export interface LayerChange {
  /** Position of the layer in the load matrix. */
  index: number;
  /** SGLang per-layer balancedness before and after. */
  before: number;
  after: number;
}

export interface PlanComparison {
  layers: number;
  experts: number;
  options: PlanOptions;
  plan: EplbPlan;
  before: PlacementSummary;
  after: PlacementSummary;
  /** Logical experts given more than one replica, per layer. */
  replicated: number[];
  /** The most replicas any logical expert gets in any layer. */
  maxReplicas: number;
  /** Layers ordered from the least balanced before EPLB (ties: lower index first). */
  worstBefore: LayerChange[];
  /** Layers ordered from the least balanced after EPLB. */
  worstAfter: LayerChange[];
}

function summarise(b: Balancedness): PlacementSummary {
  const gpuTotals = deviceTotals(b.devices);
  const gpus = gpuTotals.length;
  let busiestGpu = 0;
  let idlestGpu = 0;
  for (let d = 1; d < gpus; d++) {
    if (gpuTotals[d]! > gpuTotals[busiestGpu]!) busiestGpu = d;
    if (gpuTotals[d]! < gpuTotals[idlestGpu]!) idlestGpu = d;
  }
  return { ...b, gpuTotals, maxOverMean: b.vllm > 0 ? 1 / b.vllm : NaN, busiestGpu, idlestGpu };
}

/** Runs EPLB on `loads` and compares its placement with the contiguous one on the same GPUs. */
export function comparePlacements(loads: LayerLoads, options: PlanOptions, worst = 5): PlanComparison {
  const { layers, experts } = checkLoads(loads);
  const { replicas, groups, nodes, gpus } = options;
  const plan = rebalanceExperts(loads, replicas, groups, nodes, gpus);
  const before = summarise(balancedness(loads, contiguousPlacement(experts, gpus)));
  const after = summarise(balancedness(loads, { devices: gpus, phy2log: plan.phy2log }));
  const changes: LayerChange[] = before.perLayer.map((b, i) => ({ index: i, before: b, after: after.perLayer[i]! }));
  const by = (key: 'before' | 'after') =>
    [...changes].sort((x, y) => x[key] - y[key] || x.index - y.index).slice(0, Math.min(worst, layers));
  return {
    layers,
    experts,
    options: { replicas, groups, nodes, gpus },
    plan,
    before,
    after,
    replicated: plan.logcnt.map((row) => row.filter((c) => c > 1).length),
    maxReplicas: plan.logcnt.reduce((m, row) => row.reduce((a, c) => Math.max(a, c), m), 0),
    worstBefore: by('before'),
    worstAfter: by('after'),
  };
}

export interface EplbAdvice {
  /** Whether EPLB's placement is worth turning on for this load (the gain passes `minGain`). */
  turnOn: boolean;
  /**
   * Busiest-GPU load before ÷ after (Σ_layers max before / Σ_layers max after): an expert-parallel MoE layer waits
   * for its busiest GPU, so this is the bound on the MoE layers' speed-up from placement alone.
   */
  speedup: number;
  /** One sentence: the answer to "should I turn EPLB on". */
  text: string;
}

/**
 * "Should I turn EPLB on?" from a plan comparison: yes when EPLB's placement would cut the busiest GPU's load by at
 * least `minGain` (default 5 %), the share at which re-placement (weights moved between GPUs) usually pays.
 */
export function eplbAdvice(c: PlanComparison, minGain = 0.05): EplbAdvice {
  const speedup = c.after.maxOverMean > 0 ? c.before.maxOverMean / c.after.maxOverMean : NaN;
  const f = (v: number) => v.toFixed(3);
  const load =
    `the busiest GPU carries ${c.before.maxOverMean.toFixed(2)}× the mean load without EPLB, ` +
    `${c.after.maxOverMean.toFixed(2)}× with it (balancedness ${f(c.before.sglang)} → ${f(c.after.sglang)}, SGLang convention)`;
  if (!Number.isFinite(speedup)) return { turnOn: false, speedup, text: 'no load to balance: nothing to decide' };
  const turnOn = speedup >= 1 + minGain;
  const text = turnOn
    ? `turn EPLB on: ${load}; MoE layers bound by their busiest GPU would run up to ${speedup.toFixed(2)}× faster`
    : `EPLB would gain little here (< ${Math.round(minGain * 100)}%): ${load}`;
  return { turnOn, speedup, text };
}
