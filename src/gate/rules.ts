/**
 * The threshold rules `moescope check` knows, read off the metric catalogue (src/stats/catalogue.ts): which metric
 * each one reads, which way it fails, and what values it accepts. Config keys are the camelCase of the flags
 * (`--max-hot-share` ↔ `maxHotShare`), as commander names them.
 */
import { GATED, type GateSpec } from '../stats/catalogue.js';

/** Per-layer metrics a rule can read (catalogue keys). */
export type MetricKey = 'maxVio' | 'cv' | 'dead' | 'entropy' | 'hotShare' | 'zLoss';

export type RuleKey = GateSpec['key'];

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

export const RULES: readonly RuleSpec[] = GATED.map((m) => ({
  key: m.gate.key,
  flag: m.gate.flag,
  id: m.gate.id,
  metric: m.key as MetricKey,
  bound: m.gate.bound,
  label: m.gate.rule,
  integer: m.gate.integer,
  upper: m.gate.upper,
  needsLogits: m.needsLogits,
}));

export const RULE_KEYS: readonly RuleKey[] = RULES.map((r) => r.key);

/** Limits of some rules; absent keys are not checked. */
export type Thresholds = Partial<Record<RuleKey, number>>;
