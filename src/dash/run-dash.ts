/**
 * Runs the dashboard on a model fed by a feed: the same zustand store and frame publisher as the Ink TUI
 * (src/store/app-store.ts), drawn with blessed. Frames are published at most `fps` times a second and the screen is
 * drawn once per frame, so a fast producer costs the dashboard nothing more than a slow one; the producer never
 * waits for a draw (feeds apply or buffer data as it arrives).
 */
import { createTuiStore, startPublishing, type SourceInfo, type TuiStore } from '../store/app-store.js';
import type { Feed } from '../store/feeds.js';
import type { HistoryModel } from '../store/history.js';
import type { SequentialMap } from '../core/palette.js';
import { createScreen, type Screen } from './blessed.js';
import { Dashboard, WORST_LAYERS, type DashUi, type Thresholds } from './dashboard.js';

export interface RunDashOptions {
  model: HistoryModel;
  feed: Feed;
  source: SourceInfo;
  thresholds: Thresholds;
  color?: boolean;
  colormap?: SequentialMap;
  /** Frames per second at most (default 4: charts of a long run need no more). */
  fps?: number;
  output?: NodeJS.WriteStream;
  input?: NodeJS.ReadStream;
  /** What the model's bins are: experts, or GPUs (a server's counts per device). */
  bins?: 'experts' | 'GPUs';
  /** A message for the status line's first frames (e.g. a trace that is cut short). */
  notice?: string | null;
  onStore?: (store: TuiStore) => void;
  /** Called after every drawn frame (tests, benchmarks). */
  onDraw?: () => void;
}

const RESIZE_SETTLE_MS = 60;

/** Resolves when the user quits; the feed is started here and stopped before returning. */
export async function runDash(opts: RunDashOptions): Promise<void> {
  const output = opts.output ?? process.stdout;
  const color = opts.color !== false && !process.env.NO_COLOR;
  const store = createTuiStore({
    model: opts.model,
    feed: opts.feed,
    source: opts.source,
    term: { columns: output.columns || 80, rows: output.rows || 24 },
  });
  opts.onStore?.(store);
  const publisher = startPublishing(store, opts.model, opts.feed, opts.fps ?? 4);
  const screen: Screen = createScreen({ output, input: opts.input, title: 'moescope dash', color });
  const ui: DashUi = { metric: 'cv', help: false, heatTop: 0 };
  let drawScheduled: NodeJS.Immediate | null = null;
  const dash = new Dashboard(screen, {
    color,
    colormap: opts.colormap,
    thresholds: opts.thresholds,
    onHeatScroll: (dir) => scrollHeat(dir),
  });

  const draw = () => {
    drawScheduled = null;
    const s = store.getState();
    dash.update({
      frame: s.frame,
      feed: s.feed,
      source: s.source,
      history: opts.model.history.view(s.frame.layerIds, WORST_LAYERS),
      ui,
      notice: s.ui.message ?? s.feed.notice,
      counts: opts.model.countsOnly ? { steps: opts.model.steps, bins: opts.bins ?? 'experts' } : null,
    });
    screen.render();
    opts.onDraw?.();
  };
  const schedule = () => {
    drawScheduled ??= setImmediate(draw);
  };
  const scrollHeat = (dir: 1 | -1) => {
    const L = opts.model.layers;
    ui.heatTop = Math.max(0, Math.min(L - 1, ui.heatTop + dir * 4));
    schedule();
  };

  const unsub = store.subscribe((s, prev) => {
    if (s.frame !== prev.frame || s.feed !== prev.feed || s.ui !== prev.ui) schedule();
  });

  let resizeTimer: NodeJS.Timeout | null = null;
  screen.on('resize', () => {
    if (resizeTimer) clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      resizeTimer = null;
      dash.invalidate(); // contrib's canvases are sized once: lay everything out again
      screen.clearRegion(0, screen.width as number, 0, screen.height as number);
      store.getState().actions.resize(screen.width as number, screen.height as number);
      schedule();
    }, RESIZE_SETTLE_MS);
  });

  let quit: () => void = () => {};
  const done = new Promise<void>((resolve) => (quit = resolve));
  const actions = () => store.getState().actions;
  screen.key(['q', 'C-c'], () => quit());
  screen.key(['?'], () => {
    ui.help = !ui.help;
    schedule();
  });
  screen.key(['escape'], () => {
    if (ui.help) {
      ui.help = false;
      schedule();
    }
  });
  screen.key(['space'], () => {
    // A recorded trace is read whole: there is nothing to freeze (and the player would start over at its end).
    if (opts.source.kind === 'replay')
      actions().setMessage('space freezes live and --follow sources; a trace is read whole');
    else actions().togglePause();
  });
  screen.key(['w'], () => actions().windowKey());
  screen.key(['c'], () => actions().setScope('run'));
  screen.key(['m'], () => {
    ui.metric = ui.metric === 'cv' && opts.model.history.placement ? 'balancedness' : 'cv';
    schedule();
  });
  screen.key(['up', 'k'], () => scrollHeat(-1));
  screen.key(['down', 'j'], () => scrollHeat(1));
  screen.key(['C-l'], () => {
    dash.invalidate();
    screen.clearRegion(0, screen.width as number, 0, screen.height as number);
    schedule();
  });
  const onSignal = () => quit();
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);

  try {
    if (opts.notice) actions().setMessage(opts.notice);
    opts.feed.start();
    draw();
    await done;
  } finally {
    opts.feed.stop();
    publisher.stop();
    unsub();
    if (resizeTimer) clearTimeout(resizeTimer);
    if (drawScheduled) clearImmediate(drawScheduled);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    screen.destroy();
  }
}
