/**
 * Layer detail: per-expert load bars with counts and shares, the layer's balance metrics (and, with logits, the
 * losses and router margin), the most co-activated expert pairs and the router-margin histogram.
 */
import { Box, Text } from 'ink';
import type { Frame, Histogram, LayerDetail } from '../../store/frame.js';
import { LAYER_SIDE_W, layerBarsOf, layerFlagRows } from '../../store/layout.js';
import { isZeroExpert } from '../../store/selectors.js';
import { ZERO_GLYPH } from '../heat-rows.js';
import { useTui, useView } from '../context.js';
import { fmtInt, fmtNum, fmtPct } from '../number-text.js';
import { bar } from '../glyphs.js';
import { levelOf } from '../scale.js';

export function LayerPane() {
  const { frame, expert, term } = useTui((s) => ({ frame: s.frame, expert: s.ui.expert, term: s.term }));
  const { theme } = useView();
  const width = term.columns;
  const d = frame.layer;
  if (!d) {
    return (
      <Box>
        <Text color={theme.muted}>No tokens yet — the layer view fills in as routing arrives.</Text>
      </Box>
    );
  }
  const m = d.metrics;
  // The layer's own E and K (layers of a model may differ); relLoad keeps the widest layer's E columns per layer.
  const E = frame.layerExperts[d.index]!;
  const K = frame.layerTopK[d.index]!;
  const stride = frame.experts;
  const L = frame.layerIds.length;
  const assignments = d.assignments;
  const g = layerBarsOf(frame, d.index, term);
  const { side, idW, barW, perRow, perPage: slots } = g;
  const listH = g.rows;
  const listW = g.listW;
  const page = Math.floor(Math.min(expert, E - 1) / slots);
  const first = page * slots;
  const lines: React.ReactNode[] = [];
  for (let r = 0; r < listH; r++) {
    const cells: React.ReactNode[] = [];
    for (let c = 0; c < perRow; c++) {
      const e = first + c * listH + r; // column-major: experts read down, then across
      if (e >= E) break;
      // A zero-computation expert: "z" after its id, its bar uncoloured (it is not on the real experts' scale).
      const zero = isZeroExpert(frame, d.index, e);
      cells.push(
        <Text key={c}>
          <Text inverse={e === expert}>{`e${e}${zero ? ZERO_GLYPH : ''}`.padStart(idW)}</Text>{' '}
          <Text
            color={zero ? theme.muted : theme.heatInk[levelOf(frame.relLoad[d.index * stride + e]!)]}
            dimColor={zero}
          >
            {bar(d.shareOfBusiest[e]!, barW)}
          </Text>{' '}
          {fmtInt(m.load[e]!).padStart(7)} {fmtPct(m.share[e]!).padStart(6)}
          {'  '}
        </Text>,
      );
    }
    lines.push(
      <Text key={r} wrap="truncate">
        {cells}
      </Text>,
    );
  }
  const pages = Math.ceil(E / slots);
  const scope = frame.scope === 'window' ? `window: last ${fmtInt(frame.windowSize)} tokens` : 'cumulative';
  return (
    <Box flexDirection="column" width={width}>
      <Text wrap="truncate">
        <Text bold color={theme.accent}>
          Layer L{m.layer}
        </Text>
        <Text color={theme.muted}>
          {' '}
          (MoE layer {d.index + 1} of {L}) · {scope} · {fmtInt(m.tokens)} tokens, {fmtInt(assignments)} assignments ({E}{' '}
          experts, top-{K})
        </Text>
      </Text>
      <Text wrap="truncate">
        CV <Text bold>{fmtNum(m.cv)}</Text> · MaxVio <Text bold>{fmtNum(m.maxVio)}</Text> · entropy{' '}
        <Text bold>{fmtNum(m.entropy, 3)}</Text> <Text color={theme.muted}>(1 = balanced)</Text> · dead{' '}
        <Text bold color={m.deadExperts > 0 ? theme.warn : undefined}>
          {m.deadExperts}/{frame.balancedExperts[d.index]}
        </Text>{' '}
        · top-{K} share {fmtPct(m.topNShare)} <Text color={theme.muted}>(uniform {fmtPct(d.uniformTopNShare)})</Text> ·
        90% of load on {Number.isFinite(m.coverage90) ? m.coverage90 : '—'} experts
      </Text>
      <LayerFlags frame={frame} d={d} />
      <LossLine frame={frame} d={d} />
      <Text wrap="truncate" color={theme.muted}>
        load per expert (bar: share relative to the busiest; colour: load ÷ uniform)
        {pages > 1
          ? ` · experts ${first}–${Math.min(E, first + slots) - 1} of ${E}, page ${page + 1}/${pages} (←→ moves)`
          : ''}
      </Text>
      <Box flexDirection={side ? 'row' : 'column'}>
        <Box flexDirection="column" width={listW} height={listH} flexShrink={0}>
          {lines}
        </Box>
        {side ? (
          <Box flexDirection="column" width={LAYER_SIDE_W} marginLeft={2}>
            <Coactivation d={d} frame={frame} rows={g.sideRows} />
            <Margins h={d.margins} hasLogits={frame.hasLogits} width={LAYER_SIDE_W} />
          </Box>
        ) : (
          <Box flexDirection="row" marginTop={1}>
            <Box flexDirection="column" width={Math.floor(width / 2)}>
              <Coactivation d={d} frame={frame} rows={5} />
            </Box>
            <Box flexDirection="column" width={width - Math.floor(width / 2)}>
              <Margins h={d.margins} hasLogits={frame.hasLogits} width={width - Math.floor(width / 2)} compact />
            </Box>
          </Box>
        )}
      </Box>
    </Box>
  );
}

/** The layer's flags on one line (layerFlagRows): weights not followed to the mixing, zero-computation experts. */
function LayerFlags({ frame, d }: { frame: Frame; d: LayerDetail }) {
  const { theme } = useView();
  if (!layerFlagRows(frame, d.index)) return null;
  const f = frame.fidelity;
  const unfollowed = f.unfollowed.find((u) => u.index === d.index);
  const z = f.zeroExperts[d.index];
  return (
    <Text wrap="truncate">
      {unfollowed ? (
        <>
          <Text color={theme.warn} bold>
            ⚠ weights not followed to the mixing
          </Text>
          <Text> ({unfollowed.note})</Text>
          <Text color={theme.muted}> — the selection is the model's, the weights unknown</Text>
        </>
      ) : null}
      {unfollowed && z ? ' · ' : ''}
      {z ? (
        <>
          <Text>
            {ZERO_GLYPH} zero-computation experts {z.ids.join(', ')} ({z.kind}): {fmtPct(d.metrics.zeroShare)} of slots
          </Text>
          <Text color={theme.muted}> · balance over the {frame.balancedExperts[d.index]} real experts</Text>
        </>
      ) : null}
    </Text>
  );
}

function LossLine({ frame, d }: { frame: Frame; d: LayerDetail }) {
  const { theme } = useView();
  const m = d.metrics;
  if (!frame.hasLogits) {
    return (
      <Text wrap="truncate" color={theme.muted}>
        losses, z-loss, token entropy and margins need router logits (record with --logits)
      </Text>
    );
  }
  if (m.hfAuxLoss === null) {
    return (
      <Text wrap="truncate" color={theme.muted}>
        losses, z-loss and token entropy are computed over the whole run: press c for cumulative
      </Text>
    );
  }
  return (
    <Text wrap="truncate">
      aux loss HF <Text bold>{fmtNum(m.hfAuxLoss, 3)}</Text>{' '}
      <Text color={theme.muted}>({frame.layerTopK[d.index]} at balance)</Text> · Switch{' '}
      <Text bold>{fmtNum(m.switchAuxLoss, 3)}</Text> · GShard {fmtNum(m.gshardAuxLoss, 3)} · seq{' '}
      {fmtNum(m.seqAuxLoss, 3)} · z-loss {fmtNum(m.zLoss, 2)} · token entropy {fmtNum(m.tokenEntropy, 3)} · margin{' '}
      {fmtNum(m.routerMargin, 3)}
    </Text>
  );
}

function Coactivation({ d, frame, rows }: { d: LayerDetail; frame: Frame; rows: number }) {
  const { theme } = useView();
  if (frame.layerTopK[d.index]! < 2)
    return <Text color={theme.muted}>co-activation: top-1 routing picks one expert per token</Text>;
  if (!d.coactivation) return <Text color={theme.muted}>co-activation: too many experts to count pairs</Text>;
  return (
    <Box flexDirection="column">
      <Text wrap="truncate">
        <Text bold>co-activation</Text>
        <Text color={theme.muted}> N(i∧j)/N(i), whole run · random {fmtNum(d.coactivationBaseline, 3)}</Text>
      </Text>
      {d.coactivation.slice(0, rows).map((p, i) => (
        <Text key={i} wrap="truncate">
          {`e${p.a} → e${p.b}`.padEnd(14)}
          <Text bold>{fmtNum(p.ratio, 3)}</Text>
          <Text color={theme.muted}> {fmtInt(p.together)} together</Text>
        </Text>
      ))}
      {d.coactivation.length === 0 ? <Text color={theme.muted}>no pairs yet</Text> : null}
    </Box>
  );
}

function Margins({
  h,
  hasLogits,
  width,
  compact = false,
}: {
  h: Histogram | null;
  hasLogits: boolean;
  width: number;
  compact?: boolean;
}) {
  const { theme } = useView();
  if (!hasLogits) return null;
  if (!h) return <Text color={theme.muted}>router margin: no tokens with logits yet</Text>;
  const HEIGHT = 4;
  const colW = Math.max(1, Math.min(2, Math.floor((width - 6) / h.counts.length)));
  const rows: string[] = [];
  for (let r = HEIGHT - 1; r >= 0; r--) {
    let s = '';
    for (const f of h.heights) {
      const eighths = Math.round(f * HEIGHT * 8);
      const here = Math.min(8, Math.max(0, eighths - r * 8));
      s += (here === 0 ? ' ' : ' ▁▂▃▄▅▆▇█'[here]!).repeat(colW);
    }
    rows.push(s);
  }
  const axisW = h.counts.length * colW;
  const axis = '0'.padEnd(Math.floor(axisW / 2)) + '0.5'.padEnd(axisW - Math.floor(axisW / 2) - 1) + '1';
  return (
    <Box flexDirection="column" marginTop={compact ? 0 : 1}>
      <Text wrap="truncate">
        <Text bold>router margin</Text>
        <Text color={theme.muted}>
          {' '}
          K-th − (K+1)-th score · {fmtInt(h.total)} tokens ({fmtInt(h.range.start)}–{fmtInt(h.range.end - 1)})
        </Text>
      </Text>
      {rows.map((s, i) => (
        <Text key={i} color={theme.heatInk[16]}>
          {s}
        </Text>
      ))}
      <Text color={theme.muted}>{axis}</Text>
    </Box>
  );
}
