/**
 * The TUI's root: bars, the current pane (or the `?` overlay), input. Each part reads its own slice of the store
 * (context.ts useTui), so a part re-renders only when its slice changes; nothing here computes a metric.
 */
import { Box, useInput, useStdout } from 'ink';
import { useContext, useEffect, useRef } from 'react';
import type { TuiStore } from '../store/app-store.js';
import { MIN_COLUMNS, MIN_ROWS, screenOf } from '../store/layout.js';
import { StatusBar, TabBar, HintBar, PromptLine } from './components/Bars.js';
import { DevicesPane } from './components/DevicesPane.js';
import { HelpOverlay, TooSmall } from './components/HelpOverlay.js';
import { LayerPane } from './components/LayerPane.js';
import { Overview } from './components/Overview.js';
import { TokensPane } from './components/TokensPane.js';
import { WarningsPane } from './components/WarningsPane.js';
import { StoreCtx, ViewCtx, useTui, useView, type ViewContext } from './context.js';
import { handleInput } from './input.js';
import { inputEvents } from './keys.js';

export function App({ store, view }: { store: TuiStore; view: ViewContext }) {
  return (
    <StoreCtx.Provider value={store}>
      <ViewCtx.Provider value={view}>
        <Root />
      </ViewCtx.Provider>
    </StoreCtx.Provider>
  );
}

/** Clears the terminal; Ink writes its whole frame again after it (useStdout().write). */
const CLEAR_SCREEN = '\x1b[H\x1b[2J';

function Root() {
  const store = useContext(StoreCtx)!;
  const { heat } = useView();
  const { pane, help, prompt, term, redraws } = useTui((s) => ({
    pane: s.ui.pane,
    help: s.ui.help,
    prompt: s.ui.prompt !== null,
    term: s.term,
    redraws: s.redraws,
  }));
  useInput((input, key) => handleInput(inputEvents(input, key), store.getState));
  // ctrl-L: Ink's own way to write outside its frame clears its lines, writes ours and draws the whole frame
  // again; the heatmap layer repaints after it. (A resize is run-tui's: the frame changes size.)
  const { write } = useStdout();
  const first = useRef(true);
  // biome-ignore lint/correctness/useExhaustiveDependencies: redraws is the trigger (ctrl-L), not read in the effect
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    heat.invalidate();
    write(CLEAR_SCREEN);
  }, [redraws, write, heat]);
  const scr = screenOf(term);
  if (scr.tooSmall)
    return <TooSmall columns={term.columns} rows={term.rows} needColumns={MIN_COLUMNS} needRows={MIN_ROWS} />;
  let body: React.ReactNode;
  if (help) body = <HelpOverlay width={scr.columns} height={scr.body} />;
  else if (pane === 'overview') body = <Overview />;
  else if (pane === 'layer') body = <LayerPane />;
  else if (pane === 'tokens') body = <TokensPane />;
  else if (pane === 'warnings') body = <WarningsPane />;
  else body = <DevicesPane />;
  return (
    <Box flexDirection="column" width={scr.columns} height={scr.frameRows}>
      <StatusBar />
      <TabBar />
      <Box height={scr.body} flexDirection="column" overflow="hidden">
        {body}
      </Box>
      {prompt ? <PromptLine /> : <HintBar />}
    </Box>
  );
}
