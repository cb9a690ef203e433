/**
 * The live TUI over a RoutingStream (an engine run, or any live producer). The caller owns the producer (and any
 * recording, e.g. through tapStream); this consumes the stream, never slows it, and closes it when the user quits.
 */
import type { RoutingStream } from '../core/routing-stream.js';
import { StreamFeed } from '../store/feeds.js';
import { RoutingModel } from '../store/model.js';
import type { PlacementSpec } from '../store/placement-spec.js';
import { loadRunTui } from './entry.js';
import type { SequentialMap } from '../core/palette.js';

export interface LiveTuiOptions {
  stream: RoutingStream;
  /** Shown in the status bar, e.g. the model's name. */
  label: string;
  /** Path of the trace the caller is recording, shown as ● REC. */
  recording?: string | null;
  /** Where experts live, for the Devices view (store/placement-spec.ts: contiguousSpec, readPlanFile). */
  placement?: PlacementSpec | null;
  color?: boolean;
  colormap?: SequentialMap;
  /** Collapse detector window in tokens. */
  window?: number;
  /** The stream's token items carry the producer's logits metrics (`derived`, src/stats/live-logits.ts). */
  postedLogits?: boolean;
  /** Called with the feed before the TUI starts (e.g. to show a producer's messages with `feed.note(line)`). */
  onFeed?: (feed: StreamFeed) => void;
}

/**
 * Runs the TUI until the user quits — the producer ending does not close it. Then the stream is closed (the
 * producer stopped) and everything it still yields is consumed before this returns, so a recording is whole.
 */
export async function runLiveTui(opts: LiveTuiOptions): Promise<void> {
  const { stream } = opts;
  const model = new RoutingModel(stream.schema, stream.meta, {
    window: opts.window,
    logits: opts.postedLogits ? 'posted' : 'here',
  });
  const feed = new StreamFeed(stream, model, 'live');
  opts.onFeed?.(feed);
  const runTui = await loadRunTui();
  try {
    await runTui({
      model,
      feed,
      source: { kind: 'live', label: opts.label, recording: opts.recording ?? null, placement: opts.placement ?? null },
      color: opts.color,
      colormap: opts.colormap,
    });
  } finally {
    stream.close();
    feed.start(); // no-op when the TUI started it; drains the stream either way
    await feed.drained();
  }
}

/** Without a terminal: feeds everything the stream yields into a model and returns it when the stream ends. */
export async function collectLive(
  stream: RoutingStream,
  opts: { window?: number; postedLogits?: boolean } = {},
): Promise<RoutingModel> {
  const model = new RoutingModel(stream.schema, stream.meta, {
    window: opts.window,
    logits: opts.postedLogits ? 'posted' : 'here',
  });
  for await (const item of stream.items()) {
    if (item.kind === 'tokens') {
      for (const m of item.memory) model.addMemory(m.sample);
      model.add(item.batch, item.derived);
    } else if (item.kind === 'memory') model.addMemory(item.sample);
    else if (item.kind === 'derived') model.addDerived(item.derived);
  }
  return model;
}
