import type { Command } from 'commander';
import { intArg } from './options.js';
import { pending } from './pending.js';

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description('expert placement with DeepSeek EPLB: replicate hot experts, pack onto nodes and GPUs')
    .argument('[trace]', 'trace whose expert loads to balance (or --weights)')
    .option('--weights <file>', 'JSON [[load per logical expert] per layer]')
    .requiredOption('--replicas <r>', 'physical expert slots in all (≥ experts)', intArg('--replicas', 1))
    .option('--groups <g>', 'expert groups', intArg('--groups', 1), 1)
    .option('--nodes <n>', 'nodes', intArg('--nodes', 1), 1)
    .requiredOption('--gpus <p>', 'GPUs in all', intArg('--gpus', 1))
    .option('--json', 'print phy2log, log2phy, logcnt and balancedness as JSON')
    .action(async () => pending('plan'));
}
