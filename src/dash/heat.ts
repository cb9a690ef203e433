/**
 * Heat-grid cells: the overview's colour scale (docs/tui.md § Screens: an expert's load ÷ the uniform share, log₂
 * from ⅛× to 8×, viridis or cividis, a dark grey for "no assignment", the glyph ramp ░▒▓█ without colour) drawn with
 * core's palette. The dashboard may not import the Ink views, so the scale is restated here: a mapping of a value
 * the store computed (relLoad, from src/stats) to a colour — no metric.
 */
import { SEQUENTIAL_MAPS, sample, toAnsi256, type SequentialMap } from '../core/palette.js';

/** Colour steps of the scale (as many as the overview's heat levels). */
const LEVELS = 23;
const LOG_MIN = -3;
const LOG_MAX = 3;
/** xterm-256 grey for an expert with no assignment (level 0 of the overview, rgb 48,48,48). */
const IDLE = 236;
const GLYPHS = [' ', '░', '▒', '▓', '█'] as const;

export interface HeatCell {
  /** xterm-256 colour, or -1 for the terminal's default. */
  fg: number;
  glyph: string;
}

/** A column past a layer's own experts (layers that differ in E): no expert there, drawn blank. */
export const ABSENT_CELL: HeatCell = { fg: -1, glyph: ' ' };
/** A column of zero-computation experts only (LongCat-Flash): a grey "z", as the overview marks them. */
export const ZERO_CELL: HeatCell = { fg: 244, glyph: 'z' };

export class HeatScale {
  private readonly colors: number[] | null;

  constructor(color: boolean, map: SequentialMap = 'viridis') {
    const m = SEQUENTIAL_MAPS[map];
    this.colors = color ? Array.from({ length: LEVELS }, (_, i) => toAnsi256(sample(m, i / (LEVELS - 1)))) : null;
  }

  /** The cell of a relative load (NaN: no data yet, drawn as a dim dot). */
  cell(rel: number): HeatCell {
    if (Number.isNaN(rel)) return { fg: -1, glyph: '·' };
    if (!this.colors) return { fg: -1, glyph: GLYPHS[rel <= 0 ? 0 : rel < 0.5 ? 1 : rel < 2 ? 2 : rel < 4 ? 3 : 4]! };
    if (rel <= 0) return { fg: IDLE, glyph: '█' };
    const t = (Math.log2(rel) - LOG_MIN) / (LOG_MAX - LOG_MIN);
    return { fg: this.colors[Math.round(Math.min(1, Math.max(0, t)) * (LEVELS - 1))]!, glyph: '█' };
  }
}
