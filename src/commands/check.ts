import type { Command } from 'commander';
import { choiceArg, floatArg, intArg } from './options.js';
import { pending } from './pending.js';

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('CI gate: fail (exit 1) when routing breaks thresholds; exit 0 when all pass, 2 on bad input')
    .argument('[trace]', 'Arrow trace to check (or use --model and --prompts)')
    .option('--model <model>', 'run this model instead of reading a trace')
    .option('--prompts <file>', 'prompts for --model')
    .option('--config <file>', 'thresholds file (default: moescope.config.json when present)')
    .option('--max-maxvio <x>', 'largest allowed MaxVio', floatArg('--max-maxvio', 0))
    .option('--max-cv <x>', 'largest allowed coefficient of variation of expert load', floatArg('--max-cv', 0))
    .option('--max-dead <n>', 'most dead experts allowed per layer', intArg('--max-dead', 0))
    .option('--min-entropy <x>', 'smallest allowed normalised load entropy (0…1)', floatArg('--min-entropy', 0))
    .option('--max-hot-share <x>', 'largest allowed share of one expert (0…1)', floatArg('--max-hot-share', 0))
    .option('--max-z-loss <x>', 'largest allowed router z-loss (needs logits)', floatArg('--max-z-loss', 0))
    .option('--layers <list>', 'only these MoE layers (model layer ids), e.g. 1,2,5')
    .option('--format <f>', 'text, json, junit, github or markdown',
      choiceArg('--format', ['text', 'json', 'junit', 'github', 'markdown'] as const), 'text')
    .option('--output <file>', 'write the report here instead of stdout')
    .action(async () => pending('check'));
}
