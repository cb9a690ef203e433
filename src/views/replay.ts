/** `moescope replay TRACE`: the TUI over a recorded trace (play, pause, seek) or a growing one (--follow). */
import { UserError } from '../core/errors.js';
import { printError, sanitizeText } from '../core/sanitize.js';
import type { RoutingStream, Truncation } from '../core/routing-stream.js';
import { ReplayPlayer, StreamFeed } from '../store/feeds.js';
import { RoutingModel } from '../store/model.js';
import { contiguousSpec, readPlanFile } from '../store/placement-spec.js';
import { fmtInt } from './number-text.js';
import { interactive, loadRunTui } from './entry.js';
import type { SequentialMap } from '../core/palette.js';
import { formatSummary } from './summary.js';
import type { RunTuiOptions } from './run-tui.js';

export interface ReplayOptions {
  /** The trace as a stream (src/trace traceStream): seekable, or following when `follow`. Closed on return. */
  stream: RoutingStream;
  /** How the file ends: end-of-stream marker present, or cut inside a message (read live when following). */
  file: { complete: boolean; truncated: Truncation | null };
  follow?: boolean;
  /** Playback speed ×0.25 … ×64. */
  speed?: number;
  /** Contiguous placement over D devices for the Devices view … */
  devices?: number;
  /** … or a plan file from `moescope plan --json`. */
  plan?: string;
  /** false: print the summary even on a terminal (--no-ui). */
  ui?: boolean;
  color?: boolean;
  colormap?: SequentialMap;
  /** Collapse detector window in tokens. */
  window?: number;
  out?: NodeJS.WritableStream;
  /** A count trace's header (`counts`): what a bin is, and the placement the counts were measured under. */
  counts?: {
    axis: 'expert' | 'device';
    bins: number;
    placement?: { devices: number; phy2log: number[][] } | null;
  } | null;
}

export async function runReplay(opts: ReplayOptions): Promise<void> {
  const { stream, file } = opts;
  if (stream.kind === 'counts') return replayCounts(opts);
  try {
    const model = new RoutingModel(stream.schema, stream.meta, { window: opts.window });
    const placement = opts.plan
      ? readPlanFile(opts.plan, stream.schema)
      : contiguousSpec(stream.schema, opts.devices ?? 1);
    const notes: string[] = [];
    if (file.truncated)
      notes.push(
        `the trace is cut short: ${fmtInt(file.truncated.bytesPresent)} bytes of its last batch present${file.truncated.rowsLost ? `, ${fmtInt(file.truncated.rowsLost)} tokens lost` : ''}`,
      );
    else if (!file.complete && !opts.follow)
      notes.push('no end-of-stream marker: the recorder is still writing or was killed (use --follow to tail it)');
    if (opts.ui === false || !interactive()) {
      const all = stream.seek;
      for (const c of all ? all.chunks(0) : []) {
        for (const m of c.memory) model.addMemory(m.sample);
        model.add(c.batch);
      }
      (opts.out ?? process.stdout).write(
        sanitizeText(formatSummary(model, { title: `replay ${stream.label}`, notes }, placement)),
      );
      if (file.truncated) {
        // The summary's note names the cut; stderr says it too, so a script that reads stderr sees why it got 2.
        printError(`${stream.label}: ${notes[0]}; the summary covers its complete tokens`);
        process.exitCode = 2;
      }
      return;
    }
    if (stream.tokens === 0 && !opts.follow)
      throw new UserError(`${stream.label}: the trace has no tokens (use --follow to wait for them)`);
    const feed = opts.follow
      ? new StreamFeed(stream, model, 'follow', { file })
      : new ReplayPlayer(stream, model, { speed: opts.speed ?? 1 });
    await replayTui(opts, { model, feed, placement }, notes);
  } finally {
    stream.close();
  }
}

/**
 * A count trace in the TUI (or its summary): the counts of the whole trace feed the heatmap, the load metrics and
 * the Devices view — under the trace's own placement (SGLang's physical → logical map, redundant replicas included)
 * unless --plan / --devices say otherwise. Per-device counts (no expert ids) are shown one column per device, and
 * the Devices view shows them as they were counted.
 */
async function replayCounts(opts: ReplayOptions): Promise<void> {
  const { stream, file } = opts;
  try {
    const info = opts.counts;
    if (!info) throw new Error('replay of a count stream needs its count header');
    const perDevice = info.axis === 'device';
    const schema = perDevice ? { ...stream.schema, experts: info.bins } : stream.schema;
    const model = new RoutingModel(schema, stream.meta, { counts: true });
    const identity = (n: number) => Array.from({ length: n }, (_, i) => i);
    const recorded = info.placement;
    const placement = opts.plan
      ? readPlanFile(opts.plan, schema)
      : perDevice
        ? {
            placement: { devices: info.bins, phy2log: [Int32Array.from(identity(info.bins))] },
            label: 'counted per device',
          }
        : recorded && (opts.devices ?? 1) <= 1
          ? {
              placement: { devices: recorded.devices, phy2log: recorded.phy2log.map((m) => Int32Array.from(m)) },
              label: `recorded (${recorded.phy2log[0]!.length} slots for ${schema.experts} experts${recorded.phy2log[0]!.length > schema.experts ? ', redundant replicas' : ''})`,
            }
          : contiguousSpec(schema, opts.devices ?? 1);
    const notes: string[] = [
      perDevice
        ? `count trace: load per step × layer × device (no expert ids); columns are devices`
        : 'count trace: load counts per step, no per-token data (no token window, Tokens pane or debugger)',
    ];
    if (file.truncated)
      notes.push(
        `the trace is cut short: ${fmtInt(file.truncated.bytesPresent)} bytes of its last batch present${file.truncated.rowsLost ? `, ${fmtInt(file.truncated.rowsLost)} steps lost` : ''}`,
      );
    else if (!file.complete && !opts.follow)
      notes.push('no end-of-stream marker: the recorder is still writing or was killed (use --follow to tail it)');
    if (opts.ui === false || !interactive()) {
      for await (const item of stream.items()) if (item.kind === 'counts') model.addCounts(item.batch);
      (opts.out ?? process.stdout).write(formatSummary(model, { title: `replay ${stream.label}`, notes }, placement));
      if (file.truncated) process.exitCode = 2;
      return;
    }
    await replayTui(opts, { model, feed: new StreamFeed(stream, model, 'follow'), placement }, notes);
  } finally {
    stream.close();
  }
}

/** The TUI over a trace's feed until the user quits, with the notes on the file in its status line. */
async function replayTui(
  opts: ReplayOptions,
  view: Pick<RunTuiOptions, 'model' | 'feed'> & { placement: RunTuiOptions['source']['placement'] },
  notes: readonly string[],
): Promise<void> {
  const runTui = await loadRunTui();
  await runTui({
    model: view.model,
    feed: view.feed,
    source: {
      kind: opts.follow ? 'follow' : 'replay',
      label: opts.stream.label,
      recording: null,
      placement: view.placement,
    },
    color: opts.color,
    colormap: opts.colormap,
    ui: notes.length > 0 ? { message: notes.join('; ') } : undefined,
  });
}
