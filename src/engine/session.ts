/**
 * onnxruntime sessions on the CPU, CUDA or WebGPU execution provider. A provider that cannot start is a one-line
 * user error naming the fix — never a silent fall-back to the CPU.
 */
import type { InferenceSession } from 'onnxruntime-node';
import { UserError, describeError } from '../core/errors.js';

export const EXECUTION_PROVIDERS = ['cpu', 'cuda', 'webgpu'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

type Ort = typeof import('onnxruntime-node');
let ortModule: Ort | null = null;

/** onnxruntime-node, loaded on first use (the CLI's --help must not pay for it). Native logging is silenced:
 * failures reach the user as one line through our errors. */
export async function loadOrt(): Promise<Ort> {
  if (!ortModule) {
    ortModule = await import('onnxruntime-node');
    ortModule.env.logLevel = 'fatal';
  }
  return ortModule;
}

export interface SessionRequest {
  /** Model bytes (possibly instrumented). */
  bytes: Uint8Array;
  /** Directory of the original model: where external data files are resolved. */
  dir: string;
  /** Whether the model has external data (then `dir` is passed to onnxruntime). */
  externalData: boolean;
  ep: ExecutionProvider;
  deviceId: number;
  /** Label used in messages (the model path). */
  label: string;
  /** Intra-op threads (0 = onnxruntime's default). */
  threads?: number;
}

export async function createSession(req: SessionRequest): Promise<InferenceSession> {
  if (!(EXECUTION_PROVIDERS as readonly string[]).includes(req.ep))
    throw new UserError(`unknown execution provider "${req.ep}"; use one of ${EXECUTION_PROVIDERS.join(', ')}.`);
  if (!Number.isInteger(req.deviceId) || req.deviceId < 0)
    throw new UserError(`--device-id must be a non-negative integer, got ${req.deviceId}.`);
  const ort = await loadOrt();
  const provider: InferenceSession.ExecutionProviderConfig =
    req.ep === 'cuda' ? { name: 'cuda', deviceId: req.deviceId } : req.ep === 'webgpu' ? { name: 'webgpu' } : 'cpu';
  const options: InferenceSession.SessionOptions = {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 4,
    ...(req.threads ? { intraOpNumThreads: req.threads, interOpNumThreads: 1 } : {}),
    ...(req.externalData ? { extra: { session: { model_external_initializers_file_folder_path: req.dir } } } : {}),
  };
  try {
    return await ort.InferenceSession.create(req.bytes, options);
  } catch (e) {
    throw providerError(req, describeError(e));
  }
}

/** One line saying what failed and what to do. */
function providerError(req: Pick<SessionRequest, 'ep' | 'label'>, message: string): UserError {
  const msg = message.replace(/\s+/g, ' ').trim();
  if (req.ep === 'cuda' && /cuda|shared library|libcu|cudnn|provider/i.test(msg))
    return new UserError(
      `the CUDA execution provider could not start (${msg}): it needs onnxruntime-node's CUDA build (npm install onnxruntime-node --onnxruntime-node-install=cuda12) with CUDA 12 and cuDNN 9 libraries; or run with --ep cpu.`,
    );
  if (req.ep === 'webgpu' && /webgpu|adapter|dawn|vulkan/i.test(msg))
    return new UserError(
      `the WebGPU execution provider could not start (${msg.replace(/^.*?(Failed to get a WebGPU adapter)/, '$1')}); run with --ep cpu.`,
    );
  return new UserError(`onnxruntime could not load ${req.label}: ${msg.slice(0, 400)}`);
}
