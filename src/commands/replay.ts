import type { Command } from 'commander';
import { floatArg, intArg } from './options.js';
import { pending } from './pending.js';

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('open the TUI on a recorded trace (play, pause, seek, step); --follow tails a growing one')
    .argument('<trace>', 'Arrow trace (.arrows)')
    .option('--follow', 'keep reading as the trace grows')
    .option('--speed <x>', 'playback speed ×0.25 … ×64', floatArg('--speed', 0.25), 1)
    .option('--devices <d>', 'assume experts are placed contiguously over D devices', intArg('--devices', 1))
    .option('--no-ui', 'print a summary instead of the TUI')
    .option('--no-color', 'draw without colour')
    .action(async () => pending('replay'));
}
