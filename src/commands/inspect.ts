import type { Command } from 'commander';
import { pending } from './pending.js';

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('find the MoE routers in an ONNX model by graph pattern and describe them')
    .argument('<model>', 'path to model.onnx')
    .option('--json', 'print the stable JSON form (docs/inspect.md)')
    .action(async () => pending('inspect'));
}
