import type { Command } from 'commander';
import { intArg } from './options.js';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('one self-contained HTML report: heatmap, load bars, metrics, warnings, placement, domains')
    .argument('<trace>', 'Arrow trace (.arrows)')
    .requiredOption('-o, --output <file>', 'HTML file to write')
    .option('--devices <d>', 'show load per device for D devices (contiguous expert placement)', intArg('--devices', 1))
    .option('--window <w>', 'collapse-detection window in tokens (default 512, as in stats and the TUI)', intArg('--window', 1))
    .action(async (trace: string, opts: { output: string; devices?: number; window?: number }) => {
      const { reportCommand } = await import('./report-action.js');
      await reportCommand(trace, opts);
    });
}
