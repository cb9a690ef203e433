import type { Command } from 'commander';
import { choiceArg, intArg } from './options.js';
import { pending } from './pending.js';

export function registerImport(program: Command): void {
  program
    .command('import')
    .description("convert others' routing dumps into a moescope trace (jsonl, megatron, npy)")
    .argument('<format>', 'jsonl, megatron or npy', choiceArg('format', ['jsonl', 'megatron', 'npy'] as const))
    .argument('<files...>', 'input files (megatron: every router_trace_rank*.jsonl)')
    .requiredOption('-o, --output <trace>', 'trace to write (.arrows)')
    .option('--top-k <k>', 'npy: experts selected per token', intArg('--top-k', 1))
    .option('--scoring <s>', 'npy: softmax or sigmoid', choiceArg('--scoring', ['softmax', 'sigmoid'] as const), 'softmax')
    .action(async () => pending('import'));
}
