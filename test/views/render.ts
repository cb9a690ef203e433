/** Renders components with ink-testing-library and gives the frame as the terminal would show it. */
import type { ReactElement } from 'react';
import { createElement } from 'react';
import chalk from 'chalk';
import { render } from 'ink-testing-library';
import { createTuiStore, type TuiStore, type UiState } from '../../src/store/app-store.js';
import { LiveFeed } from '../../src/store/feeds.js';
import type { Frame } from '../../src/store/frame.js';
import { screenOf } from '../../src/store/layout.js';
import type { RoutingModel } from '../../src/store/model.js';
import { StoreCtx, ViewCtx, makeViewContext, type ViewContext } from '../../src/views/context.js';
import { makeTheme, type ColorMode } from '../../src/views/theme.js';

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

export function strip(s: string): string {
  return s.replace(ANSI, '');
}

/** SGR sequences that set a colour (foreground/background, 16, 256 or truecolor). */
export function colourEscapes(s: string): string[] {
  // eslint-disable-next-line no-control-regex
  return (s.match(/\x1b\[[0-9;]*m/g) ?? []).filter(
    (e) => /(^|\[|;)(3[0-79]|4[0-79]|9[0-7]|10[0-7]|38|48)(;|m)/.test(e) && !/\[(39|49)m/.test(e),
  );
}

/** A store showing `frame` in a terminal whose pane is `width` × `height`, for rendering one pane on its own. */
export function paneStore(
  model: RoutingModel,
  frame: Frame,
  width: number,
  height: number,
  ui: Partial<UiState> = {},
  mono = false,
): TuiStore {
  const store = createTuiStore({
    model,
    feed: new LiveFeed(model),
    source: { kind: 'replay', label: 'test', recording: null, placement: null },
    ui,
    term: { columns: width, rows: height + 4 },
    mono,
  });
  store.setState({ frame });
  return store;
}

export interface RenderOptions {
  mode?: ColorMode;
  view?: ViewContext;
  store?: TuiStore;
  /** The element is one pane (not the App): its first line is the screen's pane row. */
  pane?: boolean;
}

export function renderView(el: ReactElement, opts: RenderOptions = {}) {
  const mode = opts.mode ?? 'ansi256';
  const view = opts.view ?? makeViewContext(makeTheme(mode));
  // As runTui does: chalk (Ink's colours) at the theme's level, so a missing colour is the theme's doing.
  chalk.level = mode === 'none' ? 1 : mode === 'truecolor' ? 3 : 2;
  const wrap = (e: ReactElement) => {
    const inner = createElement(ViewCtx.Provider, { value: view }, e);
    return opts.store ? createElement(StoreCtx.Provider, { value: opts.store }, inner) : inner;
  };
  const r = render(wrap(el));
  const offset = opts.pane && opts.store ? screenOf(opts.store.getState().term).bodyTop : 0;
  // The heatmap's lines are drawn by its layer into the box Ink leaves empty: compose them as the terminal would.
  const frame = () => {
    const lines = (r.lastFrame() ?? '').split('\n');
    const { top, rows } = view.heat.snapshot();
    rows.forEach((row, i) => {
      const y = top - offset + i;
      while (lines.length <= y) lines.push('');
      lines[y] = row;
    });
    return lines.join('\n');
  };
  return { ...r, rerender: (e: ReactElement) => r.rerender(wrap(e)), view, frame, text: () => strip(frame()) };
}

export async function tick(): Promise<void> {
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 5));
}
