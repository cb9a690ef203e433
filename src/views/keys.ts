/**
 * Every key binding, as data: the input handler resolves keys through this table and the `?` overlay and the hint
 * bar are generated from it, so a key cannot work without being listed (or be listed without working).
 */
import type { Key } from 'ink';
import type { Pane } from '../store/app-store.js';

export type ActionId =
  | 'quit'
  | 'help'
  | 'pause'
  | 'up'
  | 'down'
  | 'left'
  | 'right'
  | 'pageUp'
  | 'pageDown'
  | 'nextPane'
  | 'prevPane'
  | 'pane1'
  | 'pane2'
  | 'pane3'
  | 'pane4'
  | 'pane5'
  | 'open'
  | 'back'
  | 'zoomIn'
  | 'zoomOut'
  | 'slower'
  | 'faster'
  | 'stepBack'
  | 'stepForward'
  | 'start'
  | 'end'
  | 'search'
  | 'searchNext'
  | 'searchPrev'
  | 'seek'
  | 'window'
  | 'cumulative'
  | 'prevLayer'
  | 'nextLayer'
  | 'redraw';

export interface Binding {
  action: ActionId;
  /** Key names that trigger it (see keyName). */
  names: string[];
  /** How the overlay shows the keys. */
  label: string;
  description: string;
  group: 'General' | 'Playback' | 'Navigation' | 'Heatmap' | 'Tokens';
  /** Panes where it applies (all when absent). */
  panes?: Pane[];
  /** Shown in the hint bar of these panes. */
  hint?: Pane[] | 'all';
  /** Short text for the hint bar, and per pane where it reads differently. */
  short?: string;
  shortIn?: Partial<Record<Pane, string>>;
  /** Keys as the hint bar shows them (default: label). */
  hintLabel?: string;
  /** Bindings with the same row id share one row of the overlay (the first one's description). */
  row?: string;
}

export const BINDINGS: readonly Binding[] = [
  {
    action: 'help',
    names: ['?'],
    label: '?',
    description: 'show / hide this list of keys',
    group: 'General',
    hint: 'all',
    short: 'keys',
  },
  {
    action: 'quit',
    names: ['q', 'ctrl-c'],
    label: 'q',
    description: 'quit (restores the terminal)',
    group: 'General',
    hint: 'all',
    short: 'quit',
  },
  {
    action: 'nextPane',
    names: ['tab'],
    label: 'tab',
    description: 'next / previous pane',
    group: 'General',
    hint: 'all',
    short: 'pane',
    row: 'pane',
  },
  { action: 'prevPane', names: ['backtab'], label: 'S-tab', description: '', group: 'General', row: 'pane' },
  {
    action: 'pane1',
    names: ['1'],
    label: '1',
    description: 'Overview Layer Tokens Warnings Devices',
    group: 'General',
    row: 'panes',
  },
  { action: 'pane2', names: ['2'], label: '2', description: '', group: 'General', row: 'panes' },
  { action: 'pane3', names: ['3'], label: '3', description: '', group: 'General', row: 'panes' },
  { action: 'pane4', names: ['4'], label: '4', description: '', group: 'General', row: 'panes' },
  { action: 'pane5', names: ['5'], label: '5', description: '', group: 'General', row: 'panes' },
  {
    action: 'open',
    names: ['enter'],
    label: 'enter',
    description: 'open layer / token routing / warning',
    group: 'General',
    hint: ['overview', 'tokens', 'warnings'],
    short: 'open',
  },
  {
    action: 'back',
    names: ['escape'],
    label: 'esc',
    description: 'back (overlay, prompt, detail, pane)',
    group: 'General',
    hint: ['layer', 'tokens', 'warnings', 'devices'],
    short: 'back',
  },
  { action: 'redraw', names: ['ctrl-l'], label: 'C-l', description: 'redraw the screen', group: 'General' },

  {
    action: 'pause',
    names: ['space'],
    label: 'space',
    description: 'pause/play · live: freeze (buffers)',
    group: 'Playback',
    hint: 'all',
    short: 'pause',
  },
  {
    action: 'slower',
    names: ['['],
    label: '[',
    description: 'replay slower / faster ×¼…×64',
    group: 'Playback',
    row: 'speed',
  },
  { action: 'faster', names: [']'], label: ']', description: '', group: 'Playback', row: 'speed' },
  {
    action: 'stepBack',
    names: [','],
    label: ',',
    description: 'step one token back / forward',
    group: 'Playback',
    row: 'step',
  },
  { action: 'stepForward', names: ['.'], label: '.', description: '', group: 'Playback', row: 'step' },
  {
    action: 'start',
    names: ['g', 'home'],
    label: 'g',
    description: 'go to start / end (live: newest)',
    group: 'Playback',
    row: 'ends',
  },
  { action: 'end', names: ['G', 'end'], label: 'G', description: '', group: 'Playback', row: 'ends' },
  { action: 'seek', names: [':'], label: ':', description: 'seek to token N or N% (replay)', group: 'Playback' },

  {
    action: 'up',
    names: ['up', 'k'],
    label: '↑↓←→',
    description: 'move (layer, expert, token, row)',
    group: 'Navigation',
    hint: ['overview', 'warnings'],
    short: 'move',
    shortIn: { overview: 'layer', warnings: 'warning' },
    hintLabel: '↑↓',
    row: 'move',
  },
  { action: 'down', names: ['down', 'j'], label: 'hjkl', description: '', group: 'Navigation', row: 'move' },
  {
    action: 'left',
    names: ['left', 'h'],
    label: '',
    description: '',
    group: 'Navigation',
    hint: ['overview', 'layer', 'tokens'],
    short: 'move',
    shortIn: { overview: 'expert', layer: 'expert', tokens: 'token' },
    hintLabel: '←→',
    row: 'move',
  },
  { action: 'right', names: ['right', 'l'], label: '', description: '', group: 'Navigation', row: 'move' },
  {
    action: 'pageUp',
    names: ['pageup'],
    label: 'pgup',
    description: 'page up / down',
    group: 'Navigation',
    row: 'page',
  },
  { action: 'pageDown', names: ['pagedown'], label: 'pgdn', description: '', group: 'Navigation', row: 'page' },
  {
    action: 'prevLayer',
    names: ['<'],
    label: '<',
    description: 'previous / next layer (any pane)',
    group: 'Navigation',
    hint: ['tokens', 'layer'],
    short: 'layer',
    hintLabel: '<>',
    row: 'layer',
  },
  { action: 'nextLayer', names: ['>'], label: '>', description: '', group: 'Navigation', row: 'layer' },

  {
    action: 'zoomIn',
    names: ['+', '='],
    label: '+',
    description: 'zoom in / out on experts',
    group: 'Heatmap',
    panes: ['overview'],
    hint: ['overview'],
    short: 'zoom',
    hintLabel: '+-',
    row: 'zoom',
  },
  {
    action: 'zoomOut',
    names: ['-', '_'],
    label: '-',
    description: '',
    group: 'Heatmap',
    panes: ['overview'],
    row: 'zoom',
  },
  {
    action: 'window',
    names: ['w'],
    label: 'w',
    description: 'sliding window (again: resize)',
    group: 'Heatmap',
    hint: ['overview', 'layer'],
    short: 'window',
  },
  {
    action: 'cumulative',
    names: ['c'],
    label: 'c',
    description: 'cumulative (whole run)',
    group: 'Heatmap',
    hint: ['overview', 'layer'],
    short: 'cumulative',
  },

  {
    action: 'search',
    names: ['/'],
    label: '/',
    description: 'search token text',
    group: 'Tokens',
    hint: ['tokens'],
    short: 'search',
  },
  {
    action: 'searchNext',
    names: ['n'],
    label: 'n',
    description: 'next / previous match',
    group: 'Tokens',
    row: 'match',
  },
  { action: 'searchPrev', names: ['N'], label: 'N', description: '', group: 'Tokens', row: 'match' },
];

export interface OverlayRow {
  group: Binding['group'];
  keys: string;
  description: string;
}

/** The `?` overlay's rows: bindings sharing a `row` become one row with their keys side by side. */
export function overlayRows(): OverlayRow[] {
  const rows: OverlayRow[] = [];
  let last: { row: string | undefined; out: OverlayRow } | null = null;
  for (const b of BINDINGS) {
    if (last && b.row !== undefined && b.row === last.row) {
      if (b.label) last.out.keys += ` ${b.label}`;
      continue;
    }
    const out = { group: b.group, keys: b.label, description: b.description };
    rows.push(out);
    last = { row: b.row, out };
  }
  return rows;
}

/** A stable name for a key press: printable characters as themselves, others by name. */
function keyName(input: string, key: Key): string | null {
  if (key.ctrl && input === 'c') return 'ctrl-c';
  if (key.ctrl && input === 'l') return 'ctrl-l';
  if (key.upArrow) return 'up';
  if (key.downArrow) return 'down';
  if (key.leftArrow) return 'left';
  if (key.rightArrow) return 'right';
  if (key.pageUp) return 'pageup';
  if (key.pageDown) return 'pagedown';
  if (key.home) return 'home';
  if (key.end) return 'end';
  if (key.return) return 'enter';
  if (key.escape) return 'escape';
  if (key.tab) return key.shift ? 'backtab' : 'tab';
  if (key.backspace || key.delete) return 'backspace';
  if (input === ' ') return 'space';
  if (input.length === 1 && !key.ctrl && !key.meta) return input;
  return null;
}

/** The binding a key name triggers in a pane, if any. */
export function resolve(name: string, pane: Pane): Binding | null {
  for (const b of BINDINGS) if (b.names.includes(name) && (!b.panes || b.panes.includes(pane))) return b;
  return null;
}

/** Bindings shown in the hint bar of a pane, in table order. */
function hintsFor(pane: Pane): Binding[] {
  return BINDINGS.filter((b) => b.hint === 'all' || b.hint?.includes(pane));
}

const PANE_TITLES: Record<Pane, string> = {
  overview: 'Overview',
  layer: 'Layer',
  tokens: 'Tokens',
  warnings: 'Warnings',
  devices: 'Devices',
};

/** A hint as the hint bar shows it. */
export interface Hint {
  keys: string;
  text: string;
}

/** The hints of a pane, in table order (the order they are dropped in is the reverse). */
export function paneHints(pane: Pane): Hint[] {
  return hintsFor(pane).map((b) => ({ keys: b.hintLabel ?? b.label, text: b.shortIn?.[pane] ?? b.short ?? '' }));
}

const HINT_GAP = 2;

/** Columns a hint takes: "keys text" and the gap after it. */
function hintWidth(h: Hint): number {
  return h.keys.length + 1 + h.text.length + HINT_GAP;
}

/**
 * The hints that fit in `width` columns, dropping from the end of the table (the least needed) and keeping room
 * for a "+N more: ?" note when any are dropped.
 */
export function fitHints(hints: readonly Hint[], width: number): { shown: Hint[]; dropped: number } {
  const total = hints.reduce((a, h) => a + hintWidth(h), 0);
  if (total <= width) return { shown: hints.slice(), dropped: 0 };
  const noteW = 14; // "+10 more: ? " at most
  const shown: Hint[] = [];
  let w = 0;
  for (const h of hints) {
    if (w + hintWidth(h) > width - noteW) break;
    shown.push(h);
    w += hintWidth(h);
  }
  return { shown, dropped: hints.length - shown.length };
}

/** The tab bar's tabs: title and the columns each takes ([start, end)), the same for drawing and for clicks. */
export function tabSpans(activeWarnings: number): { pane: Pane; label: string; start: number; end: number }[] {
  const PANE_ORDER: Pane[] = ['overview', 'layer', 'tokens', 'warnings', 'devices'];
  const out: { pane: Pane; label: string; start: number; end: number }[] = [];
  let x = 0;
  PANE_ORDER.forEach((p, i) => {
    const title = p === 'warnings' && activeWarnings > 0 ? `${PANE_TITLES[p]} (${activeWarnings})` : PANE_TITLES[p];
    const label = ` ${i + 1} ${title} `;
    out.push({ pane: p, label, start: x, end: x + label.length });
    x += label.length + 1;
  });
  return out;
}

/** What one read of the terminal holds: keys, in order, and mouse reports. */
export type InputEvent =
  | { kind: 'key'; name: string }
  | { kind: 'mouse'; button: number; column: number; row: number; release: boolean };

/** A key name for one character read on its own within a longer chunk. */
function charKeyName(ch: string): string | null {
  if (ch === '\r' || ch === '\n') return 'enter';
  if (ch === '\t') return 'tab';
  if (ch === '\x7f' || ch === '\b') return 'backspace';
  if (ch === ' ') return 'space';
  if (ch === '\x1b') return 'escape';
  if (ch === '\x03') return 'ctrl-c';
  if (ch === '\x0c') return 'ctrl-l';
  const cp = ch.codePointAt(0)!;
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return null;
  return ch;
}

// SGR mouse report (mode 1006) as Ink hands it over, its ESC already removed: [<button;column;row M (press) or m.
const MOUSE = /^\[<(\d+);(\d+);(\d+)([Mm])$/;

/**
 * Every key in what Ink's useInput hands over. Ink splits escape sequences apart but gives a run of plain
 * characters as one string (a paste, auto-repeat, keys typed over SSH or tmux faster than they are read): each
 * character is a key of its own, so `www` is three presses and a pasted query reaches the prompt whole.
 */
export function inputEvents(input: string, key: Key): InputEvent[] {
  const m = MOUSE.exec(input);
  if (m)
    return [{ kind: 'mouse', button: Number(m[1]), column: Number(m[2]), row: Number(m[3]), release: m[4] === 'm' }];
  const special =
    key.upArrow ||
    key.downArrow ||
    key.leftArrow ||
    key.rightArrow ||
    key.pageUp ||
    key.pageDown ||
    key.home ||
    key.end ||
    key.ctrl ||
    key.meta ||
    key.tab;
  if ([...input].length <= 1 || special) {
    const name = keyName(input, key);
    return name === null ? [] : [{ kind: 'key', name }];
  }
  const out: InputEvent[] = [];
  for (const ch of input) {
    const name = charKeyName(ch);
    if (name !== null) out.push({ kind: 'key', name });
  }
  return out;
}
