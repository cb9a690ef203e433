/**
 * Screen geometry: the minimum terminal size, the frame's regions, and the heatmap's viewport (which layers and
 * which experts are on screen, how many experts share a column). Pure functions of sizes and the cursor.
 */

export const MIN_COLUMNS = 80;
export const MIN_ROWS = 24;

export interface Screen {
  columns: number;
  rows: number;
  /** Rows of the pane between the bars (status, tabs above; hints below). */
  body: number;
  tooSmall: boolean;
}

export function screenOf(columns: number, rows: number): Screen {
  const r = Math.max(1, rows);
  return {
    columns,
    rows: r,
    body: Math.max(0, r - 3),
    tooSmall: columns < MIN_COLUMNS || rows < MIN_ROWS,
  };
}

/** A window of `visible` items out of `total` keeping `cursor` in view, centred when possible. */
export function scrollWindow(total: number, visible: number, cursor: number): { first: number; count: number } {
  if (total <= visible) return { first: 0, count: total };
  const first = Math.max(0, Math.min(total - visible, cursor - Math.floor(visible / 2)));
  return { first, count: visible };
}

/** Widest a heatmap cell gets when there are few experts. */
const MAX_CELL_WIDTH = 12;

export interface HeatmapViewport {
  /** Experts per column. */
  bin: number;
  /** Terminal columns per heatmap column (> 1 when few experts leave room). */
  cellWidth: number;
  /** Experts per column that fits every expert in the width. */
  fitBin: number;
  /** First expert shown and columns shown. */
  firstExpert: number;
  columns: number;
  /** Column of the cursor among the shown ones. */
  cursorColumn: number;
  /** Layers shown. */
  firstLayer: number;
  layers: number;
}

/**
 * @param cells columns available for cells; @param rows rows available for layers; zoom = experts per column
 * requested (0 = fit the width).
 */
export function heatmapViewport(
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
  const cellWidth = bin === 1 && total <= width ? Math.max(1, Math.min(MAX_CELL_WIDTH, Math.floor(width / total))) : 1;
  return {
    bin,
    cellWidth,
    fitBin,
    firstExpert: h.first * bin,
    columns: h.count,
    cursorColumn: cursorBin - h.first,
    firstLayer: v.first,
    layers: v.count,
  };
}

/** Next zoom (experts per column) for + (dir 1) or − (dir −1), from the current viewport. */
export function nextZoom(v: Pick<HeatmapViewport, 'bin' | 'fitBin'>, dir: 1 | -1): number {
  if (dir > 0) return Math.max(1, Math.floor(v.bin / 2));
  const b = v.bin * 2;
  return b >= v.fitBin ? 0 : b;
}
