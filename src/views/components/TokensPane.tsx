/**
 * Token stream: the text as it was routed, each token coloured by its first-choice expert in the selected layer
 * (without colour: the expert as a subscript). A selected token shows its routing; enter opens it in every layer.
 * The lines are the store's (src/store/token-lines.ts), drawn as Ink text.
 */
import { Box, Text } from 'ink';
import type { Frame, TokenDetail, TokenLayerRouting } from '../../store/frame.js';
import { screenOf, scrollWindow, tokenStreamRows } from '../../store/layout.js';
import { tokenLines, type TokenLine } from '../../store/token-lines.js';
import { useTui, useView } from '../context.js';
import { fmtInt, fmtNum } from '../number-text.js';
import { visibleToken } from '../glyphs.js';
import type { Theme } from '../theme.js';

export function TokensPane() {
  const { frame, layer, token, detail, query, term, mono } = useTui((s) => ({
    frame: s.frame,
    layer: s.ui.layer,
    token: s.ui.token,
    detail: s.ui.tokenDetail,
    query: s.ui.query,
    term: s.term,
    mono: s.mono,
  }));
  const { theme } = useView();
  const width = term.columns;
  const l = Math.min(layer, frame.layerIds.length - 1);
  const held = frame.ring.end - frame.ring.start;
  const header = (
    <Text wrap="truncate">
      <Text bold>Tokens</Text>
      <Text color={theme.muted}>
        {' '}
        · coloured by first-choice expert in layer L{frame.layerLabels[l]} (&lt; &gt; to change) · {fmtInt(held)} recent
        tokens held
        {token === null ? ' · following the newest' : ` · token ${fmtInt(token)} selected`} · dim = prompt
      </Text>
    </Text>
  );
  if (detail && frame.token) {
    return (
      <Box flexDirection="column" width={width}>
        {header}
        <TokenRouting t={frame.token} frame={frame} layer={l} height={screenOf(term).body - 1} />
      </Box>
    );
  }
  const rows = tokenStreamRows(term, frame.token !== null);
  const lines = tokenLines(frame, width, rows, token, mono);
  return (
    <Box flexDirection="column" width={width}>
      {header}
      <Box flexDirection="column" height={rows}>
        {lines.map((line, i) => (
          <StreamLine
            key={i}
            line={line}
            theme={theme}
            experts={frame.layerExperts[l]!}
            selected={token}
            query={query}
          />
        ))}
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

function StreamLine({
  line,
  theme,
  experts,
  selected,
  query,
}: {
  line: TokenLine;
  theme: Theme;
  experts: number;
  selected: number | null;
  query: string;
}) {
  if (line.header !== null) return <Text dimColor>{line.header}</Text>;
  const q = query.toLowerCase();
  return (
    <Text wrap="truncate">
      {line.items.map((it) => (
        <Text
          key={it.index}
          color={theme.expertInk(it.expert, experts)}
          dimColor={it.isPrompt}
          underline={q !== '' && it.text.toLowerCase().includes(q)}
          inverse={it.index === selected}
        >
          {it.text}
        </Text>
      ))}
    </Text>
  );
}

/** What the debugger shows for a weight the engine could not follow to the mixing: no number (it is not known). */
const UNKNOWN_WEIGHT = '?';

function weightText(r: TokenLayerRouting, k: number): string {
  return r.weightsKnown ? fmtNum(r.weights[k]!, 3) : UNKNOWN_WEIGHT;
}

function routingText(t: TokenDetail, l: number): string {
  const r = t.layers[l]!;
  return (
    r.experts.map((e, k) => `e${e} ${weightText(r, k)}`).join('  ') +
    (r.weightsKnown ? '' : ' (weights not followed to the mixing)')
  );
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
        const E = frame.layerExperts[win.first + i]!;
        return (
          <Text key={i} wrap="truncate" inverse={sel}>
            {`${sel ? '▶' : ' '}L${r.layer}`.padEnd(7)}
            {r.experts.map((e, k) => (
              <Text key={k}>
                <Text color={theme.expertInk(e, E)}>{`e${e}`.padEnd(8)}</Text>
                {weightText(r, k).padEnd(10)}
              </Text>
            ))}
            {/* a layer of smaller top-k: its own experts only, the columns past them blank */}
            {' '.repeat(18 * (K - r.experts.length))}
            {fmtNum(r.margin, 3).padEnd(9)}
            {fmtNum(r.entropy, 3)}
          </Text>
        );
      })}
      <Text color={theme.muted} wrap="truncate">
        {t.layers.some((r) => !r.weightsKnown) ? `weight ${UNKNOWN_WEIGHT}: not followed to the mixing · ` : ''}↑↓ layer
        · ← → previous / next token · esc: back to the stream
        {frame.hasLogits ? '' : ' · margin and entropy need router logits (record with --logits)'}
      </Text>
    </Box>
  );
}
