/**
 * `check --model MODEL --prompts FILE`: the routing the model computes over the prompts, captured by the engine
 * (src/engine) as it runs — the same batches `moescope run --record` would write, without the trace file.
 */
import type { RoutingStream } from '../core/routing-stream.js';

export interface ModelSourceOptions {
  /** Tokens to generate per prompt after it (0: route the prompt tokens only — deterministic and fastest). */
  maxTokens: number;
  /** Capture router logits (needed for z-loss limits). */
  logits: boolean;
}

export async function modelSource(model: string, prompts: string, o: ModelSourceOptions): Promise<RoutingStream> {
  const engine = await import('../engine/index.js');
  const h = engine.startGeneration({
    model,
    prompts: engine.loadPrompts(prompts),
    maxTokens: o.maxTokens,
    logits: o.logits,
    memoryIntervalMs: 0,
  });
  return engine.generationStream(h, `${model} over ${prompts}`);
}
