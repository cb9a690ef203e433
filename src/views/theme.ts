/**
 * The one place colours come from. Views ask for semantic tokens (theme.accent, theme.heat(level) …), never for
 * raw colours, so NO_COLOR, 256-colour and truecolor terminals and the colour-blind-safe maps all follow one switch.
 */
import { HEAT_LEVELS, glyphIndexOf } from './scale.js';
import {
  type ColorMode,
  type RGB,
  type SequentialMap,
  OKABE_ITO,
  SEQUENTIAL_MAPS,
  fgEscape,
  inkColor,
  sample,
} from '../core/palette.js';

export type { ColorMode } from '../core/palette.js';

export interface ColorOptions {
  /** commander's `--no-color` sets this to false. */
  color?: boolean;
  env?: NodeJS.ProcessEnv;
}

/**
 * No colour when `--no-color` or NO_COLOR (any non-empty value, no-color.org); truecolor when the terminal says so
 * through COLORTERM=truecolor|24bit; 256 colours otherwise.
 */
export function detectColorMode(opts: ColorOptions = {}): ColorMode {
  const env = opts.env ?? process.env;
  if (opts.color === false) return 'none';
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 'none';
  const ct = (env.COLORTERM ?? '').toLowerCase();
  if (ct === 'truecolor' || ct === '24bit') return 'truecolor';
  return 'ansi256';
}

export { HEAT_LEVELS } from './scale.js';

/** Monochrome ramp: reads without colour, darkest to fullest. */
export const GLYPH_RAMP = [' ', '░', '▒', '▓', '█'] as const;

const IDLE_RGB: RGB = [48, 48, 48];

const UI_RGB = {
  accent: [86, 180, 233],
  warn: [230, 159, 0],
  error: [213, 94, 0],
  ok: [0, 158, 115],
  muted: [138, 138, 138],
  selectBg: [0, 114, 178],
} satisfies Record<string, RGB>;

export interface Theme {
  mode: ColorMode;
  map: SequentialMap;
  /** Ink colour strings for chrome (undefined without colour). */
  accent: string | undefined;
  warn: string | undefined;
  error: string | undefined;
  ok: string | undefined;
  muted: string | undefined;
  /** Raw SGR of the same chrome colours, for painted regions ('' without colour). */
  esc: { accent: string; warn: string; muted: string };
  /** Raw SGR foreground for heat level 0 … HEAT_LEVELS-1 ('' without colour). */
  heatEscape: readonly string[];
  /** Ink colour of each heat level (legends). */
  heatInk: readonly (string | undefined)[];
  /** Glyph for heat level, used in the heatmap (█ in colour, the ramp without). */
  heatGlyph: readonly string[];
  /** Ink colour of expert `id` of `experts` (categorical when few experts, sequential otherwise). */
  expertInk(id: number, experts: number): string | undefined;
  /** Raw SGR of the same colour. */
  expertEscape(id: number, experts: number): string;
}

function expertRgb(map: RGB[], id: number, experts: number): RGB {
  if (experts <= OKABE_ITO.length) return OKABE_ITO[id % OKABE_ITO.length]!;
  return sample(map, experts <= 1 ? 0 : id / (experts - 1));
}

export function makeTheme(mode: ColorMode, map: SequentialMap = 'viridis'): Theme {
  const cmap = SEQUENTIAL_MAPS[map];
  // Level 0 is "no assignment at all": a neutral dark grey, darker than the map's darkest colour, so an idle expert
  // stands apart from a merely cold one; levels 1 … HEAT_LEVELS-1 span the map.
  const heatRgb = Array.from({ length: HEAT_LEVELS }, (_, i) =>
    i === 0 ? IDLE_RGB : sample(cmap, (i - 1) / (HEAT_LEVELS - 2)),
  );
  const color = mode !== 'none';
  const expertCache = new Map<number, { ink: string | undefined; esc: string }>();
  const expert = (id: number, experts: number) => {
    const key = id * 4096 + experts;
    let c = expertCache.get(key);
    if (!c) {
      const rgb = expertRgb(cmap, id, experts);
      c = { ink: inkColor(rgb, mode), esc: fgEscape(rgb, mode) };
      expertCache.set(key, c);
    }
    return c;
  };
  return {
    mode,
    map,
    accent: inkColor(UI_RGB.accent, mode),
    warn: inkColor(UI_RGB.warn, mode),
    error: inkColor(UI_RGB.error, mode),
    ok: inkColor(UI_RGB.ok, mode),
    muted: inkColor(UI_RGB.muted, mode),
    esc: {
      accent: fgEscape(UI_RGB.accent, mode),
      warn: fgEscape(UI_RGB.warn, mode),
      muted: fgEscape(UI_RGB.muted, mode),
    },
    heatEscape: heatRgb.map((c) => fgEscape(c, mode)),
    heatInk: heatRgb.map((c) => inkColor(c, mode)),
    heatGlyph: heatRgb.map((_, i) => (color ? '█' : GLYPH_RAMP[glyphIndexOf(i)]!)),
    expertInk: (id, experts) => expert(id, experts).ink,
    expertEscape: (id, experts) => expert(id, experts).esc,
  };
}
