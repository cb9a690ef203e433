/**
 * Colour for the HTML report: matplotlib's viridis ramp (perceptually uniform, readable with the common forms of
 * colour blindness and in greyscale), from the palette the TUI draws with (src/core/palette.ts).
 */
import { SEQUENTIAL_MAPS, sample } from '../core/palette.js';

const VIRIDIS = SEQUENTIAL_MAPS.viridis;

const hex2 = (n: number) => n.toString(16).padStart(2, '0');

/** Viridis at t ∈ [0, 1] (clamped) as "#rrggbb"; dark purple at 0, yellow at 1. Same ramp as the TUI's. */
export function viridis(t: number): string {
  const [r, g, b] = sample(VIRIDIS, t);
  return `#${hex2(r)}${hex2(g)}${hex2(b)}`;
}

/** Gradient stops for a legend bar, as [offset 0…1, colour]. */
export function viridisStops(): [number, string][] {
  return VIRIDIS.map((_, i) => [i / (VIRIDIS.length - 1), viridis(i / (VIRIDIS.length - 1))]);
}

/** Semantic colours of the report (Okabe–Ito accents, distinguishable under colour blindness). */
export const THEME = {
  text: '#1b1b1f',
  muted: '#5c5f66',
  rule: '#d7d9de',
  bar: '#31688e',
  balanced: '#e69f00',
  alert: '#d55e00',
  ok: '#009e73',
  missing: '#e5e5e5',
} as const;
