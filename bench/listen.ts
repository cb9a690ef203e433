/**
 * Listener ingest at DeepSeek-V3 scale: P producer processes (default 8, one per rank) stream routing (58 MoE
 * layers × 256 experts, top-8, no logits) over loopback TCP into ONE `moescope listen --no-ui --record` — the
 * whole command as users run it — and into a discard server (the transport baseline: the same producers and
 * bytes into a Node process that only counts them). Rounds interleave the two, order rotating.
 *
 *   node dist/bench/listen.js [--producers 8] [--loops 3] [--rounds 3] [--record-dir DIR] [--baseline DIST] [--profile] [--json]
 *
 * `--baseline DIST`: also runs the listener of another build (a copy of an older dist/, inside the checkout so its
 * imports resolve) in the same rounds, interleaved: before/after figures from one run.
 *
 * Each producer is test/listen/producer.ts replaying the bytes of one synthetic 8,192-token trace (zipf 1.1,
 * 1,024 tokens per step) `loops` times: what the Python probe sends, minus the model. Merged rate = tokens sent /
 * wall time from starting the producers to the listener's exit (--exit-when-idle 0: it exits when the last
 * producer disconnects, after finishing the merged trace). Nothing may be lost, counted three ways: tokens sent,
 * the listener's own count (its summary, per rank), the recorded trace (reopened: token count, end-of-stream,
 * rows per rank) — plus the merged loads equal the sum of every rank's own counts. Goal ≥ 100,000 tokens/s merged.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openTrace } from '../src/trace/index.js';
import { synthesize } from '../src/trace/synth.js';
import {
  cached,
  flag,
  fmtInt,
  fmtSummary,
  isMain,
  machineLine,
  numArg,
  strArg,
  summarise,
  topFrames,
  type Frame,
  type Summary,
} from './common.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const PRODUCER = fileURLToPath(new URL('../test/listen/producer.js', import.meta.url));
const TRACE_TOKENS = 8192;
const SPEC = {
  layers: 58,
  experts: 256,
  topK: 8,
  tokens: TRACE_TOKENS,
  skew: { kind: 'zipf' as const, s: 1.1 },
  collapse: null,
  logits: false,
  seed: 11,
  stepTokens: 1024,
};

export interface ListenBenchResult {
  producers: number;
  tokensPerRound: number;
  rounds: number;
  /** Merged tokens/s, one sample per round. */
  listen: Summary;
  /** Tokens/s through the discard server (transport + producers alone). */
  discard: Summary;
  /** Tokens per CPU-second of the listener process (user + sys, every thread); null where /proc is missing. */
  capacity: Summary | null;
  /** Tokens per CPU-second of the listener's main thread (the one that parses every socket): its ceiling. */
  mainThread: Summary | null;
  /** The same three figures for `--baseline DIST`'s listener, same rounds. */
  baseline: { dist: string; listen: Summary; capacity: Summary | null; mainThread: Summary | null } | null;
  counts: {
    sent: number;
    listener: number;
    perRank: number[];
    trace: number;
    traceComplete: boolean;
    traceRanks: number[];
    loadsEqual: boolean;
  }[];
  traceBytes: number;
  ok: boolean;
  goal: number;
  met: boolean;
  profile: { totalMs: number; frames: Frame[] } | null;
  load: string;
}

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.on('close', (code) => res({ code, stdout, stderr }));
  });
}

function producers(address: string, n: number, trace: string, loops: number): Promise<unknown>[] {
  return Array.from({ length: n }, (_, rank) =>
    run(process.execPath, [
      PRODUCER,
      JSON.stringify({ connect: address, rank, world: n, trace, loops, chunk: 1 << 20 }),
    ]).then((r) => {
      if (r.code !== 0) throw new Error(`producer ${rank} exited ${r.code}: ${r.stdout}${r.stderr}`);
    }),
  );
}

/** The listener, started and waited for; returns the wall time from the producers' start to its exit. */
async function roundListen(trace: string, n: number, loops: number, out: string, profileDir: string | null, cli = CLI) {
  const args = ['listen', '--no-ui', '--port', '0', '--record', out, '--exit-when-idle', '0', '--interval', '3600'];
  const node = [process.execPath, ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), cli, ...args];
  const c = spawn(node[0]!, node.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  // The listener's own CPU seconds, whatever else the machine runs: the process (every thread: the thread pool
  // writing the recording, the GC's helpers) and its main thread, sampled from /proc until it exits.
  let cpuS: number | null = null;
  let mainS: number | null = null;
  const ticks = (f: string) => {
    try {
      const x = readFileSync(f, 'utf8').split(') ')[1]!.split(' ');
      return (Number(x[11]) + Number(x[12])) / 100; // utime + stime, in USER_HZ (100 on Linux)
    } catch {
      return null;
    }
  };
  const poll = setInterval(() => {
    cpuS = ticks(`/proc/${c.pid}/stat`) ?? cpuS;
    mainS = ticks(`/proc/${c.pid}/task/${c.pid}/stat`) ?? mainS;
  }, 5);
  let stdout = '';
  let stderr = '';
  c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((res) => c.on('close', res));
  const address = await new Promise<string>((res, rej) => {
    const t = setInterval(() => {
      const m = /listening on (\S+)/.exec(stderr);
      if (m) {
        clearInterval(t);
        res(m[1]!);
      }
    }, 5);
    void exited.then(() => rej(new Error(`listener exited: ${stderr}`)));
  });
  const t0 = performance.now();
  await Promise.all(producers(address, n, trace, loops));
  const code = await exited;
  const ms = performance.now() - t0;
  clearInterval(poll);
  if (code !== 0) throw new Error(`listener exited ${code}: ${stderr}`);
  return { ms, stdout, cpuS: profileDir ? null : cpuS, mainS: profileDir ? null : mainS };
}

/** The transport baseline: a server that only counts bytes, until `n` connections have closed. */
async function roundDiscard(trace: string, n: number, loops: number) {
  let closed = 0;
  let bytes = 0;
  let done!: () => void;
  const all = new Promise<void>((res) => (done = res));
  const server = createServer((s) => {
    let hello = true;
    s.on('data', (d: Buffer) => {
      bytes += d.length;
      if (hello && d.includes(0x0a)) {
        hello = false;
        s.write('{"ok": true}\n');
      }
    });
    s.on('close', () => {
      if (++closed === n) done();
    });
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  const port = (server.address() as { port: number }).port;
  const t0 = performance.now();
  await Promise.all([...producers(`tcp://127.0.0.1:${port}`, n, trace, loops), all]);
  const ms = performance.now() - t0;
  server.close();
  return { ms, bytes };
}

export async function runListenBench(o: {
  producers: number;
  loops: number;
  rounds: number;
  recordDir: string;
  profile: boolean;
  baseline?: string | null;
}): Promise<ListenBenchResult> {
  const baseCli = o.baseline ? resolve(o.baseline, 'src/cli.js') : null;
  if (baseCli && !existsSync(baseCli)) throw new Error(`--baseline ${o.baseline}: no src/cli.js there`);
  const src = cached(
    'listen-ds-8192',
    SPEC,
    (p) => synthesize(p, SPEC),
    (p) => statSync(p).size > 0,
  ).path;
  const t = openTrace(src);
  const L = t.schema.layers.length;
  const E = t.schema.experts;
  const K = t.schema.topK;
  const srcCounts = new Float64Array(L * E);
  for (const b of t.batches())
    for (let i = 0; i < b.experts.length; i++) srcCounts[(Math.floor(i / K) % L) * E + b.experts[i]!]!++;
  t.close();
  const tokens = o.producers * o.loops * TRACE_TOKENS;
  const listen: number[] = [];
  const capacity: number[] = [];
  const mainThread: number[] = [];
  const base = { listen: [] as number[], capacity: [] as number[], mainThread: [] as number[] };
  const discard: number[] = [];
  const counts: ListenBenchResult['counts'] = [];
  let traceBytes = 0;
  const dir = mkdtempSync(join(o.recordDir, 'moescope-bench-listen-'));
  try {
    for (let r = -1; r < o.rounds; r++) {
      const variants = baseCli ? ['listen', 'discard', 'baseline'] : ['listen', 'discard'];
      const shift = (r + variants.length) % variants.length;
      const order = [...variants.slice(shift), ...variants.slice(0, shift)];
      for (const v of order) {
        if (v === 'discard') {
          const d = await roundDiscard(src, o.producers, o.loops);
          if (r >= 0) discard.push((tokens / d.ms) * 1000);
          continue;
        }
        const out = join(dir, 'merged.arrows');
        const l = await roundListen(src, o.producers, o.loops, out, null, v === 'baseline' ? baseCli! : CLI);
        if (r < 0) continue;
        const into = v === 'baseline' ? base : { listen, capacity, mainThread };
        into.listen.push((tokens / l.ms) * 1000);
        if (l.cpuS) into.capacity.push(tokens / l.cpuS);
        if (l.mainS) into.mainThread.push(tokens / l.mainS);
        const listener = Number(/([\d,]+) tokens from \d+ ranks/.exec(l.stdout)?.[1]?.replace(/,/g, '') ?? NaN);
        const perRank = [...l.stdout.matchAll(/^\s+(\d+)\s+\S+\s+\d+\s+([\d,]+)\s/gm)].map((m) =>
          Number(m[2]!.replace(/,/g, '')),
        );
        const m = openTrace(out);
        const traceRanks = new Array<number>(o.producers).fill(0);
        const merged = new Float64Array(L * E);
        for (const b of m.batches(0, { reuse: true })) {
          for (let i = 0; i < b.length; i++) traceRanks[b.rank![i]!]!++;
          if (r === 0)
            for (let i = 0; i < b.experts.length; i++) merged[(Math.floor(i / K) % L) * E + b.experts[i]!]!++;
        }
        const loadsEqual = r !== 0 || merged.every((x, i) => x === srcCounts[i]! * o.producers * o.loops);
        counts.push({
          sent: tokens,
          listener,
          perRank,
          trace: m.tokenCount,
          traceComplete: m.complete,
          traceRanks,
          loadsEqual,
        });
        m.close();
        traceBytes = statSync(out).size;
        rmSync(out, { force: true });
      }
    }
    const ok = counts.every(
      (c) =>
        c.listener === c.sent &&
        c.trace === c.sent &&
        c.traceComplete &&
        c.loadsEqual &&
        c.perRank.length === o.producers &&
        c.perRank.every((x) => x === c.sent / o.producers) &&
        c.traceRanks.every((x) => x === c.sent / o.producers),
    );
    const s = summarise(listen);
    const met = s.median >= 100_000;
    let profile: ListenBenchResult['profile'] = null;
    if (o.profile) {
      const pdir = join(dir, 'prof');
      await roundListen(src, o.producers, o.loops, join(dir, 'p.arrows'), pdir);
      profile = topFrames(pdir, 10);
    }
    return {
      producers: o.producers,
      tokensPerRound: tokens,
      rounds: o.rounds,
      listen: s,
      discard: summarise(discard),
      capacity: capacity.length ? summarise(capacity) : null,
      mainThread: mainThread.length ? summarise(mainThread) : null,
      baseline: o.baseline
        ? {
            dist: o.baseline,
            listen: summarise(base.listen),
            capacity: base.capacity.length ? summarise(base.capacity) : null,
            mainThread: base.mainThread.length ? summarise(base.mainThread) : null,
          }
        : null,
      counts,
      traceBytes,
      ok,
      goal: 100_000,
      met,
      profile,
      load: loadavg()
        .map((x) => x.toFixed(1))
        .join(' '),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const r = await runListenBench({
    producers: numArg(argv, '--producers', 8),
    loops: numArg(argv, '--loops', 3),
    rounds: numArg(argv, '--rounds', 3),
    recordDir: strArg(argv, '--record-dir') ?? tmpdir(),
    profile: flag(argv, '--profile'),
    baseline: strArg(argv, '--baseline') ?? null,
  });
  const out = (s: string) => process.stdout.write(s + '\n');
  out(
    `listener ingest — ${r.producers} producers × ${fmtInt(r.tokensPerRound / r.producers)} tokens, 58 MoE layers × 256 experts, top-8, no logits; ${r.rounds} interleaved rounds; ${machineLine()}; load ${r.load}`,
  );
  out(
    `  moescope listen --no-ui --record   ${fmtSummary(r.listen, 0)} tok/s merged   goal ≥ ${fmtInt(r.goal)}: ${r.met ? 'met' : 'MISSED'}`,
  );
  out(`  discard server (transport alone)   ${fmtSummary(r.discard, 0)} tok/s`);
  if (r.capacity) out(`  listener CPU (user + sys)          ${fmtSummary(r.capacity, 0)} tokens per CPU-second`);
  if (r.mainThread) out(`  listener main thread CPU           ${fmtSummary(r.mainThread, 0)} tokens per CPU-second`);
  if (r.baseline) {
    out(`  baseline ${r.baseline.dist}, same rounds:`);
    out(`    listen --no-ui --record          ${fmtSummary(r.baseline.listen, 0)} tok/s merged`);
    if (r.baseline.capacity)
      out(`    listener CPU (user + sys)        ${fmtSummary(r.baseline.capacity, 0)} tokens per CPU-second`);
    if (r.baseline.mainThread)
      out(`    listener main thread CPU         ${fmtSummary(r.baseline.mainThread, 0)} tokens per CPU-second`);
  }
  for (const c of r.counts)
    out(
      `  tokens: sent ${fmtInt(c.sent)}, listener ${fmtInt(c.listener)} (per rank ${c.perRank.map(fmtInt).join('/')}), trace ${fmtInt(c.trace)} ` +
        `(${c.traceComplete ? 'complete' : 'NOT complete'}, per rank ${c.traceRanks.map(fmtInt).join('/')})${c.loadsEqual ? '' : ' LOADS DIFFER'}`,
    );
  out(`  merged trace ${(r.traceBytes / 2 ** 20).toFixed(0)} MiB per round — ${r.ok ? 'none lost' : 'MISMATCH'}`);
  if (r.profile)
    for (const f of r.profile.frames) out(`    ${(f.selfShare * 100).toFixed(1).padStart(5)}%  ${f.frame}`);
  if (flag(argv, '--json')) out(JSON.stringify(r));
  process.exitCode = r.ok ? 0 : 1;
}

if (isMain(import.meta.url)) void main();
