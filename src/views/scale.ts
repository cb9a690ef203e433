/**
 * The heatmap's colour scale: an expert's load relative to the uniform share (1 = balanced), on a log₂ axis from
 * ⅛× to 8× so that idle, cold, balanced and hot experts are all told apart. Level 0 is reserved for "no tokens at
 * all". The monochrome glyph ramp has its own, coarser steps at ½×, 2× and 4×.
 */
import { NO_DATA } from './heat-rows.js';

export const HEAT_LEVELS = 24;
const LOG_MIN = -3;
const LOG_MAX = 3;

/** Heat level of a relative load (NaN → NO_DATA). */
export function levelOf(rel: number): number {
  if (Number.isNaN(rel)) return NO_DATA;
  if (rel <= 0) return 0;
  const t = (Math.log2(rel) - LOG_MIN) / (LOG_MAX - LOG_MIN);
  return 1 + Math.round(Math.min(1, Math.max(0, t)) * (HEAT_LEVELS - 2));
}

/** Glyph ramp steps as relative loads: ' ' idle, ░ below ½×, ▒ ½×–2×, ▓ 2×–4×, █ 4× and more. */
const GLYPH_STEPS = [0.5, 2, 4] as const;

/** Index into the glyph ramp (0 … 4) of a heat level. */
export function glyphIndexOf(level: number): number {
  if (level === 0) return 0;
  let i = 1;
  for (const s of GLYPH_STEPS) if (level >= levelOf(s)) i++;
  return i;
}

/** Relative loads the legend shows, with their labels. */
export const LEGEND_STOPS: readonly { rel: number; label: string }[] = [
  { rel: 0, label: '0' },
  { rel: 0.125, label: '⅛' },
  { rel: 0.25, label: '¼' },
  { rel: 0.5, label: '½' },
  { rel: 1, label: '1' },
  { rel: 2, label: '2' },
  { rel: 4, label: '4' },
  { rel: 8, label: '8+' },
];
