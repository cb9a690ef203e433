/** `moescope import FORMAT FILE... -o TRACE`: the converters, by format. */
import type { Scoring } from '../../core/batch.js';
import { UserError } from '../../core/errors.js';
import { resolveOutput } from '../../core/output.js';
import { importJsonl } from './jsonl.js';
import { importMegatron } from './megatron.js';
import { importNpy } from './npy.js';
import { importSglang } from './sglang.js';
import type { ImportResult } from './sink.js';

export type ImportFormat = 'jsonl' | 'megatron' | 'npy' | 'sglang';
export type { ImportResult };

export interface ImportOptions {
  /** npy: experts selected per token (required); sglang: the model's top-k (stat / per_pass dumps lack it). */
  topK?: number;
  /** npy, megatron: scoring function (default softmax). */
  scoring?: Scoring;
  /** megatron: experts per layer (default: largest id + 1). */
  experts?: number;
  /** npy: store the logits (default true). */
  logits?: boolean;
  /** npy: model layer ids. */
  layerIds?: number[];
  /** sglang: expert-parallel GPUs (default: the ranks in the dumps). */
  gpus?: number;
}

export function importTrace(format: ImportFormat, files: string[], output: string, o: ImportOptions = {}): ImportResult {
  if (files.length === 0) throw new UserError('no input files');
  resolveOutput(output, files, '--output'); // never an input, never a folder (src/core/output.ts)
  switch (format) {
    case 'jsonl':
      return importJsonl(files, output);
    case 'megatron':
      return importMegatron(files, output, { experts: o.experts, scoring: o.scoring ?? 'softmax', logits: o.logits ?? true });
    case 'npy':
      if (o.topK === undefined) throw new UserError('import npy needs --top-k K (experts selected per token)');
      return importNpy(files, output, { topK: o.topK, scoring: o.scoring ?? 'softmax', logits: o.logits ?? true, layerIds: o.layerIds });
    case 'sglang':
      return importSglang(files, output, {
        scoring: o.scoring ?? 'softmax',
        ...(o.topK !== undefined ? { topK: o.topK } : {}),
        ...(o.gpus !== undefined ? { gpus: o.gpus } : {}),
      });
  }
}
