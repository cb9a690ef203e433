/**
 * `check --model MODEL --prompts FILE`: the routing the model computes over the prompts, captured by the engine
 * (src/engine) as it runs — the same batches `moescope run --record` would write, without the trace file.
 */
import type { RoutingSource } from './source.js';

export interface ModelSourceOptions {
  /** Tokens to generate per prompt after it (0: route the prompt tokens only — deterministic and fastest). */
  maxTokens: number;
  /** Capture router logits (needed for z-loss limits). */
  logits: boolean;
}

export async function modelSource(model: string, prompts: string, o: ModelSourceOptions): Promise<RoutingSource> {
  const engine = await import('../engine/index.js');
  const h = engine.startGeneration({ model, prompts: engine.loadPrompts(prompts), maxTokens: o.maxTokens, logits: o.logits, memoryIntervalMs: 0 });
  let info;
  try {
    info = await h.ready;
  } catch (e) {
    await h.stop().catch(() => undefined);
    throw e;
  }
  let stopped = false;
  return {
    label: `${model} over ${prompts}`,
    schema: info.schema,
    meta: info.meta,
    notes: [],
    async *batches() {
      for await (const e of h) if (e.type === 'batch') yield e.batch;
      await h.done;
    },
    close() {
      if (stopped) return;
      stopped = true;
      void h.stop().catch(() => undefined);
    },
  };
}
