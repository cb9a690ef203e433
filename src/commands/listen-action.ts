/**
 * `moescope listen`: the Listener (src/listen) as a RoutingStream, recorded into one merged trace (tapStream), shown
 * in the live TUI (the same store and views as `run`), or — with --no-ui, or without a terminal — logged: one line
 * per event on stderr, a summary line per interval and the final routing summary on stdout.
 */
import { basename } from 'node:path';
import type { RoutingSchema } from '../core/batch.js';
import { describeSchema } from '../core/batch.js';
import { groupBatch, type ShapeGroup, shapeGroups } from '../core/shapes.js';
import { tapStream, type RoutingStream, type StreamItem } from '../core/routing-stream.js';
import { Listener, MERGED_COLUMNS, type ListenOptions } from '../listen/listener.js';
import { listenStream } from '../listen/stream.js';
import { RankLoads, loadCv, loadMaxVio, loadShares } from '../stats/index.js';
import { TraceWriter } from '../trace/writer.js';

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

/**
 * What the no-UI summary computes from the merged stream (src/stats): per-rank counts only — the merged load is
 * their sum (RankLoads.total), so every assignment is counted once.
 */
interface Sinks {
  /** One RankLoads per layer shape (src/core/shapes.ts: layers that differ in E or K are counted in their own). */
  ranks: RankLoads[];
  groups: ShapeGroup[];
  tokens: number;
  schema: RoutingSchema;
}

export async function runListen(o: ListenSessionOptions): Promise<void> {
  const listener = new Listener(o);
  const streamP = listenStream(listener, 'listen');
  streamP.catch(() => {});
  await listener.start();
  // Producers' hosts, errors and tags are data: terminal-safe through src/core/sanitize.ts.
  const { oneLine, printText } = await import('../core/sanitize.js');
  const err = (s: string) => process.stderr.write(`moescope listen: ${oneLine(s)}\n`);
  const out = (s: string) => printText(s);
  const views = o.ui ? await import('../views/index.js') : null;
  const tui = views?.interactive() ?? false;
  let problems = 0;
  let show: (line: string) => void = err;
  listener.on('log', (line) => {
    if (/^refused |connection closed|without end-of-stream/.test(line)) problems++;
    show(line);
  });
  const stop = () => void listener.stop();
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', stop);
  if (o.exitWhenIdle != null) listener.exitWhenIdle(o.exitWhenIdle);
  const where = o.unix ? `unix:${listener.address}` : `tcp://${listener.address}`;
  err(
    `listening on ${where} (${o.token ? 'token required' : 'no token'}); ranks connect with moescope_probe.attach(model, "${where}")`,
  );

  let writer: TraceWriter | null = null;
  let sinks: Sinks | null = null;
  let timer: NodeJS.Timeout | null = null;
  try {
    // Everything needs the stream's schema: it comes with the first producer (a signal before that just ends).
    const live = await Promise.race([streamP, listener.done.then(() => null)]);
    if (live === null) return;
    let stream: RoutingStream = live;
    if (o.record) {
      const w = (writer = TraceWriter.create(o.record, {
        schema: live.schema,
        meta: live.meta,
        columns: MERGED_COLUMNS,
        // The thread that reads every producer's socket does not also wait for the disk; a disk slower than the
        // producers pauses them (TCP backpressure) instead.
        background: true,
        onBacklog: (over) => (over ? listener.pause('recording') : listener.resume('recording')),
      }));
      w.closeOnExit({ signals: [] }); // an exit without close() still ends the file cleanly
      stream = tapStream(live, (item: StreamItem) => {
        if (item.kind === 'tokens')
          w.write(item.batch, { checked: true }); // the listener checked every batch
        else if (item.kind === 'memory') w.writeMemory(item.sample);
      });
    }
    if (tui) {
      process.off('SIGINT', stop); // the TUI owns Ctrl-C (q quits)
      await views!.runLiveTui({
        stream,
        // No '/' in it: the status bar shortens a label with one to its last part (a path's file name).
        label: o.unix ? `listen · unix socket ${basename(listener.address)}` : `listen · ${listener.address}`,
        recording: o.record ?? null,
        placement: o.devices && o.devices > 1 ? views!.contiguousSpec(live.schema, o.devices) : null,
        color: o.color,
        onFeed: (feed) => (show = (line) => feed.note(line)),
      });
      show = err;
      await listener.stop();
      return;
    }
    const s: Sinks = (sinks = {
      tokens: 0,
      groups: shapeGroups(live.schema),
      ranks: shapeGroups(live.schema).map((g) => new RankLoads(g.positions.length, g.schema.experts, g.schema.topK)),
      schema: live.schema,
    });
    let last = { tokens: 0, t: performance.now() };
    timer = setInterval(
      () => {
        const now = performance.now();
        const d = s.tokens - last.tokens;
        const rate = d / ((now - last.t) / 1000);
        last = { tokens: s.tokens, t: now };
        if (d === 0 && listener.connected === 0) return;
        out(`[${clock()}] ${intervalLine(listener, s, d, rate)}\n`);
      },
      (o.interval ?? 10) * 1000,
    );
    for await (const item of stream.items()) {
      if (item.kind !== 'tokens') continue;
      s.ranks.forEach((r, i) => r.add(groupBatch(item.batch, s.schema, s.groups[i]!)));
      s.tokens += item.batch.length;
    }
  } finally {
    if (timer) clearInterval(timer);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    process.off('SIGHUP', stop);
    writer?.close();
  }
  out(finalSummary(listener, sinks, writer, problems));
  if (problems > 0) process.exitCode = 2;
}

/** Stream layer l's merged load: its shape's counts (over all ranks), where its row starts, its own E. */
function layerLoad(s: Sinks, l: number): { load: Float64Array; base: number; E: number; part: number; at: number } {
  const part = s.groups.findIndex((g) => g.positions.includes(l));
  const g = s.groups[part]!;
  const at = g.positions.indexOf(l);
  const E = g.schema.experts;
  return { load: s.ranks[part]!.total(), base: at * E, E, part, at };
}

function intervalLine(l: Listener, s: Sinks, delta: number, rate: number): string {
  const ranks = l.ranks();
  const steps = ranks.map((r) => r.step).filter((x): x is number => x !== null);
  const dropped = ranks.reduce((a, r) => a + r.dropped, 0);
  const parts = [
    `${l.connected} rank${l.connected === 1 ? '' : 's'} connected`,
    `${fmt(s.tokens)} tokens (+${fmt(delta)}, ${fmt(Math.round(rate))} tok/s)`,
  ];
  if (steps.length)
    parts.push(
      `step ${Math.min(...steps)}${Math.max(...steps) !== Math.min(...steps) ? `…${Math.max(...steps)}` : ''}`,
    );
  parts.push(`${fmt(dropped)} steps dropped`);
  if (s.tokens > 0) {
    let worst = 0;
    let at = 0;
    for (let l2 = 0; l2 < s.schema.layers.length; l2++) {
      const x = layerLoad(s, l2);
      const v = loadMaxVio(x.load, x.base, x.E);
      if (v > worst) [worst, at] = [v, l2];
    }
    parts.push(`worst MaxVio ${worst.toFixed(2)} (layer ${s.schema.layers[at]})`);
  }
  return parts.join(' · ');
}

function finalSummary(l: Listener, s: Sinks | null, writer: TraceWriter | null, problems: number): string {
  const lines: string[] = [];
  const ranks = l.ranks();
  if (!s) {
    lines.push(`moescope listen: no producer sent a stream${ranks.length ? ` (${ranks.length} connected)` : ''}`);
    return lines.join('\n') + '\n';
  }
  lines.push(
    `moescope listen: ${fmt(l.tokens)} tokens from ${ranks.length} rank${ranks.length === 1 ? '' : 's'} · ${describeSchema(s.schema)}`,
  );
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
  if (s.tokens > 0) {
    const shown = Math.min(Math.min(...s.groups.map((g) => g.schema.experts)), Math.max(4, 2 * s.schema.topK), 8);
    lines.push('', `routing over all ranks (busiest experts, share of assignments; MaxVio per rank: docs/metrics.md)`);
    const ranks = s.ranks[0]!.ranks();
    const head = ['layer', `top ${shown} experts`, 'cv', 'MaxVio', ...ranks.map((r) => `r${r.rank}`)];
    const body: string[][] = [head];
    s.schema.layers.forEach((layer, li) => {
      const { load, base, E, part, at } = layerLoad(s, li);
      const share = loadShares(load, base, E);
      const top = Array.from(share)
        .map((x, e) => ({ e, x }))
        .sort((a, b) => b.x - a.x || a.e - b.e)
        .slice(0, shown)
        .map((x) => `e${x.e} ${(100 * x.x).toFixed(1)}%`)
        .join('  ');
      const cv = loadCv(load, base, E);
      const maxVio = loadMaxVio(load, base, E);
      body.push([
        String(layer),
        top,
        cv.toFixed(2),
        maxVio.toFixed(2),
        ...ranks.map((r) => s.ranks[part]!.maxVio(r.rank, at).toFixed(2)),
      ]);
    });
    lines.push(...table(body));
  }
  if (writer)
    lines.push(`recorded ${writer.path}: ${fmt(writer.tokensWritten)} tokens (merged, every row tagged with its rank)`);
  if (problems > 0)
    lines.push(`${problems} connection problem${problems === 1 ? '' : 's'} (see the lines above); exit status 2`);
  return lines.join('\n') + '\n';
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  // Numbers right-aligned; text (the second column, the last) left-aligned.
  return rows.map(
    (r) =>
      '  ' +
      r
        .map((c, i) => (i === 1 || i === r.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
        .join('  ')
        .trimEnd(),
  );
}
