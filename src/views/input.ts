/**
 * Key handling: a key name (keys.ts) and the state give store actions. Pane-specific movement uses the layout the
 * panes recorded while rendering (rows on screen, token positions), so "down" moves to what is visibly below.
 */
import type { TuiState } from '../store/app-store.js';
import type { LayoutFacts } from './context.js';
import { resolve } from './keys.js';
import { nextZoom } from './layout.js';

/** Parses a seek target: "1200" (a token) or "50%" of `total`. Null when not a number. */
export function parseSeek(text: string, total: number): number | null {
  const t = text.trim();
  const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(t);
  if (pct) return Math.round((Number(pct[1]) / 100) * total);
  if (/^\d+$/.test(t)) return Number(t);
  return null;
}

export function handleKey(name: string, s: TuiState, layout: LayoutFacts): void {
  const a = s.actions;
  const ui = s.ui;
  const frame = s.frame;

  if (ui.prompt) {
    const p = ui.prompt;
    if (name === 'escape') return a.closePrompt();
    if (name === 'enter') {
      a.closePrompt();
      if (p.kind === 'search') {
        a.search(p.text, 1);
        return;
      }
      const target = parseSeek(p.text, s.feed.total ?? 0);
      if (target === null) return a.setMessage(`not a token number or percentage: "${p.text}"`);
      return a.seek(target);
    }
    if (name === 'backspace') return a.editPrompt(p.text.slice(0, -1));
    if (name === 'space') return a.editPrompt(p.text + ' ');
    if (name.length === 1) return a.editPrompt(p.text + name);
    return;
  }

  const b = resolve(name, ui.pane);
  if (!b) return;
  if (ui.help && b.action !== 'help' && b.action !== 'back' && b.action !== 'quit') a.toggleHelp();
  const pane = ui.pane;
  const L = frame.layerIds.length;
  const tokenSel = ui.token ?? (frame.ring.end > frame.ring.start ? frame.ring.end - 1 : null);

  const moveToken = (d: number) => {
    if (frame.ring.end === frame.ring.start) return;
    const base = ui.token ?? frame.ring.end - (d < 0 ? 0 : 1);
    a.selectToken(Math.max(frame.ring.start, Math.min(frame.ring.end - 1, base + d)));
  };
  const moveTokenLine = (d: number) => {
    const grid = layout.tokenGrid;
    if (tokenSel === null || grid.length === 0) return;
    const row = grid.findIndex((line) => line.some((t) => t.index === tokenSel));
    if (row < 0) return moveToken(d);
    const col = grid[row]!.find((t) => t.index === tokenSel)!.col;
    const target = grid[row + d];
    if (!target) return moveToken(d > 0 ? grid[row]!.length : -grid[row]!.length);
    let best = target[0]!;
    for (const t of target) if (t.col <= col) best = t;
    a.selectToken(best.index);
  };

  switch (b.action) {
    case 'quit':
      return a.quit();
    case 'help':
      return a.toggleHelp();
    case 'pause':
      return a.togglePause();
    case 'slower':
      return a.slower();
    case 'faster':
      return a.faster();
    case 'stepBack':
      if (s.source.kind !== 'replay') return a.setMessage('stepping back needs a replay (moescope replay TRACE)');
      return a.step(-1);
    case 'stepForward':
      return a.step(1);
    case 'start':
      return a.seekStart();
    case 'end':
      return a.seekEnd();
    case 'seek':
      if (s.source.kind !== 'replay') return a.setMessage('seeking needs a replay (moescope replay TRACE)');
      return a.openPrompt('seek');
    case 'search':
      return a.openPrompt('search');
    case 'searchNext':
    case 'searchPrev':
      if (!ui.query) return a.setMessage('no search yet: press / to search token text');
      a.search(ui.query, b.action === 'searchNext' ? 1 : -1);
      return;
    case 'window':
      return a.windowKey();
    case 'cumulative':
      return a.setScope('run');
    case 'nextPane':
      return a.nextPane(1);
    case 'prevPane':
      return a.nextPane(-1);
    case 'pane1':
      return a.setPane('overview');
    case 'pane2':
      return a.setPane('layer');
    case 'pane3':
      return a.setPane('tokens');
    case 'pane4':
      return a.setPane('warnings');
    case 'pane5':
      return a.setPane('devices');
    case 'prevLayer':
      return a.selectLayer(ui.layer - 1);
    case 'nextLayer':
      return a.selectLayer(ui.layer + 1);
    case 'redraw':
      return a.redraw();
    case 'zoomIn':
    case 'zoomOut':
      return a.setZoom(nextZoom({ bin: layout.heatBin, fitBin: layout.heatFitBin }, b.action === 'zoomIn' ? 1 : -1));
    case 'back':
      if (ui.help) return a.toggleHelp();
      if (pane === 'tokens' && ui.tokenDetail) return a.setTokenDetail(false);
      if (pane === 'tokens' && ui.token !== null) return a.selectToken(null);
      if (pane !== 'overview') return a.setPane('overview');
      return;
    case 'open':
      if (pane === 'overview') return a.setPane('layer');
      if (pane === 'tokens') {
        if (ui.token === null) return moveToken(0);
        return a.setTokenDetail(true);
      }
      if (pane === 'warnings') {
        const w = frame.warnings[ui.warning];
        if (!w) return;
        a.selectLayer(w.layerIndex);
        if (w.expert !== null) a.selectExpert(w.expert);
        if (frame.ring.start <= w.firstToken && w.firstToken < frame.ring.end) {
          a.selectToken(w.firstToken);
          a.setPane('tokens');
        } else {
          a.setPane('layer');
          a.setMessage(`token ${w.firstToken} is no longer held; showing layer L${w.layer}`);
        }
      }
      return;
    case 'up':
    case 'down': {
      const d = b.action === 'up' ? -1 : 1;
      if (pane === 'overview') return a.selectLayer(ui.layer + d);
      if (pane === 'layer') return a.selectExpert(ui.expert + d);
      if (pane === 'tokens') return ui.tokenDetail ? a.selectLayer(ui.layer + d) : moveTokenLine(d);
      if (pane === 'warnings') return a.selectWarning(ui.warning + d);
      return;
    }
    case 'left':
    case 'right': {
      const d = b.action === 'left' ? -1 : 1;
      if (pane === 'overview') return a.selectExpert(clampBinStart(ui.expert, layout.heatBin) + d * layout.heatBin);
      if (pane === 'layer') return a.selectExpert(ui.expert + d * layout.barRows);
      if (pane === 'tokens') return moveToken(d);
      return;
    }
    case 'pageUp':
    case 'pageDown': {
      const d = b.action === 'pageUp' ? -1 : 1;
      if (pane === 'overview') return a.selectLayer(Math.max(0, Math.min(L - 1, ui.layer + d * Math.max(1, layout.heatRows - 1))));
      if (pane === 'warnings') return a.selectWarning(ui.warning + d * Math.max(1, layout.listRows - 1));
      if (pane === 'tokens') return moveTokenLine(d * Math.max(1, layout.tokenGrid.length - 1));
      if (pane === 'layer') return a.selectExpert(ui.expert + d * layout.barRows);
      return;
    }
  }
}

/** First expert of the column holding `e`. */
function clampBinStart(e: number, bin: number): number {
  return Math.floor(e / bin) * bin;
}
