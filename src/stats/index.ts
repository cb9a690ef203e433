/**
 * moescope statistics — every formula lives here (and in docs/metrics.md with its source). Stats never imports
 * trace: callers feed it `RoutingBatch`es (src/core/batch.ts) in stream order.
 *
 * ── Live / incremental API ────────────────────────────────────────────────────────────────────────────────
 *   const stats = new RoutingStats(schema, { window: 1024, collapse: { hotShare: 0.2 } });
 *   const fired = stats.add(batch);           // CollapseWarning[] that fired inside this batch
 *   stats.tokens                              // tokens seen
 *   stats.loadMatrix('run' | 'window')        // L·E counts, index l·E + e (live view: copy before keeping)
 *   stats.layerMetrics(l, 'run' | 'window')   // LayerMetrics of the l-th MoE layer (0 … L−1)
 *   stats.snapshot('run' | 'window')          // { scope, tokens, range, topN, layers: LayerMetrics[], global }
 *   stats.warnings / stats.detector?.activeWarnings()
 *   stats.window                              // WindowCounts: counts, tokens, start, end, entropy(l), maxCount(l)
 *   stats.close()                             // optional: stops the logits worker (below) once it has caught up
 * Cost per token: O(L·K) for run and window counts; O(L·E) when the schema has logits; the collapse rules
 * evaluate in O(L·E) every `stride` tokens (default W/16) once the window is full.
 * Logits are scored through float16 lookup tables (row-kernel.ts): in add() (option `logits: 'here'`, the
 * default), in a LogitsThread the caller started and handed over (logits-thread.ts; readers wait for it, so never
 * on a thread that draws; `logitsScorer(schema, threads)`), or by the producer ('posted': add(batch, snapshot)
 * with live-logits.ts' snapshot from the engine worker). RoutingStats never starts a thread; results are bit for
 * bit the same every way.
 * LayerMetrics: load, share, cv, maxVio, entropy (normalised), deadExperts, topNShare, coverage90 and — null
 * without logits, and in the window scope — hfAuxLoss, switchAuxLoss, gshardAuxLoss, seqAuxLoss,
 * importanceLoss, zLoss, tokenEntropy, routerMargin. `global` pools HF's loss over layers as HF does and
 * averages the rest over layers (docs/metrics.md).
 *
 * ── Batch analyses (each an accumulator with add(batch) and result()) ─────────────────────────────────────
 *   TraceAnalysis (analysis.ts)  everything `moescope stats` reports + the stable StatsJson (docs/metrics.md)
 *   CapacitySim (capacity.ts)    drops under capacity ⌈T·K/E·cf⌉, `probs` and `position` policies
 *   Coactivation                 N(i∧j)/N(i) over all pairs;   RepeatRate: consecutive-token repetition (Mixtral)
 *   DomainSpecialisation, VocabSpecialisation (OLMoE);          RouterAgreement: two traces, same tokens (addA/addB)
 *   LossFreeBalancer             DeepSeek's bias update replayed (add), then routing with the final bias (route)
 *   formatStatsText (text.ts)    the readable table of a StatsJson
 *
 * ── Pure formulas ──────────────────────────────────────────────────────────────────────────────────────────
 *   load.ts: loadCv, loadMaxVio, loadEntropy, deadExperts, topNShare, coverageExperts, loadShares, jsDivergence
 *   losses.ts: hfAuxLoss, switchAuxLoss, gshardAuxLoss, seqAuxLossTerm, importanceLoss
 *   scores.ts: RowScorer (probabilities, lse, entropy, margin of one row of logits), routerScores
 *   row-kernel.ts: RowSumsKernel, RowScorer's numbers summed straight into accumulators, fast (what RoutingStats uses)
 *   (top-k ranking — rankTopInto, and the router selection selectTopK — lives in src/core/topk.ts)
 *   counts.ts: countAssignments (the hot counting loop)
 * Placement (placement.ts, balancedness.ts, eplb*.ts) and drift.ts are documented in their own files.
 */
export { RoutingStats } from './routing-stats.js';
export { DEFAULT_COLLAPSE_WINDOW } from './defaults.js';
export type { RoutingStatsOptions, LayerMetrics, GlobalMetrics, StatsSnapshot, Scope } from './routing-stats.js';
export { WindowCounts } from './window.js';
export { CollapseDetector, defaultCollapseRules, windowCv } from './collapse.js';
export type { CollapseRules, CollapseRuleName, CollapseWarning } from './collapse.js';
export { RowScorer, sigmoid, routerScores } from './scores.js';
export { countAssignments } from './counts.js';
export { firstChoice } from './choice.js';
export { TraceAnalysis, defaultAnalysisOptions, STATS_JSON_VERSION } from './analysis.js';
export type { AnalysisOptions, StatsJson, StatsLayerJson } from './analysis.js';
export { CapacitySim, capacityFor, DROP_POLICIES } from './capacity.js';
export type { CapacityOptions, CapacityResult, LayerCapacity, PolicyDrops, DropPolicy } from './capacity.js';
export { Coactivation, randomCoactivation } from './coactivation.js';
export { RepeatRate, randomTopTwoOverlap } from './repeat.js';
export { DomainSpecialisation, VocabSpecialisation } from './specialisation.js';
export { RouterAgreement } from './agreement.js';
export type { AgreementResult, LayerAgreement } from './agreement.js';
export { LossFreeBalancer } from './loss-free.js';
export type { LossFreeOptions, LossFreeResult } from './loss-free.js';
export { formatStatsText } from './text.js';
export * from './load.js';
export * from './losses.js';
// Numbers the live views show (docs/metrics.md § Relative load, § Expert groups, § Router-margin histogram,
// § Per-device load and weights, § Token rate and memory); the store calls these and only copies the results.
export * from './relative-load.js';
export * from './expert-groups.js';
export * from './margin-histogram.js';
export * from './device-load.js';
export { RankLoads, type RankLoad } from './rank-loads.js';
export * from './token-rate.js';
export * from './memory-use.js';
// Zero-computation experts (LongCat-Flash): the mask, the zero share, balance over the real experts.
export * from './zero-experts.js';
