/**
 * The first frame measured inside the process, for a before / after finer than bench/startup.ts can give on a busy
 * machine: the time since the process started (performance.now()) and the CPU it had used (process.cpuUsage(),
 * µs resolution; /proc's ticks are 10 ms) at its first write to stdout, recorded by a preload module that every
 * command gets alike (its own cost is in every row). In a pseudo-terminal, so the commands draw; rounds rotate the
 * order; the first round is a warm-up. Rows: a Node process that writes at once (the floor), then the bundled live
 * demo and `replay` of the demo trace, of this checkout and, with --earlier, of another built one.
 *
 *   node dist/bench/first-frame.js [--runs 20] [--earlier DIR]
 */
import { spawn } from 'node-pty';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BENCH_DIR, fmtSummary, isMain, loadLine, machineLine, numArg, strArg, summarise } from './common.js';

const ROOT = join(BENCH_DIR, '..', '..');

interface Row {
  name: string;
  args: string[];
  cwd: string;
}

function rows(earlier: string | undefined): Row[] {
  const of = (label: string, dir: string): Row[] => [
    { name: `${label}: live demo`, args: [join(dir, 'dist', 'bin', 'moescope.js')], cwd: dir },
    {
      name: `${label}: replay`,
      args: [
        join(dir, 'dist', 'bin', 'moescope.js'),
        'replay',
        join(dir, 'fixtures', 'traces', 'tiny-moe-demo.arrows'),
      ],
      cwd: dir,
    },
  ];
  return [
    {
      name: 'floor: node -e',
      args: ['-e', "process.stdout.write('moescope\\n'); setTimeout(() => {}, 60000)"],
      cwd: ROOT,
    },
    ...(earlier ? of('earlier', earlier) : []),
    ...of('this build', ROOT),
  ];
}

async function once(row: Row, preload: string, log: string): Promise<{ ms: number; cpu: number }> {
  rmSync(log, { force: true });
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  Object.assign(env, { TERM: 'xterm-256color', CI: 'false', MOESCOPE_FIRST_WRITE_LOG: log });
  const p = spawn(process.execPath, ['--import', pathToFileURL(preload).href, ...row.args], {
    name: 'xterm-256color',
    cols: 120,
    rows: 36,
    cwd: row.cwd,
    env,
  });
  return await new Promise((resolve, reject) => {
    let seen = false;
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.onData(() => {
      if (seen) return;
      seen = true;
      setTimeout(() => p.kill('SIGKILL'), 20);
    });
    p.onExit(() => {
      clearTimeout(timer);
      try {
        const [ms, cpu] = readFileSync(log, 'utf8').trim().split(' ').map(Number);
        resolve({ ms: ms!, cpu: cpu! });
      } catch {
        reject(new Error(`${row.name}: wrote nothing`));
      }
    });
  });
}

async function main(): Promise<void> {
  const runs = numArg(process.argv, '--runs', 20);
  const all = rows(strArg(process.argv, '--earlier'));
  const dir = mkdtempSync(join(tmpdir(), 'moescope-first-frame-'));
  const preload = join(dir, 'first-write.mjs');
  const log = join(dir, 'first-write.txt');
  writeFileSync(
    preload,
    [
      "import { appendFileSync } from 'node:fs';",
      'const write = process.stdout.write.bind(process.stdout);',
      'let first = true;',
      'process.stdout.write = (...a) => {',
      '  if (first) {',
      '    first = false;',
      '    const c = process.cpuUsage();',
      "    appendFileSync(process.env.MOESCOPE_FIRST_WRITE_LOG, performance.now() + ' ' + (c.user + c.system) / 1000 + '\\n');",
      '  }',
      '  return write(...a);',
      '};',
    ].join('\n'),
  );
  const loadAtStart = loadLine();
  const ms: number[][] = all.map(() => []);
  const cpu: number[][] = all.map(() => []);
  try {
    for (let r = -1; r < runs; r++)
      for (let j = 0; j < all.length; j++) {
        const i = (j + Math.max(r, 0)) % all.length;
        const x = await once(all[i]!, preload, log);
        if (r < 0) continue;
        ms[i]!.push(x.ms);
        cpu[i]!.push(x.cpu);
      }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`${machineLine()}\nat the start: ${loadAtStart}\nat the end:   ${loadLine()}`);
  console.log(`first write to the terminal, inside the process, ${runs} runs each (median (min–max)):`);
  for (let i = 0; i < all.length; i++)
    console.log(
      `  ${all[i]!.name.padEnd(24)} ${fmtSummary(summarise(ms[i]!), 1, ' ms')} after the process started, CPU ${fmtSummary(summarise(cpu[i]!), 1, ' ms')}`,
    );
}

if (isMain(import.meta.url))
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
