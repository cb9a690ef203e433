/**
 * Colour for the HTML report: matplotlib's viridis ramp (perceptually uniform, readable with the common forms of
 * colour blindness and in greyscale), sampled at 11 stops and interpolated linearly in sRGB.
 */
const VIRIDIS = [
  [0x44, 0x01, 0x54], [0x48, 0x24, 0x75], [0x41, 0x44, 0x87], [0x35, 0x5f, 0x8d], [0x2a, 0x78, 0x8e],
  [0x21, 0x91, 0x8c], [0x22, 0xa8, 0x84], [0x44, 0xbf, 0x70], [0x7a, 0xd1, 0x51], [0xbd, 0xdf, 0x26],
  [0xfd, 0xe7, 0x25],
] as const;

const hex2 = (n: number) => Math.round(n).toString(16).padStart(2, '0');

/** Viridis at t ∈ [0, 1] (clamped) as "#rrggbb"; dark purple at 0, yellow at 1. */
export function viridis(t: number): string {
  const x = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
  const f = x * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(f));
  const u = f - i;
  const a = VIRIDIS[i]!;
  const b = VIRIDIS[i + 1]!;
  return `#${hex2(a[0] + (b[0] - a[0]) * u)}${hex2(a[1] + (b[1] - a[1]) * u)}${hex2(a[2] + (b[2] - a[2]) * u)}`;
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
