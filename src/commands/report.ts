import type { Command } from 'commander';
import { intArg } from './options.js';
import { pending } from './pending.js';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('one self-contained HTML report: heatmap, load bars, metrics, warnings, placement')
    .argument('<trace>', 'Arrow trace (.arrows)')
    .requiredOption('-o, --output <file>', 'HTML file to write')
    .option('--devices <d>', 'show load per device for D devices', intArg('--devices', 1))
    .action(async () => pending('report'));
}
