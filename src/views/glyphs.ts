/** Bar and sparkline glyphs; token text made visible and its width (src/core/terminal-text.ts). */

export { visibleToken } from '../core/terminal-text.js';

const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** A horizontal bar of `frac` ∈ [0, 1] of `width` columns, in eighths, padded with spaces to `width`. */
export function bar(frac: number, width: number): string {
  const f = Number.isFinite(frac) ? Math.min(1, Math.max(0, frac)) : 0;
  const eighths = Math.round(f * width * 8);
  const full = Math.floor(eighths / 8);
  const rest = eighths % 8;
  const s = '█'.repeat(full) + EIGHTHS[rest]!;
  return s + ' '.repeat(Math.max(0, width - full - (rest > 0 ? 1 : 0)));
}

const SPARKS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/** The last `width` values as a sparkline scaled from 0 to `max` (default: the largest value shown). */
export function sparkline(values: readonly number[], width: number, max?: number): string {
  const vs = values.slice(-width);
  const top = max ?? vs.reduce((a, b) => Math.max(a, b), 0);
  let s = '';
  for (const v of vs) s += top > 0 ? SPARKS[Math.min(7, Math.max(0, Math.round((v / top) * 7)))]! : SPARKS[0]!;
  return s.padStart(width, ' ');
}
