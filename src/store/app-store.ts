/**
 * The TUI's state (zustand, vanilla): UI state, the source's playback state, and the latest frame. Views read it
 * with selectors and call its actions; data reaches it only through frames, published by `startPublishing` at
 * ≤ 15 fps (and at once when the selection changes).
 */
import { createStore, type StoreApi } from 'zustand/vanilla';
import type { Scope } from '../stats/index.js';
import { buildFrame, type Frame, type Selection } from './frame.js';
import { nextSpeed, type Feed, type FeedState } from './feeds.js';
import { WINDOW_SIZES, type RoutingModel } from './model.js';
import type { PlacementSpec } from './placement-spec.js';
import { screenOf, tokenSpan, type Term } from './layout.js';

export type Pane = 'overview' | 'layer' | 'tokens' | 'warnings' | 'devices';
export const PANES: readonly Pane[] = ['overview', 'layer', 'tokens', 'warnings', 'devices'];

export interface SourceInfo {
  kind: 'live' | 'replay' | 'follow';
  /** What is shown: model name for live, trace path for replay/follow. */
  label: string;
  /** Path of the trace being recorded (live), or null. */
  recording: string | null;
  /** Where experts live, for the Devices view (--devices D or a plan file); null when not given. */
  placement: PlacementSpec | null;
}

export interface Prompt {
  kind: 'search' | 'seek';
  text: string;
}

export interface UiState {
  pane: Pane;
  help: boolean;
  /** Selected MoE layer index and expert. */
  layer: number;
  expert: number;
  /** Experts per heatmap column when zoomed in; 0 = fit the width. */
  zoom: number;
  scope: Scope;
  /** Selected token, or null to follow the newest. */
  token: number | null;
  /** Token stream: the selected token's routing in every layer is open. */
  tokenDetail: boolean;
  /**
   * Selected warning, by its place in the order warnings fired (oldest 0; the list is append-only, so the cursor
   * stays on its warning while newer ones push the list down); null: the newest.
   */
  warning: number | null;
  prompt: Prompt | null;
  /** Last search query (n / N repeat it). */
  query: string;
  /** One-line feedback shown in the hint bar until the next key. */
  message: string | null;
  quit: boolean;
}

export interface TuiState {
  source: SourceInfo;
  feed: FeedState;
  ui: UiState;
  frame: Frame;
  /** Bumped when the screen must be redrawn from scratch (resize, ctrl-L). */
  redraws: number;
  /** Terminal size. */
  term: Term;
  /** Drawn without colour (token stream: the expert as a subscript). */
  mono: boolean;
  actions: Actions;
}

export interface Actions {
  quit(): void;
  togglePause(): void;
  faster(): void;
  slower(): void;
  step(n: number): void;
  seek(token: number): void;
  seekStart(): void;
  seekEnd(): void;
  setPane(p: Pane): void;
  nextPane(dir: 1 | -1): void;
  toggleHelp(): void;
  selectLayer(l: number): void;
  selectExpert(e: number): void;
  setZoom(expertsPerColumn: number): void;
  /** Moves the warnings cursor by `d` rows of the list (newest first). */
  moveWarning(d: number): void;
  setScope(s: Scope): void;
  /** `w`: switch to the window scope, or when already there, to the next window length. */
  windowKey(): void;
  selectToken(i: number | null): void;
  setTokenDetail(open: boolean): void;
  selectWarning(i: number): void;
  openPrompt(kind: Prompt['kind']): void;
  editPrompt(text: string): void;
  closePrompt(): void;
  /** Searches token text from the token after `from` (dir 1) or before it (−1); selects the match. */
  search(query: string, dir: 1 | -1): boolean;
  setMessage(m: string | null): void;
  redraw(): void;
  resize(columns: number, rows: number): void;
}

export type TuiStore = StoreApi<TuiState>;

export interface CreateStoreOptions {
  model: RoutingModel;
  feed: Feed;
  source: SourceInfo;
  ui?: Partial<UiState>;
  term?: Term;
  mono?: boolean;
}

const DEFAULT_TERM: Term = { columns: 120, rows: 40 };

const INITIAL_UI: UiState = {
  pane: 'overview',
  help: false,
  layer: 0,
  expert: 0,
  zoom: 0,
  scope: 'window',
  token: null,
  tokenDetail: false,
  warning: null,
  prompt: null,
  query: '',
  message: null,
  quit: false,
};

function selectionOf(s: Pick<TuiState, 'ui' | 'source' | 'term'>): Selection {
  // Token text is copied into frames only while the Tokens pane shows it.
  const span = s.ui.pane === 'tokens' && !s.ui.help && !screenOf(s.term).tooSmall ? tokenSpan(s.term) : 0;
  return { scope: s.ui.scope, layer: s.ui.layer, token: s.ui.token, placement: s.source.placement, tokenSpan: span };
}

export function createTuiStore(opts: CreateStoreOptions): TuiStore {
  const { model, feed } = opts;
  const ui0 = { ...INITIAL_UI, ...opts.ui };
  const store = createStore<TuiState>()((set, get) => {
    const ui = (patch: Partial<UiState>) => set((s) => ({ ui: { ...s.ui, message: null, ...patch } }));
    const clampLayer = (l: number) => Math.max(0, Math.min(model.layers - 1, l));
    /** Runs a feed command and shows its new state at once (a key press should not wait for the next frame). */
    const withFeed = (f: () => void) => {
      f();
      set((s) => ({ feed: feed.state(), ui: { ...s.ui, message: null } }));
    };
    const actions: Actions = {
      quit: () => ui({ quit: true }),
      togglePause: () => withFeed(() => feed.setPlaying(!feed.state().playing)),
      faster: () => withFeed(() => feed.setSpeed(nextSpeed(feed.state().speed, 1))),
      slower: () => withFeed(() => feed.setSpeed(nextSpeed(feed.state().speed, -1))),
      step: (n) =>
        withFeed(() => {
          // Pause first, also at the end of a replay: there the feed reports "not playing" but would play on as
          // soon as a step back put it before the end.
          if (feed.kind === 'replay' || feed.state().playing) feed.setPlaying(false);
          feed.step(n);
        }),
      seek: (t) => withFeed(() => feed.seek(t)),
      seekStart: () => {
        if (feed.kind === 'replay') withFeed(() => feed.seek(0));
        else ui({ token: get().frame.ring.start });
      },
      seekEnd: () => {
        if (feed.kind === 'replay') withFeed(() => feed.seek(feed.state().total ?? 0));
        else ui({ token: null });
      },
      setPane: (p) => ui({ pane: p, help: false }),
      nextPane: (dir) => {
        const i = PANES.indexOf(get().ui.pane);
        ui({ pane: PANES[(i + dir + PANES.length) % PANES.length]! });
      },
      toggleHelp: () => ui({ help: !get().ui.help }),
      selectLayer: (l) => ui({ layer: clampLayer(l) }),
      selectExpert: (e) => ui({ expert: Math.max(0, Math.min(model.experts - 1, e)) }),
      setZoom: (z) => ui({ zoom: Math.max(0, z) }),
      setScope: (sc) => ui({ scope: sc }),
      windowKey: () => {
        if (get().ui.scope !== 'window') return ui({ scope: 'window' });
        const cur = model.displayWindowSize;
        const next = WINDOW_SIZES.find((w) => w > cur) ?? WINDOW_SIZES[0];
        model.setDisplayWindow(next);
        ui({ message: `window: last ${next} tokens` });
      },
      selectToken: (i) => ui({ token: i }),
      setTokenDetail: (open) => ui({ tokenDetail: open }),
      selectWarning: (i) => ui({ warning: Math.max(0, Math.min(get().frame.warnings.length - 1, i)) }),
      moveWarning: (d) => {
        const n = get().frame.warnings.length;
        if (n === 0) return;
        const cur = get().ui.warning ?? n - 1;
        // The list shows the newest first: down (d > 0) goes to older warnings.
        ui({ warning: Math.max(0, Math.min(n - 1, cur - d)) });
      },
      openPrompt: (kind) => ui({ prompt: { kind, text: '' } }),
      editPrompt: (text) => set((s) => ({ ui: { ...s.ui, prompt: s.ui.prompt ? { ...s.ui.prompt, text } : null } })),
      closePrompt: () => ui({ prompt: null }),
      search: (query, dir) => {
        const q = query.toLowerCase();
        if (q === '') return false;
        const r = model.ring;
        const s = get();
        const from = s.ui.token ?? (dir > 0 ? r.start - 1 : r.end);
        const n = r.end - r.start;
        for (let k = 1; k <= n; k++) {
          const i = r.start + ((((from - r.start + dir * k) % n) + n) % n);
          if (r.token(i).toLowerCase().includes(q)) {
            ui({ token: i, query, pane: 'tokens' });
            return true;
          }
        }
        ui({ query, message: `no token matches "${query}" in the last ${n} tokens` });
        return false;
      },
      setMessage: (m) => set((s) => ({ ui: { ...s.ui, message: m } })),
      redraw: () => set((s) => ({ redraws: s.redraws + 1 })),
      resize: (columns, rows) => set({ term: { columns, rows } }),
    };
    return {
      source: opts.source,
      feed: feed.state(),
      ui: ui0,
      frame: buildFrame(model, selectionOf({ ui: ui0, source: opts.source, term: opts.term ?? DEFAULT_TERM })),
      redraws: 0,
      term: opts.term ?? DEFAULT_TERM,
      mono: opts.mono ?? false,
      actions,
    };
  });
  return store;
}

export interface Publisher {
  /** Publishes a frame now if anything changed. */
  flush(): void;
  stop(): void;
}

/**
 * Publishes frames: when the model changed, at most `fps` times a second; when the selection changed, on the next
 * turn of the event loop. Feed state (position, buffered …) is published with each frame, or at once when only it
 * changed.
 */
export function startPublishing(store: TuiStore, model: RoutingModel, feed: Feed, fps = 15): Publisher {
  let lastSel = selectionOf(store.getState());
  let lastBuilt = 0;
  let timer: NodeJS.Timeout | null = null;
  let immediate: NodeJS.Immediate | null = null;
  const interval = 1000 / fps;

  const publish = () => {
    timer = null;
    immediate = null;
    const s = store.getState();
    const sel = selectionOf(s);
    const selChanged = !sameSelection(sel, lastSel);
    const dataChanged = s.frame.version !== model.version;
    const feedState = feed.state();
    const feedChanged = !sameFeed(feedState, s.feed);
    if (!selChanged && !dataChanged) {
      if (feedChanged) store.setState({ feed: feedState });
      return;
    }
    lastSel = sel;
    lastBuilt = performance.now();
    store.setState({ frame: buildFrame(model, sel), feed: feedState });
  };

  const schedule = (urgent: boolean) => {
    if (urgent) {
      if (timer) clearTimeout(timer);
      timer = null;
      immediate ??= setImmediate(publish);
      return;
    }
    if (timer || immediate) return;
    const wait = Math.max(0, lastBuilt + interval - performance.now());
    timer = setTimeout(publish, wait);
  };

  feed.onChange = () => schedule(false);
  const unsub = store.subscribe((s, prev) => {
    if (s === prev || s.frame !== prev.frame) return;
    if (!sameSelection(selectionOf(s), lastSel) || s.frame.version !== model.version) schedule(true);
  });
  return {
    flush: publish,
    stop: () => {
      unsub();
      feed.onChange = null;
      if (timer) clearTimeout(timer);
      if (immediate) clearImmediate(immediate);
    },
  };
}

function sameSelection(a: Selection, b: Selection): boolean {
  return (
    a.scope === b.scope &&
    a.layer === b.layer &&
    a.token === b.token &&
    a.placement === b.placement &&
    a.tokenSpan === b.tokenSpan
  );
}

function sameFeed(a: FeedState, b: FeedState): boolean {
  return (
    a.position === b.position &&
    a.total === b.total &&
    a.playing === b.playing &&
    a.speed === b.speed &&
    a.buffered === b.buffered &&
    a.ended === b.ended &&
    a.seeking === b.seeking &&
    a.error === b.error &&
    a.notice === b.notice
  );
}
