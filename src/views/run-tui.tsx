/**
 * Runs the TUI: alternate screen, Ink (frames capped at `fps`), the heatmap layer, mouse
 * reporting, redraw on resize, and a terminal restored on every way out (q, ctrl-c, an exception, process exit).
 * Until Ink's first frame, the commands' loading screen (loading-screen.ts) is on the screen.
 */
import chalk from 'chalk';
import { render, type Instance } from 'ink';
import { createTuiStore, startPublishing, type SourceInfo, type TuiStore, type UiState } from '../store/app-store.js';
import type { Feed } from '../store/feeds.js';
import type { RoutingModel } from '../store/model.js';
import { App } from './app.js';
import { makeViewContext, type ViewContext } from './context.js';
import { InkStdout } from './heatmap-layer.js';
import { loadingScreenHandedOver } from './loading-screen.js';
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
// Mouse: button presses and the wheel (1000), reported as SGR sequences (1006) that Ink's input parser splits.
const MOUSE_ON = '\x1b[?1000h\x1b[?1006h';
const MOUSE_OFF = '\x1b[?1006l\x1b[?1000l';
const SHOW_CURSOR = '\x1b[?25h';
const CLEAR_SCREEN = '\x1b[H\x1b[2J';
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
  const view: ViewContext = makeViewContext(makeTheme(mode, opts.colormap), stdout);
  const inkOut = new InkStdout(stdout, view.heat);
  const restoreConsole = captureConsole();
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    stdout.write(`\x1b[0m${MOUSE_OFF}${SHOW_CURSOR}${LEAVE_ALT}`);
  };
  process.once('exit', restore);
  loadingScreenHandedOver();
  stdout.write(ENTER_ALT + MOUSE_ON);

  const store = createTuiStore({
    model: opts.model,
    feed: opts.feed,
    source: opts.source,
    ui: opts.ui,
    term: { columns: stdout.columns || 80, rows: stdout.rows || 24 },
    mono: mode === 'none',
  });
  opts.onStore?.(store);
  const publisher = startPublishing(store, opts.model, opts.feed, opts.fps ?? 15);
  const quit = () => store.getState().actions.quit();
  // A polite kill (or the terminal going away) quits like q does, so the caller can close what it opened.
  process.on('SIGTERM', quit);
  process.on('SIGHUP', quit);

  let ink: Instance | null = null;
  let resizeTimer: NodeJS.Timeout | null = null;
  const onResize = () => {
    if (resizeTimer) clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      resizeTimer = null;
      const columns = stdout.columns || 80;
      const rows = stdout.rows || 24;
      const t = store.getState().term;
      if (t.columns === columns && t.rows === rows) return store.getState().actions.redraw();
      // Clear the screen and Ink's memory of it: the frame at the new size is written whole, from the top.
      stdout.write(CLEAR_SCREEN);
      ink?.clear();
      view.heat.invalidate();
      store.getState().actions.resize(columns, rows);
    }, RESIZE_SETTLE_MS);
  };
  stdout.on('resize', onResize);

  try {
    const renderOpts = {
      stdout: inkOut as unknown as NodeJS.WriteStream,
      stdin,
      exitOnCtrlC: false,
      patchConsole: false,
      // Ink's standard renderer: each frame erases the last and writes the new one inside a synchronized update.
      // Ink 6.8's incremental renderer writes changed lines one row too low whenever a frame is shorter than the
      // terminal (it ends the frame with a newline but moves up as if it had not), and a frame as tall as the
      // terminal makes Ink clear the whole screen every frame instead (docs/tui.md § How it is built).
      incrementalRendering: false,
      maxFps: opts.fps ?? 15,
    };
    ink = render(<App store={store} view={view} />, renderOpts);
    opts.feed.start();
    await new Promise<void>((resolve) => {
      if (store.getState().ui.quit) return resolve();
      const unsub = store.subscribe((st) => {
        if (st.ui.quit) {
          unsub();
          resolve();
        }
      });
    });
  } finally {
    opts.feed.stop();
    publisher.stop();
    stdout.off('resize', onResize);
    if (resizeTimer) clearTimeout(resizeTimer);
    (ink as Instance | null)?.unmount();
    inkOut.dispose();
    restore();
    process.off('exit', restore);
    process.off('SIGTERM', quit);
    process.off('SIGHUP', quit);
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
