/**
 * Colour maps and the escape codes that draw them. Sequential maps are colour-blind safe (viridis, cividis:
 * perceptually uniform, readable with deuteranopia/protanopia and in greyscale); categorical colours are Okabe–Ito.
 * Pre-computed per colour mode so the hot path (heatmap rows) only concatenates cached strings.
 */

export type ColorMode = 'none' | 'ansi256' | 'truecolor';
export type RGB = readonly [number, number, number];

/** Control points sampled from matplotlib's maps at 0, 0.1, …, 1. */
const VIRIDIS: RGB[] = [
  [68, 1, 84],
  [72, 36, 117],
  [65, 68, 135],
  [53, 95, 141],
  [42, 120, 142],
  [33, 145, 140],
  [34, 168, 132],
  [68, 191, 112],
  [122, 209, 81],
  [189, 223, 38],
  [253, 231, 37],
];
const CIVIDIS: RGB[] = [
  [0, 34, 78],
  [18, 53, 112],
  [59, 73, 108],
  [87, 92, 109],
  [112, 113, 115],
  [138, 134, 120],
  [165, 156, 116],
  [193, 179, 105],
  [222, 204, 89],
  [248, 230, 67],
  [253, 234, 69],
];

export type SequentialMap = 'viridis' | 'cividis';

export const SEQUENTIAL_MAPS: Record<SequentialMap, RGB[]> = { viridis: VIRIDIS, cividis: CIVIDIS };

/** Okabe & Ito (2008): eight colours distinguishable with every common colour-vision deficiency. */
export const OKABE_ITO: RGB[] = [
  [230, 159, 0],
  [86, 180, 233],
  [0, 158, 115],
  [240, 228, 66],
  [0, 114, 178],
  [213, 94, 0],
  [204, 121, 167],
  [153, 153, 153],
];

/** Colour at t ∈ [0, 1] on a sequential map (linear between control points). */
export function sample(map: RGB[], t: number): RGB {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (map.length - 1);
  const i = Math.min(map.length - 2, Math.floor(x));
  const f = x - i;
  const a = map[i]!;
  const b = map[i + 1]!;
  return [
    Math.round(a[0] + (b[0] - a[0]) * f),
    Math.round(a[1] + (b[1] - a[1]) * f),
    Math.round(a[2] + (b[2] - a[2]) * f),
  ];
}

const CUBE = [0, 95, 135, 175, 215, 255];

/** xterm's colours 16–255: the 6×6×6 cube, then 24 greys. */
const XTERM_256: RGB[] = [];
for (let i = 0; i < 216; i++) XTERM_256.push([CUBE[Math.floor(i / 36)]!, CUBE[Math.floor(i / 6) % 6]!, CUBE[i % 6]!]);
for (let g = 0; g < 24; g++) XTERM_256.push([8 + g * 10, 8 + g * 10, 8 + g * 10]);

/** CIELAB (D65) of an sRGB colour: distances there follow what the eye sees, unlike RGB distances. */
function lab(rgb: RGB): [number, number, number] {
  const lin = rgb.map((c) => {
    const v = c / 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  const [r, g, b] = lin as [number, number, number];
  const f = (t: number) => (t > 216 / 24389 ? Math.cbrt(t) : (t * 24389) / 27 / 116 + 16 / 116);
  const x = f((0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047);
  const y = f(0.2126 * r + 0.7152 * g + 0.0722 * b);
  const z = f((0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883);
  return [116 * y - 16, 500 * (x - y), 200 * (y - z)];
}

const XTERM_LAB = XTERM_256.map(lab);

/**
 * Nearest xterm-256 colour index (16–255) by CIELAB distance, lightness counted twice: a sequential map must keep
 * its dark-to-light order even where the cube has no colour of the right hue. (Nearest by RGB distance turns
 * cividis' blue-greys teal and its warm greys pink: the cube is coarse exactly where those maps live.)
 */
export function toAnsi256(rgb: RGB): number {
  const [l, a, b] = lab(rgb);
  let best = 0;
  let bestD = Infinity;
  for (let i = 0; i < XTERM_LAB.length; i++) {
    const c = XTERM_LAB[i]!;
    const d = 4 * (c[0] - l) ** 2 + (c[1] - a) ** 2 + (c[2] - b) ** 2;
    if (d < bestD) {
      bestD = d;
      best = i;
    }
  }
  return 16 + best;
}

/** SGR sequence setting the foreground to rgb in the given mode ('' without colour). */
export function fgEscape(rgb: RGB, mode: ColorMode): string {
  if (mode === 'truecolor') return `\x1b[38;2;${rgb[0]};${rgb[1]};${rgb[2]}m`;
  if (mode === 'ansi256') return `\x1b[38;5;${toAnsi256(rgb)}m`;
  return '';
}

/** Ink/chalk colour string for rgb in the given mode (undefined without colour: Ink then emits nothing). */
export function inkColor(rgb: RGB, mode: ColorMode): string | undefined {
  if (mode === 'truecolor') return `#${rgb.map((c) => c.toString(16).padStart(2, '0')).join('')}`;
  if (mode === 'ansi256') return `ansi256(${toAnsi256(rgb)})`;
  return undefined;
}

export const SGR_RESET = '\x1b[0m';
export const SGR_INVERSE = '\x1b[7m';
export const SGR_BOLD = '\x1b[1m';
export const SGR_DIM = '\x1b[2m';
