import type { Command } from 'commander';
import { datasetOptions, intArg } from './options.js';

export function registerReport(program: Command): void {
  const cmd = program
    .command('report')
    .description('one self-contained HTML report: heatmap, load bars, metrics, warnings, placement, domains')
    .argument('<trace>', 'Arrow trace (.arrows), or a folder / quoted glob of traces (docs/scale.md)')
    .requiredOption('-o, --output <file>', 'HTML file to write')
    .option('--devices <d>', 'show load per device for D devices (contiguous expert placement)', intArg('--devices', 1))
    .option(
      '--window <w>',
      'collapse-detection window in tokens (default 512, as in stats and the TUI)',
      intArg('--window', 1),
    );
  datasetOptions(cmd).action(async (trace: string, opts: import('./report-action.js').ReportOptions) => {
    const { reportCommand } = await import('./report-action.js');
    await reportCommand(trace, opts);
  });
}
