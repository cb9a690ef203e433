/**
 * Painted regions: how the heatmap gets past Ink's per-character cost.
 *
 * Ink re-tokenises every text node grapheme by grapheme on every commit (tens to hundreds of ms for a full-colour
 * 58 × 256 heatmap, docs/tui.md). A painted region is laid out by Ink as a short *marker* — four private-use
 * characters naming the region and the version of its content — and the marker is swapped for the region's
 * pre-rendered, pre-coloured string on its way to the terminal (ScreenWriter). Ink still lays out and composes every
 * line, so layout and clipping of the rest of the UI keep working; it just never sees the escape-heavy text. A new
 * version changes the marker, so a changed region changes its line and the line is rewritten; an unchanged one is
 * not.
 *
 * Private-use characters never reach the terminal from anywhere else: token text is sanitised (glyphs.ts).
 */
import { EventEmitter } from 'node:events';

const MARK = 0xe000;
const DIGIT0 = 0xe100;
const DIGITS = 0xf000 - DIGIT0; // 3840 values per digit
/** Columns a marker occupies in Ink's layout. */
export const MARKER_WIDTH = 4;
const MARKER_RE = /\uE000([\uE100-\uEFFF])([\uE100-\uEFFF])([\uE100-\uEFFF])( *)/g;

interface Slot {
  text: string;
  width: number;
  version: number;
}

export class PaintRegistry {
  private readonly ids = new Map<string, number>();
  private readonly slots: Slot[] = [];

  /**
   * Sets the content of region `key` (exactly `width` columns of terminal text, escapes allowed, ending with any
   * needed reset) and returns the marker for Ink to lay out. `width` must be ≥ MARKER_WIDTH.
   */
  marker(key: string, text: string, width: number): string {
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.slots.length;
      if (id >= DIGITS) throw new RangeError('too many painted regions');
      this.ids.set(key, id);
      this.slots.push({ text, width, version: 0 });
    }
    const s = this.slots[id]!;
    if (s.text !== text || s.width !== width) {
      s.text = text;
      s.width = width;
      s.version = (s.version + 1) % (DIGITS * DIGITS);
    }
    return (
      String.fromCharCode(MARK, DIGIT0 + id, DIGIT0 + Math.floor(s.version / DIGITS), DIGIT0 + (s.version % DIGITS))
    );
  }

  /** Makes every marker's line differ from the last frame's, so Ink rewrites all painted lines. */
  invalidate(): void {
    for (const s of this.slots) s.version = (s.version + 1) % (DIGITS * DIGITS);
  }

  /** Replaces markers in terminal output by their regions' text (the spaces Ink padded the region with go too). */
  expand(chunk: string): string {
    if (chunk.indexOf('\uE000') < 0) return chunk;
    return chunk.replace(MARKER_RE, (_m, slot: string, _v1: string, _v0: string, spaces: string) => {
      const s = this.slots[slot.charCodeAt(0) - DIGIT0];
      if (!s) return spaces;
      const pad = s.width - MARKER_WIDTH;
      return s.text + (spaces.length > pad ? spaces.slice(pad) : '');
    });
  }
}

/** Begin / end synchronized update (DEC 2026): terminals that know it show the frame at once, others ignore it. */
const BSU = '\x1b[?2026h';
const ESU = '\x1b[?2026l';

/**
 * The stdout Ink is given, and the one thing that writes frames to the terminal. Ink runs in debug mode, so every
 * write is one whole frame (no cursor bookkeeping of Ink's own, which is meant for output below a shell prompt);
 * this writer expands painted regions and rewrites only the lines that changed, each at its absolute row on the
 * alternate screen. `invalidate()` (resize, ctrl-L) clears the screen and redraws every line next frame.
 */
export class ScreenWriter extends EventEmitter {
  private prev: string[] = [];
  private cleared = true;
  /** Frames written and bytes sent (benchmarks, tests). */
  frames = 0;
  bytes = 0;

  constructor(
    private readonly real: NodeJS.WriteStream,
    private readonly registry: PaintRegistry,
  ) {
    super();
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

  /** Forget what is on screen: the next frame clears it and writes every line. */
  invalidate(): void {
    this.prev = [];
    this.cleared = false;
  }

  write(chunk: string | Uint8Array, encodingOrCb?: BufferEncoding | ((err?: Error | null) => void), cb?: (err?: Error | null) => void): boolean {
    const done = typeof encodingOrCb === 'function' ? encodingOrCb : cb;
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    // Cursor show/hide from Ink's raw-mode handling: the TUI owns the cursor.
    if (text !== '' && !/^\x1b\[\?25[hl]$/.test(text)) this.frame(text);
    if (done) setImmediate(done);
    return true;
  }

  private frame(text: string): void {
    const lines = text.split('\n');
    if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    const rows = this.rows;
    let out = '';
    if (!this.cleared) {
      out += '\x1b[H\x1b[2J';
      this.cleared = true;
    }
    const n = Math.min(rows, Math.max(lines.length, this.prev.length));
    for (let i = 0; i < n; i++) {
      const line = i < lines.length ? lines[i]! : '';
      if (line === this.prev[i]) continue;
      out += `\x1b[${i + 1};1H${this.registry.expand(line)}\x1b[0m\x1b[K`;
    }
    this.prev = lines.slice(0, rows);
    if (out === '') return;
    this.frames++;
    this.bytes += out.length;
    this.real.write(BSU + out + ESU);
  }
}
