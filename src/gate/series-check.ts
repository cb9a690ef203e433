/**
 * `check` on a balancedness series (a log imported with `import log`): the mean balancedness over the logged steps
 * against `--min-balancedness`, in the GateResult every output format lays out (docs/ci.md#balancedness-from-logs).
 */
import { fmtCount } from '../core/number-format.js';
import type { Series } from '../trace/series.js';
import { judge, type GateResult } from './verdict.js';

export interface SeriesSummary {
  steps: number;
  /** Steps with a balancedness value. */
  measured: number;
  mean: number;
  min: number;
  /** The last step's value. */
  last: number;
  /** The last step's SGLang moving average over 1000 passes, when logged. */
  last1000: number | null;
}

/** Mean, minimum and last of the `balancedness` column (rows without a value skipped; NaN when none has one). */
export function summariseSeries(s: Series): SeriesSummary {
  const b = s.values.balancedness ?? new Float64Array(s.length).fill(NaN);
  let sum = 0;
  let n = 0;
  let min = Infinity;
  let last = NaN;
  for (const v of b)
    if (Number.isFinite(v)) {
      sum += v;
      n++;
      if (v < min) min = v;
      last = v;
    }
  const w = s.values.balancedness_last_1000;
  let last1000: number | null = null;
  if (w) for (const v of w) if (Number.isFinite(v)) last1000 = v;
  return { steps: s.length, measured: n, mean: n ? sum / n : NaN, min: n ? min : NaN, last, last1000 };
}

export function checkSeries(
  subject: string,
  s: Series,
  minBalancedness: number,
  source = '--min-balancedness',
): GateResult {
  const sum = summariseSeries(s);
  const producer = s.header.series.producer === 'sglang' ? 'SGLang' : 'vLLM';
  const convention =
    producer === 'SGLang'
      ? 'mean over layers of (mean + 1e-5) / (max + 1e-5) per pass'
      : 'Σ mean / Σ max over layers per step';
  const verdict = judge({
    id: 'min-balancedness',
    label: `balancedness, mean over the logged steps (${producer}: ${convention})`,
    source,
    layer: null,
    column: 'mean',
    value: sum.mean,
    limit: minBalancedness,
    bound: 'min',
  });
  const first = s.length ? s.step[0]! : NaN;
  const lastStep = s.length ? s.step[s.length - 1]! : NaN;
  return {
    command: 'check',
    subject,
    facts: [
      ['series', `${producer} balancedness log`],
      ['steps', s.length ? `${fmtCount(s.length)} (${first} … ${lastStep})` : '0'],
    ],
    columns: [
      { key: 'mean', label: 'balancedness mean', digits: 3 },
      { key: 'min', label: 'min', digits: 3 },
      { key: 'last', label: 'last', digits: 3 },
      ...(sum.last1000 !== null ? [{ key: 'last1000', label: 'last 1000-pass avg', digits: 3 }] : []),
    ],
    rows: [
      {
        layer: null,
        values: {
          mean: sum.mean,
          min: sum.min,
          last: sum.last,
          ...(sum.last1000 !== null ? { last1000: sum.last1000 } : {}),
        },
      },
    ],
    verdicts: [verdict],
    notes: sum.measured < sum.steps ? [`${sum.steps - sum.measured} steps have no balancedness value`] : [],
    passed: verdict.pass,
    data: { series: { producer: s.header.series.producer, ...sum } },
  };
}
