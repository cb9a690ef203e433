/**
 * Devices: VRAM used / total per GPU with a sparkline (one compact line each, so 8–16 GPUs fit), host RSS, and with
 * a placement (--devices D or --plan FILE) the expert weights and token load on each device.
 */
import { Box, Text } from 'ink';
import type { Frame } from '../../store/frame.js';
import { useTui, useView } from '../context.js';
import { fmtBytes, fmtInt, fmtNum, fmtPct } from '../number-text.js';
import { bar, sparkline } from '../glyphs.js';

export function DevicesPane() {
  const { frame, width } = useTui((s) => ({ frame: s.frame, width: s.term.columns }));
  const { theme } = useView();
  const m = frame.memory;
  const sparkW = width >= 120 ? 30 : 16;
  const barW = width >= 120 ? 20 : 12;
  const interval =
    m.intervalMs !== null
      ? `sampled every ${fmtNum(m.intervalMs / 1000, 1)} s`
      : m.samples === 1
        ? 'one sample'
        : 'no samples';
  const d = frame.devices;
  return (
    <Box flexDirection="column" width={width}>
      <Text wrap="truncate">
        <Text bold>Memory</Text>
        <Text color={theme.muted}>
          {' '}
          · {interval}
          {m.samples > 1 ? ` · sparkline: last ${Math.min(sparkW, m.samples)} samples, 0 … total` : ''}
        </Text>
      </Text>
      {m.gpus === null ? (
        <Text color={theme.muted}>
          {m.samples === 0 ? 'no memory samples in this source' : 'no GPU: running on the CPU'}
        </Text>
      ) : (
        m.gpus.map((g, i) => (
          <Text key={g.index} wrap="truncate">
            {`GPU${g.index}`.padEnd(6)}
            <Text color={theme.muted}>{g.name.slice(0, 18).padEnd(19)}</Text>
            <Text color={g.usedShare > 0.9 ? theme.error : theme.accent}>{bar(g.usedShare, barW)}</Text>{' '}
            {`${fmtBytes(g.usedBytes)} / ${fmtBytes(g.totalBytes)}`.padEnd(22)}
            {fmtPct(g.usedShare, 0).padStart(4)}{' '}
            <Text color={theme.accent}>{sparkline(m.gpuHistory[i] ?? [], sparkW, g.totalBytes)}</Text>
            <Text color={theme.muted}>{g.utilization !== null ? ` util ${g.utilization.toFixed(0)}%` : ''}</Text>
          </Text>
        ))
      )}
      {m.hostRssBytes !== null ? (
        <Text wrap="truncate">
          {'host'.padEnd(6)}
          <Text color={theme.muted}>{'RSS (moescope)'.padEnd(19)}</Text>
          {fmtBytes(m.hostRssBytes).padEnd(12)}
          <Text color={theme.accent}>{sparkline(m.rssHistory, sparkW)}</Text>
          <Text color={theme.muted}>{m.ortBytes !== null ? ` · onnxruntime ${fmtBytes(m.ortBytes)}` : ''}</Text>
        </Text>
      ) : null}
      <Box marginTop={1}>
        <Text wrap="truncate">
          <Text bold>Placement</Text>
          <Text color={theme.muted}>
            {d
              ? ` · ${d.label} over ${d.devices} devices · token load over all layers, ${frame.scope === 'window' ? `last ${fmtInt(frame.windowSize)} tokens` : 'whole run'}`
              : ' · none given: --devices D (contiguous) or --plan FILE (moescope plan --json) shows expert weights and token load per device'}
          </Text>
        </Text>
      </Box>
      {d ? (
        <>
          {d.loads.map((x) => (
            <Text key={x.device} wrap="truncate">
              {`dev${x.device}`.padEnd(6)}
              {`${fmtNum(x.slots, Number.isInteger(x.slots) ? 0 : 1)} experts/layer`.padEnd(18)}
              <Text color={theme.muted}>weights </Text>
              {fmtBytes(x.weightBytes).padEnd(11)}
              <Text color={theme.muted}>load </Text>
              {fmtPct(x.loadShare).padStart(6)}{' '}
              <Text color={x.relLoad > 1.2 ? theme.warn : theme.accent}>{bar(x.relLoad / 2, barW)}</Text>
            </Text>
          ))}
          <Text wrap="truncate" color={theme.muted}>
            balancedness: SGLang {fmtNum(d.sglang, 3)} · vLLM {fmtNum(d.vllm, 3)} (1 = even) · load bar: full at twice
            the even share (1/{d.devices})
          </Text>
        </>
      ) : null}
      {frame.ranks ? <RanksSection frame={frame} width={width} /> : null}
    </Box>
  );
}

/** Multi-rank streams (`moescope listen`, merged traces): which rank's tokens go to which experts, and devices. */
function RanksSection({ frame, width }: { frame: Frame; width: number }) {
  const { theme } = useView();
  const rows = frame.ranks!;
  const layerId = frame.layerIds[frame.layer?.index ?? 0] ?? frame.layerIds[0];
  return (
    <>
      <Box marginTop={1}>
        <Text wrap="truncate">
          <Text bold>Ranks</Text>
          <Text color={theme.muted}>
            {` · ${rows.length} · whole run · layer L${layerId}: busiest expert, MaxVio of the rank's own tokens`}
            {frame.devices ? ' · load on each device, all layers' : ''}
          </Text>
        </Text>
      </Box>
      {rows.map((r) => (
        <Text key={r.rank} wrap="truncate">
          {`rank ${r.rank}`.padEnd(9)}
          {`${fmtInt(r.tokens)} tok`.padStart(13)}
          <Text color={theme.muted}> busiest </Text>
          {`e${r.busiest} ${fmtPct(r.busiestShare)}`.padEnd(12)}
          <Text color={theme.muted}>MaxVio </Text>
          <Text color={r.maxVio > 1.5 ? theme.warn : undefined}>{fmtNum(r.maxVio).padStart(6)}</Text>
          {r.deviceShares && width >= 60 ? (
            <Text color={theme.muted}>{'  ' + r.deviceShares.map((x, i) => `d${i} ${fmtPct(x, 0)}`).join(' ')}</Text>
          ) : null}
        </Text>
      ))}
    </>
  );
}
