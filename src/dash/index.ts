/**
 * moescope dash: the long-run dashboard (blessed-contrib) over any RoutingStream — an engine run, a recorded trace
 * (read whole), a trace still being written (follow), and any live source that produces a RoutingStream. It reads
 * the same model, feeds and store as the Ink views (src/store), with a downsampled history of the run attached
 * (src/store/history.ts).
 *
 *   await runDashboard({ stream, kind: 'replay' | 'follow' | 'live', thresholds, devices: 4 })
 *
 * Only src/commands imports this module (it opens the source); blessed is loaded by ./blessed.ts alone.
 */
import type { RoutingStream } from '../core/routing-stream.js';
import type { SequentialMap } from '../core/palette.js';
import { ReplayPlayer, StreamFeed, type Feed } from '../store/feeds.js';
import { HistoryModel } from '../store/history.js';
import { contiguousSpec, readPlanFile } from '../store/placement-spec.js';
import type { Thresholds } from './dashboard.js';

export { DASH_KEYS, MIN_COLUMNS, MIN_ROWS, type Thresholds } from './dashboard.js';

export interface DashboardOptions {
  /**
   * The source. `replay` needs a seekable stream (a trace) and reads all of it; the stream is closed on return. A
   * count stream (kind `counts`: a server's Prometheus counts per layer × GPU) feeds the same model through
   * RoutingModel.addCounts, its schema's experts being the GPUs (`countsPerDevice`).
   */
  stream: RoutingStream;
  /** A count stream's bins are devices (GPUs), not experts: the grid, the bars and balancedness are per GPU. */
  countsPerDevice?: boolean;
  kind: 'live' | 'replay' | 'follow';
  /** How the status line names the source (default: the stream's label). */
  label?: string;
  thresholds: Thresholds;
  /** Contiguous placement over D devices, or a plan file (`moescope plan --json`). */
  devices?: number;
  plan?: string;
  /** Sliding window of the collapse detector and of the history's balance values, in tokens. */
  window?: number;
  color?: boolean;
  colormap?: SequentialMap;
  /** A line for the status bar (e.g. the trace is cut short). */
  notice?: string | null;
  /** Called with the live / follow feed once it exists (the listener passes its log lines to `feed.note`). */
  onFeed?: (feed: StreamFeed) => void;
}

/** Runs the dashboard until the user quits; then the stream is closed (a live producer is stopped). */
export async function runDashboard(o: DashboardOptions): Promise<void> {
  const { stream } = o;
  try {
    const counts = stream.kind === 'counts';
    const perDevice = counts && (o.countsPerDevice ?? false);
    // Counted per device: each bin is a GPU, placed on itself (as `replay` shows a per-device count trace).
    const G = stream.schema.experts;
    const placement = perDevice
      ? { placement: { devices: G, phy2log: [Int32Array.from({ length: G }, (_, i) => i)] }, label: 'counted per GPU' }
      : o.plan
        ? readPlanFile(o.plan, stream.schema)
        : contiguousSpec(stream.schema, o.devices ?? 1);
    const model = new HistoryModel(stream.schema, stream.meta, {
      window: o.window,
      placement: placement?.placement ?? null,
      counts,
    });
    let feed: Feed;
    if (o.kind === 'replay') {
      // Read everything: the player seeks in slices (one now, then one per tick), so the screen stays responsive.
      const player = new ReplayPlayer(stream, model, { playing: false });
      player.seek(stream.tokens ?? Number.MAX_SAFE_INTEGER);
      feed = player;
    } else {
      const f = new StreamFeed(stream, model, o.kind);
      o.onFeed?.(f);
      feed = f;
    }
    const notes = [o.notice, ...stream.notes].filter((n): n is string => !!n);
    const { runDash } = await import('./run-dash.js');
    await runDash({
      model,
      feed,
      source: { kind: o.kind, label: o.label ?? stream.label, recording: null, placement },
      bins: perDevice ? 'GPUs' : 'experts',
      thresholds: o.thresholds,
      color: o.color,
      colormap: o.colormap,
      notice: notes.length > 0 ? notes.join('; ') : null,
    });
  } finally {
    stream.close();
  }
}
