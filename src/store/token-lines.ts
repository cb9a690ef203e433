/**
 * The token stream's lines: the frame's copied tokens wrapped to the pane's width, a new sequence under a header
 * line, and which lines are on screen. A pure function of the frame, the width and the selection: the Tokens pane
 * draws these lines and the key handler moves up and down through the same ones.
 */
import { textWidth, visibleToken } from '../core/terminal-text.js';
import type { Frame, StreamToken } from './frame.js';
import { scrollWindow } from './layout.js';

export interface TokenItem {
  index: number;
  /** The token as shown (visible, cut to the width; with the expert as a subscript when `mono`). */
  text: string;
  width: number;
  expert: number;
  isPrompt: boolean;
  /** Column where it starts. */
  col: number;
}

export interface TokenLine {
  items: TokenItem[];
  /** A sequence header line ("── sequence 3 · code ──"), or null for a line of tokens. */
  header: string | null;
}

const SUB = '₀₁₂₃₄₅₆₇₈₉';

function subscript(n: number): string {
  let s = '';
  for (const d of String(n)) s += SUB[Number(d)];
  return s;
}

/** Wraps tokens into lines of `width` columns; a new sequence starts a new line under a header line. */
function wrapTokens(tokens: readonly StreamToken[], width: number, mono: boolean): TokenLine[] {
  const lines: TokenLine[] = [];
  let cur: TokenLine | null = null;
  let col = 0;
  let seq: number | null = null;
  for (const t of tokens) {
    if (t.seq !== seq) {
      seq = t.seq;
      lines.push({ items: [], header: `── sequence ${t.seq}${t.tag ? ` · ${visibleToken(t.tag)}` : ''} ──` });
      cur = null;
    }
    let text = visibleToken(t.text);
    if (mono) text += subscript(t.expert);
    let w = textWidth(text);
    if (w > width) {
      text = text.slice(0, Math.max(1, width - 1)) + '…';
      w = textWidth(text);
    }
    if (!cur || col + w > width) {
      cur = { items: [], header: null };
      lines.push(cur);
      col = 0;
    }
    cur.items.push({ index: t.index, text, width: w, expert: t.expert, isPrompt: t.isPrompt, col });
    col += w;
    if (t.text.includes('\n')) cur = null;
  }
  return lines;
}

/**
 * The lines on screen: the newest `rows` when following (token null), else a window keeping the selected token in
 * view. Memoised on its arguments: the pane and the key handler ask for the same frame's lines.
 */
export function tokenLines(
  frame: Frame,
  width: number,
  rows: number,
  token: number | null,
  mono: boolean,
): TokenLine[] {
  const hit = cache.get(frame);
  if (hit && hit.width === width && hit.rows === rows && hit.token === token && hit.mono === mono) return hit.lines;
  const lines = wrapTokens(frame.stream, width, mono);
  let at = lines.length - 1;
  if (token !== null)
    for (let i = 0; i < lines.length; i++) if (lines[i]!.items.some((it) => it.index === token)) at = i;
  const win =
    token === null
      ? { first: Math.max(0, lines.length - rows), count: Math.min(rows, lines.length) }
      : scrollWindow(lines.length, rows, at);
  const shown = lines.slice(win.first, win.first + win.count);
  cache.set(frame, { width, rows, token, mono, lines: shown });
  return shown;
}

const cache = new WeakMap<
  Frame,
  { width: number; rows: number; token: number | null; mono: boolean; lines: TokenLine[] }
>();
