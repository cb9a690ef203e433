import type { Command } from 'commander';
import { choiceArg, intArg, intListArg } from './options.js';

interface ImportFlags {
  output: string;
  topK?: number;
  scoring: 'softmax' | 'sigmoid';
  experts?: number;
  logits: boolean;
  layerIds?: number[];
  layers?: number;
  follow?: boolean;
  gpus?: number;
}

const FORMATS = ['jsonl', 'megatron', 'npy', 'routed-experts', 'log', 'sglang'] as const;

export function registerImport(program: Command): void {
  program
    .command('import')
    .description(
      "convert others' routing dumps into a moescope trace (jsonl, megatron, npy, routed-experts, log, sglang)",
    )
    .argument('<format>', 'jsonl, megatron, npy, routed-experts, log or sglang', choiceArg('format', FORMATS))
    .argument(
      '<files...>',
      "input files (megatron: every router_trace_rank*.jsonl; routed-experts: saved SGLang / vLLM responses, JSON or JSONL; log: SGLang / vLLM server logs; sglang: every rank's expert_distribution_recorder_*.pt)",
    )
    .requiredOption('-o, --output <trace>', 'trace to write (.arrows); written only if the whole import succeeds')
    .option(
      '--top-k <k>',
      "npy, routed-experts: experts selected per token; sglang: the model's top-k (counts tokens in stat / per_pass dumps)",
      intArg('--top-k', 1),
    )
    .option(
      '--layers <n>',
      "routed-experts: layers in SGLang's flat payload (when the response's token counts do not say)",
      intArg('--layers', 1),
    )
    .option('--gpus <n>', 'sglang: expert-parallel GPUs (default: the ranks in the dumps)', intArg('--gpus', 1))
    .option(
      '--scoring <s>',
      'npy, megatron, routed-experts, sglang: softmax or sigmoid',
      choiceArg('--scoring', ['softmax', 'sigmoid'] as const),
      'softmax',
    )
    .option(
      '--experts <e>',
      "megatron, routed-experts: experts per layer (default: the logits' width, else largest id seen + 1)",
      intArg('--experts', 1),
    )
    .option(
      '--layer-ids <ids>',
      'npy: model layer id of each layer, e.g. 3,4,5 (default 0…L-1)',
      intListArg('--layer-ids'),
    )
    .option(
      '--follow',
      'megatron: keep reading the rank files while training writes them, recording each step once every rank is past it (Ctrl-C stops; needs --experts)',
    )
    .option(
      '--no-logits',
      'npy, megatron: do not store the logits (megatron: the logits_rank*.bin sidecar), only the selection',
    )
    .addHelpText(
      'after',
      '\nFormats: docs/trace-format.md (JSONL interchange, Megatron router traces, NumPy logits); docs/serving.md (SGLang / vLLM\n' +
        "responses, server logs; SGLang's expert-distribution dumps: stat and per_pass become count traces, per_token a token trace).",
    )
    .action(async (format: (typeof FORMATS)[number], files: string[], o: ImportFlags) => {
      const { UserError } = await import('../core/errors.js');
      const { describeSchema } = await import('../core/batch.js');
      if (o.follow && format !== 'megatron') throw new UserError('--follow goes with import megatron');
      if (o.follow) {
        if (o.experts === undefined)
          throw new UserError(
            'import megatron --follow needs --experts E (later steps may use experts the first did not)',
          );
        const { resolve } = await import('node:path');
        if (files.some((f) => resolve(f) === resolve(o.output)))
          throw new UserError(`the output ${o.output} is also an input`);
        const { followMegatron } = await import('../trace/import/megatron-follow.js');
        const ctrl = new AbortController();
        const stop = () => ctrl.abort();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        process.stderr.write(
          `moescope: following ${files.length} rank file${files.length === 1 ? '' : 's'} into ${o.output}; Ctrl-C stops\n`,
        );
        try {
          const r = await followMegatron(files, o.output, {
            experts: o.experts,
            scoring: o.scoring,
            logits: o.logits,
            signal: ctrl.signal,
          });
          for (const note of r.notes) process.stderr.write(`moescope: note: ${note}\n`);
          if (r.schema)
            process.stdout.write(
              `wrote ${o.output}: ${r.tokens} tokens in ${r.steps} steps, ${describeSchema(r.schema)}\n`,
            );
        } finally {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        }
        return;
      }
      if (format === 'log') {
        for (const [flag, v] of [
          ['--top-k', o.topK],
          ['--layers', o.layers],
          ['--experts', o.experts],
          ['--layer-ids', o.layerIds],
          ['--gpus', o.gpus],
        ] as const)
          if (v !== undefined) throw new UserError(`${flag} does not go with import log`);
        const { resolve } = await import('node:path');
        if (files.some((f) => resolve(f) === resolve(o.output)))
          throw new UserError(`the output ${o.output} is also an input`);
        const { importEplbLog } = await import('../trace/import/eplb-log.js');
        const r = importEplbLog(files, o.output);
        for (const note of r.notes) process.stderr.write(`moescope: note: ${note}\n`);
        process.stdout.write(`wrote ${o.output}: a ${r.producer} balancedness series of ${r.rows} steps\n`);
        return;
      }
      // The importer produces a RoutingStream; the trace writer writes it (temporary file, renamed when complete).
      if (format !== 'routed-experts') {
        if (o.layers !== undefined) throw new UserError('--layers goes with import routed-experts');
        if (o.gpus !== undefined && format !== 'sglang') throw new UserError('--gpus goes with import sglang');
      }
      const { resolveOutput } = await import('../core/output.js');
      resolveOutput(o.output, files, '--output'); // never an input (same inode through any path), never a folder
      let stream: import('../trace/import/import-stream.js').ImportedStream;
      if (format === 'routed-experts') {
        const { routedExpertsStream } = await import('../serving/import-responses.js');
        stream = routedExpertsStream(files, { layers: o.layers, topK: o.topK, experts: o.experts, scoring: o.scoring });
      } else {
        const { importStream } = await import('../trace/import/index.js');
        stream = importStream(format, files, {
          topK: o.topK,
          scoring: o.scoring,
          experts: o.experts,
          logits: o.logits,
          layerIds: o.layerIds,
          gpus: o.gpus,
        });
      }
      const { writeImport } = await import('../trace/import/import-stream.js');
      const r = await writeImport(stream, o.output, files);
      const { printError, printText } = await import('../core/sanitize.js');
      for (const note of r.notes) printError(`note: ${note}`);
      if (r.kind === 'counts') {
        const s = r.schema;
        printText(
          `wrote ${o.output}: count trace, ${r.steps} steps, ${s.layers.length} MoE layers × ${s.experts} experts\n`,
        );
      } else printText(`wrote ${o.output}: ${r.tokens} tokens, ${describeSchema(r.schema)}\n`);
    });
}
