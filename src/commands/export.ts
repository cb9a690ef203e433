import type { Command } from 'commander';

export function registerExport(program: Command): void {
  program
    .command('export')
    .description(
      'write a trace as Parquet (pandas, polars, DuckDB, pyarrow) and/or the moescope JSONL interchange format',
    )
    .argument('<trace...>', "Arrow trace (.arrows); with --partition-by, every trace of the run (each rank's)")
    .option(
      '--parquet <file>',
      'Parquet output: one row per token, float16 widened to float32 (docs/trace-format.md); with --partition-by, a folder',
    )
    .option('--jsonl <file>', 'JSONL interchange output (docs/trace-format.md)')
    .option(
      '--partition-by <key>',
      'write --parquet as a dataset folder split by rank or step:N (N steps per folder; docs/scale.md)',
    )
    .addHelpText(
      'after',
      '\nEach output is written to a temporary file and renamed into place only when complete.\n' +
        'A trace cut short exports its complete tokens, says so on stderr and exits 2.\n' +
        'With --partition-by, --parquet names a new (or empty) folder: rank=R/ or step=A-B/ folders, one file per\n' +
        'input trace in each, that DuckDB, Spark, Trino, polars and `moescope stats FOLDER` read in parallel.',
    )
    .action(async (traces: string[], o: { parquet?: string; jsonl?: string; partitionBy?: string }) => {
      const { printError, printText } = await import('../core/sanitize.js');
      const { UserError } = await import('../core/errors.js');
      if (o.partitionBy !== undefined) {
        if (o.parquet === undefined)
          throw new UserError('--partition-by writes a Parquet dataset: give --parquet FOLDER');
        if (o.jsonl !== undefined) throw new UserError('--partition-by writes Parquet only: export --jsonl on its own');
        const { exportDataset, parsePartition } = await import('../trace/export/dataset.js');
        const r = exportDataset(traces, o.parquet, parsePartition(o.partitionBy));
        printText(
          `wrote ${r.folder}: ${r.tokens} tokens in ${r.files} files over ${r.partitions} partitions (parquet)\n`,
        );
        return;
      }
      if (traces.length > 1)
        throw new UserError(
          `give one trace (got ${traces.length}), or --partition-by to write them all as one dataset`,
        );
      const trace = traces[0]!;
      const { exportTrace } = await import('../trace/export/index.js');
      const { flagTruncated } = await import('./truncation.js');
      const { results, notes, truncated, tokens, unit } = await exportTrace(trace, {
        jsonl: o.jsonl,
        parquet: o.parquet,
      });
      for (const note of notes) printError(`note: ${note}`);
      for (const r of results) printText(`wrote ${r.path}: ${r.tokens} ${unit} (${r.format})\n`);
      flagTruncated(trace, truncated, tokens);
    });
}
