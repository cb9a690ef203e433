/**
 * Overview: MoE layers × experts, coloured by each expert's load relative to the uniform share, in the window or
 * over the whole run. The layout (which layers and experts, metric columns, row height) is the store's
 * (src/store/layout.ts); the heatmap lines are drawn by <Heatmap>, everything else is plain Ink.
 */
import { Box, Text } from 'ink';
import { useMemo } from 'react';
import type { Frame } from '../../store/frame.js';
import {
  cellEdge,
  overviewLayout,
  type HeatmapViewport,
  type OverviewLayout,
  type RowMetric,
} from '../../store/layout.js';
import { binLoad, binnedRelLoad, layerColumns, zeroColumns } from '../../store/selectors.js';
import { useTui, useView, type ViewContext } from '../context.js';
import { fmtInt, fmtNum, fmtPct, fmtTimes } from '../number-text.js';
import { SGR_BOLD, SGR_INVERSE, SGR_RESET } from '../../core/palette.js';
import { LEGEND_STOPS, levelOf } from '../scale.js';
import { GLYPH_RAMP } from '../theme.js';
import { ABSENT, ZERO, ZERO_GLYPH } from '../heat-rows.js';
import { Heatmap } from './Heatmap.js';

const METRIC_HEAD: Record<RowMetric, string> = { cv: '    CV', maxVio: ' MaxVio', entropy: ' entropy' };

export function Overview() {
  const { frame, layer, expert, zoom, term } = useTui((s) => ({
    frame: s.frame,
    layer: s.ui.layer,
    expert: s.ui.expert,
    zoom: s.ui.zoom,
    term: s.term,
  }));
  const view = useView();
  const { theme } = view;
  const lay = useMemo(() => overviewLayout(frame, term, { zoom, layer, expert }), [frame, term, zoom, layer, expert]);
  const rows = useMemo(() => heatLines(view, frame, lay, layer), [view, frame, lay, layer]);
  const { vp } = lay;
  const L = frame.layerIds.length;
  const E = frame.experts;
  const width = term.columns;
  const minE = Math.min(...frame.layerExperts);
  const scopeText =
    frame.scope === 'window'
      ? `window: last ${fmtInt(frame.windowSize)} tokens (${fmtInt(frame.range.end - frame.range.start)} in it)`
      : `cumulative: all ${fmtInt(frame.tokens)} tokens`;
  const layersText = vp.layers < L ? `layers ${vp.firstLayer + 1}–${vp.firstLayer + vp.layers} of ${L}` : `${L} layers`;
  const expertsText =
    vp.columns * vp.bin < E || vp.firstExpert > 0
      ? `experts ${vp.firstExpert}–${Math.min(E, vp.firstExpert + vp.columns * vp.bin) - 1} of ${E}`
      : minE < E
        ? `${minE}–${E} experts (each layer its own)`
        : `${E} experts`;
  const binText = vp.bin > 1 ? ` · ${vp.bin} experts/column (busiest shown)` : '';
  const dropped =
    lay.droppedMetrics.length > 0
      ? ` · ${lay.droppedMetrics.map((m) => METRIC_HEAD[m].trim()).join(', ')} columns need ${lay.allMetricsColumns} columns (below: the selected layer's)`
      : '';
  return (
    <Box flexDirection="column" width={width}>
      <Text wrap="truncate">
        <Text bold>Load per expert</Text>
        <Text color={theme.warn}>{dropped}</Text>
        <Text color={theme.muted}>
          {' '}
          · {layersText} × {expertsText}
          {binText} · {scopeText}
          {frame.tokens === 0 ? ' · waiting for the first tokens…' : ''}
        </Text>
      </Text>
      <Text wrap="truncate">
        {' '.repeat(lay.labelW)}
        {axisLine(vp)}
        {lay.metrics.length > 0 ? (
          <Text color={theme.muted}>{' ' + lay.metrics.map((m) => METRIC_HEAD[m]).join('')}</Text>
        ) : null}
      </Text>
      <Heatmap rows={rows} top={lay.heatTop} width={width} />
      <CursorInfo frame={frame} layer={layer} vp={vp} metricsFirst={lay.droppedMetrics.length > 0} />
      <Legend frame={frame} width={width} vp={vp} />
      <LatestWarning frame={frame} />
      <FidelityLines frame={frame} />
    </Box>
  );
}

/** The heatmap's lines: label, cells and the row's metrics, each layer `rowHeight` lines tall. */
function heatLines({ theme, heatRows }: ViewContext, frame: Frame, lay: OverviewLayout, layer: number): string[] {
  const { vp, labelW, rowHeight } = lay;
  const binned = new Float32Array(vp.columns);
  const levels = new Uint8Array(vp.columns);
  const zero = new Uint8Array(vp.columns);
  const lines: string[] = [];
  const blank = ' '.repeat(labelW);
  const mid = rowHeight >> 1;
  for (let r = 0; r < vp.layers; r++) {
    const l = vp.firstLayer + r;
    binnedRelLoad(frame, l, vp.firstExpert, vp.bin, vp.columns, binned);
    const own = layerColumns(frame, l, vp.firstExpert, vp.bin, vp.columns);
    zeroColumns(frame, l, vp.firstExpert, vp.bin, vp.columns, zero);
    for (let c = 0; c < vp.columns; c++) levels[c] = c >= own ? ABSENT : zero[c] ? ZERO : levelOf(binned[c]!);
    const selected = l === layer;
    const cells = heatRows.row(`r${r}`, levels, theme, selected ? vp.cursorColumn : -1, vp.span);
    const hasWarning = frame.warnings.some((w) => w.layerIndex === l && w.clearedAt === null);
    const label =
      (selected
        ? SGR_BOLD + theme.esc.accent + (theme.mode === 'none' ? SGR_INVERSE : '')
        : hasWarning
          ? theme.esc.warn
          : '') +
      (selected ? '▶' : hasWarning ? '!' : ' ') +
      `L${frame.layerLabels[l]}`.padStart(labelW - 2) +
      SGR_RESET +
      ' ';
    const metrics = lay.metrics.length > 0 ? theme.esc.muted + ' ' + rowMetrics(frame, l, lay.metrics) + SGR_RESET : '';
    for (let k = 0; k < rowHeight; k++) lines.push(k === mid ? label + cells + metrics : blank + cells);
  }
  return lines;
}

function rowMetrics(frame: Frame, l: number, metrics: RowMetric[]): string {
  let s = '';
  for (const m of metrics) {
    if (m === 'cv') s += fmtNum(frame.cv[l]).padStart(6);
    else if (m === 'maxVio') s += fmtNum(frame.maxVio[l]).padStart(7);
    else s += fmtNum(frame.entropy[l], 3).padStart(8);
  }
  return s;
}

/** Expert numbers every few columns, ▼ over the cursor's column. */
function axisLine(vp: HeatmapViewport): string {
  const width = vp.span;
  const chars = new Array<string>(width).fill(' ');
  const cx = (cellEdge(vp, vp.cursorColumn) + cellEdge(vp, vp.cursorColumn + 1)) >> 1;
  let nextFree = 0;
  for (let c = 0; c < vp.columns; c++) {
    const x = cellEdge(vp, c);
    const label = String(vp.firstExpert + c * vp.bin);
    // Labels two apart at least, and none under the cursor's ▼.
    if (x < nextFree || x + label.length > width || (cx >= x - 1 && cx <= x + label.length)) continue;
    for (let i = 0; i < label.length; i++) chars[x + i] = label[i]!;
    nextFree = x + label.length + 2;
  }
  if (cx < width) chars[cx] = '▼';
  return chars.join('');
}

/** The cell under the cursor; the layer's metrics come first when the rows have no room for them. */
function CursorInfo({
  frame,
  layer,
  vp,
  metricsFirst,
}: {
  frame: Frame;
  layer: number;
  vp: HeatmapViewport;
  metricsFirst: boolean;
}) {
  const { theme } = useView();
  const a = vp.firstExpert + vp.cursorColumn * vp.bin;
  const l = Math.min(layer, frame.layerIds.length - 1);
  const own = frame.layerExperts[l]!;
  const b = Math.min(own, a + vp.bin);
  if (a >= own) {
    return (
      <Text wrap="truncate">
        <Text bold color={theme.accent}>
          L{frame.layerLabels[l]}
        </Text>
        <Text color={theme.muted}>
          {' '}
          has {own} experts (top-{frame.layerTopK[l]}): no expert {a}
        </Text>
      </Text>
    );
  }
  const info = binLoad(frame, l, a, b);
  if (zeroColumns(frame, l, a, b - a, 1)[0]) {
    const z = frame.fidelity.zeroExperts[l]!;
    return (
      <Text wrap="truncate">
        <Text bold color={theme.accent}>
          L{frame.layerLabels[l]} {b - a > 1 ? `experts ${a}–${b - 1}` : `expert ${a}`}
        </Text>
        <Text> zero-computation ({z.kind})</Text>
        <Text color={theme.muted}>
          {' '}
          · {fmtInt(info.count)} assignments = {fmtPct(info.share, 2)} of the layer's slots · not in the balance
        </Text>
      </Text>
    );
  }
  const which = b - a > 1 ? `experts ${a}–${b - 1} (busiest ${info.busiest})` : `expert ${a}`;
  const metrics = `CV ${fmtNum(frame.cv[l])} · MaxVio ${fmtNum(frame.maxVio[l])} · entropy ${fmtNum(frame.entropy[l], 3)}`;
  const load = `load ${fmtTimes(info.busiestRel)} uniform · ${fmtInt(info.count)} assignments = ${fmtPct(info.share, 2)} of the layer`;
  return (
    <Text wrap="truncate">
      <Text bold color={theme.accent}>
        L{frame.layerLabels[l]} {which}
      </Text>
      {metricsFirst ? (
        <>
          <Text> {metrics} ·</Text>
          <Text color={theme.muted}> {load}</Text>
        </>
      ) : (
        <>
          <Text> {load}</Text>
          <Text color={theme.muted}> · {metrics}</Text>
        </>
      )}
    </Text>
  );
}

function Legend({ frame, width, vp }: { frame: Frame; width: number; vp: HeatmapViewport }) {
  const { theme } = useView();
  const zero = frame.fidelity.zeroMask ? ` · ${ZERO_GLYPH} zero-computation expert` : '';
  if (theme.mode === 'none') {
    return (
      <Text wrap="truncate" color={theme.muted}>
        load ÷ uniform share (1/{uniformOf(frame)}): "{GLYPH_RAMP[0]}" idle {GLYPH_RAMP[1]} &lt;½ {GLYPH_RAMP[2]} ½–2{' '}
        {GLYPH_RAMP[3]} 2–4 {GLYPH_RAMP[4]} ≥4 · ◆ cursor · · no tokens yet{zero}
      </Text>
    );
  }
  const head = `load ÷ uniform share (1/${uniformOf(frame)}), log scale `;
  const tail = vp.bin > 1 ? ' · busiest expert of each column' : '';
  return (
    <Text wrap="truncate">
      <Text color={theme.muted}>{head}</Text>
      {LEGEND_STOPS.map((s) => (
        <Text key={s.label}>
          <Text color={theme.heatInk[levelOf(s.rel)]}>██</Text> {s.label}{' '}
        </Text>
      ))}
      <Text color={theme.muted}>
        {zero}
        {width > head.length + 60 + zero.length ? tail : ''}
      </Text>
    </Text>
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
          {frame.detectorWindow > 0
            ? ` · rules checked over ${fmtInt(frame.detectorWindow)}-token windows`
            : ' · collapse detection off'}
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

/**
 * What the stream cannot vouch for, one line each (fidelityLines in src/store/layout.ts counts them): routers whose
 * weights the engine could not follow to the mixing — named, with why — and zero-computation experts with the share
 * of slots they take.
 */
function FidelityLines({ frame }: { frame: Frame }) {
  const { theme } = useView();
  const f = frame.fidelity;
  const zeroLayers = f.zeroExperts.flatMap((z, l) => (z ? [{ l, z }] : []));
  return (
    <>
      {f.unfollowed.length > 0 ? (
        <Text wrap="truncate">
          <Text color={theme.warn} bold>
            ⚠ weights not followed to the mixing
          </Text>
          <Text> {f.unfollowed.map((u) => `L${u.label}: ${u.note}`).join(' · ')}</Text>
          <Text color={theme.muted}> — the selection is the model's; its weights are unknown</Text>
        </Text>
      ) : null}
      {zeroLayers.length > 0 ? (
        <Text wrap="truncate">
          <Text bold>{ZERO_GLYPH}</Text>
          <Text>
            {' '}
            zero-computation experts ({[...new Set(zeroLayers.map((x) => x.z.kind))].join(', ')}):{' '}
            {zeroLayers.map(({ l }) => `L${frame.layerLabels[l]} ${fmtPct(frame.zeroShare[l]!)}`).join(', ')} of slots
          </Text>
          <Text color={theme.muted}> · balance (CV, MaxVio, entropy, dead) over the real experts</Text>
        </Text>
      ) : null}
    </>
  );
}

/** The E of the uniform share: the experts of every layer, or "E" when layers differ (each its own). */
function uniformOf(frame: Frame): string {
  return frame.layerExperts.some((e) => e !== frame.experts) ? 'E of its layer' : String(frame.experts);
}
