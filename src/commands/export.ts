import type { Command } from 'commander';
import { pending } from './pending.js';

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('write a trace as Parquet or as the moescope JSONL interchange format')
    .argument('<trace>', 'Arrow trace (.arrows)')
    .option('--parquet <file>', 'Parquet output')
    .option('--jsonl <file>', 'JSONL interchange output (docs/trace-format.md)')
    .action(async () => pending('export'));
}
