/**
 * The metrics table's columns: which LayerMetrics / GlobalMetrics field each shows, its balanced value and its
 * convention (definitions as in docs/metrics.md). Logits columns are shown only when the trace has logits.
 */
import type { GlobalMetrics, LayerMetrics } from '../../stats/index.js';

export interface MetricColumn {
  key: string;
  header: string;
  /** Value at perfect balance, as text ("" when there is none). */
  balanced: (E: number, K: number, N: number) => string;
  definition: string;
  source: string;
  digits: number;
  needsLogits: boolean;
  layer: (m: LayerMetrics) => number | null;
  /** The whole-model value, and how it aggregates layers; null when there is none. */
  global: ((g: GlobalMetrics) => number | null) | null;
}

export const METRIC_COLUMNS: readonly MetricColumn[] = [
  {
    key: 'maxVio', header: 'MaxVio', balanced: () => '0', digits: 3, needsLogits: false,
    definition: '(max expert load − mean load) / mean load, mean = T·K/E. All-layers row: mean over layers.',
    source: 'DeepSeek loss-free balancing, arXiv 2408.15664 (MaxVio_global)',
    layer: (m) => m.maxVio, global: (g) => g.maxVio,
  },
  {
    key: 'cv', header: 'CV', balanced: () => '0', digits: 3, needsLogits: false,
    definition: 'population standard deviation / mean of the assignments per expert. All-layers row: mean over layers.',
    source: 'coefficient of variation of expert load (NeMo reports the unbiased std; this is the population std)',
    layer: (m) => m.cv, global: (g) => g.cv,
  },
  {
    key: 'entropy', header: 'entropy', balanced: () => '1', digits: 3, needsLogits: false,
    definition: '−Σ p_e ln p_e / ln E over the load shares p_e. All-layers row: mean over layers.',
    source: 'normalised load entropy (NeMo expert diversity is exp(H)/E)',
    layer: (m) => m.entropy, global: (g) => g.entropy,
  },
  {
    key: 'dead', header: 'dead', balanced: () => '0', digits: 0, needsLogits: false,
    definition: 'experts that received no assignment in the whole trace. All-layers row: total over layers.',
    source: 'dead-expert count (NeMo reports the fraction)',
    layer: (m) => m.deadExperts, global: (g) => g.deadExperts,
  },
  {
    key: 'topN', header: 'top-N share', balanced: (E, _K, N) => `${N}/${E}`, digits: 3, needsLogits: false,
    definition: 'share of the assignments taken by the N busiest experts (N = K).',
    source: 'load concentration',
    layer: (m) => m.topNShare, global: null,
  },
  {
    key: 'coverage90', header: '90% cover', balanced: (E) => `${Math.ceil(0.9 * E)}`, digits: 0, needsLogits: false,
    definition: 'fewest experts that together carry ≥ 90% of the assignments.',
    source: 'load concentration',
    layer: (m) => m.coverage90, global: null,
  },
  {
    key: 'hfAux', header: 'HF aux loss', balanced: (_E, K) => `${K}`, digits: 3, needsLogits: true,
    definition: 'E · Σ_e f_e · P_e with f_e from the top-K of softmax(logits) and P_e the mean softmax probability, ' +
      'on this layer alone. All-layers row: HF’s own value, logits of all layers pooled into one matrix.',
    source: 'Hugging Face transformers load_balancing_loss_func (Mixtral, Qwen-MoE, OLMoE)',
    layer: (m) => m.hfAuxLoss, global: (g) => g.hfAuxLoss,
  },
  {
    key: 'switchAux', header: 'Switch / Megatron', balanced: () => '1', digits: 3, needsLogits: true,
    definition: 'E/(K·T²) · Σ_e (Σ_t p_te) · c_e, without the coefficient. All-layers row: mean over layers, as Megatron logs it.',
    source: 'Megatron-core switch_load_balancing_loss_func; Switch Transformer arXiv 2101.03961',
    layer: (m) => m.switchAuxLoss, global: (g) => g.switchAuxLoss,
  },
  {
    key: 'gshardAux', header: 'GShard', balanced: () => '1', digits: 3, needsLogits: true,
    definition: 'the same loss with c_e counting first-choice assignments only. All-layers row: mean over layers.',
    source: 'GShard arXiv 2006.16668',
    layer: (m) => m.gshardAuxLoss, global: (g) => g.gshardAuxLoss,
  },
  {
    key: 'seqAux', header: 'DeepSeek seq', balanced: () => '1', digits: 3, needsLogits: true,
    definition: 'sequence-wise Σ f_i·P_i, f_i = E/(K·T)·count, without α; mean over sequences. All-layers row: mean over layers.',
    source: 'DeepSeek-V3 arXiv 2412.19437',
    layer: (m) => m.seqAuxLoss, global: (g) => g.seqAuxLoss,
  },
  {
    key: 'importance', header: 'importance', balanced: () => '0', digits: 3, needsLogits: true,
    definition: 'CV² of the router probabilities summed over tokens. All-layers row: mean over layers.',
    source: 'Shazeer et al. 2017, “Outrageously large neural networks”',
    layer: (m) => m.importanceLoss, global: (g) => g.importanceLoss,
  },
  {
    key: 'zLoss', header: 'z-loss', balanced: () => '', digits: 3, needsLogits: true,
    definition: 'mean over tokens of (logsumexp_j x_j)² of the router logits. All-layers row: mean over layers.',
    source: 'ST-MoE arXiv 2202.08906 eq. 5',
    layer: (m) => m.zLoss, global: (g) => g.zLoss,
  },
  {
    key: 'tokenEntropy', header: 'token entropy', balanced: () => '', digits: 3, needsLogits: true,
    definition: 'mean per-token entropy of the routing distribution / ln E (1 = router undecided, 0 = certain).',
    source: 'router confidence',
    layer: (m) => m.tokenEntropy, global: (g) => g.tokenEntropy,
  },
  {
    key: 'margin', header: 'router margin', balanced: () => '', digits: 3, needsLogits: true,
    definition: 'mean score gap between the K-th and the (K+1)-th expert (small = near-ties, fragile routing).',
    source: 'router confidence',
    layer: (m) => m.routerMargin, global: (g) => g.routerMargin,
  },
];
