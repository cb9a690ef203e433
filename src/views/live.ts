/**
 * The live TUI over a producer of routing batches — the engine's GenerationHandle or anything shaped like it.
 * The caller owns the producer (and any recording); this subscribes to its events, never slows it, and stops it
 * when the user quits.
 */
import type { RoutingBatch, RoutingSchema } from '../core/batch.js';
import type { MemorySample } from '../core/memory.js';
import type { StreamMeta } from '../core/stream.js';
import { LiveFeed } from '../store/feeds.js';
import { RoutingModel } from '../store/model.js';
import type { PlacementSpec } from '../store/placement.js';
import { loadRunTui } from './entry.js';
import type { SequentialMap } from './palette.js';

/** What the live TUI needs of a producer (src/engine GenerationHandle fits). */
export interface LiveSource {
  readonly ready: Promise<{ schema: RoutingSchema; meta: StreamMeta }>;
  readonly done: Promise<unknown>;
  on(event: 'batch', listener: (e: { batch: RoutingBatch }) => void): unknown;
  on(event: 'memory', listener: (e: { sample: MemorySample }) => void): unknown;
  stop(): Promise<unknown>;
}

export interface LiveTuiOptions {
  handle: LiveSource;
  /** Shown in the status bar, e.g. the model's name. */
  label: string;
  /** Path of the trace the caller is recording, shown as ● REC. */
  recording?: string | null;
  /** Where experts live, for the Devices view (store/placement.ts: contiguousSpec, readPlanFile). */
  placement?: PlacementSpec | null;
  color?: boolean;
  colormap?: SequentialMap;
  /** Collapse detector window in tokens. */
  window?: number;
}

/** Runs the TUI until the user quits (the producer is stopped then) — the producer ending does not close it. */
export async function runLiveTui(opts: LiveTuiOptions): Promise<void> {
  const info = await opts.handle.ready;
  const model = new RoutingModel(info.schema, info.meta, { window: opts.window });
  const feed = new LiveFeed(model);
  opts.handle.on('batch', (e) => feed.push(e.batch));
  opts.handle.on('memory', (e) => feed.memory(e.sample));
  opts.handle.done.then(
    () => feed.end(),
    (e: unknown) => feed.end(e),
  );
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
    await opts.handle.stop().catch(() => {});
  }
}

/** Without a terminal: feeds everything the producer emits into a model and returns it when the producer ends. */
export async function collectLive(handle: LiveSource, window?: number): Promise<RoutingModel> {
  const info = await handle.ready;
  const model = new RoutingModel(info.schema, info.meta, { window });
  handle.on('batch', (e) => model.add(e.batch));
  handle.on('memory', (e) => model.addMemory(e.sample));
  await handle.done;
  return model;
}
