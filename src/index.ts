/**
 * moescope as a library: the same modules the CLI composes, usable without the TUI.
 *
 *   import { engine, trace, stats } from 'moescope';
 *   const t = await trace.openTrace('run.arrows');
 *   const s = new stats.RoutingStats(t.schema);
 *   for await (const b of t.batches()) s.add(b);
 *   console.log(s.snapshot('run'));
 *
 * Each namespace's index documents its API at the top (src/<module>/index.ts); docs/architecture.md gives the map.
 */
export * from './core/batch.js';
export * from './core/f16.js';
export * from './core/topk.js';
export type { StreamMeta, RouterSummary } from './core/stream.js';
export type { MemorySample, GpuMemory } from './core/memory.js';
export { UserError } from './core/errors.js';
export * as engine from './engine/index.js';
export * as trace from './trace/index.js';
export * as stats from './stats/index.js';
