/**
 * `moescope listen`: a Listener wired to a recording (one merged trace), to the live TUI (the same store and views
 * as `run`), or — with --no-ui, or without a terminal — to a log: one line per event on stderr, a summary line
 * per interval and the final routing summary on stdout.
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import { describeSchema } from '../core/batch.js';
import type { MemorySample } from '../core/memory.js';
import type { StreamMeta } from '../core/stream.js';
import { RankLoads, RoutingStats, loadMaxVio } from '../stats/index.js';
import type { TraceWriter } from '../trace/writer.js';
import { Listener, MERGED_COLUMNS, type ListenOptions } from './listener.js';

export interface ListenSessionOptions extends ListenOptions {
  record?: string | null;
  /** Show the TUI (when stdin and stdout are terminals). */
  ui: boolean;
  exitWhenIdle?: number | null;
  /** Seconds between summary lines without UI. */
  interval?: number;
  /** Devices for the placement of the Devices view (contiguous). */
  devices?: number;
  color?: boolean;
}

const fmt = (n: number) => n.toLocaleString('en-US');
const clock = () => new Date().toISOString().slice(11, 19);

/** Consumers of the merged stream that exist once the first producer's schema is known. */
interface Sinks {
  writer: TraceWriter | null;
  stats: RoutingStats | null;
  ranks: RankLoads;
  schema: RoutingSchema;
}

export async function runListen(o: ListenSessionOptions): Promise<void> {
  const listener = new Listener(o);
  await listener.start();
  const err = (s: string) => process.stderr.write(`moescope listen: ${s}\n`);
  const out = (s: string) => process.stdout.write(s);
  const views = o.ui ? await import('../views/index.js') : null;
  const tui = views?.interactive() ?? false;
  const { TraceWriter } = await import('../trace/writer.js');
  let sinks: Sinks | null = null;
  let problems = 0;
  let feed: import('../store/feeds.js').LiveFeed | null = null;
  let model: import('../store/model.js').RoutingModel | null = null;
  const pending: ({ batch: RoutingBatch } | { sample: MemorySample })[] = [];

  listener.on('log', (line) => {
    if (/^refused |connection closed|without end-of-stream/.test(line)) problems++;
    if (feed) feed.note(line);
    else err(line);
  });
  listener.on('stream', ({ schema, meta }: { schema: RoutingSchema; meta: StreamMeta }) => {
    let writer: TraceWriter | null = null;
    if (o.record) {
      writer = TraceWriter.create(o.record, { schema, meta, columns: MERGED_COLUMNS });
      writer.closeOnExit({ signals: [] }); // an exit without close() still ends the file cleanly
    }
    sinks = {
      writer,
      stats: tui ? null : new RoutingStats(schema, { window: 0, collapse: false }),
      ranks: new RankLoads(schema.layers.length, schema.experts, schema.topK),
      schema,
    };
  });
  listener.on('batch', ({ batch }) => {
    const s = sinks!;
    s.writer?.write(batch);
    s.stats?.add(batch);
    s.ranks.add(batch);
    if (feed) feed.push(batch);
    else if (tui) pending.push({ batch });
  });
  listener.on('memory', ({ sample }) => {
    sinks!.writer?.writeMemory(sample);
    if (feed) feed.memory(sample);
    else if (tui) pending.push({ sample });
  });

  const stop = () => void listener.stop();
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', stop);
  if (o.exitWhenIdle != null) listener.exitWhenIdle(o.exitWhenIdle);
  const tokenNote = o.token ? 'token required' : 'no token';
  err(`listening on ${o.unix ? `unix:${listener.address}` : `tcp://${listener.address}`} (${tokenNote}); ranks connect with moescope_probe.attach(model, "${o.unix ? `unix:${listener.address}` : `tcp://${listener.address}`}")`);

  let timer: NodeJS.Timeout | null = null;
  try {
    if (tui) {
      // The TUI needs the stream's schema: it starts with the first producer (Ctrl-C before that just exits).
      const info = await Promise.race([listener.ready, listener.done.then(() => null)]);
      if (info === null) return;
      const { RoutingModel } = await import('../store/model.js');
      const { LiveFeed } = await import('../store/feeds.js');
      model = new RoutingModel(info.schema, info.meta);
      feed = new LiveFeed(model);
      for (const p of pending.splice(0)) 'batch' in p ? feed.push(p.batch) : feed.memory(p.sample);
      void listener.done.then(() => feed!.end());
      const runTui = await views!.loadRunTui();
      process.off('SIGINT', stop); // the TUI owns Ctrl-C (q quits)
      await runTui({
        model,
        feed,
        source: {
          kind: 'live',
          label: `listen · ${listener.address}`,
          recording: o.record ?? null,
          placement: o.devices && o.devices > 1 ? views!.contiguousSpec(info.schema, o.devices) : null,
        },
        color: o.color,
      });
      await listener.stop();
      return;
    }
    let last = { tokens: 0, t: performance.now() };
    timer = setInterval(() => {
      const now = performance.now();
      const d = listener.tokens - last.tokens;
      const rate = d / ((now - last.t) / 1000);
      last = { tokens: listener.tokens, t: now };
      if (d === 0 && listener.connected === 0) return;
      out(`[${clock()}] ${intervalLine(listener, sinks, d, rate)}\n`);
    }, (o.interval ?? 10) * 1000);
    await listener.done;
  } finally {
    if (timer) clearInterval(timer);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    process.off('SIGHUP', stop);
    const s = sinks as Sinks | null;
    s?.writer?.close();
  }
  out(finalSummary(listener, sinks, o.record ?? null, problems));
  if (problems > 0) process.exitCode = 2;
}

function intervalLine(l: Listener, s: Sinks | null, delta: number, rate: number): string {
  const ranks = l.ranks();
  const steps = ranks.map((r) => r.step).filter((x): x is number => x !== null);
  const dropped = ranks.reduce((a, r) => a + r.dropped, 0);
  const parts = [
    `${l.connected} rank${l.connected === 1 ? '' : 's'} connected`,
    `${fmt(l.tokens)} tokens (+${fmt(delta)}, ${fmt(Math.round(rate))} tok/s)`,
  ];
  if (steps.length) parts.push(`step ${Math.min(...steps)}${Math.max(...steps) !== Math.min(...steps) ? `…${Math.max(...steps)}` : ''}`);
  parts.push(`${fmt(dropped)} steps dropped`);
  if (s?.stats && s.stats.tokens > 0) {
    const E = s.schema.experts;
    const load = s.stats.loadMatrix('run');
    let worst = 0;
    let at = 0;
    for (let l2 = 0; l2 < s.schema.layers.length; l2++) {
      const v = loadMaxVio(load, l2 * E, E);
      if (v > worst) [worst, at] = [v, l2];
    }
    parts.push(`worst MaxVio ${worst.toFixed(2)} (layer ${s.schema.layers[at]})`);
  }
  return parts.join(' · ');
}

function finalSummary(l: Listener, s: Sinks | null, record: string | null, problems: number): string {
  const lines: string[] = [];
  const ranks = l.ranks();
  if (!s) {
    lines.push(`moescope listen: no producer sent a stream${ranks.length ? ` (${ranks.length} connected)` : ''}`);
    return lines.join('\n') + '\n';
  }
  lines.push(`moescope listen: ${fmt(l.tokens)} tokens from ${ranks.length} rank${ranks.length === 1 ? '' : 's'} · ${describeSchema(s.schema)}`);
  const rows: string[][] = [['rank', 'host', 'pid', 'tokens', 'steps dropped', 'last step', 'connections', 'ended']];
  for (const r of ranks)
    rows.push([
      String(r.rank),
      r.host,
      String(r.pid),
      fmt(r.tokens),
      fmt(r.dropped),
      r.step === null ? '-' : String(r.step),
      String(r.connections),
      r.error ?? 'cleanly',
    ]);
  lines.push(...table(rows));
  if (s.stats && s.stats.tokens > 0) {
    const E = s.schema.experts;
    const K = s.schema.topK;
    const shown = Math.min(E, Math.max(4, 2 * K), 8);
    lines.push('', `routing over all ranks (busiest experts, share of assignments; MaxVio per rank: docs/metrics.md)`);
    const head = ['layer', `top ${shown} experts`, 'cv', 'MaxVio', ...s.ranks.ranks().map((r) => `r${r.rank}`)];
    const body: string[][] = [head];
    s.schema.layers.forEach((layer, li) => {
      const m = s.stats!.layerMetrics(li, 'run');
      const top = m.share
        .map((x, e) => ({ e, x }))
        .sort((a, b) => b.x - a.x || a.e - b.e)
        .slice(0, shown)
        .map((x) => `e${x.e} ${(100 * x.x).toFixed(1)}%`)
        .join('  ');
      body.push([String(layer), top, m.cv.toFixed(2), m.maxVio.toFixed(2), ...s.ranks.ranks().map((r) => s.ranks.maxVio(r.rank, li).toFixed(2))]);
    });
    lines.push(...table(body));
  }
  if (record) lines.push(`recorded ${record}: ${fmt(s.writer?.tokensWritten ?? 0)} tokens (merged, every row tagged with its rank)`);
  if (problems > 0) lines.push(`${problems} connection problem${problems === 1 ? '' : 's'} (see the lines above); exit status 2`);
  return lines.join('\n') + '\n';
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  // Numbers right-aligned; text (the second column, the last) left-aligned.
  return rows.map((r) => '  ' + r.map((c, i) => (i === 1 || i === r.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd());
}
