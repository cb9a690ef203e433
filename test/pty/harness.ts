/**
 * Journeys in a real pseudo-terminal: the CLI runs under node-pty, its output is fed to @xterm/headless, and tests
 * read the screen a person would see. One key per write (several in one write arrive as a paste); waits poll the
 * screen with a timeout, never sleep.
 */
import { spawn as ptySpawn, type IPty } from 'node-pty';
import xterm from '@xterm/headless';
import { fileURLToPath } from 'node:url';

const { Terminal } = xterm;
type Term = InstanceType<typeof Terminal>;

/** The CLI of the dist folder these tests were compiled into. */
export const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
/** The same CLI bundled (tools/bundle.mjs): what `npm start` and the `moescope` bin run. */
export const BUNDLED_CLI = fileURLToPath(new URL('../../bin/moescope.js', import.meta.url));

export const KEY = {
  up: '\x1b[A',
  down: '\x1b[B',
  right: '\x1b[C',
  left: '\x1b[D',
  enter: '\r',
  escape: '\x1b',
  tab: '\t',
} as const;

export interface StartOptions {
  cols?: number;
  rows?: number;
  env?: Record<string, string>;
  /** The script to run (default CLI). */
  cli?: string;
}

export class PtySession {
  readonly term: Term;
  readonly proc: IPty;
  /** Everything the program wrote. */
  raw = '';
  readonly exited: Promise<{ exitCode: number; signal?: number }>;
  private parsed: Promise<void> = Promise.resolve();

  private constructor(args: string[], opts: StartOptions) {
    const cols = opts.cols ?? 120;
    const rows = opts.rows ?? 40;
    this.term = new Terminal({ cols, rows, allowProposedApi: true });
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    delete env.NO_COLOR;
    delete env.FORCE_COLOR;
    Object.assign(env, { TERM: 'xterm-256color', COLORTERM: '', CI: 'false' }, opts.env ?? {});
    this.proc = ptySpawn(process.execPath, [opts.cli ?? CLI, ...args], {
      name: 'xterm-256color',
      cols,
      rows,
      cwd: process.cwd(),
      env,
    });
    this.proc.onData((d) => {
      this.raw += d;
      this.parsed = this.parsed.then(() => new Promise<void>((r) => this.term.write(d, r)));
    });
    this.exited = new Promise((resolve) => this.proc.onExit((e) => resolve(e)));
  }

  static start(args: string[], opts: StartOptions = {}): PtySession {
    return new PtySession(args, opts);
  }

  /** The visible screen, one string per row (trailing spaces trimmed). */
  lines(): string[] {
    const b = this.term.buffer.active;
    const out: string[] = [];
    for (let y = 0; y < this.term.rows; y++) out.push(b.getLine(b.viewportY + y)?.translateToString(true) ?? '');
    return out;
  }

  screen(): string {
    return this.lines().join('\n');
  }

  /** Which buffer is shown: 'alternate' while the TUI runs, 'normal' after it restored the terminal. */
  bufferType(): string {
    return this.term.buffer.active.type;
  }

  /** Waits until the screen matches; fails with the screen when it does not within the timeout. */
  async waitFor(what: RegExp | string | ((screen: string) => boolean), timeoutMs = 15_000): Promise<string> {
    const test =
      typeof what === 'function'
        ? what
        : typeof what === 'string'
          ? (s: string) => s.includes(what)
          : (s: string) => what.test(s);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.parsed;
      const s = this.screen();
      if (test(s)) return s;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${String(what)}; the screen shows:\n${s}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Sends one key (one write). */
  press(key: string): void {
    this.proc.write(key);
  }

  resize(cols: number, rows: number): void {
    this.term.resize(cols, rows);
    this.proc.resize(cols, rows);
  }

  kill(): void {
    try {
      this.proc.kill();
    } catch {
      // already gone
    }
  }
}

/** SGR sequences in `s` that set a colour (what NO_COLOR forbids); bold, dim, inverse and resets are not colours. */
export function colourEscapes(s: string): string[] {
  // eslint-disable-next-line no-control-regex
  const sgr = s.match(/\x1b\[[0-9;]*m/g) ?? [];
  return sgr.filter((e) => {
    const params = e.slice(2, -1).split(';').map(Number);
    for (let i = 0; i < params.length; i++) {
      const p = params[i]!;
      if (p === 38 || p === 48) return true;
      if ((p >= 30 && p <= 37) || (p >= 40 && p <= 47) || (p >= 90 && p <= 97) || (p >= 100 && p <= 107)) return true;
    }
    return false;
  });
}
