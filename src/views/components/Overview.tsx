/**
 * Overview: MoE layers × experts, coloured by each expert's load relative to the uniform share, in the window or
 * over the whole run. Heatmap rows are painted regions (paint.ts) built from cached strings (heat-rows.ts);
 * the rest is a handful of <Text> nodes.
 */
import { Box, Text } from 'ink';
import type { Frame } from '../../store/frame.js';
import { binLoad, binnedRelLoad } from '../../store/selectors.js';
import { useView } from '../context.js';
import { fmtInt, fmtNum, fmtPct, fmtTimes } from '../format.js';
import { heatmapViewport, type HeatmapViewport } from '../layout.js';
import { SGR_BOLD, SGR_INVERSE, SGR_RESET } from '../../core/palette.js';
import { LEGEND_STOPS, levelOf } from '../scale.js';
import { GLYPH_RAMP } from '../theme.js';
import { Painted } from './Painted.js';

export interface OverviewProps {
  frame: Frame;
  layer: number;
  expert: number;
  zoom: number;
  width: number;
  height: number;
}

/** Lines above and below the heatmap rows: title, axis / cursor info, legend, latest warning. */
const CHROME_ROWS = 5;
const MAX_ROW_HEIGHT = 3;
/** " CV MaxVio entropy" beside each row: 1 + 5 + 1 + 6 + 1 + 7 columns. */
const FULL_METRICS_W = 21;

export function overviewGeometry(frame: Frame, width: number, height: number, zoom: number, layer: number, expert: number) {
  const labelW = Math.max(...frame.layerIds.map((l) => `L${l}`.length)) + 2;
  const metricsW = width >= 120 ? FULL_METRICS_W : width >= 96 ? 7 : 0;
  const cells = Math.max(4, width - labelW - metricsW - 1);
  const rows = Math.max(1, height - CHROME_ROWS);
  const vp = heatmapViewport(frame.experts, frame.layerIds.length, cells, rows, zoom, expert, layer);
  // Few layers: taller rows (up to 3 lines each) so a small model's heatmap is not a thin strip.
  const rowHeight = Math.max(1, Math.min(MAX_ROW_HEIGHT, Math.floor(rows / Math.max(1, vp.layers))));
  return { labelW, metricsW, cells, rows, vp, rowHeight };
}

export function Overview({ frame, layer, expert, zoom, width, height }: OverviewProps) {
  const { theme, heatRows, layout } = useView();
  const { labelW, metricsW, vp, rowHeight } = overviewGeometry(frame, width, height, zoom, layer, expert);
  layout.heatRows = vp.layers;
  layout.heatBin = vp.bin;
  layout.heatFitBin = vp.fitBin;
  const L = frame.layerIds.length;
  const E = frame.experts;
  const binned = new Float32Array(vp.columns);
  const levels = new Uint8Array(vp.columns);
  const rows: React.ReactNode[] = [];
  for (let r = 0; r < vp.layers; r++) {
    const l = vp.firstLayer + r;
    binnedRelLoad(frame, l, vp.firstExpert, vp.bin, vp.columns, binned);
    for (let c = 0; c < vp.columns; c++) levels[c] = levelOf(binned[c]!);
    const selected = l === layer;
    const text = heatRows.row(`r${r}`, levels, theme, selected ? vp.cursorColumn : -1, vp.cellWidth);
    const label = `L${frame.layerIds[l]}`.padStart(labelW - 2);
    const hasWarning = frame.warnings.some((w) => w.layerIndex === l && w.clearedAt === null);
    const mid = rowHeight >> 1;
    const cellsW = vp.columns * vp.cellWidth;
    // The whole row — label, cells, metrics — is one painted region: Ink handles 4 characters per row.
    const labelOn =
      (selected ? SGR_BOLD + theme.esc.accent + (theme.mode === 'none' ? SGR_INVERSE : '') : hasWarning ? theme.esc.warn : '') +
      (selected ? '▶' : hasWarning ? '!' : ' ') +
      label +
      SGR_RESET +
      ' ';
    const blank = ' '.repeat(labelW);
    const metrics = metricsW > 0 ? theme.esc.muted + rowMetrics(frame, l, metricsW) + SGR_RESET : '';
    for (let k = 0; k < rowHeight; k++) {
      const labelled = k === mid;
      const line = (labelled ? labelOn : blank) + text + (labelled ? metrics : '');
      rows.push(<Painted key={`${r}:${k}`} id={`heat:${r}:${k}`} text={line} width={labelW + cellsW + (labelled ? metricsW : 0)} />);
    }
  }
  const scopeText =
    frame.scope === 'window'
      ? `window: last ${fmtInt(frame.windowSize)} tokens (${fmtInt(frame.range.end - frame.range.start)} in it)`
      : `cumulative: all ${fmtInt(frame.tokens)} tokens`;
  const layersText = vp.layers < L ? `layers ${vp.firstLayer + 1}–${vp.firstLayer + vp.layers} of ${L}` : `${L} layers`;
  const expertsText =
    vp.columns * vp.bin < E || vp.firstExpert > 0
      ? `experts ${vp.firstExpert}–${Math.min(E, vp.firstExpert + vp.columns * vp.bin) - 1} of ${E}`
      : `${E} experts`;
  const binText = vp.bin > 1 ? ` · ${vp.bin} experts/column (busiest shown)` : '';
  return (
    <Box flexDirection="column" width={width} height={height}>
      <Text wrap="truncate">
        <Text bold>Load per expert</Text>
        <Text color={theme.muted}>
          {' '}
          · {layersText} × {expertsText}
          {binText} · {scopeText}
        </Text>
      </Text>
      <Text wrap="truncate">
        {' '.repeat(labelW)}
        {axisLine(vp)}
        {metricsW >= FULL_METRICS_W ? <Text color={theme.muted}>{'    CV MaxVio entropy'}</Text> : metricsW > 0 ? <Text color={theme.muted}>{'     CV'}</Text> : null}
      </Text>
      {rows}
      {frame.tokens === 0 ? <Text color={theme.muted}>waiting for the first tokens…</Text> : null}
      <Box flexGrow={1} />
      <CursorInfo frame={frame} layer={layer} vp={vp} />
      <Legend frame={frame} width={width} vp={vp} />
      <LatestWarning frame={frame} />
    </Box>
  );
}

function rowMetrics(frame: Frame, l: number, w: number): string {
  if (w >= FULL_METRICS_W) return ` ${fmtNum(frame.cv[l]).padStart(5)} ${fmtNum(frame.maxVio[l]).padStart(6)} ${fmtNum(frame.entropy[l], 3).padStart(7)}`;
  return ` ${fmtNum(frame.cv[l]).padStart(6)}`;
}

/** Expert numbers every few columns, ▼ over the cursor's column. */
function axisLine(vp: HeatmapViewport): string {
  const width = vp.columns * vp.cellWidth;
  const chars = new Array<string>(width).fill(' ');
  const step = Math.max(1, Math.ceil(8 / vp.cellWidth));
  for (let c = 0; c < vp.columns; c += step) {
    const label = String(vp.firstExpert + c * vp.bin);
    const x = c * vp.cellWidth;
    if (x + label.length > width) break;
    for (let i = 0; i < label.length; i++) chars[x + i] = label[i]!;
  }
  const cx = vp.cursorColumn * vp.cellWidth + (vp.cellWidth >> 1);
  if (cx < width) chars[cx] = '▼';
  return chars.join('');
}

function CursorInfo({ frame, layer, vp }: { frame: Frame; layer: number; vp: HeatmapViewport }) {
  const { theme } = useView();
  const a = vp.firstExpert + vp.cursorColumn * vp.bin;
  const b = Math.min(frame.experts, a + vp.bin);
  const l = Math.min(layer, frame.layerIds.length - 1);
  const info = binLoad(frame, l, a, b);
  const which = b - a > 1 ? `experts ${a}–${b - 1} (busiest ${info.busiest})` : `expert ${a}`;
  return (
    <Text wrap="truncate">
      <Text bold color={theme.accent}>
        L{frame.layerIds[l]} {which}
      </Text>
      <Text>
        {' '}
        load {fmtTimes(info.busiestRel)} uniform · {fmtInt(info.count)} assignments = {fmtPct(info.share, 2)} of the layer
      </Text>
      <Text color={theme.muted}>
        {' '}
        · CV {fmtNum(frame.cv[l])} · MaxVio {fmtNum(frame.maxVio[l])} · entropy {fmtNum(frame.entropy[l], 3)}
      </Text>
    </Text>
  );
}

function Legend({ frame, width, vp }: { frame: Frame; width: number; vp: HeatmapViewport }) {
  const { theme } = useView();
  if (theme.mode === 'none') {
    return (
      <Text wrap="truncate" color={theme.muted}>
        load ÷ uniform share (1/{frame.experts}): "{GLYPH_RAMP[0]}" idle {GLYPH_RAMP[1]} &lt;½ {GLYPH_RAMP[2]} ½–2 {GLYPH_RAMP[3]} 2–4{' '}
        {GLYPH_RAMP[4]} ≥4 · ◆ cursor · · no tokens yet
      </Text>
    );
  }
  let swatches = '';
  let w = 0;
  for (const s of LEGEND_STOPS) {
    const lv = levelOf(s.rel);
    swatches += `${theme.heatEscape[lv]}██${SGR_RESET} ${s.label} `;
    w += 3 + s.label.length + 1;
  }
  const head = `load ÷ uniform share (1/${frame.experts}), log scale `;
  const tail = ` ${vp.bin > 1 ? '· busiest expert of each column' : ''}`;
  return (
    <Box height={1}>
      <Text color={theme.muted}>{head}</Text>
      <Painted id="legend" text={swatches} width={w} />
      <Text color={theme.muted}>{width > head.length + w + tail.length ? tail : ''}</Text>
    </Box>
  );
}

function LatestWarning({ frame }: { frame: Frame }) {
  const { theme } = useView();
  const w = frame.warnings.find((x) => x.clearedAt === null) ?? null;
  if (!w) {
    return (
      <Text wrap="truncate" color={theme.ok}>
        ✓ no active collapse warnings{frame.warnings.length > 0 ? ` (${frame.warnings.length} cleared)` : ''}
        <Text color={theme.muted}>
          {frame.detectorWindow > 0 ? ` · rules checked over ${fmtInt(frame.detectorWindow)}-token windows` : ' · collapse detection off'}
        </Text>
      </Text>
    );
  }
  return (
    <Text wrap="truncate">
      <Text color={theme.warn} bold>
        ⚠ {frame.activeWarnings} active
      </Text>
      <Text> · {w.message}</Text>
      <Text color={theme.muted}> · at token {fmtInt(w.firstToken)} · 4 for all</Text>
    </Text>
  );
}
