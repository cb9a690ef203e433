/**
 * `moescope watch URL`: scrape a server's /metrics every interval and stream the EPLB load counts per layer × GPU
 * of each interval as a counts RoutingStream (axis = device), so the store, the recorder and the views consume it
 * like any other source (docs/serving.md#prometheus).
 */
import type { RoutingSchema } from '../core/batch.js';
import { UserError } from '../core/errors.js';
import type { CountBatch, RoutingStream } from '../core/routing-stream.js';
import type { StreamMeta } from '../core/stream.js';
import { normalizeUrl, polledStream, printable, requestText } from './client.js';
import { EplbIntervals, decodeEplb, parseMetricsPage, type EplbInterval, type EplbScrape } from './prometheus.js';

export interface WatchOptions {
  url: string;
  /** Between scrapes, ms. */
  intervalMs: number;
  /** Intervals to stream, then end (null: until closed). */
  samples: number | null;
  timeoutMs?: number;
  /** Each interval, as it is streamed (the plain printer's line). */
  onInterval?: (i: EplbInterval) => void;
  /** Said once while the page has no EPLB histogram yet. */
  onWaiting?: (message: string) => void;
}

export interface WatchStream extends RoutingStream {
  /** The metrics page scraped. */
  readonly metricsUrl: string;
  /** The page's first EPLB scrape (GPUs, layers). */
  readonly first: EplbScrape;
}

/** `URL` as given when it names a path, else URL/metrics. */
function metricsUrl(url: string): URL {
  const u = normalizeUrl(url);
  if (u.pathname === '/') u.pathname = '/metrics';
  else u.pathname = u.pathname.replace(/\/$/, '');
  return u;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** One row of load counts: an interval's counts per layer × GPU. */
function intervalBatch(i: EplbInterval, ranks: number): CountBatch {
  return {
    length: 1,
    step: Float64Array.of(i.step),
    tNs: BigInt64Array.of(i.tNs),
    axis: 'device',
    bins: ranks,
    counts: i.counts,
  };
}

/**
 * Scrapes until the page holds `sglang:eplb_gpu_physical_count` (SGLang creates its series at the first
 * collection), then returns the stream. A server that is not there, or a page that is not Prometheus text, fails
 * here; so does a page still without the histogram after `samples` + 1 scrapes.
 */
export async function openWatchStream(o: WatchOptions): Promise<WatchStream> {
  const url = metricsUrl(o.url);
  const where = printable(url.href);
  const timeout = o.timeoutMs ?? Math.max(10_000, o.intervalMs);
  const abort = new AbortController();
  const scrape = async (): Promise<EplbScrape> => {
    const text = await requestText(url, timeout, abort.signal);
    return decodeEplb(parseMetricsPage(text, where), BigInt(Date.now()) * 1_000_000n, where);
  };
  const intervals = new EplbIntervals();
  let first = await scrape();
  let tries = 1;
  while (first.ranks === 0) {
    if (o.samples !== null && tries > o.samples)
      throw new UserError(
        `${where}: no sglang:eplb_gpu_physical_count in ${tries} scrapes — start SGLang with --enable-metrics and ` +
          `SGLANG_EPLB_HEATMAP_COLLECTION_INTERVAL=N (N > 0), and send it traffic${Object.keys(first.vllm).length ? '; vLLM publishes no per-GPU counts' : ''}`,
      );
    if (tries === 1)
      o.onWaiting?.(
        `${where} has no sglang:eplb_gpu_physical_count yet (SGLang fills it every SGLANG_EPLB_HEATMAP_COLLECTION_INTERVAL passes); waiting`,
      );
    await sleep(o.intervalMs, abort.signal);
    first = await scrape();
    tries++;
  }
  intervals.push(first, where);
  const schema: RoutingSchema = {
    layers: first.layers,
    experts: first.ranks,
    topK: 1,
    scoring: 'softmax',
    hasLogits: false,
  };
  const meta: StreamMeta = { model: null, routers: [], tokenizer: null, devices: [], source: 'watch:sglang' };
  const head = {
    metricsUrl: url.href,
    first,
    label: `watch ${where}`,
    schema,
    meta,
    kind: 'counts' as const,
    tokens: null,
    notes: ['load counts per layer × GPU from sglang:eplb_gpu_physical_count (no expert ids, no per-token routing)'],
  };
  return polledStream(head, abort, async function* (closed) {
    let n = 0;
    while (!closed() && (o.samples === null || n < o.samples)) {
      await sleep(o.intervalMs, abort.signal);
      if (closed()) break;
      let s: EplbScrape;
      try {
        s = await scrape();
      } catch (e) {
        if (closed()) break;
        throw e;
      }
      const i = intervals.push(s, where);
      if (!i) continue;
      n++;
      o.onInterval?.(i);
      yield { kind: 'counts', batch: intervalBatch(i, intervals.ranks) };
    }
  });
}
