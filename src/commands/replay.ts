import type { Command } from 'commander';
import { replayLoading } from './first-frame.js';
import { choiceArg, floatArg, intArg } from './options.js';

interface ReplayFlags {
  follow?: boolean;
  speed: number;
  devices: number;
  plan?: string;
  window?: number;
  colormap: 'viridis' | 'cividis';
  ui: boolean;
  color: boolean;
}

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('open the TUI on a recorded trace (play, pause, seek, step); --follow tails a growing one')
    .argument('<trace>', 'Arrow trace (.arrows)')
    .option('--follow', 'keep reading as the trace grows')
    .option('--speed <x>', 'playback speed ×0.25 … ×64 (1 = as recorded)', floatArg('--speed', 0.25), 1)
    .option('--devices <d>', 'assume experts are placed contiguously over D devices', intArg('--devices', 1), 1)
    .option('--plan <file>', 'expert placement from `moescope plan --json` (Devices view)')
    .option(
      '--window <w>',
      'tokens of the sliding window (heatmap and collapse rules; default 512, as in stats and report)',
      intArg('--window', 1),
    )
    .option(
      '--colormap <m>',
      'heatmap colours, both colour-blind safe: viridis or cividis',
      choiceArg('--colormap', ['viridis', 'cividis'] as const),
      'viridis',
    )
    .option('--no-ui', 'print a summary instead of the TUI (also without a terminal)')
    .option('--no-color', 'draw without colour (also when NO_COLOR is set)')
    .action(async (trace: string, f: ReplayFlags) => {
      const { UserError } = await import('../core/errors.js');
      if (f.speed > 64) throw new UserError(`--speed must be between 0.25 and 64, got ${f.speed}`);
      // The first frame goes up before Arrow and Ink are imported (src/views/loading-screen.ts; src/cli.tsx has
      // usually drawn the same text already); an error while opening gives the screen back before it is printed.
      const screen = await import('../views/loading-screen.js');
      if (f.ui !== false && screen.onTerminal()) {
        const text = replayLoading(trace, f.follow === true);
        screen.drawLoadingScreen(text.title, text.what);
      }
      try {
        const { openTrace, traceStream } = await import('../trace/index.js');
        const { runReplay } = await import('../views/index.js');
        const reader = openTrace(trace);
        // Read live: a followed trace's end changes as its writer appends, stops, or dies mid-batch.
        const file = {
          get complete() {
            return reader.complete;
          },
          get truncated() {
            return reader.truncated;
          },
        };
        const stream = traceStream(reader, { follow: f.follow });
        await runReplay({
          stream,
          file,
          counts: reader.countInfo,
          follow: f.follow,
          speed: f.speed,
          devices: f.devices,
          plan: f.plan,
          window: f.window,
          colormap: f.colormap,
          ui: f.ui,
          color: f.color,
        });
      } finally {
        screen.leaveLoadingScreen();
      }
    });
}
