import type { Command } from 'commander';
import { choiceArg, datasetOptions, floatArg, intListArg } from './options.js';

export function registerDiff(program: Command): void {
  const cmd = program
    .command('diff')
    .description('routing drift between two traces: load shift per layer and router agreement on identical tokens')
    .argument('<base>', 'baseline trace, or a folder / quoted glob of traces (docs/scale.md)')
    .argument('<new>', 'new trace, or a folder / quoted glob')
    .option(
      '--format <f>',
      'text, json, junit, github or markdown',
      choiceArg('--format', ['text', 'json', 'junit', 'github', 'markdown'] as const),
      'text',
    )
    .option(
      '--max-drift <x>',
      'fail (exit 1) when a layer drifts more than this (Jensen–Shannon, bits, 0…1)',
      floatArg('--max-drift', 0),
    )
    .option('--max-tv <x>', "fail when a layer's total variation distance exceeds this (0…1)", floatArg('--max-tv', 0))
    .option(
      '--min-agreement <x>',
      'fail when router agreement on identical tokens falls below this (0…1)',
      floatArg('--min-agreement', 0),
    )
    .option('--layers <list>', 'only these MoE layers (model layer ids), e.g. 1,2,5', intListArg('--layers'))
    .option(
      '--config <file>',
      'limits from the "diff" section of this file (default: moescope.config.json when present)',
    )
    .option('--output <file>', 'write the report here instead of stdout');
  datasetOptions(cmd).action(async (base: string, next: string, opts) => {
    const { diffCommand } = await import('./gate-action.js');
    process.exitCode = await diffCommand(base, next, opts);
  });
}
