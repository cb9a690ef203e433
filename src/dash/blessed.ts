/**
 * The ONE module that touches blessed and blessed-contrib. Everything else in src/dash asks this module for a
 * screen and widgets, and hands it plain numbers and strings.
 *
 * Maintenance state (what it means for us): blessed 0.1.81 was last released in 2016 and blessed-contrib 4.11.0's
 * last commit is from 2022; neither is maintained. Both are pinned to exact versions in package.json and only ever
 * loaded here, so replacing them (a fork such as neo-blessed, or drawing the same charts ourselves) touches one
 * file. Nothing in them is needed for the Ink TUI, and the dashboard is loaded lazily by `moescope dash` only.
 *
 * Broken or awkward on Node 20 / today's terminals, and worked around here:
 *  - blessed cannot parse the terminfo that ncurses 6 writes (32-bit numbers) and falls back to its bundled xterm
 *    terminfo; with `warnings` on it then pops a "Terminfo parse error" box over the dashboard. Warnings are off.
 *  - contrib's canvas charts (line, bar, gauge) size their drawing canvas once, when attached: after a resize they
 *    draw at the old size. The dashboard rebuilds its widgets on every resize (`rebuild` in dashboard.ts).
 *  - contrib's line chart rescans every series for its maximum for every point it draws (quadratic), and lodash 4's
 *    `_.max(array, fn)` ignores fn and lets NaN through: we always pass minY/maxY, and never NaN (`finiteSeries`).
 *  - contrib's line chart draws its axes in black (invisible on dark terminals): we pass the baseline colour.
 *  - contrib's sparkline draws the FIRST width values of a series (the oldest, for a time series) and its titles
 *    as literal `{bold}` unless tags are on: we pass the newest values and turn tags on.
 *  - contrib's gauge reads a value ≤ 1.001 as a fraction and anything above as a percentage, so 0.5 % shows as 50 %:
 *    we always pass a fraction clamped to [0, 1].
 *  - contrib's canvas widgets re-parse their whole drawing on every screen render, changed or not
 *    (`renderOnChange`), and its log is a List with one element per line (tens of ms to replace a few hundred
 *    lines): the warnings log is a plain box holding the lines that fit, the wheel choosing which (a scrollable box
 *    re-parses all of its lines on every change).
 *  - drawille's canvas under contrib's line chart clears by filling triangles point by point and wraps every braille
 *    cell in its own colour escape, which blessed re-parses escape by escape: `fastCanvas` clears the arrays and
 *    writes one escape per run of one colour (the same picture: test/dash/braille-frame.test.ts).
 *  - blessed has no heatmap (nor contrib): `HeatGrid` below writes cells straight into the screen's cell buffer,
 *    which blessed then diffs against the terminal (cheap: a few ms for 58 × 256).
 *  - blessed parses `{…}` tags in content when tags are on: every string that comes from data (paths, model names,
 *    GPU names, warning text) goes through `plain()`: core's sanitiser shows control characters as visible escapes
 *    (`\x1b`), then tags are escaped.
 */
import { createRequire } from 'node:module';
import type { Widgets } from 'blessed';
import { sanitizeLine } from '../core/sanitize.js';

const require = createRequire(import.meta.url);

// blessed-contrib ships no types; these are the parts used here.
interface ContribWidget extends Widgets.BoxElement {
  setData(...args: unknown[]): void;
}
interface Contrib {
  line(opts: object): ContribWidget;
  bar(opts: object): ContribWidget;
  gauge(opts: object): ContribWidget & { setPercent(p: number): void };
  sparkline(opts: object): ContribWidget;
}

type Blessed = typeof import('blessed');

let loaded: { blessed: Blessed; contrib: Contrib } | null = null;

function load(): { blessed: Blessed; contrib: Contrib } {
  loaded ??= { blessed: require('blessed') as Blessed, contrib: require('blessed-contrib') as Contrib };
  return loaded;
}

/** Text from data made safe to show: control and bidi characters made visible (core's sanitiser), tags escaped. */
export function plain(s: string): string {
  return escapeTags(sanitizeLine(s));
}

function escapeTags(s: string): string {
  return s.replace(/[{}]/g, (c) => (c === '{' ? '{open}' : '{close}'));
}

export interface ScreenOptions {
  output?: NodeJS.WritableStream;
  input?: NodeJS.ReadableStream;
  title?: string;
  /** false (NO_COLOR, --no-color): no colour escape reaches the terminal; bold, inverse and underline remain. */
  color?: boolean;
}

/**
 * Drops the colour parameters of every SGR sequence (30–37, 38;5;n, 38;2;r;g;b, 39, 40–47, 48;…, 49, 90–97,
 * 100–107), keeping the rest. blessed and contrib choose colours in many places (borders, chart lines, bars); cutting
 * them on the way out is the one place that sees them all.
 */
export function stripColour(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[([0-9;]*)m/g, (all, params: string) => {
    if (params === '') return all;
    const p = params.split(';');
    const keep: string[] = [];
    for (let i = 0; i < p.length; i++) {
      const n = Number(p[i]);
      if (n === 38 || n === 48) {
        i += p[i + 1] === '5' ? 2 : p[i + 1] === '2' ? 4 : 0;
        continue;
      }
      if ((n >= 30 && n <= 39) || (n >= 40 && n <= 49) || (n >= 90 && n <= 97) || (n >= 100 && n <= 107)) continue;
      keep.push(p[i]!);
    }
    return keep.length === 0 ? '' : `\x1b[${keep.join(';')}m`;
  });
}

export type Screen = Widgets.Screen;
export type Box = Widgets.BoxElement;

export function createScreen(opts: ScreenOptions = {}): Screen {
  const { blessed } = load();
  const screen = blessed.screen({
    output: opts.output as NodeJS.WriteStream | undefined,
    input: opts.input as NodeJS.ReadStream | undefined,
    smartCSR: true,
    fullUnicode: true,
    forceUnicode: true,
    warnings: false, // see the note at the top: a terminfo warning box would cover the dashboard
    autoPadding: true,
    title: opts.title,
  });
  if (opts.color === false) {
    const program = (screen as unknown as { program: { _owrite(t: string): unknown; write(t: string): unknown } })
      .program;
    const write = program._owrite.bind(program);
    program._owrite = program.write = (t: string) => write(stripColour(t));
  }
  return screen;
}

/** Position of a widget in percent of the screen (or of its parent). */
export interface Place {
  top: number | string;
  left: number | string;
  width: number | string;
  height: number | string;
}

const BORDER = { type: 'line' as const };

/** contrib's drawing canvas (drawille): braille cells, their colour and text written over them. */
interface DrawilleCanvas {
  width: number;
  height: number;
  content: Uint8Array;
  /** Each cell's foreground escape (`ESC[33m`, `ESC[38;5;nm`), as contrib's canvas stores it. */
  colors: (string | null | undefined)[];
  chars: (string | null | undefined)[];
  frame(delimiter?: string): string;
}
interface DrawilleContext {
  _canvas: DrawilleCanvas;
  _matrix: ArrayLike<number>;
  clearRect(x: number, y: number, w: number, h: number): void;
}

/**
 * contrib's canvas widgets (line, bar, gauge) turn their canvas into a content string and re-parse it on every
 * screen render, changed or not; this re-parses only after setData drew something new. It also replaces two slow
 * parts of the drawille canvas underneath (see fastCanvas).
 */
function renderOnChange<T extends ContribWidget>(w: T): T {
  const x = w as unknown as {
    setData: (...a: unknown[]) => void;
    setPercent?: (p: number) => void;
    render: () => unknown;
    _render: () => unknown;
    clearPos: (b: boolean) => void;
    setContent: (s: string) => void;
    ctx: DrawilleContext;
  };
  let dirty = true;
  const setData = x.setData.bind(w);
  x.setData = (...a: unknown[]) => {
    dirty = true;
    setData(...a);
  };
  if (x.setPercent) {
    const setPercent = x.setPercent.bind(w);
    x.setPercent = (p: number) => {
      dirty = true;
      setPercent(p);
    };
  }
  x.render = () => {
    x.clearPos(true);
    if (dirty && x.ctx) {
      x.setContent(x.ctx._canvas.frame());
      dirty = false;
    }
    return x._render();
  };
  w.on('attach', () => {
    dirty = true;
    if (x.ctx) fastCanvas(x.ctx); // contrib's own attach handler (registered first) made the context
  });
  return w;
}

/**
 * Two parts of the drawille canvas that dominated a dashboard frame (bench/dash.ts):
 *  - `clearRect` of the whole canvas fills two triangles point by point (through gl-matrix transforms): every
 *    setData clears first. Clearing the whole, untransformed canvas is resetting its three arrays.
 *  - `frame()` wraps EVERY braille cell in its own colour escape and reset (`ESC[33m⠉ESC[39m`), which blessed then
 *    parses escape by escape on every content change. The same picture with one escape per run of one colour
 *    (a chart line is mostly one colour) has a fraction of the escapes; text written over the canvas (axes labels,
 *    legend) keeps its own escapes, as drawille wrote them.
 */
export function fastCanvas(ctx: DrawilleContext): void {
  const canvas = ctx._canvas;
  // The braille canvas (line charts) keeps three arrays; ansi-term's (bar chart, gauge) one array of cell strings.
  const braille = canvas.content instanceof Uint8Array && Array.isArray(canvas.colors) && Array.isArray(canvas.chars);
  const ansi = Array.isArray(canvas.content);
  if (!braille && !ansi) return;
  const clearRect = ctx.clearRect.bind(ctx);
  ctx.clearRect = (x0, y0, w, h) => {
    const m = ctx._matrix;
    const identity = m[0] === 1 && m[1] === 0 && m[2] === 0 && m[3] === 1 && m[4] === 0 && m[5] === 0;
    if (!identity || x0 > 0 || y0 > 0 || x0 + w < canvas.width || y0 + h < canvas.height)
      return clearRect(x0, y0, w, h);
    if (ansi) return void (canvas.content as unknown as unknown[]).fill(null);
    canvas.content.fill(0);
    canvas.colors.fill(null);
    canvas.chars.fill(null);
  };
  if (braille) canvas.frame = (delimiter = '\n') => brailleFrame(canvas, delimiter);
}

/** drawille's frame() with one colour escape per run of cells of one colour (see fastCanvas). */
export function brailleFrame(
  canvas: Pick<DrawilleCanvas, 'width' | 'content' | 'colors' | 'chars'>,
  delimiter = '\n',
): string {
  const out: string[] = [];
  const perRow = canvas.width / 2;
  let color: string | null = null; // the colour escape in effect (null: the default)
  for (let i = 0, j = 0; i < canvas.content.length; i++, j++) {
    if (j === perRow) {
      if (color !== null) out.push('\x1b[39m');
      color = null;
      out.push(delimiter);
      j = 0;
    }
    const ch = canvas.chars[i];
    const v = canvas.content[i]!;
    if (ch) {
      if (color !== null) out.push('\x1b[39m');
      color = null;
      out.push(ch);
    } else if (v === 0)
      out.push(' '); // a blank looks the same in any foreground colour
    else {
      const c = canvas.colors[i] || '\x1b[39m';
      if (c !== color) {
        out.push(c);
        color = c;
      }
      out.push(String.fromCharCode(0x2800 + v));
    }
  }
  if (color !== null) out.push('\x1b[39m');
  out.push(delimiter);
  return out.join('');
}

/** Sets a border label from raw text: cut to the widget's width (a longer one spills into the box), made plain. */
export function setLabel(w: Widgets.BoxElement, text: string): void {
  const room = Math.max(1, (w.width as number) - 6);
  const safe = sanitizeLine(text);
  const cut = safe.length > room ? safe.slice(0, room - 1) + '…' : safe;
  const label = ` ${escapeTags(cut)} `;
  // blessed's setLabel destroys and makes the label element again: only when the text changed.
  if (labels.get(w) === label) return;
  labels.set(w, label);
  w.setLabel(label);
}
const labels = new WeakMap<Widgets.BoxElement, string>();

export function box(screen: Screen, place: Place, label: string, opts: { border?: boolean; tags?: boolean } = {}): Box {
  const { blessed } = load();
  const b = blessed.box({
    ...place,
    label: label ? ` ${label} ` : undefined,
    tags: opts.tags ?? true,
    border: opts.border === false ? undefined : BORDER,
    style: { border: { fg: 'cyan' } },
  });
  screen.append(b);
  return b;
}

export interface LineSeries {
  title: string;
  values: readonly number[];
  color: string;
}

/** A contrib line chart: series share the x labels; a threshold is a constant series of its own. */
export class LineChart {
  readonly widget: ContribWidget;
  constructor(screen: Screen, place: Place, label: string, color: boolean) {
    const { contrib } = load();
    this.widget = renderOnChange(
      contrib.line({
        ...place,
        label: ` ${label} `,
        border: BORDER,
        showLegend: true,
        legend: { width: 22 },
        style: { line: 'yellow', text: color ? 'green' : 'white', baseline: 'white', border: { fg: 'cyan' } },
        xLabelPadding: 3,
        xPadding: 5,
        numYLabels: 4,
        tags: true,
      }),
    );
    screen.append(this.widget);
  }

  setLabel(label: string): void {
    setLabel(this.widget, label);
  }

  /** Draws the series over x labels `x` (strings), the y axis from 0 to a little above the largest value. */
  set(x: readonly string[], series: readonly LineSeries[]): void {
    if (x.length === 0 || series.length === 0) return;
    let max = 0;
    for (const s of series) for (const v of s.values) if (Number.isFinite(v) && v > max) max = v;
    // contrib reads minY/maxY from its options on every draw (without maxY it rescans every series per point)
    const o = (this.widget as unknown as { options: { minY: number; maxY: number } }).options;
    o.maxY = max > 0 ? max * 1.15 : 1;
    o.minY = 0;
    this.widget.setData(
      series.map((s) => ({ title: s.title, x: x.slice(), y: finiteSeries(s.values), style: { line: s.color } })),
    );
  }
}

/** NaN (a bucket without a value) carries the previous value forward; leading NaNs take the first value (or 0). */
export function finiteSeries(values: readonly number[]): number[] {
  const out = new Array<number>(values.length);
  let first = 0;
  for (const v of values)
    if (Number.isFinite(v)) {
      first = v;
      break;
    }
  let prev = first;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    prev = Number.isFinite(v) ? v : prev;
    out[i] = prev;
  }
  return out;
}

export class BarChart {
  readonly widget: ContribWidget;
  constructor(screen: Screen, place: Place, label: string, bars: number) {
    const { contrib } = load();
    // Bar width from the space: contrib places bars at fixed offsets and does not wrap.
    const inner = typeof place.width === 'number' ? place.width - 2 : 40;
    const spacing = Math.max(4, Math.floor((inner - 2) / Math.max(1, bars)));
    this.widget = renderOnChange(
      contrib.bar({
        ...place,
        label: ` ${label} `,
        border: BORDER,
        barWidth: Math.max(1, spacing - 3),
        barSpacing: spacing,
        xOffset: 1,
        maxHeight: 1,
        barBgColor: 'cyan',
        tags: true,
        style: { border: { fg: 'cyan' } },
      }),
    );
    screen.append(this.widget);
  }
  setLabel(label: string): void {
    setLabel(this.widget, label);
  }
  private last = '';
  set(titles: readonly string[], data: readonly number[]): void {
    const values = data.map((v) => (Number.isFinite(v) ? v : 0));
    const key = `${titles.join('\u0000')}\u0001${values.join(',')}`;
    if (key === this.last) return; // unchanged bars are not drawn again
    this.last = key;
    this.widget.setData({ titles: titles.slice(), data: values });
  }
}

export class Gauge {
  readonly widget: ContribWidget & { setPercent(p: number): void };
  constructor(screen: Screen, place: Place, label: string) {
    const { contrib } = load();
    this.widget = renderOnChange(
      contrib.gauge({
        ...place,
        label: ` ${label} `,
        border: BORDER,
        tags: true,
        stroke: 'green',
        fill: 'white',
        style: { border: { fg: 'cyan' } },
      }),
    );
    screen.append(this.widget);
  }
  setLabel(label: string): void {
    setLabel(this.widget, label);
  }
  /** `fraction` of the whole, 0 … 1 (see the note at the top about contrib's percent guessing). */
  private last = NaN;
  set(fraction: number): void {
    const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
    if (f === this.last) return; // an unchanged gauge is not drawn again
    this.last = f;
    this.widget.setPercent(f);
  }
}

export class Sparklines {
  readonly widget: ContribWidget;
  constructor(screen: Screen, place: Place, label: string) {
    const { contrib } = load();
    this.widget = contrib.sparkline({
      ...place,
      label: ` ${label} `,
      border: BORDER,
      tags: true,
      style: { fg: 'cyan', titleFg: 'white', border: { fg: 'cyan' } },
    });
    screen.append(this.widget);
  }
  /** One titled sparkline per series, each its newest values that fit the width. */
  set(titles: readonly string[], series: readonly (readonly number[])[]): void {
    const w = Math.max(1, (this.widget.width as number) - 2);
    this.widget.setData(
      titles.map(plain),
      series.map((s) => {
        const f = finiteSeries(s);
        return f.length > 0 ? f.slice(-w) : [0];
      }),
    );
  }
}

export class LogPane {
  readonly widget: Box;
  private lines: readonly string[] = [];
  /** First line shown, or null: following the newest. */
  private top: number | null = null;
  private shown = '';
  constructor(screen: Screen, place: Place, label: string, _lines: number) {
    const { blessed } = load();
    // Not contrib's log: that is a blessed List, one element per line, and replacing a few hundred lines cost tens of
    // ms a frame. Nor a scrollable box holding every line: blessed re-parses all of them (tags, wrapping) on each
    // change. The box holds the lines that fit; the wheel moves which ones.
    this.widget = blessed.box({
      ...place,
      label: ` ${label} `,
      border: BORDER,
      tags: true,
      wrap: false,
      style: { fg: 'white', border: { fg: 'cyan' } },
    });
    this.widget.on('wheelup', () => this.scroll(-3));
    this.widget.on('wheeldown', () => this.scroll(3));
    screen.append(this.widget);
  }
  setLabel(label: string): void {
    setLabel(this.widget, label);
  }
  /** Lines that fit inside the border. */
  private get rows(): number {
    return Math.max(1, (this.widget.height as number) - 2);
  }
  /** Replaces the lines (oldest first); the view follows the newest unless scrolled up. */
  setLines(lines: readonly string[]): void {
    this.lines = lines;
    this.show();
  }
  private scroll(by: number): void {
    const last = Math.max(0, this.lines.length - this.rows);
    const top = Math.max(0, Math.min(last, (this.top ?? last) + by));
    this.top = top >= last ? null : top;
    this.show();
    this.widget.screen.render();
  }
  private show(): void {
    const rows = this.rows;
    const last = Math.max(0, this.lines.length - rows);
    const top = Math.min(this.top ?? last, last);
    const text = this.lines
      .slice(top, top + rows)
      .map(plain)
      .join('\n');
    if (text === this.shown) return;
    this.shown = text;
    this.widget.setContent(text);
  }
}

/** blessed's cell attribute: flags << 18 | fg << 9 | bg, 0x1ff = the terminal's default colour. */
const DEFAULT_COLOR = 0x1ff;
function cellAttr(fg: number, bg: number, flags = 0): number {
  return (flags << 18) | (fg << 9) | bg;
}

export interface HeatCells {
  /** Rows × columns of colour indices (0–255) or -1 for the terminal default; `glyphs` the character of each cell. */
  rows: number;
  columns: number;
  fg: Int16Array;
  glyphs: string[];
  /** Text at the start of each row (e.g. "L12"), drawn in the default colour. */
  labels: string[];
  labelWidth: number;
}

/**
 * A heat grid (layer × expert or layer × device): a bordered box whose inside is written cell by cell into
 * blessed's screen buffer at render time. `onScroll` is called with ±1 when the mouse wheel turns over it.
 */
export class HeatGrid {
  readonly widget: Box;
  private cells: HeatCells | null = null;

  constructor(screen: Screen, place: Place, label: string, onScroll?: (dir: 1 | -1) => void) {
    const { blessed } = load();
    this.widget = blessed.box({
      ...place,
      label: ` ${label} `,
      border: BORDER,
      tags: true,
      style: { border: { fg: 'cyan' } },
    });
    // blessed draws the border and label, then the cells go straight into its screen buffer.
    const w = this.widget as unknown as { render(): { xi: number; xl: number; yi: number; yl: number } | undefined };
    const base = w.render.bind(w);
    w.render = () => {
      const ret = base();
      if (ret && this.cells) this.paint(ret);
      return ret;
    };
    if (onScroll) {
      this.widget.on('wheeldown', () => onScroll(1));
      this.widget.on('wheelup', () => onScroll(-1));
    }
    screen.append(this.widget);
  }

  /** Inner size in cells. */
  get inner(): { columns: number; rows: number } {
    return {
      columns: Math.max(0, (this.widget.width as number) - 2),
      rows: Math.max(0, (this.widget.height as number) - 2),
    };
  }

  setLabel(label: string): void {
    setLabel(this.widget, label);
  }

  set(cells: HeatCells): void {
    this.cells = cells;
  }

  private paint(pos: { xi: number; xl: number; yi: number; yl: number }): void {
    const c = this.cells!;
    const screen = this.widget.screen as Screen & { lines: ([number, string][] & { dirty?: boolean })[] };
    const x0 = pos.xi + 1;
    const y0 = pos.yi + 1;
    const xEnd = pos.xl - 1;
    const yEnd = pos.yl - 1;
    const plainAttr = cellAttr(DEFAULT_COLOR, DEFAULT_COLOR);
    for (let r = 0; r < c.rows && y0 + r < yEnd; r++) {
      const line = screen.lines[y0 + r];
      if (!line) break;
      let x = x0;
      const label = c.labels[r] ?? '';
      for (let i = 0; i < c.labelWidth && x < xEnd; i++, x++) {
        const cell = line[x]!;
        const ch = label[i] ?? ' ';
        if (cell[0] !== plainAttr || cell[1] !== ch) {
          cell[0] = plainAttr;
          cell[1] = ch;
          line.dirty = true;
        }
      }
      const o = r * c.columns;
      for (let k = 0; k < c.columns && x < xEnd; k++, x++) {
        const f = c.fg[o + k]!;
        const attr = cellAttr(f < 0 ? DEFAULT_COLOR : f, DEFAULT_COLOR);
        const ch = c.glyphs[o + k]!;
        const cell = line[x]!;
        if (cell[0] !== attr || cell[1] !== ch) {
          cell[0] = attr;
          cell[1] = ch;
          line.dirty = true;
        }
      }
    }
  }
}
