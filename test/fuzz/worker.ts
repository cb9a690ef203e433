/**
 * Runs CLI invocations in-process for the fuzz test: `runCli` exactly as the bin calls it, stdout and stderr
 * captured. Posts { code, stdout, stderr, ms, rss } per case; the parent enforces time and memory.
 */
import { parentPort } from 'node:worker_threads';
import { runCli } from '../../src/cli-main.js';

// `node --test dist/test/` also runs this file on its own: without a parent it does nothing.
const port = parentPort;
let out: string[] = [];
let err: string[] = [];
const capture = (into: () => string[]) =>
  ((chunk: unknown, enc?: unknown, cb?: unknown) => {
    into().push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
    const done = typeof enc === 'function' ? enc : cb;
    if (typeof done === 'function') queueMicrotask(() => (done as () => void)());
    return true;
  }) as typeof process.stdout.write;
if (port) {
  process.stdout.write = capture(() => out);
  process.stderr.write = capture(() => err);
}

port?.on('message', async (m: { id: number; argv: string[] }) => {
  out = [];
  err = [];
  process.exitCode = undefined;
  const t0 = performance.now();
  let code: number;
  try {
    code = await runCli(['node', 'moescope', ...m.argv]);
  } catch (e) {
    err.push(`uncaught: ${(e as Error)?.stack ?? String(e)}\n`);
    code = 99;
  }
  const stdout = out.join('');
  port!.postMessage({
    id: m.id,
    code,
    stdout: stdout.length > 4096 ? stdout.slice(0, 4096) : stdout,
    stderr: err.join(''),
    ms: performance.now() - t0,
    rss: process.memoryUsage().rss,
  });
});
