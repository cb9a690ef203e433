import type { Command } from 'commander';

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('find the MoE routers in an ONNX model by graph pattern and describe them')
    .argument('<model>', 'path to model.onnx (or its directory; external data beside it is found)')
    .option('--json', 'print the stable JSON form (docs/inspect.md)')
    .action(async (model: string, opts: { json?: boolean }) => {
      const { inspectModel, formatInspect } = await import('../engine/inspect.js');
      const report = inspectModel(model);
      const { printJson, printText } = await import('../core/sanitize.js');
      if (opts.json) printJson(JSON.stringify(report, null, 2) + '\n');
      else printText(formatInspect(report) + '\n');
    });
}
