/**
 * A producer process for the listener's tests and bench: speaks the wire protocol (docs/live.md) like the Python
 * probe does, replaying the bytes of a trace file (schema message, record batches — optionally `loops` times —,
 * end-of-stream marker). Options as one JSON argument; prints the listener's answer line, exits 0 when accepted,
 * 3 when refused.
 *
 *   node dist/test/listen/producer.js '{"connect":"tcp://127.0.0.1:7878","trace":"r0.arrows","rank":0,"world":2}'
 */
import { once } from 'node:events';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { createConnection, type Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { scanMessageAt } from '../../src/trace/ipc.js';

export interface ProducerOptions {
  connect: string;
  rank: number;
  world: number;
  token?: string | null;
  /** Raw hello line (without `\n`) instead of the proper one. */
  helloLine?: string;
  trace?: string;
  /** Send the record batches this many times (default 1). */
  loops?: number;
  /** Bytes (base64) to send after the hello instead of a trace. */
  rawBase64?: string;
  /** Send the end-of-stream marker (default true). */
  eos?: boolean;
  /** After this many data bytes, SIGKILL ourselves. */
  killAfterBytes?: number;
  /** Bytes per socket write (default 256 KiB). */
  chunk?: number;
  /** Do not wait for the answer before sending (default: wait). */
  eager?: boolean;
  /** Milliseconds to wait before sending the end-of-stream marker. */
  holdMs?: number;
}

/** The schema message, the record-batch messages and whether there is an EOS, as byte slices of the file. */
export function traceMessages(path: string): { schema: Buffer; batches: Buffer[] } {
  const bytes = readFileSync(path);
  const fd = openSync(path, 'r');
  try {
    const size = statSync(path).size;
    const out: Buffer[] = [];
    let at = 0;
    for (;;) {
      const m = scanMessageAt(fd, at, size, path);
      if (m === null || m.kind !== 'message') break;
      out.push(bytes.subarray(m.start, m.end));
      at = m.end;
    }
    return { schema: out[0]!, batches: out.slice(1) };
  } finally {
    closeSync(fd);
  }
}

async function connect(target: string): Promise<Socket> {
  const s = target.startsWith('unix:')
    ? createConnection(target.slice(5))
    : (() => {
        const u = new URL(target);
        return createConnection(Number(u.port), u.hostname.replace(/^\[|\]$/g, ''));
      })();
  await once(s, 'connect');
  s.setNoDelay(true);
  return s;
}

/** The answer line (the socket stays open; the listener sends nothing after it). */
function readLine(s: Socket): Promise<string> {
  return new Promise((res) => {
    let acc = '';
    const done = () => {
      s.off('data', onData);
      s.off('close', done);
      res(acc.split('\n')[0]!);
    };
    const onData = (d: Buffer) => {
      acc += d.toString('utf8');
      if (acc.includes('\n')) done();
    };
    s.on('data', onData);
    s.on('close', done);
  });
}

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2]!) as ProducerOptions;
  const s = await connect(o.connect);
  s.on('error', () => {});
  const hello =
    o.helloLine ??
    JSON.stringify({
      moescope: 1,
      token: o.token ?? null,
      rank: o.rank,
      world: o.world,
      host: hostname(),
      pid: process.pid,
    });
  s.write(hello + '\n');
  const parts: Buffer[] = [];
  if (o.rawBase64 !== undefined) parts.push(Buffer.from(o.rawBase64, 'base64'));
  if (o.trace) {
    const m = traceMessages(o.trace);
    parts.push(m.schema);
    for (let i = 0; i < (o.loops ?? 1); i++) parts.push(...m.batches);
  }
  if (!o.eager) {
    const answer = await readLine(s);
    process.stdout.write(answer + '\n');
    if (!/"ok":\s*true/.test(answer)) {
      s.destroy();
      process.exitCode = 3;
      return;
    }
  }
  const chunk = o.chunk ?? 256 * 1024;
  let sent = 0;
  for (const p of parts) {
    for (let i = 0; i < p.length; i += chunk) {
      let piece = p.subarray(i, Math.min(p.length, i + chunk));
      if (o.killAfterBytes !== undefined && sent + piece.length >= o.killAfterBytes) {
        piece = piece.subarray(0, o.killAfterBytes - sent);
        s.write(piece, () => process.kill(process.pid, 'SIGKILL'));
        return;
      }
      sent += piece.length;
      if (!s.write(piece)) await once(s, 'drain');
    }
  }
  if (o.holdMs) await new Promise((r) => setTimeout(r, o.holdMs));
  if (o.eos !== false) s.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]));
  s.end();
  await once(s, 'close');
  if (o.eager) process.stdout.write('sent\n');
}

// Runs only as a producer process (with its JSON argument), not when the test runner loads the folder.
if (process.argv[2] && process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  main().catch((e: Error) => {
    // The listener closed on us (it refused our stream): say so and exit 4, as a real producer would.
    process.stdout.write(`producer: ${e.message}\n`);
    process.exit(4);
  });
