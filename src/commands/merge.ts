import type { Command } from 'commander';

export function registerMerge(program: Command): void {
  program
    .command('merge')
    .description('merge per-rank traces into one (rows tagged with their rank, ordered by step and time)')
    .argument('<traces...>', 'per-rank traces (.arrows); without a rank column they are ranks 0, 1, … in order')
    .requiredOption(
      '-o, --output <trace>',
      'merged trace to write; never one of the inputs; written only if the merge succeeds',
    )
    .addHelpText(
      'after',
      '\nRanks holding different layers (pipeline stages) are refused: docs/live.md § Merging ranks.',
    )
    .action(async (traces: string[], o: { output: string }) => {
      const { mergeTraces } = await import('../listen/merge.js');
      const { describeSchema } = await import('../core/batch.js');
      const { flagTruncated } = await import('./truncation.js');
      const r = mergeTraces(traces, o.output);
      const { printError, printText } = await import('../core/sanitize.js');
      for (const note of r.notes) printError(`note: ${note}`);
      const per = r.perInput.map((p) => `${p.path} (rank ${p.ranks.join(',')}): ${p.tokens}`).join(', ');
      printText(`wrote ${o.output}: ${r.tokens} tokens, ${describeSchema(r.schema)} · ${per}\n`);
      for (const t of r.truncated) flagTruncated(t.path, t.cut, t.tokens);
    });
}
