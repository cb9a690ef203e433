/**
 * moescope dash: the long-run dashboard (blessed-contrib) over anything moescope reads — a model generating live,
 * a recorded trace, a trace still being written (--follow). It reads the same model, feeds and store as the Ink
 * views (src/store), with a downsampled history of the run attached (src/store/history.ts).
 *
 *   await runDashOnTrace({ trace: 'run.arrows', follow: false, thresholds, devices: 4 })
 *   await runDashLive({ handle, label, thresholds })            // handle: the engine's GenerationHandle
 *
 * Only src/commands imports this module; blessed is loaded by ./blessed.ts alone.
 */
import { UserError } from '../core/errors.js';
import { FollowFeed, LiveFeed, ReplayPlayer } from '../store/feeds.js';
import { HistoryModel } from '../store/history.js';
import { contiguousSpec, readPlanFile, type PlacementSpec } from '../store/placement.js';
import type { RoutingSchema } from '../core/batch.js';
import type { SequentialMap } from '../views/palette.js';
import type { LiveSource } from '../views/live.js';
import type { Thresholds } from './dashboard.js';

export { DASH_KEYS, MIN_COLUMNS, MIN_ROWS, type Thresholds } from './dashboard.js';

export interface DashCommonOptions {
  thresholds: Thresholds;
  /** Contiguous placement over D devices, or a plan file (`moescope plan --json`). */
  devices?: number;
  plan?: string;
  /** Sliding window of the collapse detector and the history's balance values, in tokens. */
  window?: number;
  color?: boolean;
  colormap?: SequentialMap;
}

function placementOf(schema: RoutingSchema, o: DashCommonOptions): PlacementSpec | null {
  return o.plan ? readPlanFile(o.plan, schema) : contiguousSpec(schema, o.devices ?? 1);
}

/** The dashboard over a trace: all of it is read at once (in slices, the screen stays live); --follow then tails it. */
export async function runDashOnTrace(o: DashCommonOptions & { trace: string; follow?: boolean }): Promise<void> {
  const { openTrace } = await import('../trace/index.js');
  const trace = openTrace(o.trace);
  try {
    const placement = placementOf(trace.schema, o);
    const model = new HistoryModel(trace.schema, trace.meta, { window: o.window, placement: placement?.placement ?? null });
    let notice: string | null = null;
    if (trace.truncated) notice = 'the trace is cut short: its complete tokens are shown';
    else if (!trace.complete && !o.follow) notice = 'no end-of-stream marker: the recorder is still writing or was killed (use --follow to tail it)';
    if (trace.tokenCount === 0 && !o.follow) throw new UserError(`${o.trace}: the trace has no tokens (use --follow to wait for them)`);
    let feed;
    if (o.follow) feed = new FollowFeed(trace, model);
    else {
      // Read everything: the player seeks in slices (one now, the rest a slice per tick once started), so the
      // screen stays responsive on long traces.
      const player = new ReplayPlayer(trace, model, { playing: false });
      player.seek(trace.tokenCount);
      feed = player;
    }
    const { runDash } = await import('./run-dash.js');
    await runDash({
      model,
      feed,
      source: { kind: o.follow ? 'follow' : 'replay', label: o.trace, recording: null, placement },
      thresholds: o.thresholds,
      color: o.color,
      colormap: o.colormap,
      notice,
    });
  } finally {
    trace.close();
  }
}

/** The dashboard over a live producer (the engine's GenerationHandle); the producer is stopped when the user quits. */
export async function runDashLive(o: DashCommonOptions & { handle: LiveSource; label: string }): Promise<void> {
  const info = await o.handle.ready;
  const placement = placementOf(info.schema, o);
  const model = new HistoryModel(info.schema, info.meta, { window: o.window, placement: placement?.placement ?? null });
  const feed = new LiveFeed(model);
  o.handle.on('batch', (e) => feed.push(e.batch));
  o.handle.on('memory', (e) => feed.memory(e.sample));
  o.handle.done.then(
    () => feed.end(),
    (e: unknown) => feed.end(e),
  );
  const { runDash } = await import('./run-dash.js');
  try {
    await runDash({
      model,
      feed,
      source: { kind: 'live', label: o.label, recording: null, placement },
      thresholds: o.thresholds,
      color: o.color,
      colormap: o.colormap,
    });
  } finally {
    await o.handle.stop().catch(() => {});
  }
}
