/**
 * Feeds move routing data into the model: a replay player (play, pause, speed, step, seek over a seekable
 * RoutingStream, i.e. a recorded trace), a stream feed (live engine runs and followed traces: any RoutingStream)
 * and a live feed that a producer pushes into directly. All three honour pause: the
 * replay player stops reading; live and follow keep receiving and buffer what arrives, so pausing freezes the view
 * without ever slowing the producer, and resuming applies the buffered tokens in order.
 */
import { sliceBatch, type RoutingBatch, type RoutingSchema } from '../core/batch.js';
import type { MemorySample } from '../core/memory.js';
import type { CountBatch, RoutingStream, TokenSeek, TokensItem } from '../core/routing-stream.js';
import type { RoutingModel } from './model.js';

/** What a feed reports to whoever shows it. */
export interface FeedState {
  /** Tokens applied to the model. */
  position: number;
  /** Tokens in the source so far (the trace's length; live: received), or null when unknown. */
  total: number | null;
  /** Replay: playing; live/follow: not frozen. */
  playing: boolean;
  /** Replay speed multiplier (1 = as recorded). */
  speed: number;
  /** Live/follow tokens received while paused, waiting to be applied. */
  buffered: number;
  /** The source has no more tokens (trace end, engine finished). */
  ended: boolean;
  /** A seek is being applied. */
  seeking: boolean;
  /** Why the source stopped, when it failed. */
  error: string | null;
  /** Something the user should know about the feed (e.g. a freeze that had to end). */
  notice: string | null;
}

export interface Feed {
  readonly kind: 'live' | 'replay' | 'follow';
  state(): FeedState;
  /** Called after the model or the feed state changed. */
  onChange: (() => void) | null;
  start(): void;
  stop(): void;
  setPlaying(playing: boolean): void;
  /** Replay only; others ignore it. */
  setSpeed(speed: number): void;
  /** Replay: apply n more tokens (n < 0 steps back). Live/follow while paused: apply n buffered tokens. */
  step(n: number): void;
  /** Replay: show the stream up to `token` (exclusive). */
  seek(token: number): void;
}

export const SPEEDS = [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64] as const;
const MIN_SPEED = SPEEDS[0];
const MAX_SPEED = SPEEDS[SPEEDS.length - 1];

/** Recorded gaps longer than this play as this long (idle time between sessions is not worth waiting for). */
const MAX_GAP_MS = 1000;
/** Playback rate ×1 when the trace has no usable timestamps. */
const NOMINAL_TOKENS_PER_SECOND = 20;
const TICK_MS = 33;
/** Tokens applied per tick while seeking, so the UI stays responsive on long traces. */
const SEEK_SLICE = 50_000;

/** Plays a recorded trace into the model in (scaled) recorded time. */
export class ReplayPlayer implements Feed {
  readonly kind = 'replay';
  onChange: (() => void) | null = null;
  private readonly trace: TokenSeek;
  private readonly schema: RoutingSchema;
  private readonly model: RoutingModel;
  private timer: NodeJS.Timeout | null = null;
  private playing: boolean;
  private speed: number;
  /** Next token to apply. */
  private pos = 0;
  /** Chunk holding `pos`, and an iterator over the following ones. */
  private chunk: TokensItem | null = null;
  private iter: Iterator<TokensItem> | null = null;
  /** Playback clock in stream ms, and the wall time of the last tick. */
  private clockMs = 0;
  private lastTick = 0;
  private readonly nominal: boolean;
  private seekTarget: number | null = null;
  private error: string | null = null;
  private readonly now: () => number;
  /** Stream time (gap-capped) of the last applied token, and the playback clock runs in the same units. */
  private prevMs: number | null = null;
  private cappedMs = 0;

  /** `stream` must be seekable (a trace file); the player reads it through `stream.seek`. */
  constructor(
    stream: RoutingStream,
    model: RoutingModel,
    opts: { speed?: number; playing?: boolean; now?: () => number } = {},
  ) {
    if (!stream.seek) throw new Error(`${stream.label} cannot be replayed: it is not seekable`);
    this.trace = stream.seek;
    this.schema = stream.schema;
    this.model = model;
    this.speed = clampSpeed(opts.speed ?? 1);
    this.playing = opts.playing ?? true;
    this.nominal = !hasUsableTimes(this.trace);
    this.now = opts.now ?? (() => performance.now());
  }

  state(): FeedState {
    return {
      position: this.pos,
      total: this.trace.tokenCount,
      playing: this.playing && this.pos < this.trace.tokenCount,
      speed: this.speed,
      buffered: 0,
      ended: this.pos >= this.trace.tokenCount,
      seeking: this.seekTarget !== null,
      error: this.error,
      notice: this.nominal ? `no usable timestamps: playing at ${NOMINAL_TOKENS_PER_SECOND} tokens/s × speed` : null,
    };
  }

  start(): void {
    if (this.timer) return;
    this.lastTick = this.now();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.tick();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  setPlaying(p: boolean): void {
    if (p && this.pos >= this.trace.tokenCount) this.seek(0); // play at the end starts over
    this.playing = p;
    this.lastTick = this.now();
    this.syncClock();
    this.changed();
  }

  setSpeed(x: number): void {
    this.speed = clampSpeed(x);
    this.changed();
  }

  step(n: number): void {
    this.seek(this.pos + n);
  }

  seek(token: number): void {
    const t = Math.max(0, Math.min(this.trace.tokenCount, Math.round(token)));
    if (t < this.pos) {
      this.model.reset();
      this.pos = 0;
      this.chunk = null;
      this.iter = null;
      this.prevMs = null;
      this.cappedMs = 0;
      this.clockMs = 0;
    }
    this.seekTarget = t;
    this.advanceSeek();
  }

  private advanceSeek(): void {
    if (this.seekTarget === null) return;
    try {
      const limit = Math.min(this.seekTarget, this.pos + SEEK_SLICE);
      this.applyUntil(limit, Infinity);
      if (this.pos >= this.seekTarget) {
        this.seekTarget = null;
        this.syncClock();
      }
    } catch (e) {
      this.fail(e);
    }
    this.changed();
  }

  /** Advances playback by the wall time since the last tick (the timer calls it every ~33 ms). */
  tick(): void {
    const now = this.now();
    const dt = now - this.lastTick;
    this.lastTick = now;
    if (this.seekTarget !== null) return this.advanceSeek();
    if (!this.playing || this.pos >= this.trace.tokenCount) return;
    this.clockMs += dt * this.speed;
    const before = this.pos;
    try {
      this.applyUntil(this.trace.tokenCount, this.clockMs);
    } catch (e) {
      this.fail(e);
    }
    if (this.pos !== before || this.pos >= this.trace.tokenCount) this.changed();
  }

  /** Stream time of token i relative to the start, with long gaps shortened (or nominal spacing). */
  private timeOf(batch: RoutingBatch, row: number, index: number): number {
    if (this.nominal) return (index * 1000) / NOMINAL_TOKENS_PER_SECOND;
    return Number(batch.tNs[row]! / 1_000_000n);
  }

  /**
   * Applies tokens while index < limit and their (gap-capped) stream time ≤ clock. The clock is kept in
   * "capped" time: prevMs tracks the last applied token's time so a long recorded gap costs at most MAX_GAP_MS.
   */
  private applyUntil(limit: number, clock: number): void {
    while (this.pos < limit) {
      const c = this.chunkAt(this.pos);
      if (!c) break;
      const b = c.batch;
      const from = this.pos - c.firstToken;
      let to = from;
      while (to < b.length && c.firstToken + to < limit) {
        const t = this.timeOf(b, to, c.firstToken + to);
        const gap = this.prevMs === null ? 0 : Math.min(MAX_GAP_MS, Math.max(0, t - this.prevMs));
        if (this.cappedMs + gap > clock) break;
        this.cappedMs += gap;
        this.prevMs = t;
        to++;
      }
      if (to === from) break;
      this.model.add(to === b.length && from === 0 ? b : sliceBatch(b, this.schema, from, to));
      const end = c.firstToken + to;
      for (const m of c.memory) if (m.token >= this.pos && m.token < end) this.model.addMemory(m.sample);
      this.pos = end;
      if (to < b.length) break;
    }
  }

  /** After a seek or a pause the clock restarts from the last applied token. */
  private syncClock(): void {
    this.clockMs = this.cappedMs;
  }

  private chunkAt(token: number): TokensItem | null {
    const c = this.chunk;
    if (c && token >= c.firstToken && token < c.firstToken + c.batch.length) return c;
    if (!this.iter || !c || token !== c.firstToken + c.batch.length)
      this.iter = this.trace.chunks(token)[Symbol.iterator]();
    const n = this.iter.next();
    this.chunk = n.done ? null : n.value;
    return this.chunk;
  }

  private fail(e: unknown): void {
    this.error = e instanceof Error ? e.message : String(e);
    this.playing = false;
    this.seekTarget = null;
  }

  private changed(): void {
    this.onChange?.();
  }
}

function clampSpeed(x: number): number {
  return Math.min(MAX_SPEED, Math.max(MIN_SPEED, Number.isFinite(x) ? x : 1));
}

/** Next speed up (dir 1) or down (-1) on the ×0.25 … ×64 ladder. */
export function nextSpeed(speed: number, dir: 1 | -1): number {
  if (dir > 0) return SPEEDS.find((s) => s > speed + 1e-9) ?? MAX_SPEED;
  return [...SPEEDS].reverse().find((s) => s < speed - 1e-9) ?? MIN_SPEED;
}

/** Timestamps are usable when they span at least 1 ms per 10 tokens (imports often carry zeros). */
function hasUsableTimes(trace: TokenSeek): boolean {
  const n = trace.tokenCount;
  if (n < 2) return false;
  let first: bigint | null = null;
  let last: bigint | null = null;
  for (const c of trace.chunks(0)) {
    first = c.batch.tNs[0]!;
    break;
  }
  for (const c of trace.chunks(n - 1)) last = c.batch.tNs[c.batch.length - 1]!;
  if (first === null || last === null) return false;
  return Number(last - first) / 1e6 >= n / 10;
}

/** Tokens a frozen live or follow view may hold back before it resumes on its own (memory is not unbounded). */
export const MAX_BUFFERED_TOKENS = 200_000;

/** Shared by live and follow: applies pushed data at once, or buffers it while paused. */
abstract class PushFeed implements Feed {
  abstract readonly kind: 'live' | 'follow';
  onChange: (() => void) | null = null;
  protected readonly model: RoutingModel;
  private playing = true;
  /** `derived`: what the producer computed up to the batch's end (see RoutingModel.add); applied with its last row. */
  private pending: (
    | { batch: RoutingBatch; derived?: unknown }
    | { memory: MemorySample }
    | { counts: CountBatch }
    | { derived: unknown }
  )[] = [];
  private pendingTokens = 0;
  protected received = 0;
  protected ended = false;
  protected error: string | null = null;
  protected notice: string | null = null;

  constructor(model: RoutingModel) {
    this.model = model;
  }

  abstract start(): void;
  abstract stop(): void;

  state(): FeedState {
    return {
      position: this.model.countsOnly ? this.model.steps : this.model.tokens,
      total: this.received,
      playing: this.playing,
      speed: 1,
      buffered: this.pendingTokens,
      ended: this.ended,
      seeking: false,
      error: this.error,
      notice: this.notice,
    };
  }

  protected pushBatch(b: RoutingBatch, derived?: unknown): void {
    if (b.length === 0) return;
    this.received += b.length;
    if (this.playing) this.model.add(b, derived);
    else {
      this.pending.push({ batch: b, derived });
      this.pendingTokens += b.length;
      if (this.pendingTokens > MAX_BUFFERED_TOKENS) {
        this.notice = `resumed: a frozen view holds back at most ${MAX_BUFFERED_TOKENS.toLocaleString('en-US')} tokens`;
        this.playing = true;
        this.flush(Infinity);
      }
    }
    this.onChange?.();
  }

  /** Count rows (a count stream): applied at once, or held while paused (a step applies one batch of rows). */
  protected pushCounts(b: CountBatch): void {
    if (b.length === 0) return;
    this.received += b.length;
    if (this.playing) this.model.addCounts(b);
    else this.pending.push({ counts: b });
    this.onChange?.();
  }

  /** The producer's `derived` sent after its last batch (a DerivedItem): applied after the batches before it. */
  protected pushDerived(d: unknown): void {
    if (this.playing) this.model.addDerived(d);
    else this.pending.push({ derived: d });
    this.onChange?.();
  }

  protected pushMemory(s: MemorySample): void {
    if (this.playing) this.model.addMemory(s);
    else this.pending.push({ memory: s });
    this.onChange?.();
  }

  /** A line for the user about the source (e.g. the listener's "rank 3 disconnected"), shown in the hint bar. */
  note(text: string | null): void {
    this.notice = text;
    this.onChange?.();
  }

  setPlaying(p: boolean): void {
    this.playing = p;
    this.notice = null;
    if (p) this.flush(Infinity);
    this.onChange?.();
  }

  setSpeed(): void {}

  /** While paused, applies the next n buffered tokens (whole batches are split as needed). */
  step(n: number): void {
    if (this.playing || n <= 0) return;
    this.flush(n);
    this.onChange?.();
  }

  seek(): void {}

  private flush(tokens: number): void {
    let left = tokens;
    while (this.pending.length > 0 && left > 0) {
      const head = this.pending[0]!;
      if ('memory' in head) {
        this.model.addMemory(head.memory);
        this.pending.shift();
        continue;
      }
      if ('counts' in head) {
        this.model.addCounts(head.counts);
        this.pending.shift();
        left -= 1;
        continue;
      }
      if ('derived' in head && !('batch' in head)) {
        this.model.addDerived(head.derived);
        this.pending.shift();
        continue;
      }
      const b = head.batch;
      if (b.length <= left) {
        this.model.add(b, head.derived);
        this.pending.shift();
        left -= b.length;
        this.pendingTokens -= b.length;
      } else {
        this.model.add(sliceBatch(b, this.model.schema, 0, left));
        head.batch = sliceBatch(b, this.model.schema, left, b.length);
        this.pendingTokens -= left;
        left = 0;
      }
    }
  }
}

/** The engine (or any producer) pushes batches and memory samples; `end()` when it finishes. */
export class LiveFeed extends PushFeed {
  readonly kind = 'live';
  start(): void {}
  stop(): void {}
  push(b: RoutingBatch, derived?: unknown): void {
    this.pushBatch(b, derived);
  }
  memory(s: MemorySample): void {
    this.pushMemory(s);
  }
  end(error?: unknown): void {
    this.ended = true;
    if (error !== undefined && error !== null) this.error = error instanceof Error ? error.message : String(error);
    this.onChange?.();
  }
}

/**
 * Feeds a RoutingStream into the model as it arrives: a live engine run, or a trace being followed. Pause
 * buffers (the producer never slows); `stop()` closes the stream (stops the engine, ends the follow).
 */
/** How a followed trace file ends right now (TraceReader's complete and truncated, read live). */
export interface FileProbe {
  readonly complete: boolean;
  readonly truncated: { bytesPresent: number } | null;
}

/** Following a trace that stops growing without its end-of-stream marker: when to say so. */
export interface FollowWatch {
  /** No new tokens for this long: the writer may have stopped (ms). */
  stallMs: number;
  /** A partial batch at the end for this long: the writer may have died mid-write (ms). */
  partialMs: number;
  /** How often to look (ms). */
  checkMs: number;
}

const FOLLOW_WATCH: FollowWatch = { stallMs: 10_000, partialMs: 3_000, checkMs: 1_000 };

export class StreamFeed extends PushFeed {
  readonly kind: 'live' | 'follow';
  private readonly stream: RoutingStream;
  private pump: Promise<void> | null = null;
  private readonly file: FileProbe | null;
  private readonly watch: FollowWatch;
  private watchTimer: NodeJS.Timeout | null = null;
  private lastGrowth = 0;
  private partialSince: number | null = null;

  /**
   * @param file when following a trace: how its end looks now (the reader's live state), so a writer that stopped
   * or died mid-batch is reported (`watch`).
   */
  constructor(
    stream: RoutingStream,
    model: RoutingModel,
    kind: 'live' | 'follow',
    opts: { file?: FileProbe; watch?: FollowWatch } = {},
  ) {
    super(model);
    this.stream = stream;
    this.kind = kind;
    this.file = opts.file ?? null;
    this.watch = opts.watch ?? FOLLOW_WATCH;
  }

  protected override pushBatch(b: RoutingBatch, derived?: unknown): void {
    this.lastGrowth = performance.now();
    super.pushBatch(b, derived);
  }

  /**
   * Says when a followed trace stops growing without its end-of-stream marker (the writer stopped or was killed),
   * and when a partial batch sits at its end (killed mid-write); the notice clears once tokens flow again.
   */
  private check(): void {
    if (this.ended || this.error || !this.file) return;
    const now = performance.now();
    const cut = this.file.truncated;
    if (cut) this.partialSince ??= now;
    else this.partialSince = null;
    let notice: string | null = null;
    if (this.partialSince !== null && now - this.partialSince >= this.watch.partialMs)
      notice = `a partial batch (${cut!.bytesPresent.toLocaleString('en-US')} bytes) has sat at the end for ${Math.round((now - this.partialSince) / 1000)} s: the writer may have died mid-write`;
    else if (!this.file.complete && now - this.lastGrowth >= this.watch.stallMs)
      notice = `no new tokens for ${Math.round((now - this.lastGrowth) / 1000)} s and no end-of-stream marker: the writer may have stopped`;
    if (notice !== this.notice) {
      this.notice = notice;
      this.onChange?.();
    }
  }

  start(): void {
    if (this.kind === 'follow' && this.file && !this.watchTimer && !this.pump) {
      this.lastGrowth = performance.now();
      this.watchTimer = setInterval(() => this.check(), this.watch.checkMs);
    }
    this.pump ??= (async () => {
      try {
        for await (const item of this.stream.items()) {
          if (item.kind === 'tokens') {
            for (const m of item.memory) this.pushMemory(m.sample);
            this.pushBatch(item.batch, item.derived);
          } else if (item.kind === 'counts') this.pushCounts(item.batch);
          else if (item.kind === 'memory') this.pushMemory(item.sample);
          else if (item.kind === 'derived') this.pushDerived(item.derived);
        }
        const end = await this.stream.end();
        this.error = end.error;
        this.ended = true;
      } catch (e) {
        this.error = e instanceof Error ? e.message : String(e);
        this.ended = true;
      }
      this.notice = null;
      this.stopWatch();
      this.onChange?.();
    })();
  }

  stop(): void {
    this.stopWatch();
    this.stream.close();
  }

  private stopWatch(): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchTimer = null;
  }

  /** Resolves once the stream has ended and everything it yielded reached the feed (immediately if never started). */
  drained(): Promise<void> {
    return this.pump ?? Promise.resolve();
  }
}
