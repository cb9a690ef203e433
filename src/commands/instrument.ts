import type { Command } from 'commander';
import { pending } from './pending.js';

export function registerInstrument(program: Command): void {
  program
    .command('instrument')
    .description('save a copy of the model whose router tensors are graph outputs')
    .argument('<model>', 'path to model.onnx')
    .requiredOption('-o, --output <file>', 'where to write the instrumented model')
    .option('--logits', 'expose router logits too')
    .action(async () => pending('instrument'));
}
