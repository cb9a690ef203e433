/** Collapse warnings from src/stats, newest first: rule, layer, expert, value against threshold, token. */
import { Box, Text } from 'ink';
import { scrollWindow, warningListRows } from '../../store/layout.js';
import { useTui, useView } from '../context.js';
import { fmtInt, fmtNum, fmtPct } from '../number-text.js';

function fmtValue(rule: string, v: number): string {
  return rule === 'hot-expert' ? fmtPct(v) : rule === 'dead-expert' ? fmtInt(v) : fmtNum(v, 3);
}

export function WarningsPane() {
  const { frame, warning, term } = useTui((s) => ({ frame: s.frame, warning: s.ui.warning, term: s.term }));
  const { theme } = useView();
  const list = frame.warnings; // newest first
  const rows = warningListRows(term);
  // ui.warning counts from the oldest (the list only grows), so the cursor stays on its warning.
  const selected = list.length === 0 ? -1 : list.length - 1 - Math.min(list.length - 1, warning ?? list.length - 1);
  const win = scrollWindow(list.length, rows, Math.max(0, selected));
  // Wide enough for a label with a role ("L12 attn").
  const layerW = Math.max(7, ...frame.layerLabels.map((x) => x.length + 3));
  return (
    <Box flexDirection="column" width={term.columns}>
      <Text wrap="truncate">
        <Text bold>Collapse warnings</Text>
        <Text color={theme.muted}>
          {' '}
          · {frame.activeWarnings} active, {list.length - frame.activeWarnings} cleared
          {frame.suppressedWarnings > 0 ? `, ${fmtInt(frame.suppressedWarnings)} more not kept` : ''} · newest first
          {frame.detectorWindow > 0
            ? ` · rules checked over ${fmtInt(frame.detectorWindow)}-token windows`
            : ' · detection off'}
        </Text>
      </Text>
      <Text color={theme.muted} wrap="truncate">
        {'  token'.padEnd(10)}
        {'rule'.padEnd(13)}
        {'layer'.padEnd(layerW)}
        {'expert'.padEnd(8)}
        {'value'.padEnd(9)}
        {'limit'.padEnd(9)}
        {'status'.padEnd(18)}message
      </Text>
      <Box flexDirection="column" height={rows}>
        {list.length === 0 ? (
          <Text color={theme.ok}>
            ✓ no warnings
            {frame.tokens < frame.detectorWindow
              ? ` yet (rules start once ${fmtInt(frame.detectorWindow)} tokens have arrived)`
              : ''}
          </Text>
        ) : null}
        {list.slice(win.first, win.first + win.count).map((w, i) => {
          const sel = win.first + i === selected;
          const active = w.clearedAt === null;
          return (
            <Text key={i} wrap="truncate" inverse={sel}>
              {(sel ? '▶ ' : '  ') + fmtInt(w.firstToken).padEnd(8)}
              <Text color={active ? theme.warn : theme.muted}>{w.rule.padEnd(13)}</Text>
              {`L${frame.layerLabels[w.layerIndex] ?? w.layer}`.padEnd(layerW)}
              {(w.expert === null ? '—' : `e${w.expert}`).padEnd(8)}
              {fmtValue(w.rule, w.value).padEnd(9)}
              {fmtValue(w.rule, w.threshold).padEnd(9)}
              <Text color={active ? theme.warn : theme.muted}>
                {(active ? 'active' : `cleared @${fmtInt(w.clearedAt!)}`).padEnd(18)}
              </Text>
              <Text color={theme.muted}>{w.message}</Text>
            </Text>
          );
        })}
      </Box>
      <Text color={theme.muted} wrap="truncate">
        enter: show the token where it fired (Tokens) and its layer · definitions: docs/metrics.md § Collapse detection
      </Text>
    </Box>
  );
}
