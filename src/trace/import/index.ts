/**
 * `moescope import FORMAT FILE... -o TRACE`: the importers, by format — each produces a RoutingStream
 * (importStream), which importTrace writes with the trace writer.
 */
import type { Scoring } from '../../core/batch.js';
import { UserError } from '../../core/errors.js';
import { resolveOutput } from '../../core/output.js';
import { writeImport, type ImportResult, type ImportedStream } from './import-stream.js';
import { jsonlStream } from './jsonl.js';
import { megatronStream } from './megatron.js';
import { npyStream } from './npy.js';
import { sglangStream } from './sglang.js';

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

/** The importer of `format` over `files`, as a stream (its files are read as the stream is). */
export function importStream(format: ImportFormat, files: string[], o: ImportOptions = {}): ImportedStream {
  if (files.length === 0) throw new UserError('no input files');
  switch (format) {
    case 'jsonl':
      return jsonlStream(files);
    case 'megatron':
      return megatronStream(files, { experts: o.experts, scoring: o.scoring ?? 'softmax', logits: o.logits ?? true });
    case 'npy':
      if (o.topK === undefined) throw new UserError('import npy needs --top-k K (experts selected per token)');
      return npyStream(files, {
        topK: o.topK,
        scoring: o.scoring ?? 'softmax',
        logits: o.logits ?? true,
        layerIds: o.layerIds,
      });
    case 'sglang':
      return sglangStream(files, {
        scoring: o.scoring ?? 'softmax',
        ...(o.topK !== undefined ? { topK: o.topK } : {}),
        ...(o.gpus !== undefined ? { gpus: o.gpus } : {}),
      });
  }
}

/** Imports `files` into the trace `output`, written only if the whole import succeeds. */
export async function importTrace(
  format: ImportFormat,
  files: string[],
  output: string,
  o: ImportOptions = {},
): Promise<ImportResult> {
  if (files.length === 0) throw new UserError('no input files');
  resolveOutput(output, files, '--output'); // never an input, never a folder (src/core/output.ts)
  return writeImport(importStream(format, files, o), output, files);
}
