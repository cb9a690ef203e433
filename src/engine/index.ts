/**
 * moescope engine: run any ONNX MoE export and capture its real routing, token by token (docs/engine.md).
 *
 *   inspectModel(path)                    → InspectReport: every router found by graph pattern (docs/inspect.md)
 *   const h = startGeneration({ model, prompts: [{ text, tag }], maxTokens: 32, logits: true, loop: false })
 *   const { schema, meta } = await h.ready
 *   for await (const e of h) …            // 'batch' (RoutingBatch) | 'text' | 'sequence-start' | 'sequence-end' | 'memory'
 *   h.on('batch', ({ batch }) => …)       // the same events through EventEmitter
 *   h.pause(); h.resume(); await h.stop(); await h.done
 *
 * Lower level: loadModel + discoverRouters + instrumentModel (the byte-append edit), ModelRunner (one forward
 * pass at a time, in-process), runGeneration (the loop), MemorySampler / parseNvidiaSmi (device memory).
 */
export { inspectModel, formatInspect, type InspectReport, type InspectRouter, type InspectOptions } from './inspect.js';
export { generationStream } from './generation-stream.js';
export {
  startGeneration,
  GenerationHandle,
  type GenerationOptions,
  type GenerationInfo,
  type GenerationSummary,
  type HandleEvent,
} from './generation-handle.js';
export {
  runGeneration,
  sampleToken,
  seededRandom,
  type PromptSpec,
  type GenerateOptions,
  type GenerationEvent,
  type SequenceResult,
  type StopReason,
  type LoopControl,
} from './generation-loop.js';
export { ModelRunner, type RunnerOptions, type SequenceState, type ForwardResult } from './runner.js';
export {
  discoverRouters,
  requireRouters,
  PATTERNS_TRIED,
  type RouterInfo,
  type RouterKind,
  type ModelRouting,
  type DerivedSelection,
} from './discover.js';
export {
  instrumentModel,
  writeInstrumented,
  OUTPUT_PREFIX,
  type CapturePlan,
  type RouterOutputs,
} from './instrument.js';
export { loadModel, resolveModelPath, type LoadedModel } from './onnx-model.js';
export { schemaFor, type RoutingRows } from './capture.js';
export { MemorySampler, parseNvidiaSmi, NVIDIA_SMI_ARGS, type MemorySamplerOptions } from './memory.js';
export { loadPrompts, parsePrompts } from './prompts.js';
export { EXECUTION_PROVIDERS, type ExecutionProvider } from './session.js';
export { findTokenizer, loadTextCodec, type TextCodec } from './tokenizer.js';
