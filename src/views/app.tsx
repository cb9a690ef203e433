/** The TUI's root: bars, the current pane (or the `?` overlay), key input. Reads the store; computes nothing. */
import { Box, useInput } from 'ink';
import { useStore } from 'zustand';
import type { TuiStore } from '../store/app-store.js';
import { StatusBar, TabBar, HintBar, PromptLine } from './components/Bars.js';
import { DevicesPane } from './components/DevicesPane.js';
import { HelpOverlay, TooSmall } from './components/HelpOverlay.js';
import { LayerPane } from './components/LayerPane.js';
import { Overview } from './components/Overview.js';
import { TokensPane } from './components/TokensPane.js';
import { WarningsPane } from './components/WarningsPane.js';
import { ViewCtx, type ViewContext } from './context.js';
import { handleKey } from './input.js';
import { keyName } from './keys.js';
import { MIN_COLUMNS, MIN_ROWS, screenOf } from './layout.js';

export function App({ store, view }: { store: TuiStore; view: ViewContext }) {
  const s = useStore(store);
  useInput((input, key) => {
    const name = keyName(input, key);
    if (name === null) return;
    const st = store.getState();
    if (screenOf(st.term.columns, st.term.rows).tooSmall) {
      if (name === 'q' || name === 'ctrl-c') st.actions.quit();
      return;
    }
    handleKey(name, st, view.layout);
  });
  const scr = screenOf(s.term.columns, s.term.rows);
  if (scr.tooSmall)
    return (
      <ViewCtx.Provider value={view}>
        <TooSmall columns={s.term.columns} rows={s.term.rows} needColumns={MIN_COLUMNS} needRows={MIN_ROWS} />
      </ViewCtx.Provider>
    );
  const { ui, frame } = s;
  const w = scr.columns;
  const h = scr.body;
  let pane: React.ReactNode;
  if (ui.help) pane = <HelpOverlay width={w} height={h} kind={s.source.kind} />;
  else if (ui.pane === 'overview')
    pane = <Overview frame={frame} layer={ui.layer} expert={ui.expert} zoom={ui.zoom} width={w} height={h} />;
  else if (ui.pane === 'layer') pane = <LayerPane frame={frame} expert={ui.expert} width={w} height={h} />;
  else if (ui.pane === 'tokens')
    pane = <TokensPane frame={frame} layer={ui.layer} token={ui.token} detail={ui.tokenDetail} query={ui.query} width={w} height={h} />;
  else if (ui.pane === 'warnings') pane = <WarningsPane frame={frame} selected={ui.warning} width={w} height={h} />;
  else pane = <DevicesPane frame={frame} width={w} height={h} />;
  return (
    <ViewCtx.Provider value={view}>
      <Box flexDirection="column" width={w} height={scr.rows}>
        <StatusBar source={s.source} feed={s.feed} frame={frame} width={w} />
        <TabBar pane={ui.pane} frame={frame} width={w} />
        <Box height={h} overflow="hidden">
          {pane}
        </Box>
        {ui.prompt ? <PromptLine prompt={ui.prompt} width={w} /> : <HintBar pane={ui.pane} help={ui.help} message={ui.message ?? s.feed.notice} width={w} />}
      </Box>
    </ViewCtx.Provider>
  );
}
