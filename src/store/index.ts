/**
 * moescope store: what the TUI knows about a stream, between src/stats and src/views (docs/tui.md).
 *
 *   const model = new RoutingModel(schema, meta, { window: 512 })   // stats accumulators + ring buffers
 *   model.add(batch); model.addMemory(sample)
 *   const feed = new ReplayPlayer(trace, model, { speed: 1 })      // trace: a seekable RoutingStream; or StreamFeed(stream, model, 'live'|'follow'), LiveFeed(model)
 *   feed.start(); feed.setPlaying(false); feed.seek(1200); feed.step(1); feed.setSpeed(4)
 *   buildFrame(model, { scope: 'window', layer: 0, token: null, placement: null })   // an immutable snapshot
 *   const store = createTuiStore({ model, feed, source })          // zustand vanilla: ui, feed state, frame, actions
 *   const pub = startPublishing(store, model, feed, 15)            // frames at ≤ 15 fps, at once on selection change
 *   binnedRelLoad(frame, l, first, bin, columns), binLoad(…)             // layout-dependent selectors
 *   overviewLayout(shape, term, ui), tokenLines(frame, width, rows, token, mono) …  // layout (layout.ts, token-lines.ts)
 *   contiguousSpec(schema, D), readPlanFile(path, schema)         // placements for the Devices view
 * Every number comes from src/stats; this layer gathers and copies, and decides which experts share a heatmap column.
 */
export { RoutingModel, DEFAULT_WINDOW, WINDOW_SIZES, type ModelOptions } from './model.js';
export { TokenRing, SampleRing } from './ring.js';
export {
  buildFrame,
  type Frame,
  type Selection,
  type LayerDetail,
  type TokenDetail,
  type DeviceSummary,
  type MemoryView,
} from './frame.js';
export {
  ReplayPlayer,
  StreamFeed,
  LiveFeed,
  nextSpeed,
  SPEEDS,
  MAX_BUFFERED_TOKENS,
  type Feed,
  type FeedState,
} from './feeds.js';
export {
  createTuiStore,
  startPublishing,
  PANES,
  type TuiStore,
  type TuiState,
  type UiState,
  type SourceInfo,
  type Pane,
  type Actions,
  type Publisher,
} from './app-store.js';
export { binnedRelLoad, binLoad, type StreamToken } from './selectors.js';
export { contiguousSpec, readPlanFile, type PlacementSpec } from './placement-spec.js';
