import type { Command } from 'commander';
import { choiceArg, floatArg } from './options.js';
import { pending } from './pending.js';

export function registerDiff(program: Command): void {
  program
    .command('diff')
    .description('routing drift between two traces: load shift per layer and router agreement on identical tokens')
    .argument('<base>', 'baseline trace')
    .argument('<new>', 'new trace')
    .option('--format <f>', 'text, json, junit, github or markdown',
      choiceArg('--format', ['text', 'json', 'junit', 'github', 'markdown'] as const), 'text')
    .option('--max-drift <x>', 'fail (exit 1) when a layer drifts more than this (Jensen–Shannon)', floatArg('--max-drift', 0))
    .option('--output <file>', 'write the report here instead of stdout')
    .action(async () => pending('diff'));
}
