/** `moescope replay TRACE`: the TUI over a recorded trace (play, pause, seek) or a growing one (--follow). */
import { UserError } from '../core/errors.js';
import { FollowFeed, ReplayPlayer } from '../store/feeds.js';
import { RoutingModel } from '../store/model.js';
import { contiguousSpec, readPlanFile } from '../store/placement.js';
import { openTrace } from '../trace/index.js';
import { fmtInt } from './format.js';
import { interactive, loadRunTui } from './entry.js';
import type { SequentialMap } from './palette.js';
import { formatSummary } from './summary.js';

export interface ReplayOptions {
  trace: string;
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
}

export async function runReplay(opts: ReplayOptions): Promise<void> {
  const trace = openTrace(opts.trace);
  try {
    const model = new RoutingModel(trace.schema, trace.meta, { window: opts.window });
    const placement = opts.plan ? readPlanFile(opts.plan, trace.schema) : contiguousSpec(trace.schema, opts.devices ?? 1);
    const notes: string[] = [];
    if (trace.truncated)
      notes.push(`the trace is cut short: ${fmtInt(trace.truncated.bytesPresent)} bytes of its last batch present${trace.truncated.rowsLost ? `, ${fmtInt(trace.truncated.rowsLost)} tokens lost` : ''}`);
    else if (!trace.complete && !opts.follow) notes.push('no end-of-stream marker: the recorder is still writing or was killed (use --follow to tail it)');
    if (opts.ui === false || !interactive()) {
      for (const c of trace.chunks(0)) {
        for (const m of c.memory) model.addMemory(m.sample);
        model.add(c.batch);
      }
      (opts.out ?? process.stdout).write(formatSummary(model, { title: `replay ${opts.trace}`, notes }, placement));
      if (trace.truncated) process.exitCode = 2; // the summary's note names the cut (docs/tui.md)
      return;
    }
    if (trace.tokenCount === 0 && !opts.follow) throw new UserError(`${opts.trace}: the trace has no tokens (use --follow to wait for them)`);
    const feed = opts.follow ? new FollowFeed(trace, model) : new ReplayPlayer(trace, model, { speed: opts.speed ?? 1 });
    const runTui = await loadRunTui();
    await runTui({
      model,
      feed,
      source: { kind: opts.follow ? 'follow' : 'replay', label: opts.trace, recording: null, placement },
      color: opts.color,
      colormap: opts.colormap,
      ui: notes.length > 0 ? { message: notes.join('; ') } : undefined,
    });
  } finally {
    trace.close();
  }
}
