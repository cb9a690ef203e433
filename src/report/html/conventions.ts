/**
 * The metrics table's columns, read off the metric catalogue (src/stats/catalogue.ts): which LayerMetrics /
 * GlobalMetrics field each shows, its balanced value and its convention (definitions as in docs/metrics.md).
 * Logits columns are shown only when the trace has logits.
 */
import { METRICS, balancedText } from '../../stats/catalogue.js';
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

export const METRIC_COLUMNS: readonly MetricColumn[] = METRICS.filter((m) => m.report).map((m) => ({
  key: m.key,
  header: m.label,
  balanced: (E: number, K: number, N: number) => balancedText(m, E, K, N),
  definition: m.global ? `${m.definition}. All-layers row: ${m.aggregation}.` : `${m.definition}.`,
  source: m.source,
  digits: m.digits,
  needsLogits: m.needsLogits,
  layer: m.layer,
  global: m.global,
}));
