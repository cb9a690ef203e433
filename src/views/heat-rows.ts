/**
 * Heatmap rows as terminal strings: one glyph per column, a colour escape only where the level changes, cached per
 * row so a row is rebuilt only when its levels (or the cursor on it) change.
 */
import { SGR_DIM, SGR_INVERSE, SGR_RESET } from '../core/palette.js';
import type { Theme } from './theme.js';
import { cellEdge } from '../store/layout.js';

/** Level of a column with no data yet. */
export const NO_DATA = 255;
/** Level of a column that holds no expert of its layer (a layer with fewer experts than the widest): blank. */
export const ABSENT = 254;
/** Level of a column that holds only zero-computation experts (LongCat-Flash): a dim "z", not a heat level. */
export const ZERO = 253;
const CURSOR_GLYPH = '◆';
const NO_DATA_GLYPH = '·';
export const ZERO_GLYPH = 'z';

/**
 * Builds one row: `levels[i]` is a heat level (0 … HEAT_LEVELS-1) or NO_DATA; the row spans `span` terminal columns
 * (default one per level), shared evenly (cellEdge in src/store/layout.ts); `cursor` is a column (or -1) drawn in
 * inverse video with a ◆ in its middle.
 */
export function renderHeatRow(levels: Uint8Array, theme: Theme, cursor = -1, span = levels.length): string {
  let out = '';
  let cur = -2; // level whose escape is active; -2 = none
  const n = levels.length;
  for (let i = 0; i < n; i++) {
    const lv = levels[i]!;
    const glyph =
      lv === NO_DATA ? NO_DATA_GLYPH : lv === ABSENT ? ' ' : lv === ZERO ? ZERO_GLYPH : theme.heatGlyph[lv]!;
    const plain = lv === NO_DATA || lv === ABSENT || lv === ZERO;
    const cellWidth = span === n ? 1 : cellEdge({ columns: n, span }, i + 1) - cellEdge({ columns: n, span }, i);
    if (i === cursor) {
      const mid = cellWidth >> 1;
      let cell = '';
      for (let j = 0; j < cellWidth; j++) cell += j === mid ? CURSOR_GLYPH : ' ';
      out += (plain ? SGR_RESET : theme.heatEscape[lv]!) + SGR_INVERSE + cell + SGR_RESET;
      cur = -2;
      continue;
    }
    if (lv !== cur) {
      out +=
        lv === NO_DATA || lv === ZERO
          ? SGR_RESET + SGR_DIM
          : lv === ABSENT
            ? SGR_RESET
            : cur === NO_DATA || cur === ABSENT || cur === ZERO
              ? SGR_RESET + theme.heatEscape[lv]!
              : theme.heatEscape[lv]!;
      cur = lv;
    }
    out += cellWidth === 1 ? glyph : glyph.repeat(cellWidth);
  }
  return out + SGR_RESET;
}

interface Cached {
  levels: Uint8Array;
  cursor: number;
  span: number;
  text: string;
}

/** Remembers the last string of each row key; returns it unchanged when levels and cursor are unchanged. */
export class HeatRowCache {
  private readonly rows = new Map<string, Cached>();
  private theme: Theme | null = null;
  /** Rows rebuilt since the last call to takeRebuilt() (for benchmarks and tests). */
  private rebuilt = 0;

  row(key: string, levels: Uint8Array, theme: Theme, cursor = -1, span = levels.length): string {
    if (theme !== this.theme) {
      this.rows.clear();
      this.theme = theme;
    }
    const c = this.rows.get(key);
    if (c && c.cursor === cursor && c.span === span && sameBytes(c.levels, levels)) return c.text;
    const text = renderHeatRow(levels, theme, cursor, span);
    this.rebuilt++;
    if (c) {
      if (c.levels.length === levels.length) c.levels.set(levels);
      else c.levels = levels.slice();
      c.cursor = cursor;
      c.span = span;
      c.text = text;
    } else this.rows.set(key, { levels: levels.slice(), cursor, span, text });
    return text;
  }

  takeRebuilt(): number {
    const n = this.rebuilt;
    this.rebuilt = 0;
    return n;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
