/** The frame around every pane: status bar, pane tabs, context hints (or the open prompt). */
import { Text } from 'ink';
import { useTui, useView } from '../context.js';
import { fmtDuration, fmtInt, fmtNum, fmtPct, fmtSpeed } from '../number-text.js';
import { fitHints, paneHints, tabSpans } from '../keys.js';

export function StatusBar() {
  const { source, feed, rate, elapsed, width } = useTui((s) => ({
    source: s.source,
    feed: s.feed,
    rate: s.frame.tokensPerSecond,
    elapsed: s.frame.elapsedMs,
    width: s.term.columns,
  }));
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
  const rateText = rate !== null ? `${fmtNum(rate, 1)} tok/s` : '— tok/s';
  // A long trace path would push the numbers off a narrow screen: its file name is enough there.
  const label =
    width < 130 && source.label.includes('/') ? source.label.slice(source.label.lastIndexOf('/') + 1) : source.label;
  return (
    <Text wrap="truncate">
      <Text bold color={theme.accent}>
        moescope
      </Text>
      <Text> {source.kind} </Text>
      <Text bold>{label}</Text>
      <Text color={feed.error ? theme.error : feed.playing ? theme.ok : theme.warn}> {state}</Text>
      {source.kind === 'replay' ? <Text> {fmtSpeed(feed.speed)}</Text> : null}
      <Text>
        {' '}
        │ {position}
        {buffered}
      </Text>
      <Text> │ {rateText}</Text>
      <Text> │ {fmtDuration(elapsed)}</Text>
      {source.recording ? <Text color={theme.error}> │ ● REC {source.recording}</Text> : null}
      {feed.error ? <Text color={theme.error}> │ {feed.error}</Text> : null}
    </Text>
  );
}

export function TabBar() {
  const { pane, active, layerId, scope, windowSize, layers, experts, topK, mixed } = useTui((s) => ({
    pane: s.ui.pane,
    active: s.frame.activeWarnings,
    layerId: s.frame.layerLabels[Math.min(s.ui.layer, s.frame.layerIds.length - 1)],
    scope: s.frame.scope,
    windowSize: s.frame.windowSize,
    layers: s.frame.layerIds.length,
    // The selected layer's own shape: layers of a model may differ in E and K.
    experts: s.frame.layerExperts[Math.min(s.ui.layer, s.frame.layerIds.length - 1)],
    topK: s.frame.layerTopK[Math.min(s.ui.layer, s.frame.layerIds.length - 1)],
    mixed: s.frame.layerExperts.some((e, l) => e !== s.frame.experts || s.frame.layerTopK[l] !== s.frame.topK),
  }));
  const { theme } = useView();
  return (
    <Text wrap="truncate">
      {tabSpans(active).map((t) => {
        const on = t.pane === pane;
        return (
          <Text key={t.pane}>
            <Text
              inverse={on}
              bold={on}
              color={on ? theme.accent : t.pane === 'warnings' && active > 0 ? theme.warn : undefined}
            >
              {t.label}
            </Text>{' '}
          </Text>
        );
      })}
      <Text color={theme.muted}>
        {' '}
        layer L{layerId} · {scope === 'window' ? `window ${fmtInt(windowSize)} tok` : 'cumulative'} · {layers}×{experts}{' '}
        top-{topK}
        {mixed ? ' here (layers differ)' : ''}
      </Text>
    </Text>
  );
}

export function HintBar() {
  const { pane, help, message, width } = useTui((s) => ({
    pane: s.ui.pane,
    help: s.ui.help,
    message: s.ui.message ?? s.feed.notice,
    width: s.term.columns,
  }));
  const { theme } = useView();
  if (message) {
    return (
      <Text wrap="truncate" color={theme.warn}>
        {message}
      </Text>
    );
  }
  const { shown, dropped } = fitHints(help ? [{ keys: '? esc', text: 'close' }] : paneHints(pane), width);
  return (
    <Text wrap="truncate">
      {shown.map((h, i) => (
        <Text key={i}>
          <Text bold color={theme.accent}>
            {h.keys}
          </Text>
          <Text color={theme.muted}> {h.text} </Text>{' '}
        </Text>
      ))}
      {dropped > 0 ? <Text color={theme.warn}>+{dropped} more: ?</Text> : null}
    </Text>
  );
}

export function PromptLine() {
  const prompt = useTui((s) => s.ui.prompt);
  const { theme } = useView();
  if (!prompt) return null;
  const label = prompt.kind === 'search' ? '/' : 'go to token (number or %): ';
  return (
    <Text wrap="truncate">
      <Text bold color={theme.accent}>
        {label}
      </Text>
      <Text>{prompt.text}</Text>
      <Text inverse> </Text>
      <Text color={theme.muted}> enter: {prompt.kind === 'search' ? 'find' : 'go'} · esc: cancel</Text>
    </Text>
  );
}
