import type { Command } from 'commander';
import { choiceArg, floatArg, intArg, intListArg } from './options.js';

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('CI gate: fail (exit 1) when routing breaks thresholds; exit 0 when all pass, 2 on bad input')
    .argument('[trace]', 'Arrow trace to check (or use --model and --prompts)')
    .option('--model <model>', 'run this model instead of reading a trace')
    .option('--prompts <file>', 'prompts for --model: JSONL {"text": …, "domain": …} or one prompt per line')
    .option('--max-tokens <n>', 'with --model: tokens to generate per prompt (default 0: route the prompts only)', intArg('--max-tokens', 0))
    .option('--config <file>', 'thresholds file (default: moescope.config.json when present; docs/ci.md)')
    .option('--max-maxvio <x>', 'largest allowed MaxVio per layer', floatArg('--max-maxvio', 0))
    .option('--max-cv <x>', 'largest allowed coefficient of variation of expert load per layer', floatArg('--max-cv', 0))
    .option('--max-dead <n>', 'most dead experts allowed per layer', intArg('--max-dead', 0))
    .option('--min-entropy <x>', 'smallest allowed normalised load entropy per layer (0…1)', floatArg('--min-entropy', 0))
    .option('--max-hot-share <x>', 'largest allowed share of one expert per layer (0…1)', floatArg('--max-hot-share', 0))
    .option('--max-z-loss <x>', 'largest allowed router z-loss per layer (needs logits)', floatArg('--max-z-loss', 0))
    .option('--layers <list>', 'only these MoE layers (model layer ids), e.g. 1,2,5', intListArg('--layers'))
    .option('--format <f>', 'text, json, junit, github or markdown',
      choiceArg('--format', ['text', 'json', 'junit', 'github', 'markdown'] as const), 'text')
    .option('--output <file>', 'write the report here instead of stdout')
    .action(async (trace: string | undefined, opts) => {
      const { checkCommand } = await import('./gate-action.js');
      process.exitCode = await checkCommand(trace, opts);
    });
}
