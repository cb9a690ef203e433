/**
 * Runs the TUI on a model fed by a feed: alternate screen, Ink with painted regions, redraw on resize, and a
 * terminal restored on every way out (q, ctrl-c, an exception, process exit).
 */
import chalk from 'chalk';
import { render, type Instance } from 'ink';
import { createTuiStore, startPublishing, type SourceInfo, type TuiStore, type UiState } from '../store/app-store.js';
import type { Feed } from '../store/feeds.js';
import type { RoutingModel } from '../store/model.js';
import { App } from './app.js';
import { makeViewContext, type ViewContext } from './context.js';
import { ScreenWriter } from './paint.js';
import { detectColorMode, makeTheme, type ColorMode } from './theme.js';
import type { SequentialMap } from '../core/palette.js';

export interface RunTuiOptions {
  model: RoutingModel;
  feed: Feed;
  source: SourceInfo;
  /** commander's --no-color gives false. */
  color?: boolean;
  /** Colour map of the heatmap (both are colour-blind safe). */
  colormap?: SequentialMap;
  /** Initial UI state (pane, layer …). */
  ui?: Partial<UiState>;
  /** Frames per second at most (default 15). */
  fps?: number;
  stdout?: NodeJS.WriteStream;
  stdin?: NodeJS.ReadStream;
  /** Called with the store once it exists (tests, embedding). */
  onStore?: (store: TuiStore) => void;
}

// Alternate screen with auto-wrap off: a line measured a column too short (an odd wide glyph in token text) is cut
// at the margin instead of spilling into the next row.
const ENTER_ALT = '\x1b[?1049h\x1b[?7l\x1b[H\x1b[2J';
const LEAVE_ALT = '\x1b[?7h\x1b[?1049l';
const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';
const RESIZE_SETTLE_MS = 40;

const CHALK_LEVEL: Record<ColorMode, 0 | 1 | 2 | 3> = { none: 1, ansi256: 2, truecolor: 3 };

/** Resolves when the user quits. The feed is started here and stopped before returning. */
export async function runTui(opts: RunTuiOptions): Promise<void> {
  const stdout = opts.stdout ?? process.stdout;
  const stdin = opts.stdin ?? process.stdin;
  const mode = detectColorMode({ color: opts.color });
  // Ink colours through chalk; "none" keeps level 1 for bold/inverse, and the theme hands out no colours.
  const previousLevel = chalk.level;
  chalk.level = CHALK_LEVEL[mode];
  const view: ViewContext = makeViewContext(makeTheme(mode, opts.colormap));
  const store = createTuiStore({
    model: opts.model,
    feed: opts.feed,
    source: opts.source,
    ui: opts.ui,
    term: { columns: stdout.columns || 80, rows: stdout.rows || 24 },
  });
  opts.onStore?.(store);
  const publisher = startPublishing(store, opts.model, opts.feed, opts.fps ?? 15);
  const restoreConsole = captureConsole();

  const screen = new ScreenWriter(stdout, view.registry);
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    stdout.write(`\x1b[0m${SHOW_CURSOR}${LEAVE_ALT}`);
  };
  process.once('exit', restore);
  // A polite kill (or the terminal going away) quits like q does, so the caller can close what it opened.
  const onSignal = () => store.getState().actions.quit();
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  stdout.write(ENTER_ALT + HIDE_CURSOR);

  const redrawAll = () => {
    view.registry.invalidate();
    screen.invalidate();
  };
  let resizeTimer: NodeJS.Timeout | null = null;
  const onResize = () => {
    if (resizeTimer) clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      resizeTimer = null;
      redrawAll();
      store.getState().actions.resize(stdout.columns || 80, stdout.rows || 24);
    }, RESIZE_SETTLE_MS);
  };
  stdout.on('resize', onResize);
  let redraws = store.getState().redraws;
  const unsubRedraw = store.subscribe((s) => {
    if (s.redraws !== redraws) {
      redraws = s.redraws;
      redrawAll();
    }
  });

  let ink: Instance | null = null;
  try {
    // Debug mode: Ink hands over each whole frame (and draws even when CI is set); ScreenWriter puts the changed
    // lines on screen. The publisher limits frames to `fps`.
    ink = render(<App store={store} view={view} />, {
      stdout: screen as unknown as NodeJS.WriteStream,
      stdin,
      debug: true,
      exitOnCtrlC: false,
      patchConsole: false,
    });
    opts.feed.start();
    await new Promise<void>((resolve) => {
      if (store.getState().ui.quit) return resolve();
      const unsub = store.subscribe((s) => {
        if (s.ui.quit) {
          unsub();
          resolve();
        }
      });
    });
  } finally {
    opts.feed.stop();
    publisher.stop();
    unsubRedraw();
    stdout.off('resize', onResize);
    if (resizeTimer) clearTimeout(resizeTimer);
    (ink as Instance | null)?.unmount();
    restore();
    process.off('exit', restore);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    chalk.level = previousLevel;
    restoreConsole();
  }
}

/** Holds console output while the screen belongs to the TUI, and prints it to stderr afterwards. */
function captureConsole(): () => void {
  const methods = ['log', 'info', 'warn', 'error', 'debug'] as const;
  const saved = methods.map((m) => console[m]);
  const held: string[] = [];
  for (const m of methods)
    console[m] = (...args: unknown[]) => {
      held.push(args.map((a) => (typeof a === 'string' ? a : String(a))).join(' '));
    };
  return () => {
    methods.forEach((m, i) => (console[m] = saved[i]!));
    if (held.length > 0) process.stderr.write(held.join('\n') + '\n');
  };
}
