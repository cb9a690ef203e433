/** The listener's tests: a real `moescope listen` child process, real producer processes, real sockets. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ProducerOptions } from './producer.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const PRODUCER = fileURLToPath(new URL('./producer.js', import.meta.url));

export interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function track(child: ChildProcess): Proc {
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((res) =>
    child.on('close', (code, signal) => res(code ?? (signal ? -1 : null))),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Starts `moescope listen ARGS` and waits for its "listening on" line; returns the process and its address. */
export async function startListener(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Proc & { address: string }> {
  const p = track(
    spawn(process.execPath, [CLI, 'listen', ...args], {
      env: { ...process.env, ...env, CI: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const address = await new Promise<string>((res, rej) => {
    const t = setInterval(() => {
      const m = /listening on (\S+)/.exec(p.stderr());
      if (m) {
        clearInterval(t);
        res(m[1]!);
      }
    }, 20);
    void p.exited.then((code) => {
      clearInterval(t);
      rej(new Error(`listener exited ${code} before listening: ${p.stderr()}`));
    });
  });
  return { ...p, address };
}

/** Runs a producer process to its end. */
export function produce(o: ProducerOptions): Proc {
  return track(spawn(process.execPath, [PRODUCER, JSON.stringify(o)], { stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** Waits until `cond()` holds (polling), or fails after `ms`. */
export async function until(cond: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Assignment counts L·E of every token of a batch list (the independent reference: a plain loop). */
export function countsOf(
  batches: Iterable<{ length: number; experts: Uint16Array }>,
  L: number,
  E: number,
  K: number,
): Float64Array {
  const c = new Float64Array(L * E);
  for (const b of batches)
    for (let t = 0; t < b.length; t++)
      for (let l = 0; l < L; l++) for (let k = 0; k < K; k++) c[l * E + b.experts[(t * L + l) * K + k]!]!++;
  return c;
}
