/**
 * moescope TUI (docs/tui.md). Entry points for the commands; each loads Ink only when a terminal will show it.
 *
 *   runReplay({ stream, file, follow?, speed?, devices?, plan?, ui?, color?, window? })   moescope replay TRACE [--follow]
 *   runLiveTui({ stream, label, recording?, placement?, color?, window? })          live RoutingStream (moescope, moescope run)
 *   contiguousSpec(schema, D) / readPlanFile(path, schema)                          placements for the Devices view
 *   runTui({ model, feed, source, … })                                       any model + feed (src/store)
 *   formatSummary(model, header)                                              the plain no-TTY summary
 *   interactive()                                                             whether stdin and stdout are terminals
 */
export { runReplay, type ReplayOptions } from './replay.js';
export { runLiveTui, collectLive, type LiveTuiOptions } from './live.js';
export { formatSummary, type SummaryHeader } from './summary.js';
export { contiguousSpec, readPlanFile, type PlacementSpec } from '../store/placement-spec.js';
export { interactive, loadRunTui } from './entry.js';
export type { RunTuiOptions } from './run-tui.js';
