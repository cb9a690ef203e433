import type { Command } from 'commander';

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('write a trace as Parquet (pandas, polars, DuckDB, pyarrow) and/or the moescope JSONL interchange format')
    .argument('<trace>', 'Arrow trace (.arrows)')
    .option('--parquet <file>', 'Parquet output: one row per token, float16 widened to float32 (docs/trace-format.md)')
    .option('--jsonl <file>', 'JSONL interchange output (docs/trace-format.md)')
    .addHelpText(
      'after',
      '\nEach output is written to a temporary file and renamed into place only when complete.\n' +
        'A trace cut short exports its complete tokens, says so on stderr and exits 2.',
    )
    .action(async (trace: string, o: { parquet?: string; jsonl?: string }) => {
      const { exportTrace } = await import('../trace/export/index.js');
      const { flagTruncated } = await import('./truncation.js');
      const { results, notes, truncated, tokens, unit } = await exportTrace(trace, { jsonl: o.jsonl, parquet: o.parquet });
      const { printError, printText } = await import('../core/sanitize.js');
      for (const note of notes) printError(`note: ${note}`);
      for (const r of results) printText(`wrote ${r.path}: ${r.tokens} ${unit} (${r.format})\n`);
      flagTruncated(trace, truncated, tokens);
    });
}
