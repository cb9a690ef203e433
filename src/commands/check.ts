import type { Command } from 'commander';
import { GATED } from '../stats/catalogue.js';
import { choiceArg, datasetOptions, floatArg, intArg, intListArg } from './options.js';

export function registerCheck(program: Command): void {
  const cmd = program
    .command('check')
    .description('CI gate: fail (exit 1) when routing breaks thresholds; exit 0 when all pass, 2 on bad input')
    .argument(
      '[trace]',
      'Arrow trace to check, or a folder / quoted glob of traces (docs/scale.md); or use --model and --prompts',
    )
    .option('--model <model>', 'run this model instead of reading a trace')
    .option('--prompts <file>', 'prompts for --model: JSONL {"text": …, "domain": …} or one prompt per line')
    .option(
      '--max-tokens <n>',
      'with --model: tokens to generate per prompt (default 0: route the prompts only)',
      intArg('--max-tokens', 0),
    )
    .option('--config <file>', 'thresholds file (default: moescope.config.json when present; docs/ci.md)');
  // One flag per gated metric of the catalogue (src/stats/catalogue.ts), in its order.
  for (const m of GATED) {
    const g = m.gate;
    cmd.option(`${g.flag} ${g.integer ? '<n>' : '<x>'}`, g.help, g.integer ? intArg(g.flag, 0) : floatArg(g.flag, 0));
  }
  cmd
    .option(
      '--min-balancedness <x>',
      'smallest allowed mean balancedness (0…1) of a balancedness series (`import log`)',
      floatArg('--min-balancedness', 0),
    )
    .option('--layers <list>', 'only these MoE layers (model layer ids), e.g. 1,2,5', intListArg('--layers'))
    .option(
      '--format <f>',
      'text, json, junit, github or markdown',
      choiceArg('--format', ['text', 'json', 'junit', 'github', 'markdown'] as const),
      'text',
    )
    .option('--output <file>', 'write the report here instead of stdout');
  datasetOptions(cmd).action(async (trace: string | undefined, opts) => {
    const { checkCommand } = await import('./gate-action.js');
    process.exitCode = await checkCommand(trace, opts);
  });
}
