/**
 * Auxiliary load-balancing losses, from per-layer sums over T tokens, without their coefficients.
 * Each is labelled with the convention it reproduces; formulas and sources in docs/metrics.md § Losses.
 * Arguments are rows of L·E matrices: `base` is l·E.
 */
import { loadCv } from './load.js';

/** HF transformers `load_balancing_loss_func` on one layer: E · Σ_e (c_e/T)·(P_e/T); c from top-K of softmax. = K at balance. */
export function hfAuxLoss(
  count: ArrayLike<number>,
  probSum: ArrayLike<number>,
  base: number,
  E: number,
  T: number,
): number {
  let s = 0;
  for (let e = 0; e < E; e++) s += count[base + e]! * probSum[base + e]!;
  return (E * s) / (T * T);
}

/** Megatron `switch_load_balancing_loss_func` / Switch Transformer: E/(K·T²) · Σ_e (Σ_t p_te)·c_e. = 1 at balance. */
export function switchAuxLoss(
  count: ArrayLike<number>,
  probSum: ArrayLike<number>,
  base: number,
  E: number,
  K: number,
  T: number,
): number {
  let s = 0;
  for (let e = 0; e < E; e++) s += count[base + e]! * probSum[base + e]!;
  return switchAuxLossOfDot(s, E, K, T);
}

/**
 * The Switch / DeepSeek-sequence formula from its one data-dependent sum, dot = Σ_e c_e·(Σ_t p_te): what an
 * engine that aggregates per sequence in SQL returns (src/scale), so that the formula stays here alone.
 */
export function switchAuxLossOfDot(dot: number, E: number, K: number, T: number): number {
  return (E * dot) / (K * T * T);
}

/** GShard (DeepSpeed `top2gating`: mean(me·ce)·E²): E · Σ_e (P_e/T)·(c1_e/T), c1 = first-choice counts. = 1 at balance. */
export function gshardAuxLoss(
  top1: ArrayLike<number>,
  probSum: ArrayLike<number>,
  base: number,
  E: number,
  T: number,
): number {
  let s = 0;
  for (let e = 0; e < E; e++) s += top1[base + e]! * probSum[base + e]!;
  return (E * s) / (T * T);
}

/**
 * DeepSeek-V2/V3 sequence-wise balance loss of one sequence of T tokens, without α:
 * Σ_i f_i·P_i with f_i = E/(K·T)·c_i and P_i = (1/T)·Σ_t p_ti. = 1 at balance.
 */
export function seqAuxLossTerm(
  count: ArrayLike<number>,
  probSum: ArrayLike<number>,
  base: number,
  E: number,
  K: number,
  T: number,
): number {
  return switchAuxLoss(count, probSum, base, E, K, T);
}

/** seqAuxLossTerm from its one data-dependent sum, dot = Σ_i c_i·(Σ_t p_ti) over the sequence (an engine's SQL). */
export function seqAuxLossFromDot(dot: number, E: number, K: number, T: number): number {
  return switchAuxLossOfDot(dot, E, K, T);
}

/** Importance loss (Shazeer et al. 2017): CV² of importance_e = Σ_t p_te, population variance. = 0 at balance. */
export function importanceLoss(probSum: ArrayLike<number>, base: number, E: number): number {
  return loadCv(probSum, base, E) ** 2;
}
