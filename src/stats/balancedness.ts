/**
 * Balancedness of expert-parallel devices: how close the busiest device is to the average, 1 = perfectly even.
 * Two serving frameworks log a number by this name, computed differently; both are returned, labelled:
 *
 *  - SGLang (python/sglang/srt/eplb/expert_distribution.py, `compute_utilization_rate`, logged as
 *    "[Expert Balancedness]"): per layer (mean_gpu + 1e-5) / (max_gpu + 1e-5), then the mean over layers.
 *  - vLLM (vllm/distributed/eplb/eplb_state.py, `EplbState.step`, logged as "EPLB step: … balancedness="):
 *    Σ_layers mean_rank / Σ_layers max_rank — a ratio of sums, so heavily loaded layers weigh more; 0 when every
 *    layer is empty. (The formula its comment states; some vLLM versions reduce over layers instead of ranks —
 *    docs/placement.md.)
 *
 * Both take per-device loads per layer; `balancedness` derives them from per-expert loads and a placement.
 */
import { deviceLoads, type LayerLoads, type Placement } from './placement.js';

/** SGLang's smoothing term in (mean + ε) / (max + ε): an idle layer counts as balanced (1). */
const SGLANG_EPSILON = 1e-5;

export interface BalancednessSummary {
  /** SGLang convention: mean over layers of (mean + 1e-5) / (max + 1e-5). */
  sglang: number;
  /** vLLM convention: Σ_layers mean / Σ_layers max (0 when all loads are 0). */
  vllm: number;
  /** Per layer, SGLang's ratio (mean + 1e-5) / (max + 1e-5). */
  perLayer: number[];
  /** Per layer, the mean load over devices. */
  mean: number[];
  /** Per layer, the load of the busiest device. */
  max: number[];
}

export interface Balancedness extends BalancednessSummary {
  /** Per layer, the load of each device. */
  devices: Float64Array[];
}

/** Both conventions from per-layer, per-device loads (every layer the same number of devices, ≥ 1 layer). */
export function balancednessOfDeviceLoads(devices: readonly ArrayLike<number>[]): BalancednessSummary {
  const perLayer: number[] = [];
  const mean: number[] = [];
  const max: number[] = [];
  let sumMean = 0;
  let sumMax = 0;
  let sumRatio = 0;
  for (const row of devices) {
    let s = 0;
    let m = 0;
    for (let d = 0; d < row.length; d++) {
      const v = row[d]!;
      s += v;
      if (v > m) m = v;
    }
    const mu = row.length > 0 ? s / row.length : 0;
    const ratio = (mu + SGLANG_EPSILON) / (m + SGLANG_EPSILON);
    perLayer.push(ratio);
    mean.push(mu);
    max.push(m);
    sumRatio += ratio;
    sumMean += mu;
    sumMax += m;
  }
  const layers = devices.length;
  return {
    sglang: layers > 0 ? sumRatio / layers : NaN,
    vllm: sumMax > 0 ? sumMean / sumMax : 0,
    perLayer,
    mean,
    max,
  };
}

/** Balancedness of `placement` under per-layer expert `loads` (replicas share their expert's load evenly). */
export function balancedness(loads: LayerLoads, placement: Placement): Balancedness {
  const devices = deviceLoads(loads, placement);
  return { ...balancednessOfDeviceLoads(devices), devices };
}
