import type { Command } from 'commander';
import { intArg } from './options.js';
import { pending } from './pending.js';

export function registerSynth(program: Command): void {
  program
    .command('synth')
    .description('write a synthetic trace at any scale with controlled skew and planted collapse')
    .requiredOption('-o, --output <trace>', 'trace to write (.arrows)')
    .option('--layers <l>', 'MoE layers', intArg('--layers', 1), 4)
    .option('--experts <e>', 'experts per layer', intArg('--experts', 1), 8)
    .option('--top-k <k>', 'experts per token', intArg('--top-k', 1), 2)
    .option('--tokens <n>', 'tokens', intArg('--tokens', 1), 10000)
    .option('--skew <spec>', 'load skew: uniform or zipf:S', 'uniform')
    .option('--collapse <spec>', 'plant a collapse: layer=I,expert=J,from=F (F = fraction of the run)')
    .option('--logits', 'include router logits')
    .option('--seed <s>', 'random seed', intArg('--seed', 0), 0)
    .action(async () => pending('synth'));
}
