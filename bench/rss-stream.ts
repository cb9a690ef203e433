/**
 * Peak memory while streaming a (multi-GB) trace — what `moescope stats` / replay pay per byte of trace.
 *
 *   node dist/bench/rss-stream.js TRACE [--json]
 *
 * Run in a process of its own, so its peak RSS (process.resourceUsage().maxRSS) is the reader's alone: opens the
 * trace, streams every batch with `batches(0, { reuse: true })`, counts every expert assignment (the stats' hot
 * loop) and reads every logit, then reports tokens, bytes, time, peak RSS and the sha1 of the load matrix —
 * bench/run-all.ts compares it with the sha1 of what RoutingStats counted live (bench/ingest.ts), which proves
 * the trace holds every token the stats saw.
 */
import { statSync } from 'node:fs';
import { F16_TO_F32 } from '../src/core/f16.js';
import { countAssignments } from '../src/stats/index.js';
import { openTrace } from '../src/trace/index.js';
import { flag, isMain, loadSha1 } from './common.js';

export interface RssStreamResult {
  tokens: number;
  bytes: number;
  ms: number;
  maxRssMiB: number;
  /** Peak RSS right after opening the trace (indexing its batch headers), before streaming. */
  openRssMiB: number;
  loadSha1: string;
  /** Sum of every logit (finite ones): forces every logit to be read; meaningless otherwise. */
  logitSum: number;
}

export function streamTrace(path: string): RssStreamResult {
  const t0 = performance.now();
  const t = openTrace(path);
  const openRssMiB = process.resourceUsage().maxRSS / 1024;
  const L = t.schema.layers.length;
  const { experts: E, topK: K } = t.schema;
  const load = new Float64Array(L * E);
  let tokens = 0;
  let logitSum = 0;
  for (const b of t.batches(0, { reuse: true })) {
    countAssignments(b.experts, 0, b.length, L, K, E, load);
    const lg = b.logits;
    if (lg)
      for (let i = 0; i < lg.length; i++) {
        const v = F16_TO_F32[lg[i]!]!;
        if (Number.isFinite(v)) logitSum += v;
      }
    tokens += b.length;
  }
  t.close();
  return {
    tokens,
    bytes: statSync(path).size,
    ms: performance.now() - t0,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    openRssMiB,
    loadSha1: loadSha1(load),
    logitSum,
  };
}

function main(): void {
  const path = process.argv[2];
  if (!path || path.startsWith('--')) throw new Error('usage: node dist/bench/rss-stream.js TRACE [--json]');
  const r = streamTrace(path);
  console.log(
    `streamed ${r.tokens.toLocaleString('en-US')} tokens, ${(r.bytes / 2 ** 30).toFixed(2)} GiB in ${(r.ms / 1000).toFixed(1)} s ` +
      `(${(r.bytes / 2 ** 20 / (r.ms / 1000)).toFixed(0)} MiB/s): peak RSS ${r.maxRssMiB.toFixed(0)} MiB (after open: ${r.openRssMiB.toFixed(0)} MiB), goal < 512 MiB`,
  );
  if (flag(process.argv, '--json')) console.log(JSON.stringify(r));
}

if (isMain(import.meta.url)) main();
