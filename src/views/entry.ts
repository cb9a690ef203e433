/** Loading the TUI: Ink is imported only here, after the environment it reads at import time is settled. */
import type { runTui as RunTui } from './run-tui.js';

/** Whether a person is at a terminal: the TUI needs both stdin and stdout to be TTYs. */
export function interactive(): boolean {
  return process.stdout.isTTY === true && process.stdin.isTTY === true;
}

/**
 * Imports run-tui (and React and Ink). React picks its build from NODE_ENV when first imported: the development
 * build records a performance-timeline entry with a diff of every component's props on every commit, which with
 * frames of L·E typed arrays costs a second per frame and grows memory without bound — so unless the user chose a
 * NODE_ENV, the TUI runs the production build.
 */
export async function loadRunTui(): Promise<typeof RunTui> {
  process.env.NODE_ENV ??= 'production';
  return (await import('./run-tui.js')).runTui;
}
