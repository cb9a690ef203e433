/**
 * The one table helper for text output (`stats`, `check` text, `run --no-ui`, the TUI's plain summary): columns
 * measured by their width on a terminal (string-width: wide CJK characters count two, combining marks zero), each
 * cell passed through the terminal sanitiser once, so data never reaches the terminal as an escape sequence.
 */
import stringWidth from 'string-width';
import { sanitizeLine } from './sanitize.js';

export type Align = 'left' | 'right';

export interface TableOptions {
  /** Alignment per column (default: the first column left, the others right). */
  align?: readonly Align[];
  /** Printed before every line (default two spaces). */
  indent?: string;
  /** Between columns (default two spaces). */
  gap?: string;
}

/** Rows of cells as aligned lines (trailing spaces trimmed). */
export function formatTable(rows: readonly (readonly string[])[], opts: TableOptions = {}): string[] {
  const indent = opts.indent ?? '  ';
  const gap = opts.gap ?? '  ';
  const cells = rows.map((r) => r.map((c) => sanitizeLine(c)));
  const cols = Math.max(0, ...cells.map((r) => r.length));
  const widths = Array.from({ length: cols }, (_, c) => Math.max(0, ...cells.map((r) => stringWidth(r[c] ?? ''))));
  const alignOf = (c: number): Align => opts.align?.[c] ?? (c === 0 ? 'left' : 'right');
  return cells.map((r) =>
    (
      indent +
      r
        .map((cell, c) => {
          const pad = ' '.repeat(widths[c]! - stringWidth(cell));
          return alignOf(c) === 'left' ? cell + pad : pad + cell;
        })
        .join(gap)
    ).trimEnd(),
  );
}
