/**
 * The listener behind `moescope listen`: accepts any number of producer connections (one per rank; a producer
 * may reconnect) on TCP or a unix socket, checks each hello (token first, before a byte of data is parsed), parses
 * each connection's Arrow IPC stream incrementally, and merges the ranks into ONE stream of RoutingBatches:
 * every row tagged with its producer's rank, in arrival order (docs/live.md § Merging ranks).
 *
 * Failures stay local to their connection: a wrong token, a bad hello, garbage, a schema that disagrees with the
 * first producer's (other layers — pipeline stages — or other experts), a killed producer: one line on `log`, that
 * connection closes, every complete batch already received has been emitted, and the other ranks go on.
 *
 * Shaped like the engine's GenerationHandle (`ready`, `done`, `on('batch'|'memory')`, `stop()`), so the live TUI
 * takes it as it takes `run`'s engine.
 */
import { EventEmitter } from 'node:events';
import { existsSync, lstatSync, chmodSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, isIPv4, isIPv6, type Server, type Socket } from 'node:net';
import type { OptionalColumn, RoutingBatch, RoutingSchema } from '../core/batch.js';
import { describeSchema, sliceBatch } from '../core/batch.js';
import type { MemorySample } from '../core/memory.js';
import type { StreamMeta } from '../core/stream.js';
import { UserError } from '../core/errors.js';
import { MAX_HELLO_BYTES, HelloError, answer, parseHello, printable, tokenMatches, type Hello } from './hello.js';
import { IpcStreamParser, ProtocolError, DEFAULT_MAX_BODY_BYTES } from './stream-parser.js';
import { schemaDisagreement } from './merge.js';

export interface ListenOptions {
  /** TCP address (default 127.0.0.1); ignored with `unix`. */
  host?: string;
  /** TCP port (default 7878; 0 picks a free one, see `address`). */
  port?: number;
  /** Unix socket path instead of TCP. */
  unix?: string | null;
  /** Shared secret every hello must carry; required for a non-loopback TCP address. */
  token?: string | null;
  /** Largest record-batch body accepted from a producer. */
  maxBodyBytes?: number;
  /** A connection that sends no hello within this long is dropped (ms, default 10 s). */
  helloTimeoutMs?: number;
}

/** What the listener knows about one rank (over all its connections). */
export interface RankState {
  rank: number;
  host: string;
  pid: number;
  world: number;
  connected: boolean;
  connections: number;
  tokens: number;
  /** Steps the producer reported dropped (sum of its `dropped` column). */
  dropped: number;
  /** Largest step seen, or null when it gives none. */
  step: number | null;
  bytes: number;
  /** Why its last connection ended badly, if it did. */
  error: string | null;
}

export interface MergedBatch {
  batch: RoutingBatch;
  rank: number;
}

export const DEFAULT_PORT = 7878;
export const MERGED_COLUMNS: readonly OptionalColumn[] = ['step', 'rank', 'dropped'];

/** Whether a host string names the loopback interface (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIPv6(h)) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}

interface Conn {
  socket: Socket;
  peer: string;
  hello: Hello | null;
  parser: IpcStreamParser | null;
  /** Accepted: its schema agreed (or it set the reference). */
  accepted: boolean;
  tokens: number;
  closedWhy: string | null;
}

export class Listener {
  readonly ready: Promise<{ schema: RoutingSchema; meta: StreamMeta }>;
  readonly done: Promise<void>;
  private resolveReady!: (v: { schema: RoutingSchema; meta: StreamMeta }) => void;
  private rejectReady!: (e: unknown) => void;
  private resolveDone!: () => void;
  private readonly events = new EventEmitter();
  private server: Server | null = null;
  private readonly conns = new Set<Conn>();
  private readonly rankState = new Map<number, RankState>();
  private readonly live = new Map<number, Conn>();
  private reference: { schema: RoutingSchema; meta: StreamMeta; rank: number } | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private everConnected = false;
  private stopped = false;
  private readonly token: string | null;
  private readonly maxBody: number;
  private readonly helloTimeoutMs: number;
  /** Tokens emitted (all ranks). */
  tokens = 0;
  /** Where it listens: "127.0.0.1:7878" or the socket path. */
  address = '';
  port = 0;

  constructor(private readonly opts: ListenOptions = {}) {
    this.token = opts.token ?? null;
    this.maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.helloTimeoutMs = opts.helloTimeoutMs ?? 10_000;
    this.ready = new Promise((res, rej) => {
      this.resolveReady = res;
      this.rejectReady = rej;
    });
    this.ready.catch(() => {});
    this.done = new Promise((res) => (this.resolveDone = res));
    this.events.setMaxListeners(0);
  }

  on(event: 'batch', listener: (e: MergedBatch) => void): this;
  on(event: 'memory', listener: (e: { sample: MemorySample; rank: number }) => void): this;
  /** One line for the user: connections, refusals, errors (no `moescope:` prefix, no newline). */
  on(event: 'log', listener: (line: string) => void): this;
  /** Something about a rank changed (connected, disconnected, its counts). */
  on(event: 'ranks', listener: () => void): this;
  /** The first producer's schema arrived: the merged stream's schema and meta. Emitted before its first batch. */
  on(event: 'stream', listener: (e: { schema: RoutingSchema; meta: StreamMeta }) => void): this;
  on(event: string, listener: (...args: never[]) => void): this {
    this.events.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Binds; rejects with a UserError (address in use, non-loopback without token, …). */
  async start(): Promise<void> {
    const { unix } = this.opts;
    const host = this.opts.host ?? '127.0.0.1';
    if (!unix && !isLoopback(host) && !this.token)
      throw new UserError(
        `--host ${host} is not a loopback address: anyone who can reach it could send data, so give --token T (or MOESCOPE_TOKEN)`,
      );
    if (unix) await removeStaleSocket(unix);
    const server = createServer((s) => this.accept(s));
    server.maxConnections = 4096;
    await new Promise<void>((res, rej) => {
      server.once('error', (e: NodeJS.ErrnoException) => {
        const where = unix ?? `${host}:${this.opts.port ?? DEFAULT_PORT}`;
        rej(
          new UserError(`cannot listen on ${where}: ${e.code === 'EADDRINUSE' ? 'address already in use' : e.message}`),
        );
      });
      if (unix) server.listen(unix, () => res());
      else server.listen(this.opts.port ?? DEFAULT_PORT, host, () => res());
    });
    server.on('error', (e) => this.log(`listener error: ${e.message}`));
    this.server = server;
    if (unix) {
      chmodSync(unix, 0o600); // only this user's processes may connect
      this.address = unix;
    } else {
      const a = server.address();
      this.port = typeof a === 'object' && a ? a.port : 0;
      this.address = `${host.includes(':') ? `[${host}]` : host}:${this.port}`;
    }
  }

  /** The merged stream's schema and meta, once the first producer's schema arrived. */
  get schema(): RoutingSchema | null {
    return this.reference?.schema ?? null;
  }

  ranks(): RankState[] {
    return [...this.rankState.values()].sort((a, b) => a.rank - b.rank);
  }

  get connected(): number {
    return this.live.size;
  }

  /**
   * Ends the listener `seconds` after the last producer disconnected (once one has connected). A new connection
   * cancels the countdown.
   */
  exitWhenIdle(seconds: number): void {
    this.idleSeconds = seconds;
    this.checkIdle();
  }
  private idleSeconds: number | null = null;

  /**
   * Stops reading every producer (TCP backpressure: they block, or — the probe — drop whole steps and count them)
   * until resume(): what a consumer slower than the producers uses to bound the listener's memory. Each `holder`
   * (the stream's queue, the recording's disk backlog) pauses and resumes for itself; reading resumes when none
   * holds it.
   */
  pause(holder = 'consumer'): void {
    const was = this.holds.size > 0;
    this.holds.add(holder);
    if (!was) for (const c of this.live.values()) c.socket.pause();
  }

  resume(holder = 'consumer'): void {
    if (!this.holds.delete(holder) || this.holds.size > 0) return;
    for (const c of this.live.values()) c.socket.resume();
  }
  private readonly holds = new Set<string>();

  /** Stops accepting, closes every connection (their complete batches were already emitted), resolves `done`. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    for (const c of this.conns) c.socket.destroy();
    const server = this.server;
    if (server) await new Promise<void>((res) => server.close(() => res()));
    if (this.opts.unix) {
      try {
        unlinkSync(this.opts.unix);
      } catch {
        /* already gone */
      }
    }
    this.rejectReady(new UserError('no producer connected'));
    this.resolveDone();
  }

  private log(line: string): void {
    this.events.emit('log', line);
  }

  private accept(socket: Socket): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    if (this.idleTimer) {
      clearTimeout(this.idleTimer); // any connection, even one still saying hello, ends the idle countdown
      this.idleTimer = null;
    }
    const peer = this.opts.unix ? 'unix socket' : `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const c: Conn = { socket, peer, hello: null, parser: null, accepted: false, tokens: 0, closedWhy: null };
    this.conns.add(c);
    let head: Buffer[] = [];
    let headBytes = 0;
    const timer = setTimeout(
      () => this.refuse(c, `no hello within ${this.helloTimeoutMs / 1000} s`),
      this.helloTimeoutMs,
    );
    timer.unref();
    const onHead = (data: Buffer) => {
      if (c.closedWhy !== null) return;
      const nl = data.indexOf(0x0a);
      if (nl < 0) {
        head.push(data);
        headBytes += data.length;
        if (headBytes > MAX_HELLO_BYTES) this.refuse(c, `hello line longer than ${MAX_HELLO_BYTES} bytes`);
        return;
      }
      if (headBytes + nl + 1 > MAX_HELLO_BYTES) {
        this.refuse(c, `hello line longer than ${MAX_HELLO_BYTES} bytes`);
        return;
      }
      clearTimeout(timer);
      socket.off('data', onHead);
      socket.pause(); // nothing after the hello is parsed before the hello is accepted
      const line = Buffer.concat([...head, data.subarray(0, nl)]);
      const rest = data.subarray(nl + 1);
      head = [];
      this.onHello(c, line, rest);
    };
    socket.on('data', onHead);
    socket.on('error', () => {}); // ECONNRESET etc.: handled as a close
    socket.on('close', () => {
      clearTimeout(timer);
      this.onClose(c);
    });
  }

  private refuse(c: Conn, why: string): void {
    const who = c.hello ? `rank ${c.hello.rank} (${printable(c.hello.host)}:${c.hello.pid}, ${c.peer})` : c.peer;
    c.closedWhy = why;
    this.log(`refused ${who}: ${why}`);
    c.socket.end(answer(false, why));
    setTimeout(() => c.socket.destroy(), 1000).unref();
  }

  private onHello(c: Conn, line: Buffer, rest: Buffer): void {
    let hello: Hello;
    try {
      hello = parseHello(line);
    } catch (e) {
      if (e instanceof HelloError) return this.refuse(c, e.message);
      throw e;
    }
    if (!tokenMatches(this.token, hello.token)) {
      c.hello = hello;
      return this.refuse(c, hello.token === null ? 'this listener needs a token (MOESCOPE_TOKEN)' : 'wrong token');
    }
    const prev = this.live.get(hello.rank);
    if (prev?.hello) {
      if (prev.hello.host === hello.host && prev.hello.pid === hello.pid) {
        // The same process reconnecting while its old connection still looks open (a network cut): the new one wins.
        this.log(`rank ${hello.rank} reconnected; closing its previous connection`);
        prev.closedWhy = 'replaced by a new connection';
        prev.socket.destroy();
        this.live.delete(hello.rank);
      } else {
        c.hello = hello;
        return this.refuse(
          c,
          `rank ${hello.rank} is already connected (${printable(prev.hello.host)}:${prev.hello.pid}); each rank connects once`,
        );
      }
    }
    c.hello = hello;
    const who = `rank ${hello.rank}`;
    c.parser = new IpcStreamParser(who, this.maxBody);
    this.live.set(hello.rank, c);
    this.everConnected = true;
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
    const st = this.rankState.get(hello.rank);
    if (st) {
      st.connected = true;
      st.connections++;
      st.host = hello.host;
      st.pid = hello.pid;
      st.error = null;
    } else
      this.rankState.set(hello.rank, {
        rank: hello.rank,
        host: hello.host,
        pid: hello.pid,
        world: hello.world,
        connected: true,
        connections: 1,
        tokens: 0,
        dropped: 0,
        step: null,
        bytes: 0,
        error: null,
      });
    this.log(
      `rank ${hello.rank}/${hello.world} connected from ${printable(hello.host)} (pid ${hello.pid}, ${c.peer})${st ? ' again' : ''}`,
    );
    this.events.emit('ranks');
    c.socket.write(answer(true));
    c.socket.on('data', (d: Buffer) => this.onData(c, d));
    if (rest.length) this.onData(c, rest);
    if (this.holds.size === 0) c.socket.resume();
  }

  private onData(c: Conn, data: Buffer): void {
    if (c.closedWhy !== null || !c.parser || !c.hello) return;
    const rank = c.hello.rank;
    const st = this.rankState.get(rank)!;
    st.bytes += data.length;
    try {
      for (const ev of c.parser.push(data)) {
        if (ev.kind === 'schema') {
          const why = this.checkSchema(rank, ev.header.schema, ev.header.meta, c.hello.world);
          if (why) throw new ProtocolError(why);
          c.accepted = true;
        } else if (ev.kind === 'batch') {
          const b = ev.batch;
          if (b.length === 0) continue;
          if (b.rank) {
            for (let i = 0; i < b.length; i++)
              if (b.rank[i] !== rank)
                throw new ProtocolError(`its rows say rank ${b.rank[i]} but its hello said rank ${rank}`);
          } else b.rank = new Uint16Array(b.length).fill(rank);
          if (b.dropped) for (let i = 0; i < b.length; i++) st.dropped += b.dropped[i]!;
          if (b.step) {
            let m = st.step ?? -1;
            for (let i = 0; i < b.length; i++) if (b.step[i] !== 0xffffffff && b.step[i]! > m) m = b.step[i]!;
            if (m >= 0) st.step = m;
          }
          c.tokens += b.length;
          st.tokens += b.length;
          this.tokens += b.length;
          this.emitBatch(b, ev.memory, rank);
        }
      }
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.fail(c, e.message);
    }
  }

  /**
   * Emits a batch in stream order with its memory samples: each sample is emitted just before the row that carries
   * it (the batch is split there), so a consumer that records writes it on that same row.
   */
  private emitBatch(b: RoutingBatch, memory: readonly { row: number; sample: MemorySample }[], rank: number): void {
    if (memory.length === 0) {
      this.events.emit('batch', { batch: b, rank });
      return;
    }
    const schema = this.reference!.schema;
    let from = 0;
    for (let i = 0; i < memory.length; ) {
      const row = memory[i]!.row;
      if (row > from) this.events.emit('batch', { batch: sliceBatch(b, schema, from, row), rank });
      from = row;
      for (; i < memory.length && memory[i]!.row === row; i++)
        this.events.emit('memory', { sample: memory[i]!.sample, rank });
    }
    this.events.emit('batch', { batch: from === 0 ? b : sliceBatch(b, schema, from, b.length), rank });
  }

  /** Why a producer's schema cannot join the merged stream, or null (the first one sets the reference). */
  private checkSchema(rank: number, schema: RoutingSchema, meta: StreamMeta, world: number): string | null {
    if (!this.reference) {
      this.reference = { schema, meta: { ...meta, source: 'listen', world: Math.max(world, meta.world ?? 1) }, rank };
      this.events.emit('stream', { schema: this.reference.schema, meta: this.reference.meta });
      this.resolveReady({ schema: this.reference.schema, meta: this.reference.meta });
      this.log(
        `stream: ${describeSchema(schema)} (from rank ${rank}${meta.model ? `, ${printable(meta.model)}` : ''})`,
      );
      return null;
    }
    // Layers may differ in E and K (mixed shapes): schemaDisagreement compares each layer's own shape.
    const d = schemaDisagreement(this.reference.schema, schema);
    if (d === null) {
      if (world > (this.reference.meta.world ?? 1)) this.reference.meta.world = world;
      return null;
    }
    return `its routing schema differs from rank ${this.reference.rank}'s: ${d}`;
  }

  private fail(c: Conn, why: string): void {
    const rank = c.hello!.rank;
    c.closedWhy = why;
    const st = this.rankState.get(rank)!;
    st.error = why;
    const kept = c.tokens > 0 ? `; its ${c.tokens.toLocaleString('en-US')} tokens before that are kept` : '';
    this.log(`rank ${rank}: ${printable(why.replace(/^rank \d+: /, ''), 300)}; connection closed${kept}`);
    c.socket.destroy();
  }

  private onClose(c: Conn): void {
    this.conns.delete(c);
    const h = c.hello;
    if (h && this.live.get(h.rank) === c) {
      this.live.delete(h.rank);
      const st = this.rankState.get(h.rank)!;
      st.connected = false;
      if (c.closedWhy === null && !this.stopped) {
        const p = c.parser!;
        const n = c.tokens.toLocaleString('en-US');
        if (p.complete) this.log(`rank ${h.rank} finished (${n} tokens)`);
        else {
          const lost =
            p.pendingBytes > 0
              ? `; the ${p.pendingBytes.toLocaleString('en-US')} bytes of its last, incomplete batch are lost`
              : '';
          st.error = 'disconnected without end-of-stream';
          this.log(`rank ${h.rank} disconnected without end-of-stream (${n} tokens kept${lost})`);
        }
      }
      this.events.emit('ranks');
    }
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.idleSeconds === null || this.stopped || !this.everConnected || this.conns.size > 0 || this.idleTimer)
      return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.conns.size === 0) void this.stop();
    }, this.idleSeconds * 1000);
  }
}

/**
 * A unix socket path left behind by a listener that died: removed when nothing answers on it. Anything else at
 * that path (a file, a live socket) is refused: an output never replaces what is there.
 */
async function removeStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const st = lstatSync(path);
  if (!st.isSocket()) throw new UserError(`--unix ${path} exists and is not a socket; not replacing it`);
  const alive = await new Promise<boolean>((res) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
  if (alive) throw new UserError(`--unix ${path}: another listener is already running there`);
  unlinkSync(path);
}
