/** The frame around every pane: status bar, pane tabs, context hints (or the open prompt). */
import { Box, Text } from 'ink';
import type { FeedState } from '../../store/feeds.js';
import type { Frame } from '../../store/frame.js';
import { PANES, type Pane, type Prompt, type SourceInfo } from '../../store/app-store.js';
import { useView } from '../context.js';
import { fmtDuration, fmtInt, fmtNum, fmtPct, fmtSpeed } from '../format.js';
import { PANE_TITLES, hintsFor } from '../keys.js';

export function StatusBar({ source, feed, frame, width }: { source: SourceInfo; feed: FeedState; frame: Frame; width: number }) {
  const { theme } = useView();
  const state = feed.error
    ? '✖ error'
    : feed.seeking
      ? '… seeking'
      : feed.ended && source.kind !== 'replay'
        ? '■ ended'
        : source.kind === 'replay'
          ? feed.ended
            ? '■ end'
            : feed.playing
              ? '▶ playing'
              : '❚❚ paused'
          : feed.playing
            ? source.kind === 'live'
              ? '● live'
              : '● following'
            : '❚❚ frozen';
  const position =
    source.kind === 'replay' && feed.total !== null
      ? `token ${fmtInt(feed.position)} / ${fmtInt(feed.total)} (${fmtPct(feed.total > 0 ? feed.position / feed.total : 0, 0)})`
      : `${fmtInt(feed.position)} tokens`;
  const buffered = feed.buffered > 0 ? ` +${fmtInt(feed.buffered)} buffered` : '';
  const rate = frame.tokensPerSecond !== null ? `${fmtNum(frame.tokensPerSecond, 1)} tok/s` : '— tok/s';
  // A long trace path would push the numbers off a narrow screen: its file name is enough there.
  const label = width < 130 && source.label.includes('/') ? source.label.slice(source.label.lastIndexOf('/') + 1) : source.label;
  return (
    <Box width={width}>
      <Text wrap="truncate">
        <Text bold color={theme.accent}>
          moescope
        </Text>
        <Text> {source.kind} </Text>
        <Text bold>{label}</Text>
        <Text color={feed.error ? theme.error : feed.playing ? theme.ok : theme.warn}> {state}</Text>
        {source.kind === 'replay' ? <Text> {fmtSpeed(feed.speed)}</Text> : null}
        <Text> │ {position}{buffered}</Text>
        <Text> │ {rate}</Text>
        <Text> │ {fmtDuration(frame.elapsedMs)}</Text>
        {source.recording ? (
          <Text color={theme.error}>
            {' '}
            │ ● REC {source.recording}
          </Text>
        ) : null}
        {feed.error ? <Text color={theme.error}> │ {feed.error}</Text> : null}
      </Text>
    </Box>
  );
}

export function TabBar({ pane, frame, width }: { pane: Pane; frame: Frame; width: number }) {
  const { theme } = useView();
  const l = Math.min(frame.layer?.index ?? 0, frame.layerIds.length - 1);
  return (
    <Box width={width}>
      <Text wrap="truncate">
        {PANES.map((p, i) => {
          const title = p === 'warnings' && frame.activeWarnings > 0 ? `${PANE_TITLES[p]} (${frame.activeWarnings})` : PANE_TITLES[p];
          const on = p === pane;
          return (
            <Text key={p}>
              <Text inverse={on} bold={on} color={on ? theme.accent : p === 'warnings' && frame.activeWarnings > 0 ? theme.warn : undefined}>
                {` ${i + 1} ${title} `}
              </Text>
              <Text> </Text>
            </Text>
          );
        })}
        <Text color={theme.muted}>
          {' '}
          layer L{frame.layerIds[l]} · {frame.scope === 'window' ? `window ${fmtInt(frame.windowSize)} tok` : 'cumulative'} · {frame.layerIds.length}×
          {frame.experts} top-{frame.topK}
        </Text>
      </Text>
    </Box>
  );
}

export function HintBar({ pane, help, message, width }: { pane: Pane; help: boolean; message: string | null; width: number }) {
  const { theme } = useView();
  if (message) {
    return (
      <Box width={width}>
        <Text wrap="truncate" color={theme.warn}>
          {message}
        </Text>
      </Box>
    );
  }
  const hints = help ? [{ hintLabel: '? esc', short: 'close', label: '' }] : hintsFor(pane).map((b) => ({ ...b, short: b.shortIn?.[pane] ?? b.short }));
  return (
    <Box width={width}>
      <Text wrap="truncate">
        {hints.map((b, i) => (
          <Text key={i}>
            <Text bold color={theme.accent}>
              {b.hintLabel ?? b.label}
            </Text>
            <Text color={theme.muted}> {b.short} </Text>
            <Text> </Text>
          </Text>
        ))}
      </Text>
    </Box>
  );
}

export function PromptLine({ prompt, width }: { prompt: Prompt; width: number }) {
  const { theme } = useView();
  const label = prompt.kind === 'search' ? '/' : 'go to token (number or %): ';
  return (
    <Box width={width}>
      <Text wrap="truncate">
        <Text bold color={theme.accent}>
          {label}
        </Text>
        <Text>{prompt.text}</Text>
        <Text inverse> </Text>
        <Text color={theme.muted}> enter: {prompt.kind === 'search' ? 'find' : 'go'} · esc: cancel</Text>
      </Text>
    </Box>
  );
}
