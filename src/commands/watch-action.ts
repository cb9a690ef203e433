/** `moescope watch URL`: the Prometheus watcher's counts stream, printed per interval (or shown live). */
import { fmt, fmtCount } from '../core/number-format.js';
import type { CountBatch } from '../core/routing-stream.js';
import { printable } from '../serving/client.js';
import type { EplbInterval } from '../serving/prometheus.js';
import { openWatchStream } from '../serving/watch.js';
import { balancednessOfDeviceLoads } from '../stats/balancedness.js';
import type { WatchFlags } from './watch.js';
import type { RoutingStream } from '../core/routing-stream.js';
import type { WatchStream } from '../serving/watch.js';

/**
 * With --record: the stream, teed into a count trace (axis = device: a bin is a GPU; E and K unknown), and the
 * writer to close. The trace is written in place, so `replay --follow` can show it while watch runs.
 */
async function recording(stream: WatchStream, f: WatchFlags): Promise<{ stream: RoutingStream; close: () => void }> {
  if (!f.record) return { stream, close: () => {} };
  const { CountTraceWriter } = await import('../trace/count-writer.js');
  const { tapStream } = await import('../core/routing-stream.js');
  const w = CountTraceWriter.create(f.record, {
    schema: stream.schema,
    meta: stream.meta,
    axis: 'device',
    bins: stream.first.ranks,
    topKKnown: false,
    expertsKnown: false,
  });
  w.closeOnExit();
  return { stream: tapStream(stream, (item) => item.kind === 'counts' && w.write(item.batch)), close: () => w.close() };
}

/** Per-layer rows of one count row (axis = device). */
function layerRows(counts: Float64Array, layers: number, ranks: number): Float64Array[] {
  return Array.from({ length: layers }, (_, l) => counts.subarray(l * ranks, (l + 1) * ranks));
}

/** On a terminal: the live view (src/views/watch.tsx) over the counts stream, until the user quits. */
async function runWatchLive(url: string, f: WatchFlags): Promise<void> {
  let serverMean: number | null = null;
  const stream = await openWatchStream({
    url,
    intervalMs: f.interval * 1000,
    samples: f.samples ?? null,
    onInterval: (i) => (serverMean = i.balancednessMean),
    onWaiting: (m) => process.stderr.write(`moescope: ${m}\n`),
  });
  const { WatchModel } = await import('../store/watch.js');
  const { runWatchTui } = await import('../views/watch.js');
  const model = new WatchModel(stream.schema.layers, stream.first.ranks);
  const rec = await recording(stream, f);
  const pump = (async () => {
    try {
      for await (const item of rec.stream.items()) if (item.kind === 'counts') model.add(item.batch, serverMean);
      model.end((await stream.end()).error);
    } catch (e) {
      model.end(e instanceof Error ? e.message : String(e));
    }
  })();
  try {
    await runWatchTui({ model, label: stream.metricsUrl, intervalS: f.interval, color: f.color });
  } finally {
    stream.close();
    await pump;
    rec.close();
  }
}

export async function runWatch(url: string, f: WatchFlags): Promise<void> {
  if (f.ui) {
    const { interactive } = await import('../views/entry.js');
    if (interactive()) return runWatchLive(url, f);
  }
  const out = (s: string) => process.stdout.write(s);
  const err = (s: string) => process.stderr.write(s);
  let L = 0;
  let R = 0;
  const line = (i: EplbInterval) => {
    const rows = layerRows(i.counts, L, R);
    const total = i.counts.reduce((a, b) => a + b, 0);
    const b = total > 0 ? balancednessOfDeviceLoads(rows).sglang : null;
    const parts = [`interval ${i.step}`, `${i.seconds.toFixed(1)} s`, `${fmtCount(total)} assignments`];
    parts.push(b === null ? 'no traffic' : `balancedness ${fmt(b, 3)}`);
    if (i.balancednessMean !== null) parts.push(`server's sglang:eplb_balancedness ${fmt(i.balancednessMean, 3)}`);
    for (const [k, v] of Object.entries(i.vllm)) parts.push(`${printable(k)} ${fmt(v, 3)}`);
    if (i.resets.length) parts.push(`counters reset (server restarted) in layers ${i.resets.join(',')}`);
    out(parts.join(' · ') + '\n');
  };
  const stream = await openWatchStream({
    url,
    intervalMs: f.interval * 1000,
    samples: f.samples ?? null,
    onInterval: line,
    onWaiting: (m) => err(`moescope: ${m}\n`),
  });
  L = stream.schema.layers.length;
  R = stream.first.ranks;
  out(`watching ${printable(stream.metricsUrl)}: ${L} layers × ${R} GPUs, every ${f.interval} s\n`);
  const onInt = () => stream.close();
  process.once('SIGINT', onInt);
  const sum = new Float64Array(L * R);
  let n = 0;
  const rec = await recording(stream, f);
  try {
    for await (const item of rec.stream.items()) {
      if (item.kind !== 'counts') continue;
      const b: CountBatch = item.batch;
      for (let j = 0; j < sum.length; j++) sum[j]! += b.counts[j]!;
      n += b.length;
    }
  } finally {
    process.off('SIGINT', onInt);
    rec.close();
  }
  const end = await stream.end();
  if (f.record) out(`recorded ${printable(f.record)}: ${n} intervals\n`);
  if (n === 0) return;
  // Per layer over every interval watched: each GPU's share, and SGLang's balancedness of the layer.
  const rows = layerRows(sum, L, R);
  const bal = balancednessOfDeviceLoads(rows);
  out(`\nover ${n} interval${n === 1 ? '' : 's'}: share of each GPU's assignments per layer\n`);
  const shown = Math.min(R, 16);
  const table: string[][] = [
    ['layer', ...Array.from({ length: shown }, (_, r) => `gpu${r}`), ...(R > shown ? ['…'] : []), 'balancedness'],
  ];
  stream.schema.layers.forEach((layer, l) => {
    const t = rows[l]!.reduce((a, b) => a + b, 0);
    table.push([
      String(layer),
      ...Array.from({ length: shown }, (_, r) => (t > 0 ? `${((100 * rows[l]![r]!) / t).toFixed(1)}%` : '–')),
      ...(R > shown ? ['…'] : []),
      fmt(bal.perLayer[l]!, 3),
    ]);
  });
  const w = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  for (const r of table) out('  ' + r.map((c, i) => c.padStart(w[i]!)).join('  ') + '\n');
  out(`  balancedness (SGLang: mean over layers of (mean + 1e-5) / (max + 1e-5)) ${fmt(bal.sglang, 3)}\n`);
  if (end.error) err(`moescope: ${end.error}\n`);
}
