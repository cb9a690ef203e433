/**
 * The heatmap's fast path — the one place moescope draws past Ink (docs/tui.md § How it is built).
 *
 * Ink re-tokenises every line it composes, grapheme by grapheme, on every frame: a full-colour 58 × 256 heatmap as
 * `<Text>` costs it 200–800 ms a frame on a busy 2-core machine (bench/ui.ts), against a goal of 33 ms. So the
 * <Heatmap> component lets Ink lay out an empty box of the heatmap's size, and this layer writes the heatmap's lines
 * (label, cells, metrics — whole lines, pre-coloured strings) into that box on the terminal:
 *
 * - when the rows change (a layout effect of <Heatmap>), only the lines that changed, each at its absolute row;
 * - after any write of Ink's that erased lines (a clear after a resize or ctrl-L, Ink's own clear on a narrower
 *   terminal), and after Ink's first write once the box is new or moved (those lines may have held other text
 *   that Ink now blanks): all lines.
 *
 * Ink's output passes through `stdout` untouched; Ink's lines in the box are empty, so its incremental renderer
 * never rewrites them between erases. Every write saves and restores the cursor, so Ink's cursor bookkeeping holds.
 * The frame starts at the top-left of the alternate screen (run-tui.tsx), so Ink's line i is screen row i + 1.
 */
import { EventEmitter } from 'node:events';

const SAVE = '\x1b7';
/** Begin / end synchronized update (DEC 2026): the lines appear at once where the terminal knows it. */
const BSU = '\x1b[?2026h';
const ESU = '\x1b[?2026l';
const RESTORE = '\x1b8';
/** Sequences with which Ink (log-update, clearTerminal) erases what is on screen. */
const ERASES = ['\x1b[2K', '\x1b[2J', '\x1b[3J', '\x1bc'];

/** Where the layer writes: the terminal, or anything with `write`. */
export interface LayerTarget {
  write(s: string): unknown;
}

export class HeatmapLayer {
  private top = 0;
  private rows: readonly string[] = [];
  /** What is on screen, per row index (null: unknown, repaint). */
  private shown: (string | null)[] = [];
  /**
   * The box is new or moved: Ink's next write lays it out, and may clear lines that held other text before —
   * repaint every line after it.
   */
  private moved = false;
  /** A repaint of every line is queued (afterInkWrite). */
  private pending = false;
  /** Bytes written by the layer (benchmarks, tests). */
  bytes = 0;

  constructor(private readonly out: LayerTarget) {}

  /** The heatmap's lines now, from screen row `top` (0-based). Writes the lines that changed. */
  paint(top: number, rows: readonly string[]): void {
    if (top !== this.top || rows.length !== this.rows.length) {
      // No erase here: Ink's frame for the new layout (already written, or coming) erases and rewrites every line
      // the old box covered; erasing now could wipe what Ink just wrote there.
      this.top = top;
      this.shown = [];
      this.moved = true;
    }
    this.rows = rows;
    if (!this.pending) this.flush(false, true);
  }

  /** The heatmap left the screen: blank its lines (Ink's lines there are empty and will not be rewritten). */
  remove(): void {
    this.erase();
    this.rows = [];
    this.shown = [];
  }

  /** The screen was cleared: the next write repaints every line. */
  invalidate(): void {
    this.shown = [];
  }

  /** What the heatmap's box holds: its first screen row and lines (tests compose them with Ink's frame). */
  snapshot(): { top: number; rows: readonly string[] } {
    return { top: this.top, rows: this.rows };
  }

  /**
   * Ink wrote `chunk`: when it erased lines, or laid out a new or moved box, repaint every line — once the
   * current React commit is over (a microtask), so the lines painted are the ones <Heatmap> holds for this frame,
   * not the last frame's at the last frame's place.
   */
  afterInkWrite(chunk: string): void {
    if (this.rows.length === 0 && !this.moved) return;
    if (!this.moved && !ERASES.some((e) => chunk.includes(e))) return;
    this.moved = false;
    this.shown = [];
    if (this.pending) return;
    this.pending = true;
    queueMicrotask(() => {
      this.pending = false;
      this.shown = [];
      this.flush(true, true);
    });
  }

  private flush(all: boolean, sync: boolean): void {
    let out = '';
    for (let i = 0; i < this.rows.length; i++) {
      const line = this.rows[i]!;
      if (!all && this.shown[i] === line) continue;
      out += `\x1b[${this.top + i + 1};1H\x1b[0m${line}\x1b[0m\x1b[K`;
      this.shown[i] = line;
    }
    this.write(out, sync);
  }

  private erase(): void {
    let out = '';
    for (let i = 0; i < this.shown.length; i++)
      if (this.shown[i] !== undefined) out += `\x1b[${this.top + i + 1};1H\x1b[2K`;
    this.shown = [];
    this.write(out, true);
  }

  private write(s: string, sync: boolean): void {
    if (s === '') return;
    const text = sync ? BSU + SAVE + s + RESTORE + ESU : SAVE + s + RESTORE;
    this.bytes += text.length;
    this.out.write(text);
  }
}

/**
 * The stdout Ink is given: the terminal's own, with each of Ink's writes passed through unchanged and then shown to
 * the heatmap layer (afterInkWrite). Everything else Ink asks of a stdout (size, TTY, resize events) is the terminal's.
 */
export class InkStdout extends EventEmitter {
  private readonly onResize = () => this.emit('resize');
  constructor(
    private readonly real: NodeJS.WriteStream,
    private readonly layer: HeatmapLayer,
  ) {
    super();
    // Resize events are the terminal's: listeners Ink adds here hear them.
    real.on('resize', this.onResize);
  }
  dispose(): void {
    this.real.off('resize', this.onResize);
  }
  get isTTY(): boolean {
    return this.real.isTTY === true;
  }
  get columns(): number {
    return this.real.columns || 80;
  }
  get rows(): number {
    return this.real.rows || 24;
  }
  get writable(): boolean {
    return this.real.writable;
  }
  get writableEnded(): boolean {
    return this.real.writableEnded;
  }
  get writableLength(): number {
    return this.real.writableLength;
  }
  get destroyed(): boolean {
    return this.real.destroyed;
  }
  write(
    chunk: string | Uint8Array,
    encodingOrCb?: BufferEncoding | ((err?: Error | null) => void),
    cb?: (err?: Error | null) => void,
  ): boolean {
    const done = typeof encodingOrCb === 'function' ? encodingOrCb : cb;
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    const ok = this.real.write(text);
    this.layer.afterInkWrite(text);
    if (done) setImmediate(done);
    return ok;
  }
}
