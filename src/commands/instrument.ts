import type { Command } from 'commander';

export function registerInstrument(program: Command): void {
  program
    .command('instrument')
    .description('save a copy of the model whose router tensors are graph outputs')
    .argument('<model>', 'path to model.onnx (or its directory)')
    .requiredOption('-o, --output <file>', 'where to write the instrumented model')
    .option('--logits', 'expose router logits too')
    .action(async (model: string, opts: { output: string; logits?: boolean }) => {
      const { loadModel } = await import('../engine/onnx-model.js');
      const { requireRouters } = await import('../engine/discover.js');
      const { instrumentModel, writeInstrumented } = await import('../engine/instrument.js');
      const m = loadModel(model);
      const routing = requireRouters(m, model);
      const { bytes, plan } = instrumentModel(m, routing, { logits: opts.logits ?? false });
      const { path, linked } = writeInstrumented(m, bytes, opts.output);
      const { OUTPUTS } = await import('../engine/instrument.js');
      const K = plan.routers[0]!.topK;
      const E = plan.routers[0]!.experts;
      const shapes: Record<string, string> = {
        [OUTPUTS.ids]: `int32 [tokens, ${plan.blocks.select}×${K}]`,
        [OUTPUTS.weights]: `float32 [tokens, ${plan.blocks.select}×${K}]`,
        [OUTPUTS.logits]: `float32 [tokens, ${plan.blocks.logits}×${E}]`,
        [OUTPUTS.mix]: `float32 [tokens, ${plan.blocks.mix}×${E}]`,
      };
      const lines = [
        `wrote ${path}: ${plan.routers.length} MoE layers (${plan.routers.map((r) => r.layer).join(', ')}), outputs added:`,
      ];
      for (const f of plan.fetch) lines.push(`  ${f}  ${shapes[f]}`);
      lines.push('  column blocks in layer order; layout in docs/engine.md');
      const derived = plan.routers.filter((r) => r.selection === 'derived').map((r) => r.layer);
      if (derived.length)
        lines.push(
          `  layers ${derived.join(', ')}: fused MoE op, selection derived from the logits following its attributes`,
        );
      for (const l of linked) lines.push(`  linked external data ${l}`);
      (await import('../core/sanitize.js')).printText(lines.join('\n') + '\n');
    });
}
