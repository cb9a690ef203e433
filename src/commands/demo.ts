import type { Command } from 'commander';
import { pending } from './pending.js';

/** Bare `moescope`: the live demo on the bundled model over the bundled prompts, looping. */
export function registerDemo(program: Command): void {
  program
    .option('--no-color', 'draw without colour (also when NO_COLOR is set)')
    .option('--ep <provider>', 'execution provider for the demo model: cpu, cuda or webgpu', 'cpu')
    .action(async () => pending('moescope (live demo)'));
}
