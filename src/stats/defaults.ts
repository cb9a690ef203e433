/** Defaults shared by every command and view that computes the same thing (a tiny module: the CLI reads it at start). */

/**
 * The collapse detector's window, in tokens, wherever no --window is given: `stats`, `report` and the TUI all use
 * it, so one trace gives one set of warnings (each result names the window it used).
 */
export const DEFAULT_COLLAPSE_WINDOW = 512;
