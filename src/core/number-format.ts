/**
 * Number formatting for text output, below every layer that prints (engine, gate, report, views): bytes, counts,
 * fixed-digit metric values and limits.
 */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** The one glyph for "no value" in every output (text, report, TUI). */
export const NO_VALUE = '—';

/** Bytes in binary units ("6.0 KiB"); "—" when unknown. */
export function fmtBytes(n: number | null | undefined, digits = 1): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return NO_VALUE;
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v.toFixed(0) : v.toFixed(digits)} ${UNITS[u]}`;
}

/** How numbers are printed in every report: fixed digits, NO_VALUE when not available, "n/a" when undefined (NaN). */
export function fmt(value: number | null | undefined, digits: number): string {
  if (value === null || value === undefined) return NO_VALUE;
  if (Number.isNaN(value)) return 'n/a';
  if (!Number.isFinite(value)) return value > 0 ? '∞' : '−∞';
  return digits === 0 ? String(Math.round(value)) : value.toFixed(digits);
}

/** 12345 → "12,345". */
export function fmtCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** A measured value in a sentence: integers as they are, others to 4 significant digits. */
export function fmtValue(value: number): string {
  if (Number.isNaN(value)) return 'n/a';
  if (Number.isInteger(value)) return String(value);
  if (!Number.isFinite(value)) return value > 0 ? '∞' : '−∞';
  return String(Number(value.toPrecision(4)));
}
