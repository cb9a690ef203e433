/**
 * The threshold rules `moescope check` knows: which metric each one reads, which way it fails, and what values it
 * accepts. Config keys are the camelCase of the flags (`--max-hot-share` ↔ `maxHotShare`), as commander names them.
 */

/** Per-layer metrics a rule can read (computed by src/stats; see gate/metrics.ts). */
export type MetricKey = 'maxVio' | 'cv' | 'dead' | 'entropy' | 'hotShare' | 'zLoss';

export type RuleKey = 'maxMaxvio' | 'maxCv' | 'maxDead' | 'minEntropy' | 'maxHotShare' | 'maxZLoss';

export interface RuleSpec {
  key: RuleKey;
  /** The command-line flag. */
  flag: string;
  /** Rule id in reports (`max-maxvio`): stable, used as the JUnit testcase name. */
  id: string;
  metric: MetricKey;
  /** 'max': the value must be ≤ the limit; 'min': ≥ the limit. */
  bound: 'max' | 'min';
  /** What the metric is, with its convention, for reports. */
  label: string;
  integer: boolean;
  /** Largest meaningful limit (shares and normalised entropy are ≤ 1). */
  upper: number;
  /** Needs router logits in the trace. */
  needsLogits: boolean;
}

export const RULES: readonly RuleSpec[] = [
  { key: 'maxMaxvio', flag: '--max-maxvio', id: 'max-maxvio', metric: 'maxVio', bound: 'max', label: 'MaxVio (DeepSeek, global)', integer: false, upper: Infinity, needsLogits: false },
  { key: 'maxCv', flag: '--max-cv', id: 'max-cv', metric: 'cv', bound: 'max', label: 'CV of expert load (population std / mean)', integer: false, upper: Infinity, needsLogits: false },
  { key: 'maxDead', flag: '--max-dead', id: 'max-dead', metric: 'dead', bound: 'max', label: 'dead experts (no assignment)', integer: true, upper: Infinity, needsLogits: false },
  { key: 'minEntropy', flag: '--min-entropy', id: 'min-entropy', metric: 'entropy', bound: 'min', label: 'load entropy / ln E', integer: false, upper: 1, needsLogits: false },
  { key: 'maxHotShare', flag: '--max-hot-share', id: 'max-hot-share', metric: 'hotShare', bound: 'max', label: 'share of the busiest expert', integer: false, upper: 1, needsLogits: false },
  { key: 'maxZLoss', flag: '--max-z-loss', id: 'max-z-loss', metric: 'zLoss', bound: 'max', label: 'router z-loss (ST-MoE)', integer: false, upper: Infinity, needsLogits: true },
];

export const RULE_KEYS: readonly RuleKey[] = RULES.map((r) => r.key);

export function ruleByKey(key: RuleKey): RuleSpec {
  return RULES.find((r) => r.key === key)!;
}

/** Limits of some rules; absent keys are not checked. */
export type Thresholds = Partial<Record<RuleKey, number>>;
