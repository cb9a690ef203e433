/**
 * Input: key names (keys.ts) and mouse reports become store actions. Movement uses the store's layout functions
 * (src/store/layout.ts, token-lines.ts) — the same numbers the panes draw with — so "down" moves to what is
 * visibly below and a click lands on what is under the pointer.
 */
import type { TuiState } from '../store/app-store.js';
import {
  cellEdge,
  layerBarsOf,
  layerFlagRows,
  nextZoom,
  overviewLayout,
  screenOf,
  scrollWindow,
  tokenStreamRows,
  warningListRows,
} from '../store/layout.js';
import { tokenLines } from '../store/token-lines.js';
import { resolve, tabSpans, type InputEvent } from './keys.js';

/** Parses a seek target: "1200" (a token) or "50%" of `total`. Null when not a number. */
function parseSeek(text: string, total: number): number | null {
  const t = text.trim();
  const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(t);
  if (pct) return Math.round((Number(pct[1]) / 100) * total);
  if (/^\d+$/.test(t)) return Number(t);
  return null;
}

/** Applies one read's events in order, each against the state the previous one left. */
export function handleInput(events: InputEvent[], get: () => TuiState): void {
  for (const e of events) {
    const s = get();
    if (screenOf(s.term).tooSmall) {
      if (e.kind === 'key' && (e.name === 'q' || e.name === 'ctrl-c')) s.actions.quit();
      continue;
    }
    if (e.kind === 'key') handleKey(e.name, s);
    else handleMouse(e, s);
  }
}

function tokenGrid(s: TuiState) {
  const lines = tokenLines(
    s.frame,
    s.term.columns,
    tokenStreamRows(s.term, s.frame.token !== null),
    s.ui.token,
    s.mono,
  );
  return lines.filter((x) => x.items.length > 0).map((x) => x.items.map((it) => ({ index: it.index, col: it.col })));
}

function handleKey(name: string, s: TuiState): void {
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
    if (name === 'backspace') return a.editPrompt([...p.text].slice(0, -1).join(''));
    if (name === 'space') return a.editPrompt(p.text + ' ');
    if ([...name].length === 1) return a.editPrompt(p.text + name);
    return;
  }

  const b = resolve(name, ui.pane);
  if (!b) return;
  if (ui.help && b.action !== 'help' && b.action !== 'back' && b.action !== 'quit') a.toggleHelp();
  const pane = ui.pane;
  const L = frame.layerIds.length;
  const tokenSel = ui.token ?? (frame.ring.end > frame.ring.start ? frame.ring.end - 1 : null);
  const overview = () => overviewLayout(frame, s.term, ui);

  const moveToken = (d: number) => {
    if (frame.ring.end === frame.ring.start) return;
    const base = ui.token ?? frame.ring.end - (d < 0 ? 0 : 1);
    a.selectToken(Math.max(frame.ring.start, Math.min(frame.ring.end - 1, base + d)));
  };
  const moveTokenLine = (d: number) => {
    const grid = tokenGrid(s);
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
      if (s.feed.position <= 0) return a.setMessage('at the start of the trace');
      return a.step(-1);
    case 'stepForward':
      if (s.source.kind === 'replay' && s.feed.total !== null && s.feed.position >= s.feed.total)
        return a.setMessage('at the end of the trace: , steps back, g goes to the start');
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
    case 'zoomOut': {
      const vp = overview().vp;
      const z = nextZoom(vp, b.action === 'zoomIn' ? 1 : -1);
      if (z === null)
        return a.setMessage(
          b.action === 'zoomIn'
            ? 'zoomed in all the way: one expert per column'
            : vp.fitBin === 1
              ? `all ${frame.experts} experts fit the width: nothing to zoom out of`
              : 'zoomed out all the way: every expert fits the width',
        );
      return a.setZoom(z);
    }
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
      if (pane === 'warnings') return openWarning(s);
      return;
    case 'up':
    case 'down': {
      const d = b.action === 'up' ? -1 : 1;
      if (pane === 'overview') return a.selectLayer(ui.layer + d);
      if (pane === 'layer') return a.selectExpert(ui.expert + d);
      if (pane === 'tokens') return ui.tokenDetail ? a.selectLayer(ui.layer + d) : moveTokenLine(d);
      if (pane === 'warnings') return a.moveWarning(d);
      return;
    }
    case 'left':
    case 'right': {
      const d = b.action === 'left' ? -1 : 1;
      if (pane === 'overview') {
        const bin = overview().vp.bin;
        return a.selectExpert(Math.floor(ui.expert / bin) * bin + d * bin);
      }
      if (pane === 'layer') return a.selectExpert(ui.expert + d * layerBarsOf(frame, ui.layer, s.term).rows);
      if (pane === 'tokens') return moveToken(d);
      return;
    }
    case 'pageUp':
    case 'pageDown': {
      const d = b.action === 'pageUp' ? -1 : 1;
      if (pane === 'overview')
        return a.selectLayer(Math.max(0, Math.min(L - 1, ui.layer + d * Math.max(1, overview().vp.layers - 1))));
      if (pane === 'warnings') return a.moveWarning(d * Math.max(1, warningListRows(s.term) - 1));
      if (pane === 'tokens') return moveTokenLine(d * Math.max(1, tokenGrid(s).length - 1));
      if (pane === 'layer') return a.selectExpert(ui.expert + d * layerBarsOf(frame, ui.layer, s.term).rows);
      return;
    }
  }
}

/** Enter on a warning: its token in the Tokens pane, or its layer when the token is no longer held. */
function openWarning(s: TuiState): void {
  const a = s.actions;
  const list = s.frame.warnings;
  if (list.length === 0) return;
  const id = Math.min(list.length - 1, s.ui.warning ?? list.length - 1);
  const w = list[list.length - 1 - id]!;
  a.selectLayer(w.layerIndex);
  if (w.expert !== null) a.selectExpert(w.expert);
  if (s.frame.ring.start <= w.firstToken && w.firstToken < s.frame.ring.end) {
    a.selectToken(w.firstToken);
    a.setPane('tokens');
  } else {
    a.setPane('layer');
    a.setMessage(`token ${w.firstToken} is no longer held; showing layer L${w.layer}`);
  }
}

const WHEEL_UP = 64;
const WHEEL_DOWN = 65;

/** A click selects what is under it (a second click on the selection opens it); the wheel moves as ↑ ↓ do. */
function handleMouse(e: Extract<InputEvent, { kind: 'mouse' }>, s: TuiState): void {
  if (e.release) return;
  if (e.button === WHEEL_UP || e.button === WHEEL_DOWN) {
    if (s.ui.prompt) return;
    return handleKey(e.button === WHEEL_UP ? 'up' : 'down', s);
  }
  if (e.button !== 0) return;
  const a = s.actions;
  const x = e.column - 1;
  const y = e.row - 1;
  const scr = screenOf(s.term);
  if (y === 1) {
    const tab = tabSpans(s.frame.activeWarnings).find((t) => x >= t.start && x < t.end);
    if (tab) a.setPane(tab.pane);
    return;
  }
  if (s.ui.help || s.ui.prompt || y < scr.bodyTop || y >= scr.bodyTop + scr.body) return;
  const frame = s.frame;
  switch (s.ui.pane) {
    case 'overview': {
      const lay = overviewLayout(frame, s.term, s.ui);
      const line = y - lay.heatTop;
      if (line < 0 || line >= lay.heatLines) return;
      const layer = lay.vp.firstLayer + Math.floor(line / lay.rowHeight);
      const cx = x - lay.labelW;
      let expert = s.ui.expert;
      if (cx >= 0 && cx < lay.vp.span) {
        let c = 0;
        while (c + 1 < lay.vp.columns && cellEdge(lay.vp, c + 1) <= cx) c++;
        expert = Math.min(frame.experts - 1, lay.vp.firstExpert + c * lay.vp.bin);
      }
      if (layer === s.ui.layer && Math.floor(expert / lay.vp.bin) === Math.floor(s.ui.expert / lay.vp.bin))
        return a.setPane('layer');
      a.selectLayer(layer);
      a.selectExpert(expert);
      return;
    }
    case 'warnings': {
      const list = frame.warnings;
      const rows = warningListRows(s.term);
      const selected = list.length - 1 - Math.min(list.length - 1, s.ui.warning ?? list.length - 1);
      const win = scrollWindow(list.length, rows, Math.max(0, selected));
      const r = y - scr.bodyTop - 2;
      if (r < 0 || r >= win.count) return;
      const row = win.first + r;
      if (row === selected) return openWarning(s);
      a.selectWarning(list.length - 1 - row);
      return;
    }
    case 'tokens': {
      if (s.ui.tokenDetail) return;
      const lines = tokenLines(
        frame,
        s.term.columns,
        tokenStreamRows(s.term, frame.token !== null),
        s.ui.token,
        s.mono,
      );
      const line = lines[y - scr.bodyTop - 1];
      const it = line?.items.find((t) => x >= t.col && x < t.col + t.width);
      if (!it) return;
      if (it.index === s.ui.token) return a.setTokenDetail(true);
      a.selectToken(it.index);
      return;
    }
    case 'layer': {
      const l = frame.layer?.index ?? s.ui.layer;
      const g = layerBarsOf(frame, l, s.term);
      const r = y - scr.bodyTop - 4 - layerFlagRows(frame, l);
      const c = Math.floor(x / g.entryW);
      if (r < 0 || r >= g.rows || c >= g.perRow || x >= g.listW) return;
      const page = Math.floor(Math.min(s.ui.expert, frame.experts - 1) / g.perPage);
      const e = page * g.perPage + c * g.rows + r;
      if (e < frame.experts) a.selectExpert(e);
      return;
    }
    default:
      return;
  }
}
