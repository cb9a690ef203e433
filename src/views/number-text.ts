/** Number and text formatting for the views: units always shown, fixed widths where columns must line up. */

export function fmtInt(n: number): string {
  if (!Number.isFinite(n)) return NO_VALUE;
  return Math.round(n).toLocaleString('en-US');
}

/** A ratio as a percentage with `digits` decimals ("—" when undefined). */
export function fmtPct(x: number | null | undefined, digits = 1): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return NO_VALUE;
  return `${(x * 100).toFixed(digits)}%`;
}

export function fmtNum(x: number | null | undefined, digits = 2): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return NO_VALUE;
  return x.toFixed(digits);
}

/** A multiple of something ("2.31×"). */
export function fmtTimes(x: number | null | undefined, digits = 2): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return NO_VALUE;
  return `${x.toFixed(digits)}×`;
}

/** Bytes in binary units; shared with the engine's text output, so it lives in src/core. */
export { fmtBytes, NO_VALUE } from '../core/number-format.js';
import { NO_VALUE } from '../core/number-format.js';

/** h:mm:ss, or m:ss under an hour. */
export function fmtDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return NO_VALUE;
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = h > 0 ? String(m).padStart(2, '0') : String(m);
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(sec).padStart(2, '0')}`;
}

export function fmtSpeed(x: number): string {
  return x < 1 ? `×${x}` : `×${x % 1 === 0 ? x.toFixed(0) : x}`;
}
