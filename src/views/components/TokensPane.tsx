/**
 * Token stream: the text as it was routed, each token coloured by its first-choice expert in the selected layer
 * (without colour: the expert as a subscript). A selected token shows its routing; enter opens it in every layer.
 * Lines are painted regions built here, so hundreds of coloured tokens cost Ink a few dozen markers.
 */
import { Box, Text } from 'ink';
import type { Frame, TokenDetail } from '../../store/frame.js';
import { streamTokens, type StreamToken } from '../../store/selectors.js';
import { useView, type ViewContext } from '../context.js';
import { fmtInt, fmtNum } from '../format.js';
import { textWidth, visibleToken } from '../glyphs.js';
import { scrollWindow } from '../layout.js';
import { SGR_DIM, SGR_INVERSE, SGR_RESET } from '../../core/palette.js';
import type { Theme } from '../theme.js';
import { Painted } from './Painted.js';

export interface TokensPaneProps {
  frame: Frame;
  layer: number;
  token: number | null;
  detail: boolean;
  query: string;
  width: number;
  height: number;
}

interface Item {
  index: number;
  text: string;
  width: number;
  expert: number;
  isPrompt: boolean;
  /** Column where it starts. */
  col: number;
  breakAfter: boolean;
}

interface Line {
  items: Item[];
  header: string | null;
}

const SUB = '₀₁₂₃₄₅₆₇₈₉';

function subscript(n: number): string {
  return String(n)
    .split('')
    .map((d) => SUB[Number(d)])
    .join('');
}

/** Wraps tokens into lines of `width` columns; a new sequence starts a new line under a header line. */
export function wrapTokens(tokens: StreamToken[], width: number, mono: boolean): Line[] {
  const lines: Line[] = [];
  let cur: Line | null = null;
  let col = 0;
  let seq: number | null = null;
  for (const t of tokens) {
    if (t.seq !== seq) {
      seq = t.seq;
      lines.push({ items: [], header: `── sequence ${t.seq}${t.tag ? ` · ${t.tag}` : ''} ──` });
      cur = null;
    }
    let text = visibleToken(t.text);
    if (mono) text += subscript(t.expert);
    let w = textWidth(text);
    if (w > width) {
      text = text.slice(0, Math.max(1, width - 1)) + '…';
      w = textWidth(text);
    }
    if (!cur || col + w > width) {
      cur = { items: [], header: null };
      lines.push(cur);
      col = 0;
    }
    const breakAfter = t.text.includes('\n');
    cur.items.push({ index: t.index, text, width: w, expert: t.expert, isPrompt: t.isPrompt, col, breakAfter });
    col += w;
    if (breakAfter) cur = null;
  }
  return lines;
}

function renderLine(line: Line, theme: Theme, experts: number, selected: number | null, query: string): { text: string; width: number } {
  if (line.header !== null) return { text: SGR_DIM + line.header + SGR_RESET, width: textWidth(line.header) };
  let s = '';
  let w = 0;
  const q = query.toLowerCase();
  for (const it of line.items) {
    const sel = it.index === selected;
    const match = q !== '' && it.text.toLowerCase().includes(q);
    s += theme.expertEscape(it.expert, experts);
    if (it.isPrompt) s += SGR_DIM;
    if (match) s += '\x1b[4m';
    if (sel) s += SGR_INVERSE;
    s += it.text + SGR_RESET;
    w += it.width;
  }
  return { text: s, width: w };
}

export function TokensPane({ frame, layer, token, detail, query, width, height }: TokensPaneProps) {
  const view = useView();
  const { theme } = view;
  const l = Math.min(layer, frame.layerIds.length - 1);
  const held = frame.ring.end - frame.ring.start;
  const header = (
    <Text wrap="truncate">
      <Text bold>Tokens</Text>
      <Text color={theme.muted}>
        {' '}
        · coloured by first-choice expert in layer L{frame.layerIds[l]} (&lt; &gt; to change) · {fmtInt(held)} recent tokens held
        {token === null ? ' · following the newest' : ` · token ${fmtInt(token)} selected`} · dim = prompt
      </Text>
    </Text>
  );
  if (detail && frame.token) {
    return (
      <Box flexDirection="column" width={width} height={height}>
        {header}
        <TokenRouting t={frame.token} frame={frame} layer={l} height={height - 1} />
      </Box>
    );
  }
  const compact = frame.token ? 3 : 1;
  const streamH = Math.max(1, height - 1 - compact);
  const lines = layoutStream(view, frame, l, token, query, width, streamH);
  return (
    <Box flexDirection="column" width={width} height={height}>
      {header}
      <Box flexDirection="column" height={streamH}>
        {lines}
      </Box>
      {frame.token ? (
        <CompactRouting t={frame.token} frame={frame} layer={l} />
      ) : (
        <Text color={theme.muted} wrap="truncate">
          {held === 0 ? 'waiting for tokens…' : '← → select a token · / search'}
        </Text>
      )}
    </Box>
  );
}

function layoutStream(view: ViewContext, frame: Frame, l: number, token: number | null, query: string, width: number, rows: number) {
  const { theme, layout } = view;
  const anchor = token ?? frame.ring.end - 1;
  const span = width * rows;
  const from = Math.max(frame.ring.start, anchor - span);
  const to = Math.min(frame.ring.end, anchor + span);
  const lines = wrapTokens(streamTokens(frame, from, to, l), width, theme.mode === 'none');
  let at = lines.length - 1;
  for (let i = 0; i < lines.length; i++) if (lines[i]!.items.some((it) => it.index === anchor)) at = i;
  const win =
    token === null
      ? { first: Math.max(0, lines.length - rows), count: Math.min(rows, lines.length) }
      : scrollWindow(lines.length, rows, at);
  const shown = lines.slice(win.first, win.first + win.count);
  layout.tokenGrid = shown.filter((x) => x.items.length > 0).map((x) => x.items.map((it) => ({ index: it.index, col: it.col })));
  return shown.map((line, i) => {
    const r = renderLine(line, theme, frame.experts, token, query);
    return <Painted key={i} id={`tok:${i}`} text={r.text} width={r.width} />;
  });
}

function routingText(t: TokenDetail, l: number): string {
  const r = t.layers[l]!;
  return r.experts.map((e, k) => `e${e} ${fmtNum(r.weights[k]!, 3)}`).join('  ');
}

function TokenHeading({ t, more = '' }: { t: TokenDetail; more?: string }) {
  const { theme } = useView();
  return (
    <Text wrap="truncate">
      <Text bold color={theme.accent}>
        token {fmtInt(t.index)} “{visibleToken(t.text)}”
      </Text>
      <Text color={theme.muted}>
        {' '}
        id {t.tokenId} · sequence {t.seq} position {t.pos} · {t.isPrompt ? 'prompt' : 'generated'}
        {t.tag ? ` · ${t.tag}` : ''}
        {more}
      </Text>
    </Text>
  );
}

function CompactRouting({ t, frame, layer }: { t: TokenDetail; frame: Frame; layer: number }) {
  const { theme } = useView();
  const r = t.layers[layer]!;
  return (
    <Box flexDirection="column">
      <TokenHeading t={t} />
      <Text wrap="truncate">
        L{r.layer}: {routingText(t, layer)}
        <Text color={theme.muted}>
          {' '}
          · margin {fmtNum(r.margin, 3)} · entropy {fmtNum(r.entropy, 3)}
          {frame.hasLogits ? '' : ' (no logits recorded)'}
        </Text>
      </Text>
      <Text color={theme.muted} wrap="truncate">
        enter: routing in all {frame.layerIds.length} layers · esc: follow the newest
      </Text>
    </Box>
  );
}

function TokenRouting({ t, frame, layer, height }: { t: TokenDetail; frame: Frame; layer: number; height: number }) {
  const { theme } = useView();
  const rows = Math.max(1, height - 3);
  const win = scrollWindow(t.layers.length, rows, layer);
  const K = frame.topK;
  return (
    <Box flexDirection="column">
      <TokenHeading t={t} more=" · routing in every layer" />
      <Text color={theme.muted} wrap="truncate">
        {'layer'.padEnd(7)}
        {Array.from({ length: K }, (_, k) => `expert ${k + 1}  weight`.padEnd(18)).join('')}
        {'margin'.padEnd(9)}entropy
      </Text>
      {t.layers.slice(win.first, win.first + win.count).map((r, i) => {
        const sel = win.first + i === layer;
        return (
          <Text key={i} wrap="truncate" inverse={sel}>
            {`${sel ? '▶' : ' '}L${r.layer}`.padEnd(7)}
            {r.experts.map((e, k) => (
              <Text key={k}>
                <Text color={theme.expertInk(e, frame.experts)}>{`e${e}`.padEnd(8)}</Text>
                {fmtNum(r.weights[k]!, 3).padEnd(10)}
              </Text>
            ))}
            {fmtNum(r.margin, 3).padEnd(9)}
            {fmtNum(r.entropy, 3)}
          </Text>
        );
      })}
      <Text color={theme.muted} wrap="truncate">
        ↑↓ layer · ← → previous / next token · esc: back to the stream
        {frame.hasLogits ? '' : ' · margin and entropy need router logits (record with --logits)'}
      </Text>
    </Box>
  );
}
