/**
 * The dashboard's layout and what each widget shows, from the store's frame (the same frame the Ink views draw),
 * the history (src/store/history.ts) and the feed state. Formatting and layout only: every number comes from the
 * store, which takes it from src/stats. Widgets come from ./blessed.ts (the only module touching blessed).
 */
import { fmtBytes } from '../core/number-format.js';
import type { SequentialMap } from '../core/palette.js';
import type { FeedState } from '../store/feeds.js';
import type { Frame } from '../store/frame.js';
import type { BalanceMetric, HistoryView, MetricHistory } from '../store/history.js';
import { binnedRelLoad, layerColumns, zeroColumns } from '../store/selectors.js';
import type { SourceInfo } from '../store/app-store.js';
import { ABSENT_CELL, HeatScale, ZERO_CELL } from './heat.js';
import {
  BarChart,
  Gauge,
  HeatGrid,
  LineChart,
  LogPane,
  Sparklines,
  box,
  plain,
  type Box,
  type HeatCells,
  type LineSeries,
  type Screen,
} from './blessed.js';

/** The smallest terminal the dashboard draws in. */
type CollapseWarning = Frame['warnings'][number];

export const MIN_COLUMNS = 80;
export const MIN_ROWS = 24;
/** Warning lines the log keeps (the store keeps them all; the log scrolls through the newest). */
export const LOG_LINES = 500;
/** Layers drawn per balance chart: the worst ones. */
export const WORST_LAYERS = 3;
const SERIES_COLORS = ['yellow', 'magenta', 'cyan'];
const LIMIT_COLOR = 'red';

export interface Thresholds {
  maxVio: number | null;
  cv: number | null;
  balancedness: number | null;
}

export interface DashUi {
  /** What the second balance chart shows. */
  metric: Exclude<BalanceMetric, 'maxVio'>;
  help: boolean;
  /** First layer row of the heat grid (it scrolls with the mouse wheel and ↑/↓). */
  heatTop: number;
}

export interface DashInput {
  frame: Frame;
  feed: FeedState;
  source: SourceInfo;
  history: HistoryView;
  ui: DashUi;
  /** One line for the status bar (a note about the source, feedback to a key), or null. */
  notice: string | null;
  /** A count stream (load counts per step, no tokens): its steps so far and what its bins are; null for tokens. */
  counts?: { steps: number; bins: 'experts' | 'GPUs' } | null;
}

export interface DashOptions {
  color: boolean;
  colormap?: SequentialMap;
  thresholds: Thresholds;
  onHeatScroll?: (dir: 1 | -1) => void;
}

export const DASH_KEYS: readonly { keys: string; action: string }[] = [
  { keys: 'q, ctrl-c', action: 'quit (restores the terminal)' },
  { keys: '?', action: 'show / hide this list' },
  { keys: 'space', action: 'freeze the view (live, follow: data keeps arriving and is buffered)' },
  { keys: 'w', action: 'heat grid and bars: the sliding window; again: the next window length' },
  { keys: 'c', action: 'heat grid and bars: the whole run' },
  { keys: 'm', action: 'second chart: CV or balancedness (with --devices or --plan)' },
  { keys: '↑ ↓, wheel', action: 'scroll the heat grid (wheel over the log scrolls the log)' },
  { keys: 'ctrl-l', action: 'redraw' },
];

interface Widgets {
  maxVio: LineChart;
  second: LineChart;
  heat: HeatGrid;
  bars: BarChart;
  gauges: Gauge[];
  noGpu: Box | null;
  spark: Sparklines;
  log: LogPane;
  status: Box;
  help: Box | null;
  tooSmall: Box | null;
  /** GPUs and bars the layout was built for (a change rebuilds it). */
  gpus: number;
  barCount: number;
}

export class Dashboard {
  private readonly screen: Screen;
  private readonly opts: DashOptions;
  private w: Widgets | null = null;
  private tooSmall: Box | null = null;
  private readonly scale: HeatScale;
  private logVersion = '';

  constructor(screen: Screen, opts: DashOptions) {
    this.screen = screen;
    this.opts = opts;
    this.scale = new HeatScale(opts.color, opts.colormap);
  }

  /** Removes every widget; the next `update` lays the screen out again at its current size. */
  invalidate(): void {
    for (const child of [...this.screen.children]) child.destroy();
    this.w = null;
    this.tooSmall = null;
    this.logVersion = '';
  }

  update(input: DashInput): void {
    const cols = this.screen.width as number;
    const rows = this.screen.height as number;
    if (cols < MIN_COLUMNS || rows < MIN_ROWS) {
      if (this.w) this.invalidate();
      this.tooSmall ??= box(this.screen, { top: 0, left: 0, width: '100%', height: '100%' }, '', { border: false });
      this.tooSmall.setContent(
        `moescope dash needs a terminal of at least ${MIN_COLUMNS}×${MIN_ROWS}; this one is ${cols}×${rows}.`,
      );
      return;
    }
    if (this.tooSmall) this.invalidate();
    const gpus = Math.min(4, input.frame.memory.gpus?.length ?? 0);
    const barCount = this.barData(input.frame, cols, input.counts ?? null).titles.length;
    if (!this.w || this.w.gpus !== gpus || this.w.barCount !== barCount) {
      if (this.w) this.invalidate();
      this.w = this.build(cols, rows, gpus, barCount);
    }
    this.fill(this.w, input, cols);
  }

  private build(cols: number, rows: number, gpus: number, barCount: number): Widgets {
    const s = this.screen;
    const h = rows - 1; // the status line
    const topH = Math.max(8, Math.round(h * 0.36));
    const midH = Math.max(7, Math.round(h * 0.34));
    const botH = h - topH - midH;
    const half = Math.floor(cols / 2);
    const heatW = Math.round(cols * 0.6);
    const memW = Math.round(cols * 0.34);
    const sparkW = Math.round(cols * 0.22);
    const maxVio = new LineChart(s, { top: 0, left: 0, width: half, height: topH }, 'MaxVio', this.opts.color);
    const second = new LineChart(s, { top: 0, left: half, width: cols - half, height: topH }, 'CV', this.opts.color);
    const heat = new HeatGrid(s, { top: topH, left: 0, width: heatW, height: midH }, 'load', this.opts.onHeatScroll);
    const bars = new BarChart(s, { top: topH, left: heatW, width: cols - heatW, height: midH }, 'tokens', barCount);
    const gauges: Gauge[] = [];
    let noGpu: Box | null = null;
    if (gpus === 0) noGpu = box(s, { top: topH + midH, left: 0, width: memW, height: botH }, 'VRAM');
    else {
      const gh = Math.floor(botH / gpus);
      for (let g = 0; g < gpus; g++)
        gauges.push(
          new Gauge(
            s,
            { top: topH + midH + g * gh, left: 0, width: memW, height: g === gpus - 1 ? botH - g * gh : gh },
            `GPU ${g}`,
          ),
        );
    }
    const spark = new Sparklines(s, { top: topH + midH, left: memW, width: sparkW, height: botH }, 'rate · memory');
    const log = new LogPane(
      s,
      { top: topH + midH, left: memW + sparkW, width: cols - memW - sparkW, height: botH },
      'warnings',
      LOG_LINES,
    );
    const status = box(s, { top: h, left: 0, width: cols, height: 1 }, '', { border: false });
    return {
      maxVio,
      second,
      heat,
      bars,
      gauges,
      noGpu,
      spark,
      log,
      status,
      help: null,
      tooSmall: null,
      gpus,
      barCount,
    };
  }

  private fill(w: Widgets, input: DashInput, cols: number): void {
    const { frame, history, ui, source } = input;
    const x = xLabels(history);
    const t = this.opts.thresholds;
    // Balance over time: the worst layers and the limit.
    this.chart(w.maxVio, 'MaxVio', history.maxVio, x, t.maxVio, history);
    const second = ui.metric === 'balancedness' && history.balancedness ? history.balancedness : history.cv;
    this.chart(
      w.second,
      second.metric === 'cv' ? 'CV' : 'balancedness (SGLang)',
      second,
      x,
      second.metric === 'cv' ? t.cv : t.balancedness,
      history,
    );

    // Heat grid: layers × experts of the frame's scope, binned to the width like the overview.
    this.heat(w.heat, frame, ui.heatTop, input.counts ?? null);

    // Bars: tokens per device (placement), or the busiest experts of the worst layer.
    const bars = this.barData(frame, cols, input.counts ?? null);
    w.bars.setLabel(bars.label);
    w.bars.set(bars.titles, bars.values);

    // VRAM gauges, host RSS, rate.
    const mem = frame.memory;
    if (mem.gpus && w.gauges.length > 0) {
      w.gauges.forEach((g, i) => {
        const gpu = mem.gpus![i]!;
        g.setLabel(`GPU ${gpu.index} ${fmtBytes(gpu.usedBytes)} / ${fmtBytes(gpu.totalBytes)} · ${gpu.name}`);
        g.set(gpu.usedShare);
      });
    } else if (w.noGpu) {
      w.noGpu.setContent(
        mem.samples === 0 ? 'no memory samples in this source' : 'no GPU (the source reports host memory only)',
      );
    }
    const rss = mem.hostRssBytes;
    // A count stream has no tokens: its history's x is the assignments counted, so the rate is assignments/s.
    const rate = input.counts ? lastFinite(history.rate) : frame.tokensPerSecond;
    w.spark.set(
      [
        `${input.counts ? 'assignments/s' : 'tok/s'} ${rate === null ? '—' : rate.toFixed(1)}`,
        `host RSS ${fmtBytes(rss)}`,
      ],
      [history.rate, history.memory?.rss ?? []],
    );

    // Warnings, oldest first so the newest is at the bottom of the log.
    const key = `${frame.warnings.length}:${frame.activeWarnings}:${frame.warnings[0]?.firstToken ?? -1}:${frame.warnings[0]?.clearedAt ?? -1}`;
    if (key !== this.logVersion) {
      this.logVersion = key;
      const n = Math.min(LOG_LINES, frame.warnings.length);
      const lines = new Array<string>(n);
      for (let i = 0; i < n; i++) lines[n - 1 - i] = this.logLine(frame.warnings[i]!);
      // Routers whose weights were not followed to the mixing head the log: they hold for the whole run.
      w.log.setLines([...fidelityLogLines(frame), ...lines]);
      w.log.setLabel(
        input.counts
          ? 'warnings · none on load counts (no collapse detector)'
          : `warnings · ${frame.warnings.length} (${frame.activeWarnings} active${frame.suppressedWarnings ? `, ${fmtInt(frame.suppressedWarnings)} more not kept` : ''})`,
      );
    }

    w.status.setContent(statusLine(input, cols));
    this.helpOverlay(w, ui.help, source.kind);
  }

  /** A warning's log line, formatted once per warning object and state (a frame holds every warning). */
  private readonly lineCache = new WeakMap<CollapseWarning, { cleared: number | null; line: string }>();
  private logLine(wr: CollapseWarning): string {
    const hit = this.lineCache.get(wr);
    if (hit && hit.cleared === wr.clearedAt) return hit.line;
    const line = `token ${fmtInt(wr.firstToken)} · ${wr.message}${wr.clearedAt === null ? '' : ` · cleared at ${fmtInt(wr.clearedAt)}`}`;
    this.lineCache.set(wr, { cleared: wr.clearedAt, line });
    return line;
  }

  private chart(
    c: LineChart,
    name: string,
    m: MetricHistory,
    x: string[],
    limit: number | null,
    _h: HistoryView,
  ): void {
    const worst = m.worst.map((s) => `L${s.layer} ${fmt(s.latest)}`).join(', ');
    c.setLabel(`${name} over time · worst ${worst || '—'}`);
    const series: LineSeries[] = m.worst.map((s, i) => ({
      title: `L${s.layer}`,
      values: s.values,
      color: SERIES_COLORS[i % SERIES_COLORS.length]!,
    }));
    if (limit !== null) series.push({ title: `limit ${limit}`, values: x.map(() => limit), color: LIMIT_COLOR });
    if (series.length === 0 || x.length === 0) return;
    c.set(x, series);
  }

  private heat(g: HeatGrid, frame: Frame, top: number, counts: DashInput['counts'] | null): void {
    const { cells, first } = heatCells(frame, this.scale, g.inner, top);
    const L = frame.layerIds.length;
    const scope = counts
      ? `all ${fmtInt(counts.steps)} interval${counts.steps === 1 ? '' : 's'}`
      : frame.scope === 'run'
        ? 'whole run'
        : `last ${fmtInt(frame.range.end - frame.range.start)} tokens`;
    const shown = cells.rows < L ? ` · layers ${first + 1}–${first + cells.rows} of ${L} (↑↓)` : '';
    const bin = Math.ceil(frame.experts / Math.max(1, g.inner.columns - cells.labelWidth));
    const minE = Math.min(...frame.layerExperts);
    const across = minE < frame.experts ? `${minE}–${frame.experts}` : `${frame.experts}`;
    // Zero-computation experts first: the label is cut at the box's width.
    const zero = frame.zeroShareMean !== null ? ` · z zero-computation, ${fmtShare(frame.zeroShareMean)} of slots` : '';
    g.setLabel(
      `load ÷ uniform${zero} · ${L} layers × ${across} ${counts?.bins ?? 'experts'}${bin > 1 ? ` (${bin}/column, busiest)` : ''} · ${scope}${shown}`,
    );
    g.set(cells);
  }

  private barData(
    frame: Frame,
    cols: number,
    stream: DashInput['counts'] | null = null,
  ): { label: string; titles: string[]; values: number[] } {
    const fit = Math.max(1, Math.floor((cols * 0.4 - 4) / 5));
    if (stream?.bins === 'GPUs' && frame.devices) {
      const d = frame.devices.loads.slice(0, fit);
      return {
        label: `assignments per GPU, % · balancedness ${fmt(frame.devices.sglang)}`,
        titles: d.map((x) => `gpu${x.device}`),
        values: d.map((x) => Math.round(100 * x.loadShare)),
      };
    }
    if (frame.ranks && frame.ranks.length > 1) {
      const r = frame.ranks.slice(0, fit);
      return { label: 'tokens per rank', titles: r.map((x) => `r${x.rank}`), values: r.map((x) => x.tokens) };
    }
    if (frame.devices) {
      const d = frame.devices.loads.slice(0, fit);
      return {
        label: `tokens per device, % · balancedness ${fmt(frame.devices.sglang)}`,
        titles: d.map((x) => `d${x.device}`),
        values: d.map((x) => Math.round(100 * x.loadShare)),
      };
    }
    // One device: the busiest experts of the layer with the highest MaxVio now.
    const L = frame.layerIds.length;
    let worst = 0;
    for (let l = 1; l < L; l++) if ((frame.maxVio[l] ?? -1) > (frame.maxVio[worst] ?? -1)) worst = l;
    const E = frame.layerExperts[worst]!; // the layer's own experts
    const experts = Array.from({ length: E }, (_, e) => e);
    const counts = frame.counts.subarray(worst * frame.experts, worst * frame.experts + E);
    const shown = E <= fit ? experts : experts.sort((a, b) => counts[b]! - counts[a]! || a - b).slice(0, fit);
    return {
      label: `tokens per expert · L${frame.layerLabels[worst] ?? 0} (worst)${E > fit ? `, busiest ${fit}` : ''}`,
      titles: shown.map((e) => `e${e}`),
      values: shown.map((e) => counts[e]!),
    };
  }

  private helpOverlay(w: Widgets, open: boolean, kind: SourceInfo['kind']): void {
    if (!open) {
      w.help?.destroy();
      w.help = null;
      return;
    }
    if (w.help) return;
    const lines = [
      `Keys · source: ${kind}`,
      '',
      ...DASH_KEYS.map((k) => `${k.keys.padEnd(12)} ${k.action}`),
      '',
      'press ? to close',
    ];
    w.help = box(
      this.screen,
      {
        top: 'center',
        left: 'center',
        width: Math.min(84, (this.screen.width as number) - 4),
        height: lines.length + 2,
      },
      'keys',
      { tags: false },
    );
    w.help.setContent(lines.join('\n'));
    w.help.setFront();
  }
}

/**
 * The heat grid's cells for a frame in `inner` (columns × rows of the box's inside), from layer row `top`: each row
 * a layer, each column the busiest expert of its bin (store's binnedRelLoad, as the overview), few experts drawn
 * several cells wide.
 */
export function heatCells(
  frame: Frame,
  scale: HeatScale,
  inner: { columns: number; rows: number },
  top = 0,
): { cells: HeatCells; first: number } {
  const L = frame.layerIds.length;
  const E = frame.experts;
  const labels = frame.layerLabels.map((id) => `L${id}`);
  const labelWidth = Math.max(...labels.map((l) => l.length)) + 1;
  const avail = Math.max(1, inner.columns - labelWidth);
  const bin = Math.ceil(E / avail);
  const cellWidth = bin === 1 ? Math.max(1, Math.min(8, Math.floor(avail / E))) : 1;
  const bins = Math.ceil(E / bin);
  const columns = bins * cellWidth;
  const rows = Math.max(0, Math.min(L, inner.rows));
  const first = Math.max(0, Math.min(top, L - rows));
  const fg = new Int16Array(rows * columns);
  const glyphs = new Array<string>(rows * columns);
  const rel = new Float32Array(bins);
  const zero = new Uint8Array(bins);
  for (let r = 0; r < rows; r++) {
    binnedRelLoad(frame, first + r, 0, bin, bins, rel);
    // Columns of zero-computation experts only (LongCat-Flash): a "z", not on the real experts' scale.
    zeroColumns(frame, first + r, 0, bin, bins, zero);
    // A layer with fewer experts than the widest: its row ends with them (blank cells, not idle ones).
    const own = layerColumns(frame, first + r, 0, bin, bins);
    for (let c = 0; c < columns; c++) {
      const b = Math.floor(c / cellWidth);
      const cell = b >= own ? ABSENT_CELL : zero[b] ? ZERO_CELL : scale.cell(rel[b]!);
      fg[r * columns + c] = cell.fg;
      glyphs[r * columns + c] = cell.glyph;
    }
  }
  return { cells: { rows, columns, fg, glyphs, labels: labels.slice(first, first + rows), labelWidth }, first };
}

/** The log's lines for routers whose weights were not followed to the mixing (named, with why). */
export function fidelityLogLines(frame: Frame): string[] {
  return frame.fidelity.unfollowed.map(
    (u) =>
      `⚠ L${u.label}: weights not followed to the mixing (${u.note}); the selection is the model's, its weights are unknown`,
  );
}

function fmtShare(v: number): string {
  return Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : '—';
}

/** The newest finite value of a series, or null. */
function lastFinite(xs: readonly number[]): number | null {
  for (let i = xs.length - 1; i >= 0; i--) if (Number.isFinite(xs[i]!)) return xs[i]!;
  return null;
}

function fmt(v: number): string {
  return Number.isFinite(v) ? v.toFixed(2) : '—';
}

/** 12,345 (toLocaleString costs microseconds a call; the log formats hundreds of lines). */
function fmtInt(n: number): string {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** X labels: stream time since the first point (h:mm:ss), or the token count when the stream has no timestamps. */
export function xLabels(h: HistoryView): string[] {
  const n = h.points;
  if (n === 0) return [];
  const t0 = h.timeMs[0]!;
  const timed = h.timeMs[n - 1]! - t0 > 0;
  return Array.from({ length: n }, (_, i) => (timed ? clock(h.timeMs[i]! - t0) : compact(h.tokens[i]!)));
}

function clock(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  return hh > 0
    ? `${hh}:${String(mm).padStart(2, '0')}:${String(ss).padStart(2, '0')}`
    : `${mm}:${String(ss).padStart(2, '0')}`;
}

function compact(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

function statusLine(input: DashInput, cols: number): string {
  const { frame, feed, source, history } = input;
  const label = source.label.length > 40 ? '…' + source.label.slice(-39) : source.label;
  const state = feed.error
    ? `✖ ${plain(feed.error)}`
    : !feed.playing && source.kind !== 'replay'
      ? `❚❚ frozen${feed.buffered ? ` +${fmtInt(feed.buffered)} buffered` : ''}`
      : feed.seeking
        ? `⟳ reading ${fmtInt(feed.position)} / ${fmtInt(feed.total ?? 0)}`
        : feed.ended
          ? '■ end'
          : source.kind === 'live'
            ? '● live'
            : source.kind === 'follow'
              ? '● following'
              : '▶';
  const range =
    history.points > 0 && history.timeMs[history.points - 1]! > 0
      ? `${new Date(history.timeMs[0]!).toISOString().slice(11, 19)}–${new Date(history.timeMs[history.points - 1]!).toISOString().slice(11, 19)} UTC`
      : '—';
  const keys = '? keys q quit';
  const parts = [
    `moescope dash ${source.kind} ${plain(label)}`,
    state,
    input.counts
      ? `${fmtInt(input.counts.steps)} interval${input.counts.steps === 1 ? '' : 's'}`
      : `${fmtInt(frame.tokens)} tokens`,
    range,
    `${history.points} points × ${history.span} step${history.span > 1 ? 's' : ''}`,
    ...(input.notice ? [plain(input.notice)] : []),
  ];
  let line = parts.join(' │ ');
  const room = cols - keys.length - 4;
  if (line.length > room) line = line.slice(0, room - 1) + '…';
  return `${line}${' '.repeat(Math.max(1, room - line.length))} │ ${keys}`;
}
