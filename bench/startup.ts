/**
 * Startup as a user sees it, in a real pseudo-terminal (node-pty + @xterm/headless, as test/pty does): the time
 * from spawning the command to its first frame on screen (any moescope screen: the loading screen counts), and to
 * the first heatmap drawn with data, for `npm start` (the live demo on the bundled model), the same started as
 * `node dist/bin/moescope.js` (the bundle, tools/bundle.mjs) and as `node dist/src/cli.js` (tsc's output, the same
 * code unbundled), and `replay` of the bundled demo trace both ways — and, as the same-run floor, a Node process
 * that prints at once. Runs alternate between the commands; the summary is min / median / max over the runs.
 *
 * With the wall times, the CPU time the command's processes had used when the heatmap appeared (every thread of
 * the process tree, from /proc): on a loaded machine the wall times swing with the other jobs, the CPU does not.
 *
 *   node dist/bench/startup.js [--runs 5] [--json] [--earlier-cli PATH] [--earlier DIR]
 *
 * --earlier-cli adds the live demo of another build (its dist/src/cli.js, beside its own package.json and
 * fixtures) to the rotation, for a before / after measured in the same run. --earlier adds another built checkout
 * as users start it: `npm start` there, its bundle's live demo and its bundle's replay of the demo trace.
 *
 * Goals (issue 17): first frame ≤ 0.5 s, first heatmap ≤ 2 s on the bundled model, medians.
 */
import xterm from '@xterm/headless';
import { spawn } from 'node-pty';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BENCH_DIR,
  flag,
  fmtSummary,
  isMain,
  loadLine,
  machineLine,
  numArg,
  strArg,
  summarise,
  type Summary,
} from './common.js';

const ROOT = join(BENCH_DIR, '..', '..');
const BUNDLE = join(ROOT, 'dist', 'bin', 'moescope.js');
const UNBUNDLED = join(ROOT, 'dist', 'src', 'cli.js');
const DEMO_TRACE = join(ROOT, 'fixtures', 'traces', 'tiny-moe-demo.arrows');

interface Variant {
  name: string;
  cmd: string;
  args: string[];
  /** Where it runs (default: this checkout). */
  cwd?: string;
  /** Draws no heatmap: done at its first frame. */
  floor?: boolean;
}

const VARIANTS: Variant[] = [
  // The floor: a Node process that writes a moescope-looking line at once (what starting Node costs here).
  {
    name: 'node -e (prints at once)',
    cmd: process.execPath,
    args: ['-e', "process.stdout.write('moescope live floor\\n'); setTimeout(() => {}, 60000)"],
    floor: true,
  },
  { name: 'npm start (live demo)', cmd: 'npm', args: ['start', '--silent'] },
  { name: 'bundle: live demo', cmd: process.execPath, args: [BUNDLE] },
  { name: 'unbundled: live demo', cmd: process.execPath, args: [UNBUNDLED] },
  { name: 'bundle: replay demo trace', cmd: process.execPath, args: [BUNDLE, 'replay', DEMO_TRACE] },
  { name: 'unbundled: replay demo trace', cmd: process.execPath, args: [UNBUNDLED, 'replay', DEMO_TRACE] },
];

const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** CPU time (user + system, every thread) of a process and its descendants, ms; NaN without /proc. */
function treeCpuMs(root: number): number {
  const stat = new Map<number, { ppid: number; ticks: number }>();
  try {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        // Fields after the command name (which may hold spaces): state ppid … utime(14) stime(15).
        const s = readFileSync(`/proc/${d}/stat`, 'utf8');
        const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
        stat.set(Number(d), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
      } catch {
        // exited meanwhile
      }
    }
  } catch {
    return NaN;
  }
  let ticks = 0;
  const todo = [root];
  while (todo.length) {
    const p = todo.pop()!;
    ticks += stat.get(p)?.ticks ?? 0;
    for (const [c, x] of stat) if (x.ppid === p) todo.push(c);
  }
  return ticks * TICK_MS;
}

/** A moescope screen (loading or the TUI), not npm's banner. */
const FIRST_FRAME = /moescope (live|replay)/;
/** A heatmap row with data (a layer label followed by cells). */
const HEATMAP = /^[ !▶]L\d+\s+[█◆▓▒░]/m;

async function once(v: Variant): Promise<{ first: number; heatmap: number; cpu: number; cpuFirst: number }> {
  const cols = 120;
  const rows = 36;
  const term = new xterm.Terminal({ cols, rows, allowProposedApi: true });
  const env: Record<string, string> = {};
  for (const [k, val] of Object.entries(process.env)) if (val !== undefined) env[k] = val;
  Object.assign(env, { TERM: 'xterm-256color', CI: 'false', NO_COLOR: '' });
  const t0 = performance.now();
  const p = spawn(v.cmd, v.args, { name: 'xterm-256color', cols, rows, cwd: v.cwd ?? ROOT, env });
  let first = NaN;
  let heatmap = NaN;
  let cpu = NaN;
  let cpuFirst = NaN;
  let parsed = Promise.resolve();
  return await new Promise((resolve, reject) => {
    const timeout = setTimeout(() => finish(new Error(`${v.name}: no heatmap within 60 s`)), 60_000);
    const finish = (e?: Error) => {
      clearTimeout(timeout);
      try {
        p.kill();
      } catch {
        // gone
      }
      term.dispose();
      if (e) reject(e);
      else resolve({ first, heatmap, cpu, cpuFirst });
    };
    p.onData((d) => {
      const at = performance.now() - t0;
      parsed = parsed.then(
        () =>
          new Promise<void>((r) =>
            term.write(d, () => {
              const b = term.buffer.active;
              let screen = '';
              for (let y = 0; y < rows; y++)
                screen += (b.getLine(b.viewportY + y)?.translateToString(true) ?? '') + '\n';
              if (Number.isNaN(first) && FIRST_FRAME.test(screen)) {
                first = at;
                cpuFirst = treeCpuMs(p.pid);
                if (v.floor) {
                  heatmap = at;
                  cpu = treeCpuMs(p.pid);
                  finish();
                }
              }
              if (Number.isNaN(heatmap) && HEATMAP.test(screen) && /Load per expert/.test(screen)) {
                heatmap = at;
                cpu = treeCpuMs(p.pid);
                finish();
              }
              r();
            }),
          ),
      );
    });
    p.onExit((e) => {
      if (Number.isNaN(heatmap)) finish(new Error(`${v.name} exited ${e.exitCode} before a heatmap`));
    });
  });
}

export interface StartupResult {
  name: string;
  floor: boolean;
  first: Summary;
  heatmap: Summary;
  /** CPU used by the first heatmap (the floor: by its first frame). */
  cpu: Summary;
  /** CPU used by the first frame (read just after it was seen: a slight over-estimate). */
  cpuFirst: Summary;
}

async function main(): Promise<void> {
  const runs = numArg(process.argv, '--runs', 5);
  const loadAtStart = loadLine();
  const earlier = strArg(process.argv, '--earlier-cli');
  if (earlier)
    VARIANTS.push({ name: 'earlier build: node cli.js (live demo)', cmd: process.execPath, args: [earlier] });
  const before = strArg(process.argv, '--earlier');
  if (before) {
    const bin = join(before, 'dist', 'bin', 'moescope.js');
    VARIANTS.push(
      { name: 'earlier: npm start', cmd: 'npm', args: ['start', '--silent'], cwd: before },
      { name: 'earlier bundle: live demo', cmd: process.execPath, args: [bin], cwd: before },
      {
        name: 'earlier bundle: replay',
        cmd: process.execPath,
        args: [bin, 'replay', join(before, 'fixtures', 'traces', 'tiny-moe-demo.arrows')],
        cwd: before,
      },
    );
  }
  const first: number[][] = VARIANTS.map(() => []);
  const heat: number[][] = VARIANTS.map(() => []);
  const cpu: number[][] = VARIANTS.map(() => []);
  const cpuFirst: number[][] = VARIANTS.map(() => []);
  // One warm-up round (page cache), then rounds with the order rotating.
  for (let r = -1; r < runs; r++) {
    for (let j = 0; j < VARIANTS.length; j++) {
      const v = (j + Math.max(r, 0)) % VARIANTS.length;
      const x = await once(VARIANTS[v]!);
      if (r >= 0) {
        first[v]!.push(x.first);
        heat[v]!.push(x.heatmap);
        cpu[v]!.push(x.cpu);
        cpuFirst[v]!.push(x.cpuFirst);
      }
    }
  }
  const out: StartupResult[] = VARIANTS.map((v, i) => ({
    name: v.name,
    floor: v.floor === true,
    first: summarise(first[i]!),
    heatmap: summarise(heat[i]!),
    cpu: summarise(cpu[i]!),
    cpuFirst: summarise(cpuFirst[i]!),
  }));
  console.log(
    `${machineLine()}\nat the start: ${loadAtStart}\nat the end:   ${loadLine()}\nstartup in a pseudo-terminal, ${runs} runs each (min / median / max):`,
  );
  for (const o of out) {
    if (o.floor) {
      console.log(
        `  ${o.name.padEnd(30)} first frame ${fmtSummary(o.first, 0, ' ms')}, CPU ${fmtSummary(o.cpu, 0, ' ms')}   (the floor: starting Node here)`,
      );
      continue;
    }
    console.log(
      `  ${o.name.padEnd(30)} first frame ${fmtSummary(o.first, 0, ' ms')}, CPU ${fmtSummary(o.cpuFirst, 0, ' ms')}   first heatmap ${fmtSummary(o.heatmap, 0, ' ms')}, CPU by then ${fmtSummary(o.cpu, 0, ' ms')}`,
    );
    console.log(
      `  ${''.padEnd(30)} goals: first frame ≤ 500 ms ${o.first.median <= 500 ? 'met' : 'NOT met'}; first heatmap ≤ 2000 ms ${o.heatmap.median <= 2000 ? 'met' : 'NOT met'}`,
    );
  }
  if (flag(process.argv, '--json')) console.log(JSON.stringify(out));
}

if (isMain(import.meta.url))
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
