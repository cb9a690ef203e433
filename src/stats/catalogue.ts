/**
 * The metric catalogue: every per-layer routing metric, once — its label, convention, unit, value at perfect
 * balance, digits, definition and source, whether it needs router logits or per-token data, how the whole model
 * aggregates it, and, for metrics the CI gate can limit, the gate's flag, config key and bounds. Every formatter
 * (`stats` text, the report's tables, `check`'s columns and flags, the TUI summary) and docs/metrics.md
 * (generated from it, checked by test/stats/catalogue.test.ts) read it. Adding a metric is one entry here plus
 * its formula (in src/stats) and its test.
 *
 * Kept free of runtime imports: the CLI reads it when it registers flags, before any command runs.
 */
import type { GlobalMetrics, LayerMetrics } from './routing-stats.js';

/** A limit `moescope check` accepts on a metric (per layer, and for the model as a whole when `global` exists). */
export interface GateSpec {
  /** Config key (camelCase of the flag, as commander names it): `maxMaxvio`. */
  key: 'maxMaxvio' | 'maxCv' | 'maxDead' | 'minEntropy' | 'maxHotShare' | 'maxZLoss';
  /** The command-line flag: `--max-maxvio`. */
  flag: string;
  /** Rule id in reports (`max-maxvio`): stable, used as the JUnit testcase name. */
  id: string;
  /** 'max': the value must be ≤ the limit; 'min': ≥ the limit. */
  bound: 'max' | 'min';
  /** What the rule judges, with its convention, for reports. */
  rule: string;
  /** The flag's help text. */
  help: string;
  integer: boolean;
  /** Largest meaningful limit (shares and normalised entropy are ≤ 1). */
  upper: number;
}

export interface MetricSpec {
  /** Stable key (JSON of `check`, the report's column ids). */
  key: string;
  /** Column header (report, `check`, TUI). */
  label: string;
  /** Narrow header for the `stats` text table ({N} stands for the top-N share's N). */
  short: string;
  /** The convention or framework the number follows, in a few characters (`DeepSeek`, `std/mean`, `ST-MoE`). */
  convention: string;
  /** Unit of the value ('' for ratios and losses without one). */
  unit: string;
  /** Value at perfect balance for E experts, top-K, top-N share; null when there is none. */
  balanced: ((E: number, K: number, N: number) => number) | null;
  /** The same as a formula for docs/metrics.md (test/stats/catalogue.test.ts evaluates it against `balanced`). */
  balancedFormula: string | null;
  /** Digits after the decimal point wherever it is printed. */
  digits: number;
  /** What it is, exactly (docs/metrics.md has the derivations). */
  definition: string;
  /** Where the convention comes from. */
  source: string;
  /** Needs router logits. */
  needsLogits: boolean;
  /**
   * Needs per-token routing (expert ids per token). False: computable from load counts alone (a count trace of
   * expert loads per step, as serving engines expose), true: not.
   */
  needsTokens: boolean;
  layer: (m: LayerMetricsLike) => number | null;
  /** The whole-model value (report's all-layers row, `check`'s overall row); null when there is none. */
  global: ((g: GlobalMetrics) => number | null) | null;
  /** How `global` aggregates layers, for the reader. */
  aggregation: string;
  /** The layer mean (`stats` text's mean row); differs from `global` where that pools instead (HF's loss). */
  layerMean: ((g: GlobalMetrics) => number | null) | null;
  /** Present when `moescope check` can limit it. */
  gate: GateSpec | null;
  /** A column of the report's metrics table. */
  report: boolean;
  /** A column of the `stats` text table (narrow: the other losses are listed below it). */
  text: boolean;
}

/** LayerMetrics, or the `stats` JSON's layer (which leaves out the shares). */
export type LayerMetricsLike = Omit<LayerMetrics, 'share'> & { share?: number[] };

const max = (xs: readonly number[] | undefined): number | null =>
  !xs || xs.length === 0 ? null : xs.reduce((a, b) => (b > a ? b : a), -Infinity);

export const METRICS: readonly MetricSpec[] = [
  {
    key: 'maxVio',
    label: 'MaxVio',
    short: 'MaxVio',
    convention: 'DeepSeek',
    unit: '',
    balanced: () => 0,
    balancedFormula: '0',
    digits: 3,
    definition: '(max expert load − mean load) / mean load, mean = T·K/E',
    source: 'DeepSeek loss-free balancing, arXiv 2408.15664 (MaxVio_global)',
    needsLogits: false,
    needsTokens: false,
    layer: (m) => m.maxVio,
    global: (g) => g.maxVio,
    aggregation: 'mean over layers',
    layerMean: (g) => g.maxVio,
    gate: {
      key: 'maxMaxvio',
      flag: '--max-maxvio',
      id: 'max-maxvio',
      bound: 'max',
      rule: 'MaxVio (DeepSeek, global)',
      help: 'largest allowed MaxVio per layer',
      integer: false,
      upper: Infinity,
    },
    report: true,
    text: true,
  },
  {
    key: 'cv',
    label: 'CV',
    short: 'CV',
    convention: 'std/mean',
    unit: '',
    balanced: () => 0,
    balancedFormula: '0',
    digits: 3,
    definition: 'population standard deviation / mean of the assignments per expert',
    source: 'coefficient of variation of expert load (NeMo reports the unbiased std; this is the population std)',
    needsLogits: false,
    needsTokens: false,
    layer: (m) => m.cv,
    global: (g) => g.cv,
    aggregation: 'mean over layers',
    layerMean: (g) => g.cv,
    gate: {
      key: 'maxCv',
      flag: '--max-cv',
      id: 'max-cv',
      bound: 'max',
      rule: 'CV of expert load (population std / mean)',
      help: 'largest allowed coefficient of variation of expert load per layer',
      integer: false,
      upper: Infinity,
    },
    report: true,
    text: true,
  },
  {
    key: 'dead',
    label: 'dead',
    short: 'dead',
    convention: '',
    unit: 'experts',
    balanced: () => 0,
    balancedFormula: '0',
    digits: 0,
    definition: 'experts that received no assignment in the whole trace',
    source: 'dead-expert count (NeMo reports the fraction)',
    needsLogits: false,
    needsTokens: false,
    layer: (m) => m.deadExperts,
    global: (g) => g.deadExperts,
    aggregation: 'total over layers',
    layerMean: (g) => g.deadExperts,
    gate: {
      key: 'maxDead',
      flag: '--max-dead',
      id: 'max-dead',
      bound: 'max',
      rule: 'dead experts (no assignment)',
      help: 'most dead experts allowed per layer',
      integer: true,
      upper: Infinity,
    },
    report: true,
    text: true,
  },
  {
    key: 'zeroShare',
    label: 'zero-expert share',
    short: 'zero',
    convention: 'LongCat',
    unit: '',
    balanced: null,
    balancedFormula: null,
    digits: 3,
    definition:
      "share of the layer's token-slots (T·K assignments) routed to zero-computation experts (ids ≥ E_real in LongCat-Flash: identity or zero output, from inspect / the trace header); none: no value. Such layers' other load metrics are over the real experts only",
    source:
      'LongCat-Flash arXiv 2509.01322 (zero-computation experts; their share is steered towards a target by expert bias, apart from the real experts’ balance)',
    needsLogits: false,
    needsTokens: false,
    layer: (m) => m.zeroShare ?? null,
    global: (g) => g.zeroShare ?? null,
    aggregation: 'mean over layers with zero experts',
    layerMean: (g) => g.zeroShare ?? null,
    gate: null,
    report: false,
    text: false,
  },
  {
    key: 'entropy',
    label: 'entropy',
    short: 'entropy',
    convention: 'H/lnE',
    unit: '',
    balanced: () => 1,
    balancedFormula: '1',
    digits: 3,
    definition: '−Σ p_e ln p_e / ln E over the load shares p_e',
    source: 'normalised load entropy (NeMo expert diversity is exp(H)/E)',
    needsLogits: false,
    needsTokens: false,
    layer: (m) => m.entropy,
    global: (g) => g.entropy,
    aggregation: 'mean over layers',
    layerMean: (g) => g.entropy,
    gate: {
      key: 'minEntropy',
      flag: '--min-entropy',
      id: 'min-entropy',
      bound: 'min',
      rule: 'load entropy / ln E',
      help: 'smallest allowed normalised load entropy per layer (0…1)',
      integer: false,
      upper: 1,
    },
    report: true,
    text: true,
  },
  {
    key: 'hotShare',
    label: 'hot share',
    short: 'hot',
    convention: 'busiest',
    unit: '',
    balanced: (E) => 1 / E,
    balancedFormula: '1/E',
    digits: 3,
    definition: 'share of the assignments taken by the busiest expert',
    source: 'load concentration',
    needsLogits: false,
    needsTokens: false,
    layer: (m) => max(m.share),
    global: null,
    aggregation: 'none',
    layerMean: null,
    gate: {
      key: 'maxHotShare',
      flag: '--max-hot-share',
      id: 'max-hot-share',
      bound: 'max',
      rule: 'share of the busiest expert',
      help: 'largest allowed share of one expert per layer (0…1)',
      integer: false,
      upper: 1,
    },
    report: false,
    text: false,
  },
  {
    key: 'topN',
    label: 'top-N share',
    short: 'top-{N}',
    convention: 'share',
    unit: '',
    balanced: (E, _K, N) => N / E,
    balancedFormula: 'N/E',
    digits: 3,
    definition: 'share of the assignments taken by the N busiest experts (N = K)',
    source: 'load concentration',
    needsLogits: false,
    needsTokens: false,
    layer: (m) => m.topNShare,
    global: null,
    aggregation: 'none',
    layerMean: null,
    gate: null,
    report: true,
    text: true,
  },
  {
    key: 'coverage90',
    label: '90% cover',
    short: 'cov90',
    convention: 'experts',
    unit: 'experts',
    balanced: (E) => Math.ceil(0.9 * E),
    balancedFormula: '⌈0.9·E⌉',
    digits: 0,
    definition: 'fewest experts that together carry ≥ 90% of the assignments',
    source: 'load concentration',
    needsLogits: false,
    needsTokens: false,
    layer: (m) => m.coverage90,
    global: null,
    aggregation: 'none',
    layerMean: null,
    gate: null,
    report: true,
    text: true,
  },
  {
    key: 'hfAux',
    label: 'HF aux loss',
    short: 'HF loss',
    convention: 'per layer',
    unit: '',
    balanced: (_E, K) => K,
    balancedFormula: 'K',
    digits: 3,
    definition:
      'E · Σ_e f_e · P_e with f_e from the top-K of softmax(logits) and P_e the mean softmax probability, on this layer alone',
    source: 'Hugging Face transformers load_balancing_loss_func (Mixtral, Qwen-MoE, OLMoE)',
    needsLogits: true,
    needsTokens: true,
    layer: (m) => m.hfAuxLoss,
    global: (g) => g.hfAuxLoss,
    aggregation: 'HF’s own value, logits of all layers pooled into one matrix',
    layerMean: (g) => g.hfAuxLossLayerMean,
    gate: null,
    report: true,
    text: true,
  },
  {
    key: 'switchAux',
    label: 'Switch / Megatron',
    short: 'Switch',
    convention: 'Megatron',
    unit: '',
    balanced: () => 1,
    balancedFormula: '1',
    digits: 3,
    definition: 'E/(K·T²) · Σ_e (Σ_t p_te) · c_e, without the coefficient',
    source: 'Megatron-core switch_load_balancing_loss_func; Switch Transformer arXiv 2101.03961',
    needsLogits: true,
    needsTokens: true,
    layer: (m) => m.switchAuxLoss,
    global: (g) => g.switchAuxLoss,
    aggregation: 'mean over layers, as Megatron logs it',
    layerMean: (g) => g.switchAuxLoss,
    gate: null,
    report: true,
    text: true,
  },
  {
    key: 'gshardAux',
    label: 'GShard',
    short: 'GShard',
    convention: 'first choice',
    unit: '',
    balanced: () => 1,
    balancedFormula: '1',
    digits: 3,
    definition: 'the same loss with c_e counting first-choice assignments only',
    source: 'GShard arXiv 2006.16668',
    needsLogits: true,
    needsTokens: true,
    layer: (m) => m.gshardAuxLoss,
    global: (g) => g.gshardAuxLoss,
    aggregation: 'mean over layers',
    layerMean: (g) => g.gshardAuxLoss,
    gate: null,
    report: true,
    text: false,
  },
  {
    key: 'seqAux',
    label: 'DeepSeek seq',
    short: 'seq aux',
    convention: 'DeepSeek-V3',
    unit: '',
    balanced: () => 1,
    balancedFormula: '1',
    digits: 3,
    definition: 'sequence-wise Σ f_i·P_i, f_i = E/(K·T)·count, without α; mean over sequences',
    source: 'DeepSeek-V3 arXiv 2412.19437',
    needsLogits: true,
    needsTokens: true,
    layer: (m) => m.seqAuxLoss,
    global: (g) => g.seqAuxLoss,
    aggregation: 'mean over layers',
    layerMean: (g) => g.seqAuxLoss,
    gate: null,
    report: true,
    text: false,
  },
  {
    key: 'importance',
    label: 'importance',
    short: 'import.',
    convention: 'CV²',
    unit: '',
    balanced: () => 0,
    balancedFormula: '0',
    digits: 3,
    definition: 'CV² of the router probabilities summed over tokens',
    source: 'Shazeer et al. 2017, “Outrageously large neural networks”',
    needsLogits: true,
    needsTokens: true,
    layer: (m) => m.importanceLoss,
    global: (g) => g.importanceLoss,
    aggregation: 'mean over layers',
    layerMean: (g) => g.importanceLoss,
    gate: null,
    report: true,
    text: false,
  },
  {
    key: 'zLoss',
    label: 'z-loss',
    short: 'z-loss',
    convention: 'ST-MoE',
    unit: '',
    balanced: null,
    balancedFormula: null,
    digits: 3,
    definition: 'mean over tokens of (logsumexp_j x_j)² of the router logits',
    source: 'ST-MoE arXiv 2202.08906 eq. 5',
    needsLogits: true,
    needsTokens: true,
    layer: (m) => m.zLoss,
    global: (g) => g.zLoss,
    aggregation: 'mean over layers',
    layerMean: (g) => g.zLoss,
    gate: {
      key: 'maxZLoss',
      flag: '--max-z-loss',
      id: 'max-z-loss',
      bound: 'max',
      rule: 'router z-loss (ST-MoE)',
      help: 'largest allowed router z-loss per layer (needs logits)',
      integer: false,
      upper: Infinity,
    },
    report: true,
    text: true,
  },
  {
    key: 'tokenEntropy',
    label: 'token entropy',
    short: 'tok-H',
    convention: 'H/lnE',
    unit: '',
    balanced: null,
    balancedFormula: null,
    digits: 3,
    definition: 'mean per-token entropy of the routing distribution / ln E (1 = router undecided, 0 = certain)',
    source: 'router confidence',
    needsLogits: true,
    needsTokens: true,
    layer: (m) => m.tokenEntropy,
    global: (g) => g.tokenEntropy,
    aggregation: 'mean over layers',
    layerMean: (g) => g.tokenEntropy,
    gate: null,
    report: true,
    text: true,
  },
  {
    key: 'margin',
    label: 'router margin',
    short: 'margin',
    convention: 'k−(k+1)',
    unit: '',
    balanced: null,
    balancedFormula: null,
    digits: 4,
    definition: 'mean score gap between the K-th and the (K+1)-th expert (small = near-ties, fragile routing)',
    source: 'router confidence',
    needsLogits: true,
    needsTokens: true,
    layer: (m) => m.routerMargin,
    global: (g) => g.routerMargin,
    aggregation: 'mean over layers',
    layerMean: (g) => g.routerMargin,
    gate: null,
    report: true,
    text: true,
  },
];

/** The catalogue entry of `key` (throws on an unknown key: a typo is a bug, not a missing value). */
export function metric(key: string): MetricSpec {
  const m = METRICS.find((x) => x.key === key);
  if (!m) throw new Error(`no metric "${key}" in the catalogue`);
  return m;
}

/** A metric's value at balance as text (integers as they are, others to 4 significant digits), '' when none. */
export function balancedText(m: MetricSpec, E: number, K: number, N: number): string {
  if (!m.balanced) return '';
  const v = m.balanced(E, K, N);
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
}

/** The metrics `moescope check` can limit, in flag order. */
export const GATED: readonly (MetricSpec & { gate: GateSpec })[] = METRICS.filter(
  (m): m is MetricSpec & { gate: GateSpec } => m.gate !== null,
);

/** The catalogue as the Markdown table docs/metrics.md holds between its catalogue markers. */
export function catalogueMarkdown(): string {
  const cell = (x: string) => x.replace(/\|/g, '\\|');
  const lines = [
    '| metric | key | convention | unit | balanced | digits | needs | all layers | `check` flag (config key) |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const m of METRICS) {
    const needs = m.needsLogits ? 'router logits' : m.needsTokens ? 'per-token routing' : 'load counts only';
    const gate = m.gate ? `\`${m.gate.flag}\` (\`${m.gate.key}\`)` : '';
    lines.push(
      `| ${cell(m.label)} | \`${m.key}\` | ${cell(m.convention)} | ${m.unit} | ${m.balancedFormula ?? ''} | ${m.digits} | ${needs} | ${m.global ? cell(m.aggregation) : '—'} | ${gate} |`,
    );
  }
  return lines.join('\n') + '\n';
}
