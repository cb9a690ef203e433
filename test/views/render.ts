/** Renders components with ink-testing-library and gives the frame as the terminal would get it. */
import type { ReactElement } from 'react';
import { createElement } from 'react';
import chalk from 'chalk';
import { render } from 'ink-testing-library';
import { ViewCtx, makeViewContext, type ViewContext } from '../../src/views/context.js';
import { makeTheme, type ColorMode } from '../../src/views/theme.js';

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

export function strip(s: string): string {
  return s.replace(ANSI, '');
}

/** SGR sequences that set a colour (foreground/background, 16, 256 or truecolor). */
export function colourEscapes(s: string): string[] {
  // eslint-disable-next-line no-control-regex
  return (s.match(/\x1b\[[0-9;]*m/g) ?? []).filter((e) => /(^|\[|;)(3[0-79]|4[0-79]|9[0-7]|10[0-7]|38|48)(;|m)/.test(e) && !/\[(39|49)m/.test(e));
}

export function renderView(el: ReactElement, mode: ColorMode = 'ansi256', view: ViewContext = makeViewContext(makeTheme(mode))) {
  // As runTui does: chalk (Ink's colours) at the theme's level, so a missing colour is the theme's doing.
  chalk.level = mode === 'none' ? 1 : mode === 'truecolor' ? 3 : 2;
  const wrap = (e: ReactElement) => createElement(ViewCtx.Provider, { value: view }, e);
  const r = render(wrap(el));
  const frame = () => view.registry.expand(r.lastFrame() ?? '');
  return { ...r, rerender: (e: ReactElement) => r.rerender(wrap(e)), view, frame, text: () => strip(frame()) };
}

export async function tick(): Promise<void> {
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 5));
}
