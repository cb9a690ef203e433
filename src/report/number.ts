/** How numbers are printed in every report: fixed digits, "–" when not available, "n/a" when undefined (NaN). */
export function fmt(value: number | null | undefined, digits: number): string {
  if (value === null || value === undefined) return '–';
  if (Number.isNaN(value)) return 'n/a';
  if (!Number.isFinite(value)) return value > 0 ? '∞' : '−∞';
  return digits === 0 ? String(Math.round(value)) : value.toFixed(digits);
}

/** A limit as the user wrote it (no padding zeros). */
export function fmtLimit(value: number): string {
  return String(value);
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
