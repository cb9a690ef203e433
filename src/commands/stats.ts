import type { Command } from 'commander';
import { intArg } from './options.js';
import { pending } from './pending.js';

export function registerStats(program: Command): void {
  program
    .command('stats')
    .description('balance metrics of a trace, each labelled with its framework convention (docs/metrics.md)')
    .argument('<trace>', 'Arrow trace (.arrows)')
    .option('--json', 'print the stable JSON form')
    .option('--devices <d>', 'balancedness over D devices (contiguous placement)', intArg('--devices', 1))
    .option('--window <w>', 'sliding window in tokens for collapse detection', intArg('--window', 1))
    .action(async () => pending('stats'));
}
