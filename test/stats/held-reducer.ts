/**
 * A reducer module for the engine (GenerationOptions.reducer) that holds back every snapshot after the first:
 * live-logits.test.ts runs the engine with it, so that the end of the run must bring the last one.
 */
import type { RoutingSchema } from '../../src/core/batch.js';
import { createBatchReducer as live } from '../../src/stats/live-logits.js';

export function createBatchReducer(schema: RoutingSchema) {
  return live(schema, { intervalMs: Number.POSITIVE_INFINITY });
}
