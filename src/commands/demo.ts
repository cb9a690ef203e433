import type { Command } from 'commander';
import { demoLoading } from './first-frame.js';
import { choiceArg, intArg } from './options.js';

interface DemoFlags {
  ep: 'cpu' | 'cuda' | 'webgpu';
  maxTokens: number;
  devices: number;
  plan?: string;
  colormap: 'viridis' | 'cividis';
  color: boolean;
}

/** Bare `moescope`: the live demo on the bundled model over the bundled prompts, looping. */
export function registerDemo(program: Command): void {
  program
    .option(
      '--ep <provider>',
      'execution provider for the demo model: cpu, cuda or webgpu',
      choiceArg('--ep', ['cpu', 'cuda', 'webgpu'] as const),
      'cpu',
    )
    .option('--max-tokens <n>', 'tokens the demo generates per prompt', intArg('--max-tokens', 0), 48)
    .option(
      '--devices <d>',
      'assume experts are placed contiguously over D devices (Devices view)',
      intArg('--devices', 1),
      1,
    )
    .option('--plan <file>', 'expert placement from `moescope plan --json` (Devices view)')
    .option(
      '--colormap <m>',
      'heatmap colours, both colour-blind safe: viridis or cividis',
      choiceArg('--colormap', ['viridis', 'cividis'] as const),
      'viridis',
    )
    .option('--no-color', 'draw without colour (also when NO_COLOR is set)')
    .action(async (f: DemoFlags) => {
      // The first frame goes up before anything heavy is imported (src/views/loading-screen.ts; src/cli.tsx has
      // usually drawn the same text already); an error while loading gives the screen back before it is printed.
      const screen = await import('../views/loading-screen.js');
      if (screen.onTerminal()) {
        const text = demoLoading(f.ep);
        screen.drawLoadingScreen(text.title, text.what);
      }
      try {
        await demo(f);
      } finally {
        screen.leaveLoadingScreen();
      }
    });
}

async function demo(f: DemoFlags): Promise<void> {
  const { BUNDLED_MODEL, BUNDLED_PROMPTS } = await import('../core/paths.js');
  const engine = await import('../engine/index.js');
  const views = await import('../views/index.js');
  const live = views.interactive();
  // On a terminal the demo loops until q; without one it runs the prompts once and prints a summary.
  // The engine worker scores the logits (src/stats/live-logits.ts): the thread that draws gets L × 8 numbers.
  const { LIVE_LOGITS_REDUCER } = await import('../stats/live-logits.js');
  const handle = engine.startGeneration({
    model: BUNDLED_MODEL,
    ep: f.ep,
    logits: true,
    prompts: engine.loadPrompts(BUNDLED_PROMPTS),
    maxTokens: f.maxTokens,
    loop: live,
    reducer: LIVE_LOGITS_REDUCER,
  });
  // Ink, React and Yoga load on this thread while the worker opens the model.
  const tui = live ? views.loadRunTui() : null;
  const stream = await engine.generationStream(handle, 'demo · bundled tiny-moe');
  await tui;
  const placement = f.plan ? views.readPlanFile(f.plan, stream.schema) : views.contiguousSpec(stream.schema, f.devices);
  if (live) {
    await views.runLiveTui({
      stream,
      label: stream.label,
      placement,
      color: f.color,
      colormap: f.colormap,
      postedLogits: true,
    });
    return;
  }
  const model = await views.collectLive(stream, { postedLogits: true });
  (await import('../core/sanitize.js')).printText(
    views.formatSummary(model, { title: 'demo (no terminal: one pass over the bundled prompts)' }, placement),
  );
}
