/**
 * Screen layout: where everything goes, as pure functions of the terminal size, the UI state and the frame's shape.
 * Views draw what these return and the key handler moves by the same numbers, so "down" goes to what is visibly
 * below and nothing is measured while rendering. Nothing here reads the model or the live ring.
 */

import type { Fidelity } from './model.js';

/** Smallest terminal the TUI lays out in. */
export const MIN_COLUMNS = 80;
export const MIN_ROWS = 24;

/** Rows of chrome around the pane: status bar and tabs above, the hint bar below. */
const TOP_ROWS = 2;
const BOTTOM_ROWS = 1;

export interface Term {
  columns: number;
  rows: number;
}

export interface Screen {
  columns: number;
  rows: number;
  /**
   * Rows the frame has: one less than the terminal. Ink ends a frame shorter than the terminal with a newline and
   * tracks its cursor relative to it; a frame as tall as the terminal makes it clear the whole screen on every
   * frame (ink#450). The last row stays empty.
   */
  frameRows: number;
  /** Screen row (0-based) of the pane's first line, and the pane's rows. */
  bodyTop: number;
  body: number;
  tooSmall: boolean;
}

export function screenOf(term: Term): Screen {
  const rows = Math.max(1, term.rows);
  const frameRows = Math.max(1, rows - 1);
  return {
    columns: Math.max(1, term.columns),
    rows,
    frameRows,
    bodyTop: TOP_ROWS,
    body: Math.max(0, frameRows - TOP_ROWS - BOTTOM_ROWS),
    tooSmall: term.columns < MIN_COLUMNS || term.rows < MIN_ROWS,
  };
}

/** A window of `visible` items out of `total` keeping `cursor` in view, centred when possible. */
export function scrollWindow(total: number, visible: number, cursor: number): { first: number; count: number } {
  if (total <= visible) return { first: 0, count: total };
  const first = Math.max(0, Math.min(total - visible, cursor - Math.floor(visible / 2)));
  return { first, count: visible };
}

export interface HeatmapViewport {
  /** Experts per column. */
  bin: number;
  /** Experts per column that fits every expert in the width. */
  fitBin: number;
  /** First expert shown and columns shown. */
  firstExpert: number;
  columns: number;
  /** Terminal columns the cells span; column c covers [edge(c), edge(c + 1)) (cellEdge). */
  span: number;
  /** Column of the cursor among the shown ones. */
  cursorColumn: number;
  /** Layers shown. */
  firstLayer: number;
  layers: number;
}

/** Left edge, in terminal columns from the first cell, of heatmap column c (cells share the span evenly). */
export function cellEdge(vp: Pick<HeatmapViewport, 'columns' | 'span'>, c: number): number {
  return vp.columns === 0 ? 0 : Math.floor((c * vp.span) / vp.columns);
}

/**
 * @param cells terminal columns available for cells; @param rows rows available for layers; zoom = experts per
 * column requested (0 = fit the width). Columns share the whole width, so a few experts get wide cells.
 */
function heatmapViewport(
  experts: number,
  layers: number,
  cells: number,
  rows: number,
  zoom: number,
  cursorExpert: number,
  cursorLayer: number,
): HeatmapViewport {
  const width = Math.max(1, cells);
  const fitBin = Math.max(1, Math.ceil(experts / width));
  const bin = zoom > 0 ? Math.min(zoom, fitBin) : fitBin;
  const total = Math.ceil(experts / bin);
  const cursorBin = Math.floor(Math.min(experts - 1, Math.max(0, cursorExpert)) / bin);
  const h = scrollWindow(total, width, cursorBin);
  const v = scrollWindow(layers, Math.max(1, rows), cursorLayer);
  return {
    bin,
    fitBin,
    firstExpert: h.first * bin,
    columns: h.count,
    span: h.count < width ? width : h.count,
    cursorColumn: cursorBin - h.first,
    firstLayer: v.first,
    layers: v.count,
  };
}

/** Next zoom (experts per column) for + (dir 1) or − (dir −1), from the current viewport; null: nothing to zoom. */
export function nextZoom(v: Pick<HeatmapViewport, 'bin' | 'fitBin'>, dir: 1 | -1): number | null {
  if (dir > 0) return v.bin <= 1 ? null : Math.max(1, Math.floor(v.bin / 2));
  if (v.bin >= v.fitBin) return null;
  const b = v.bin * 2;
  return b >= v.fitBin ? 0 : b;
}

/** Per-row metric columns beside the heatmap, in the order they are dropped when the width runs short. */
export type RowMetric = 'cv' | 'maxVio' | 'entropy';
const ROW_METRICS: readonly { id: RowMetric; label: string; width: number }[] = [
  { id: 'cv', label: 'CV', width: 6 },
  { id: 'maxVio', label: 'MaxVio', width: 7 },
  { id: 'entropy', label: 'entropy', width: 8 },
];

/** Lines of the overview around the heatmap rows: title, axis above; cursor read-out, legend, warning below. */
const OVERVIEW_ABOVE = 2;
const OVERVIEW_BELOW = 3;
/** Heatmap cells a metric column must leave (or every expert, when fewer) before it is shown. */
const MIN_CELLS_WITH_METRICS = 64;

export interface OverviewLayout {
  /** Columns of the row label ("▶L12 "). */
  labelW: number;
  /** Metric columns shown, and the ones dropped for lack of width (said in the title). */
  metrics: RowMetric[];
  droppedMetrics: RowMetric[];
  metricsW: number;
  /** Terminal columns at which every metric column shows. */
  allMetricsColumns: number;
  cells: number;
  vp: HeatmapViewport;
  /** Terminal lines per layer (> 1 when few layers leave room). */
  rowHeight: number;
  /** Screen row of the first heatmap line, and the heatmap's lines. */
  heatTop: number;
  heatLines: number;
}

export interface FrameShape {
  layerIds: readonly number[];
  layerLabels: readonly string[];
  experts: number;
  /** What the stream cannot vouch for (src/store/model.ts Fidelity): each kind of flag takes a line below the heatmap. */
  fidelity?: Pick<Fidelity, 'unfollowed' | 'zeroMask'>;
}

/**
 * Lines the overview gives to what the stream cannot vouch for, below the heatmap: one naming the routers whose
 * weights were not followed to the mixing, one for zero-computation experts.
 */
export function fidelityLines(shape: FrameShape): number {
  const f = shape.fidelity;
  return f ? (f.unfollowed.length > 0 ? 1 : 0) + (f.zeroMask ? 1 : 0) : 0;
}

/** Whether the layer pane of layer l gives a line to its flags (weights not followed, zero experts). */
export function layerFlagRows(shape: FrameShape & { fidelity?: Fidelity }, l: number): number {
  const f = shape.fidelity;
  return f && (f.weightsKnown[l] === false || f.zeroExperts[l]) ? 1 : 0;
}

/** The layer pane's bars for layer l of a frame: its flag line, and room for the "z" after a zero expert's id. */
export function layerBarsOf(
  shape: FrameShape & { fidelity?: Fidelity; layerExperts: readonly number[] },
  l: number,
  term: Term,
): LayerBarsLayout {
  const zero = shape.fidelity?.zeroExperts[l] ? 1 : 0;
  return layerBarsLayout(shape.layerExperts[l] ?? shape.experts, term, layerFlagRows(shape, l), zero);
}

export function overviewLayout(
  shape: FrameShape,
  term: Term,
  ui: { zoom: number; layer: number; expert: number },
): OverviewLayout {
  const scr = screenOf(term);
  const width = scr.columns;
  const E = shape.experts;
  const L = shape.layerIds.length;
  let labelW = 0;
  for (const l of shape.layerLabels) labelW = Math.max(labelW, `L${l}`.length);
  labelW += 2;
  const minCells = Math.min(E, MIN_CELLS_WITH_METRICS);
  const metrics: RowMetric[] = [];
  let metricsW = 0;
  for (const m of ROW_METRICS) {
    if (width - labelW - metricsW - m.width - 1 < minCells) break;
    metrics.push(m.id);
    metricsW += m.width;
  }
  const droppedMetrics = ROW_METRICS.filter((m) => !metrics.includes(m.id)).map((m) => m.id);
  const cells = Math.max(4, width - labelW - metricsW - 1);
  const rows = Math.max(1, scr.body - OVERVIEW_ABOVE - OVERVIEW_BELOW - fidelityLines(shape));
  const vp = heatmapViewport(E, L, cells, rows, ui.zoom, ui.expert, ui.layer);
  // Few layers: taller rows, so a small model's heatmap fills the pane rather than a thin strip of it.
  const rowHeight = Math.max(1, Math.floor(rows / Math.max(1, vp.layers)));
  return {
    labelW,
    metrics,
    droppedMetrics,
    metricsW,
    allMetricsColumns: labelW + minCells + ROW_METRICS.reduce((a, m) => a + m.width, 0) + 1,
    cells,
    vp,
    rowHeight,
    heatTop: scr.bodyTop + OVERVIEW_ABOVE,
    heatLines: vp.layers * rowHeight,
  };
}

/** Warnings pane: rows of the list (title, column heads and the footer take three). */
export function warningListRows(term: Term): number {
  return Math.max(1, screenOf(term).body - 3);
}

export interface LayerBarsLayout {
  /** Experts listed beside (wide) or above (narrow) the co-activation and margin sections. */
  side: boolean;
  idW: number;
  barW: number;
  entryW: number;
  /** Entries per line, lines of the list (experts read down, then across), experts per page. */
  perRow: number;
  rows: number;
  perPage: number;
  listW: number;
  /** Rows left for co-activation pairs when beside the list. */
  sideRows: number;
}

const LAYER_HEADER_ROWS = 4;
const LAYER_BOTTOM_ROWS = 8;
export const LAYER_SIDE_W = 58;
const LAYER_SIDE_MIN_WIDTH = 120;

/** `flagRows`: lines the header gives to the layer's flags (layerFlagRows); `idMark`: columns after an expert's id. */
export function layerBarsLayout(experts: number, term: Term, flagRows = 0, idMark = 0): LayerBarsLayout {
  const scr = screenOf(term);
  const width = scr.columns;
  const side = width >= LAYER_SIDE_MIN_WIDTH;
  const listMax = Math.max(1, scr.body - LAYER_HEADER_ROWS - flagRows - (side ? 0 : LAYER_BOTTOM_ROWS));
  const avail = side ? width - LAYER_SIDE_W - 2 : width;
  const idW = String(experts - 1).length + 1 + idMark;
  const fixed = idW + 18;
  const colsNeeded = Math.ceil(experts / listMax);
  const barW = Math.max(8, Math.min(40, Math.floor(avail / colsNeeded) - fixed));
  const entryW = fixed + barW;
  const perRow = Math.max(1, Math.floor(avail / entryW));
  const rows = Math.min(listMax, Math.ceil(experts / perRow));
  return {
    side,
    idW,
    barW,
    entryW,
    perRow,
    rows,
    perPage: perRow * rows,
    listW: side ? Math.min(avail, perRow * entryW) : width,
    sideRows: Math.max(3, listMax - 8),
  };
}

/** Tokens pane: rows of the stream (the header takes one, the read-out under it one or three). */
export function tokenStreamRows(term: Term, tokenSelected: boolean): number {
  return Math.max(1, screenOf(term).body - 1 - (tokenSelected ? 3 : 1));
}

/**
 * Tokens a frame must carry for the Tokens pane to fill `rows` lines of `columns` either side of the anchor: every
 * token is at least one column wide.
 */
export function tokenSpan(term: Term): number {
  const scr = screenOf(term);
  return scr.columns * Math.max(1, scr.body);
}
