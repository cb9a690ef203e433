/**
 * A heatmap as inline SVG: one <rect class="cell"> per (row, column) with data-row / data-col attributes and a
 * <title> tooltip, labelled axes, and a viridis legend with the scale's unit and reference marks.
 */
import { THEME, viridis, viridisStops } from '../colour.js';
import { esc } from './escape.js';

export interface HeatmapSpec {
  /** Unique within the page (used for the gradient id and as the SVG's data-heatmap). */
  id: string;
  rowLabels: string[];
  /** Labels of the columns; only some are printed on the axis when there are many. */
  colLabels: string[];
  /** values[row][col]; NaN = no data (grey). A row shorter than the columns (a layer with fewer experts) ends there. */
  values: number[][];
  /** Colour scale maximum (values ≥ max are yellow); minimum is 0. */
  max: number;
  rowAxis: string;
  colAxis: string;
  /** Legend caption with the unit, e.g. "share of the layer's assignments (%)". */
  legend: string;
  /** How a value is printed in tooltips and on the legend. */
  format: (v: number) => string;
  /** Reference marks on the legend, e.g. the balanced value. */
  marks?: { value: number; label: string }[];
  /** Tooltip of a cell. */
  title: (row: number, col: number) => string;
  /** Extra data-* attributes of a cell. */
  attrs?: (row: number, col: number) => Record<string, string | number>;
  /** Largest drawing width in px (default 960). */
  maxWidth?: number;
}

const LABEL_W = 72;
const TOP = 8;

export function heatmapSvg(s: HeatmapSpec): string {
  const rows = s.rowLabels.length;
  const cols = s.colLabels.length;
  const cw = Math.max(3, Math.min(36, Math.floor((s.maxWidth ?? 960) / Math.max(1, cols))));
  const ch = Math.max(8, Math.min(24, Math.floor(640 / Math.max(1, rows))));
  const gridW = cw * cols;
  const gridH = ch * rows;
  const legendY = TOP + gridH + 60;
  const width = LABEL_W + Math.max(gridW, 480) + 16;
  const height = legendY + 56;
  const max = s.max > 0 ? s.max : 1;
  const out: string[] = [];
  out.push(
    `<svg class="heatmap" data-heatmap="${esc(s.id)}" data-rows="${rows}" data-cols="${cols}" xmlns="http://www.w3.org/2000/svg" ` +
      `width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(`${s.rowAxis} × ${s.colAxis} heatmap`)}">`,
  );
  out.push(`<defs><linearGradient id="grad-${esc(s.id)}" x1="0" x2="1" y1="0" y2="0">`);
  for (const [o, c] of viridisStops()) out.push(`<stop offset="${o}" stop-color="${c}"/>`);
  out.push('</linearGradient></defs>');
  // Row labels: every row when they fit, else every n-th.
  const rowStep = Math.ceil(11 / ch);
  for (let r = 0; r < rows; r += rowStep) {
    out.push(
      `<text class="axis" x="${LABEL_W - 6}" y="${TOP + r * ch + ch / 2 + 4}" text-anchor="end">${esc(s.rowLabels[r]!)}</text>`,
    );
  }
  out.push('<g class="cells">');
  for (let r = 0; r < rows; r++) {
    for (let c = 0, n = Math.min(cols, s.values[r]!.length); c < n; c++) {
      const v = s.values[r]![c]!;
      const fill = Number.isNaN(v) ? THEME.missing : viridis(v / max);
      const extra = s.attrs
        ? Object.entries(s.attrs(r, c))
            .map(([k, x]) => ` data-${k}="${esc(x)}"`)
            .join('')
        : '';
      out.push(
        `<rect class="cell" data-row="${r}" data-col="${c}" data-value="${Number.isNaN(v) ? '' : v}"${extra} ` +
          `x="${LABEL_W + c * cw}" y="${TOP + r * ch}" width="${cw}" height="${ch}" fill="${fill}">` +
          `<title>${esc(s.title(r, c))}</title></rect>`,
      );
    }
  }
  out.push('</g>');
  // Column labels: about every 26 px (room for three digits).
  const colStep = Math.max(1, Math.ceil(26 / cw));
  for (let c = 0; c < cols; c += colStep) {
    out.push(
      `<text class="axis" x="${LABEL_W + c * cw + cw / 2}" y="${TOP + gridH + 14}" text-anchor="middle">${esc(s.colLabels[c]!)}</text>`,
    );
  }
  out.push(
    `<text class="axis-title" x="${LABEL_W + gridW / 2}" y="${TOP + gridH + 32}" text-anchor="middle">${esc(s.colAxis)}</text>`,
  );
  out.push(
    `<text class="axis-title" x="12" y="${TOP + gridH / 2}" transform="rotate(-90 12 ${TOP + gridH / 2})" text-anchor="middle">${esc(s.rowAxis)}</text>`,
  );
  // Legend.
  const lw = 240;
  out.push(`<g class="legend" transform="translate(${LABEL_W},${legendY})">`);
  out.push(`<rect x="0" y="0" width="${lw}" height="10" fill="url(#grad-${esc(s.id)})"/>`);
  out.push(`<text class="axis" x="0" y="24">0</text>`);
  out.push(`<text class="axis" x="${lw}" y="24" text-anchor="end">≥ ${esc(s.format(max))}</text>`);
  for (const m of s.marks ?? []) {
    if (!(m.value >= 0 && m.value <= max)) continue;
    const x = (m.value / max) * lw;
    out.push(`<line x1="${x}" x2="${x}" y1="-3" y2="13" stroke="${THEME.text}" stroke-width="1.5"/>`);
    out.push(`<text class="axis" x="${x}" y="-6" text-anchor="middle">${esc(m.label)}</text>`);
  }
  out.push(`<text class="legend-title" x="0" y="40">${esc(s.legend)}</text>`);
  out.push('</g></svg>');
  return out.join('\n');
}
