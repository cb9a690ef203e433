/**
 * `moescope watch` on a terminal: EPLB load per layer × GPU (the heatmap SGLang users asked for, sglang#9825) and
 * balancedness over time, redrawn as intervals arrive. Draws WatchModel snapshots (src/store/watch.ts); keys:
 * c switches last interval / whole watch, q quits.
 */
import { useEffect, useState } from 'react';
import { Box, Text, render, useApp, useInput, useStdout } from 'ink';
import chalk from 'chalk';
import type { WatchModel, WatchSnapshot, WatchLoads } from '../store/watch.js';
import { sanitizeLine } from '../core/sanitize.js';
import { detectColorMode, makeTheme, type Theme } from './theme.js';
import { levelOf } from './scale.js';
import { sparkline } from './glyphs.js';

export interface WatchTuiOptions {
  model: WatchModel;
  /** Shown in the title: the metrics page. */
  label: string;
  intervalS: number;
  color?: boolean;
}

const ENTER_ALT = '\x1b[?1049h\x1b[?7l\x1b[H\x1b[2J\x1b[?25l';
const LEAVE_ALT = '\x1b[0m\x1b[?25h\x1b[?7h\x1b[?1049l';
const CHALK_LEVEL = { none: 1, ansi256: 2, truecolor: 3 } as const;

function Heatmap({
  loads,
  snap,
  theme,
  width,
}: {
  loads: WatchLoads;
  snap: WatchSnapshot;
  theme: Theme;
  width: number;
}) {
  const labelW = Math.max(...snap.layers.map((l) => `L${l}`.length)) + 1;
  const cell = Math.max(1, Math.min(6, Math.floor((width - labelW - 16) / snap.gpus)));
  const shown = Math.min(snap.gpus, Math.floor((width - labelW - 16) / cell));
  return (
    <Box flexDirection="column">
      <Text>
        {' '.repeat(labelW)}
        {Array.from({ length: shown }, (_, g) => String(g).padEnd(cell).slice(0, cell)).join('')}
        {shown < snap.gpus ? '…' : ''} balancedness
      </Text>
      {snap.layers.map((layer, l) => (
        <Text key={layer}>
          {`L${layer}`.padEnd(labelW)}
          {Array.from({ length: shown }, (_, g) => {
            const lv = levelOf(loads.relative[l]![g]!);
            return (
              <Text key={g} color={theme.heatInk[lv]}>
                {theme.heatGlyph[lv]!.repeat(cell)}
              </Text>
            );
          })}
          {shown < snap.gpus ? '…' : ''} {loads.perLayer[l]!.toFixed(3)}
        </Text>
      ))}
    </Box>
  );
}

function WatchApp({
  model,
  label,
  intervalS,
  theme,
}: {
  model: WatchModel;
  label: string;
  intervalS: number;
  theme: Theme;
}) {
  const { exit } = useApp();
  const { stdout } = useStdout();
  const [snap, setSnap] = useState<WatchSnapshot>(model.snapshot());
  const [scope, setScope] = useState<'last' | 'total'>('last');
  useEffect(() => {
    let seen = model.version;
    const t = setInterval(() => {
      if (model.version !== seen) {
        seen = model.version;
        setSnap(model.snapshot());
      }
    }, 100);
    return () => clearInterval(t);
  }, [model]);
  useInput((input, key) => {
    if (key.ctrl && input === 'c') return exit();
    // Keys typed quickly can arrive in one read: act on each.
    for (const ch of input) {
      if (ch === 'q') return exit();
      if (ch === 'c') setScope((s) => (s === 'last' ? 'total' : 'last'));
    }
  });
  const width = stdout.columns || 80;
  const loads = scope === 'last' ? snap.last : snap.total;
  const state = snap.error ? '✖ failed' : snap.ended ? '■ ended' : '● live';
  return (
    <Box flexDirection="column">
      <Text>
        <Text bold>moescope watch {sanitizeLine(label)}</Text>{' '}
        <Text color={snap.error ? theme.error : theme.accent}>{state}</Text> │ {snap.intervals} intervals │{' '}
        {snap.layers.length} layers × {snap.gpus} GPUs │ every {intervalS} s
      </Text>
      <Text> </Text>
      <Text bold>
        Load per GPU ÷ even share · {scope === 'last' ? 'last interval' : 'whole watch'}
        {loads ? ` · ${Math.round(loads.assignments).toLocaleString('en-US')} assignments` : ''}
      </Text>
      {loads ? (
        <Heatmap loads={loads} snap={snap} theme={theme} width={width} />
      ) : (
        <Text color={theme.muted}>waiting for the first interval…</Text>
      )}
      <Text> </Text>
      <Text bold>Balancedness over time (SGLang: mean over layers of (mean + 1e-5) / (max + 1e-5))</Text>
      <Text>
        <Text color={theme.accent}>
          {sparkline(snap.history, Math.max(10, Math.min(snap.history.length, width - 24)), 1)}
        </Text>
        {snap.history.length ? ` now ${snap.history[snap.history.length - 1]!.toFixed(3)}` : ' –'}
        {snap.serverMean !== null ? ` · server ${snap.serverMean.toFixed(3)}` : ''}
      </Text>
      {snap.error ? <Text color={theme.error}>{sanitizeLine(snap.error)}</Text> : null}
      <Text> </Text>
      <Text color={theme.muted}>q quit c last interval / whole watch</Text>
    </Box>
  );
}

/** Runs until the user quits (the stream ending does not close it). */
export async function runWatchTui(o: WatchTuiOptions): Promise<void> {
  process.env.NODE_ENV ??= 'production';
  const mode = detectColorMode({ color: o.color });
  const previous = chalk.level;
  chalk.level = CHALK_LEVEL[mode];
  const theme = makeTheme(mode);
  const restore = () => process.stdout.write(LEAVE_ALT);
  process.stdout.write(ENTER_ALT);
  process.once('exit', restore);
  try {
    const app = render(<WatchApp model={o.model} label={o.label} intervalS={o.intervalS} theme={theme} />, {
      exitOnCtrlC: false,
      patchConsole: false,
    });
    await app.waitUntilExit();
  } finally {
    process.off('exit', restore);
    restore();
    chalk.level = previous;
  }
}
