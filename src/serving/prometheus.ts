/**
 * A server's Prometheus page → EPLB load counts per layer × GPU per scrape interval (docs/serving.md#prometheus).
 *
 * SGLang (metrics/collector.py ExpertDispatchCollector, eplb/expert_distribution.py _handle_metric_eplb_heatmap):
 * `sglang:eplb_gpu_physical_count` is a Histogram labelled `layer` with buckets [0, 1, …, ep_size − 1]; every
 * SGLANG_EPLB_HEATMAP_COLLECTION_INTERVAL-th forward pass adds GPU r's count of the pass to bucket r (not an
 * observation of a value: the buckets are GPU ranks). The page shows prometheus_client's cumulative buckets, so
 * GPU r's total = bucket(le=r) − bucket(le=r−1), and the counts since the previous scrape are the difference of two
 * scrapes. A bucket that went down means the server restarted: the interval's counts are then the new totals.
 * `sglang:eplb_balancedness` is a Summary (sum, count) of SGLang's per-pass balancedness: an interval's mean is
 * Δsum / Δcount. vLLM's `vllm:eplb_*` gauges and counters are passed through when present.
 */
import parsePrometheus from 'parse-prometheus-text-format';
import { UserError } from '../core/errors.js';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Largest page read (a page of 61 layers × 72 ranks of buckets is ~0.5 MB). */
export const MAX_PAGE_BYTES = 64 << 20;

const NUMBER = /^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|Inf|inf|NaN|nan)$/;

/**
 * The samples of a text exposition page. `# TYPE` lines are dropped before parsing: the parser's typed-histogram
 * path folds every label set of a family into one (yunyu/parse-prometheus-text-format#13, unfixed), whereas
 * untyped samples keep their labels — and the suffixes `_bucket`, `_sum`, `_count` say what each sample is.
 */
export function parseMetricsPage(text: string, where: string): Sample[] {
  const lines = text.split('\n').filter((l) => !/^\s*#\s*(TYPE|EOF|UNIT)\b/.test(l));
  let families: { name: string; metrics: { value?: string; labels?: Record<string, string> }[] }[];
  try {
    families = parsePrometheus(lines.join('\n') + '\n') as typeof families;
  } catch (e) {
    throw new UserError(
      `${where}: not a Prometheus text page (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`,
    );
  }
  const out: Sample[] = [];
  for (const f of families)
    for (const m of f.metrics) {
      const v = (m.value ?? '').trim();
      if (!NUMBER.test(v))
        throw new UserError(
          `${where}: sample ${JSON.stringify(f.name).slice(0, 80)} has value ${JSON.stringify(v).slice(0, 40)}, not a number`,
        );
      out.push({
        name: f.name,
        labels: m.labels ?? {},
        value: Number(v.replace(/^([+-]?)inf$/i, '$1Infinity').replace(/^nan$/i, 'NaN')),
      });
    }
  return out;
}

export interface EplbScrape {
  tNs: bigint;
  /** Layer label values present, ascending. */
  layers: number[];
  /** GPUs (finite buckets) of every layer; 0 when the histogram is absent. */
  ranks: number;
  /** Per layer (same order as layers), each GPU's total since the server started: layers.length · ranks. */
  totals: Float64Array;
  /** Per layer, the series' `_created` time (prometheus_client), NaN when the page has none: a new one = a restart. */
  created: Float64Array;
  /** sglang:eplb_balancedness summed over its label sets, when present. */
  balancedness: { sum: number; count: number } | null;
  /** vllm:eplb_* samples, by name (gauges averaged, counters summed over label sets). */
  vllm: Record<string, number>;
}

const GPU = 'sglang:eplb_gpu_physical_count';
const BAL = 'sglang:eplb_balancedness';

/** The EPLB series of one scrape. */
export function decodeEplb(samples: Sample[], tNs: bigint, where: string): EplbScrape {
  const byLayer = new Map<number, Map<number, number>>();
  const createdOf = new Map<string, number>();
  let balSum: number | null = null;
  let balCount: number | null = null;
  const vllmSum = new Map<string, { s: number; n: number }>();
  for (const s of samples) {
    if (s.name === `${GPU}_bucket`) {
      const layer = Number(s.labels.layer);
      if (!Number.isSafeInteger(layer) || layer < 0 || String(layer) !== s.labels.layer)
        throw new UserError(
          `${where}: ${GPU} has layer label ${JSON.stringify(s.labels.layer ?? null).slice(0, 40)}, not a layer index`,
        );
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      if (Number.isNaN(le))
        throw new UserError(`${where}: ${GPU} has bucket le=${JSON.stringify(s.labels.le ?? null).slice(0, 40)}`);
      if (!Number.isFinite(s.value) || s.value < 0)
        throw new UserError(`${where}: ${GPU} layer ${layer} le=${s.labels.le} holds ${s.value}, not a count`);
      let m = byLayer.get(layer);
      if (!m) byLayer.set(layer, (m = new Map()));
      m.set(le, (m.get(le) ?? 0) + s.value); // several processes' series of one layer add up
    } else if (s.name === `${GPU}_created`) createdOf.set(s.labels.layer ?? '', s.value);
    else if (s.name === `${BAL}_sum`) balSum = (balSum ?? 0) + s.value;
    else if (s.name === `${BAL}_count`) balCount = (balCount ?? 0) + s.value;
    else if (s.name.startsWith('vllm:eplb_') && Number.isFinite(s.value)) {
      const a = vllmSum.get(s.name) ?? { s: 0, n: 0 };
      a.s += s.value;
      a.n++;
      vllmSum.set(s.name, a);
    }
  }
  const layers = [...byLayer.keys()].sort((a, b) => a - b);
  let ranks = 0;
  if (layers.length) {
    const les = [...byLayer.get(layers[0]!)!.keys()].filter(Number.isFinite).sort((a, b) => a - b);
    ranks = les.length;
    if (ranks === 0 || ranks > 65536 || les.some((le, r) => le !== r))
      throw new UserError(
        `${where}: ${GPU} buckets are le=${les.slice(0, 8).join(',')}${les.length > 8 ? ',…' : ''}, expected GPU ranks 0,1,…`,
      );
  }
  if (layers.length * ranks > 1 << 24)
    throw new UserError(`${where}: ${layers.length} layers × ${ranks} GPUs is beyond what moescope reads`);
  const totals = new Float64Array(layers.length * ranks);
  layers.forEach((layer, l) => {
    const m = byLayer.get(layer)!;
    let prev = 0;
    for (let r = 0; r < ranks; r++) {
      const cum = m.get(r);
      if (cum === undefined) throw new UserError(`${where}: ${GPU} layer ${layer} lacks the bucket of GPU ${r}`);
      if (cum < prev)
        throw new UserError(`${where}: ${GPU} layer ${layer} buckets are not cumulative (le=${r} < le=${r - 1})`);
      totals[l * ranks + r] = cum - prev;
      prev = cum;
    }
    if (m.size !== ranks + (m.has(Infinity) ? 1 : 0))
      throw new UserError(`${where}: ${GPU} layer ${layer} has ${m.size} buckets, the first layer ${ranks}`);
  });
  const vllm: Record<string, number> = {};
  for (const [k, { s, n }] of vllmSum)
    vllm[k] = k.endsWith('_total') || k.endsWith('_count') || k.endsWith('_sum') ? s : s / n;
  const balancedness = balSum !== null && balCount !== null ? { sum: balSum, count: balCount } : null;
  const created = Float64Array.from(layers, (l) => createdOf.get(String(l)) ?? NaN);
  return { tNs, layers, ranks, totals, created, balancedness, vllm };
}

export interface EplbInterval {
  /** Interval number, 1 = between the first two scrapes. */
  step: number;
  /** End of the interval (the later scrape), ns since the epoch. */
  tNs: bigint;
  seconds: number;
  /** Per layer × GPU, the counts of this interval. */
  counts: Float64Array;
  /** Layers whose counters went down (a restarted server): their counts are the totals since the restart. */
  resets: number[];
  /** Mean of SGLang's per-pass balancedness over the interval (Δsum / Δcount), null when no pass was summarised. */
  balancednessMean: number | null;
  vllm: Record<string, number>;
}

/** Differences of consecutive scrapes, with counter resets handled. */
export class EplbIntervals {
  private prev: EplbScrape | null = null;
  private step = 0;

  /** Layers and GPUs, fixed by the first scrape that had the histogram. */
  layers: number[] = [];
  ranks = 0;

  /** The interval ending at this scrape; null for the first scrape with the histogram. */
  push(s: EplbScrape, where: string): EplbInterval | null {
    if (s.ranks === 0) return null;
    const p = this.prev;
    if (p === null) {
      this.prev = s;
      this.layers = s.layers;
      this.ranks = s.ranks;
      return null;
    }
    if (
      s.ranks !== this.ranks ||
      s.layers.length !== this.layers.length ||
      s.layers.some((l, i) => l !== this.layers[i])
    )
      throw new UserError(
        `${where}: the page now has ${s.layers.length} layers × ${s.ranks} GPUs, it had ${this.layers.length} × ${this.ranks} (a different deployment?)`,
      );
    const R = this.ranks;
    const counts = new Float64Array(s.totals.length);
    const resets: number[] = [];
    this.layers.forEach((layer, l) => {
      let reset = s.created[l] !== p.created[l] && !Number.isNaN(s.created[l]!) && !Number.isNaN(p.created[l]!);
      for (let r = 0; r < R; r++) if (s.totals[l * R + r]! < p.totals[l * R + r]!) reset = true;
      if (reset) resets.push(layer);
      for (let r = 0; r < R; r++)
        counts[l * R + r] = reset ? s.totals[l * R + r]! : s.totals[l * R + r]! - p.totals[l * R + r]!;
    });
    let balancednessMean: number | null = null;
    if (s.balancedness && p.balancedness) {
      let dc = s.balancedness.count - p.balancedness.count;
      let ds = s.balancedness.sum - p.balancedness.sum;
      if (dc < 0) [dc, ds] = [s.balancedness.count, s.balancedness.sum]; // restarted
      if (dc > 0) balancednessMean = ds / dc;
    }
    this.prev = s;
    return {
      step: ++this.step,
      tNs: s.tNs,
      seconds: Number(s.tNs - p.tNs) / 1e9,
      counts,
      resets,
      balancednessMean,
      vllm: s.vllm,
    };
  }
}
