/**
 * The benchmark suite at DeepSeek-V3 scale (58 MoE layers × 256 experts, top-8), one table, every figure
 * measured side by side with its baseline in the same run (shared machines are noisy: ratios, medians, min–max).
 *
 *   npm run bench [-- --quick] [-- --tokens N] [-- --profile | --no-profile] [-- --record | --no-record] [-- --only 1,2,7]
 *
 *   1 stats over an N-token trace, moescope vs numpy on the same file     bench/stats.ts (+ stats_numpy.py)
 *   2 live ingest with logits into RoutingStats + TraceWriter              bench/ingest.ts
 *   3 engine instrumentation overhead on the demo model                    bench/engine.ts
 *   4 TUI overview frame at 58 × 256                                       bench/ui.ts
 *   5 trace bytes / raw routing payload                                    bench/trace-size.ts
 *   6 peak RSS streaming a multi-GB trace                                  bench/trace-size.ts, bench/rss-stream.ts
 *   7 `moescope --help` cold start vs `node -e 0`                          bench/cold-start.ts
 *   8 first frame and first heatmap of `npm start` / `replay` in a PTY     bench/startup.ts
 *   9 `stats` over a 16-partition dataset: DuckDB vs stream vs polars      bench/scale.ts (+ scale_polars.py)
 *     — only when asked (`--only 9`, `--scale-tokens N`, default 10M): its dataset takes long to make once
 *  10 whole commands (stats, check, report, replay --no-ui, plan, diff,    bench/commands.ts (+ stats_*.py,
 *     export --parquet) vs numpy, DuckDB and pyarrow peers                 diff_numpy.py, export_pyarrow.py)
 *
 * Every bench runs as a child process (its own heap, JIT and peak RSS); a bench that is missing prints "not
 * available", one that fails prints FAILED with its last words — neither stops the others. The N-token trace
 * (N = 1M, or 100k with --quick) is synthesized once into the cache (os.tmpdir()/moescope-bench, or
 * $MOESCOPE_BENCH_CACHE) and reused by later runs. Where a goal is missed the bench is re-run under
 * `node --cpu-prof` (by default in a full run; --profile / --no-profile) and its hottest functions are listed.
 * A full run records itself in bench/RESULTS.md (between the run-all markers; --no-record to skip), a quick run
 * only with --record.
 */
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PACKAGE_ROOT } from '../src/core/paths.js';
import {
  benchScript,
  sharedSynthTrace,
  cacheDir,
  failure,
  flag,
  fmtInt,
  fmtSummary,
  lastJsonLine,
  loadLine,
  machineLine,
  numArg,
  profileScript,
  runChild,
  strArg,
  summarise,
  tail,
  type Frame,
} from './common.js';
import type { ColdStartResult } from './cold-start.js';
import type { StartupResult } from './startup.js';
import type { CommandsResult } from './commands.js';
import type { IngestResult } from './ingest.js';
import type { RssStreamResult } from './rss-stream.js';

const argv = process.argv.slice(2);
const QUICK = flag(argv, '--quick');
const TOKENS = numArg(argv, '--tokens', QUICK ? 100_000 : 1_000_000);
const PROFILE = flag(argv, '--profile') || (!QUICK && !flag(argv, '--no-profile'));
const RECORD = flag(argv, '--record') || (!QUICK && !flag(argv, '--no-record'));
const ONLY = strArg(argv, '--only')?.split(',').map(Number) ?? null;
const SCALE = QUICK
  ? {
      commandRounds: 1,
      statsRuns: 1,
      ingestRounds: 3,
      ingestTokens: 2_000,
      plainRounds: 3,
      plainTokens: 5_000,
      engine: ['--reps', '3', '--tokens', '24'],
      coldRuns: 8,
    }
  : {
      commandRounds: 3,
      statsRuns: 3,
      ingestRounds: 5,
      ingestTokens: 12_000,
      plainRounds: 3,
      plainTokens: 20_000,
      engine: [] as string[],
      coldRuns: 20,
    };
const L = 58;
const E = 256;
const K = 8;

/** 'measured': a row without a goal (a command against its peer, for the record). */
type Verdict = 'met' | 'MISSED' | 'FAILED' | 'not available' | 'measured';
interface Row {
  n: number;
  what: string;
  result: string;
  baseline: string;
  goal: string;
  verdict: Verdict;
  notes: string[];
  /** How to profile this bench when its goal is missed. */
  profile?: { script: string; args: string[]; env?: NodeJS.ProcessEnv };
  frames?: { totalMs: number; frames: Frame[] };
}

const rows: Row[] = [];
const progress = (s: string) => process.stderr.write(`· ${s}\n`);
const want = (n: number) => (ONLY === null ? n !== 9 : ONLY.includes(n));
const SCALE_TOKENS = numArg(argv, '--scale-tokens', 10_000_000);
const row = (r: Omit<Row, 'notes'> & { notes?: string[] }): void => {
  rows.push({ notes: [], ...r });
};
const missing = (n: number, what: string, goal: string, name: string): void =>
  row({
    n,
    what,
    goal,
    result: 'not available',
    baseline: '—',
    verdict: 'not available',
    notes: [`bench/${name}.ts is not built (dist/bench/${name}.js missing)`],
  });
const failed = (n: number, what: string, goal: string, why: string): void =>
  row({ n, what, goal, result: 'FAILED', baseline: '—', verdict: 'FAILED', notes: [why] });
const num = (re: RegExp, s: string): number | null => {
  const m = re.exec(s);
  return m ? Number(m[1]) : null;
};

// ── The shared N-token trace (bench/stats.ts's file name and spec, so stats.ts reuses it through TMPDIR) ──────

function sharedTrace(): string {
  const t0 = performance.now();
  const { path, made } = sharedSynthTrace(TOKENS, {
    layers: L,
    experts: E,
    topK: K,
    onMake: () => progress(`synthesizing the ${fmtInt(TOKENS)}-token trace once (cached for later runs)…`),
  });
  progress(
    `${made ? 'made' : 'reusing'} ${path}${made ? ` in ${((performance.now() - t0) / 1000).toFixed(0)} s` : ''}`,
  );
  return path;
}

// ── 1. stats vs numpy ──────────────────────────────────────────────────────────────────────────────────────────

function statsRow(): void {
  const what = `stats over ${fmtInt(TOKENS)} tokens: moescope / numpy`;
  const goal = '≤ 1.0×';
  const script = benchScript('stats');
  if (!script) return missing(1, what, goal, 'stats');
  const args = ['--tokens', String(TOKENS), '--keep'];
  const env = { TMPDIR: cacheDir() }; // stats.ts names its trace under os.tmpdir(): the shared cached trace
  const ours: number[] = [];
  const theirs: number[] = [];
  const ratios: number[] = [];
  let numpyMissing: string | null = null;
  const notes: string[] = [];
  for (let i = 0; i < SCALE.statsRuns; i++) {
    progress(`1 stats vs numpy, run ${i + 1}/${SCALE.statsRuns}`);
    const r = runChild(process.execPath, [script, ...args], { env: { ...process.env, ...env }, timeout: 600_000 });
    const out = r.stdout;
    if (r.status !== 0) return failed(1, what, goal, failure('stats.js', r));
    const a = num(/^moescope:\s+total ([\d.]+) s/m, out);
    const b = num(/^numpy:\s+total ([\d.]+) s/m, out);
    if (/numpy baseline unavailable/.test(out)) numpyMissing = /numpy baseline unavailable.*/.exec(out)![0];
    if (a === null) return failed(1, what, goal, `unrecognised stats.js output: ${tail(out)}`);
    ours.push(a * 1000);
    if (b !== null) {
      theirs.push(b * 1000);
      ratios.push(a / b);
    }
    if (i === 0) {
      const agree = /^numbers agree.*/m.exec(out)?.[0];
      if (agree) notes.push(agree);
      const count = /^ratio moescope \/ numpy: total [\d.]+×, count ([\d.]+)×/m.exec(out);
      if (count) notes.push(`counting loop alone: ${count[1]}× numpy (first run)`);
    }
  }
  const o = summarise(ours);
  if (numpyMissing || theirs.length === 0) {
    row({
      n: 1,
      what,
      goal,
      result: `${fmtSummary(o, 0, ' ms')}`,
      baseline: 'numpy: not available',
      verdict: 'not available',
      notes: [numpyMissing ?? 'python3 + numpy + pyarrow not found'],
    });
    return;
  }
  const rt = summarise(ratios);
  row({
    n: 1,
    what,
    goal,
    result: `${fmtSummary(rt, 2, '×')}; moescope ${fmtSummary(o, 0, ' ms')}`,
    baseline: `numpy ${fmtSummary(summarise(theirs), 0, ' ms')} (same file, pyarrow mmap + bincount)`,
    verdict: rt.median <= 1.0 ? 'met' : 'MISSED',
    notes,
    profile: { script, args, env },
  });
}

// ── 2 + 6. live ingest, then the recorded trace streamed back ──────────────────────────────────────────────────

function ingestRows(): { trace: string; ingest: IngestResult } | null {
  const what = 'live ingest, 58×256 top-8 sigmoid WITH logits, batches 1–64 tok';
  const goal = '≥ 10,000 tok/s, none dropped';
  const script = benchScript('ingest');
  if (!script) {
    missing(2, what, goal, 'ingest');
    return null;
  }
  removeStaleIngestTraces();
  const trace = join(cacheDir(), `ingest-${process.pid}.arrows`);
  progress(
    `2 live ingest with logits: ${SCALE.ingestRounds} interleaved rounds × ${fmtInt(SCALE.ingestTokens)} tokens`,
  );
  const r = runChild(
    process.execPath,
    [
      script,
      '--rounds',
      String(SCALE.ingestRounds),
      '--round-tokens',
      String(SCALE.ingestTokens),
      '--trace',
      trace,
      '--json',
    ],
    { timeout: 900_000 },
  );
  const res = lastJsonLine<IngestResult>(r.stdout);
  if (!res) {
    rmSync(trace, { force: true });
    failed(2, what, goal, failure('ingest.js', r));
    return null;
  }
  const counts = `produced ${fmtInt(res.produced)}, stats.tokens ${fmtInt(res.statsTokens)}, trace tokenCount ${fmtInt(res.traceTokens)}${res.traceComplete ? '' : ' (trace NOT complete)'}`;
  row({
    n: 2,
    what,
    goal,
    result: `ingest ${fmtSummary(res.ingest, 0)} tok/s; end-to-end ${fmtSummary(res.endToEnd, 0)} tok/s`,
    baseline: `producer alone ${fmtSummary(res.producer, 0)} tok/s; end-to-end time ${fmtSummary(res.ratio, 2, '×')} of it`,
    verdict: !res.ok ? 'FAILED' : res.ingest.median >= 10_000 ? 'met' : 'MISSED',
    notes: [
      `${res.ok ? 'no token dropped' : 'TOKENS DROPPED'}: ${counts}`,
      `ingest time: stats.add ${(res.statsShare * 100).toFixed(0)}%, writer.write ${(res.writerShare * 100).toFixed(0)}%; trace ${(res.traceBytes / 2 ** 30).toFixed(2)} GiB`,
      ...(res.reducer
        ? [
            `logits scored in the engine worker (live-logits.ts, not in ingest): ${fmtSummary(res.reducer, 0)} tok/s there`,
          ]
        : []),
    ],
    profile: { script, args: ['--rounds', '1', '--round-tokens', '2000'] },
  });

  // The same stream without logits (what `moescope run --record` does by default): context for row 2.
  progress(`2b live ingest without logits: ${SCALE.plainRounds} rounds × ${fmtInt(SCALE.plainTokens)} tokens`);
  const p = runChild(
    process.execPath,
    [
      script,
      '--no-logits',
      '--rounds',
      String(SCALE.plainRounds),
      '--round-tokens',
      String(SCALE.plainTokens),
      '--json',
    ],
    { timeout: 600_000 },
  );
  const pr = lastJsonLine<IngestResult>(p.stdout);
  if (pr)
    row({
      n: 2,
      what: '  the same stream without logits (run --record default)',
      goal,
      result: `ingest ${fmtSummary(pr.ingest, 0)} tok/s; end-to-end ${fmtSummary(pr.endToEnd, 0)} tok/s`,
      baseline: `producer alone ${fmtSummary(pr.producer, 0)} tok/s`,
      verdict: !pr.ok ? 'FAILED' : pr.ingest.median >= 10_000 ? 'met' : 'MISSED',
      notes: [
        `${pr.ok ? 'no token dropped' : 'TOKENS DROPPED'}: produced ${fmtInt(pr.produced)}, stats ${fmtInt(pr.statsTokens)}, trace ${fmtInt(pr.traceTokens)}`,
      ],
      profile: { script, args: ['--no-logits', '--rounds', '1', '--round-tokens', '5000'] },
    });
  else failed(2, '  the same stream without logits', goal, failure('ingest.js --no-logits', p));
  return { trace, ingest: res };
}

/** Ingest traces (~2 GiB) left by a run-all that died before streaming them back. */
function removeStaleIngestTraces(): void {
  for (const f of readdirSync(cacheDir())) {
    const m = /^ingest-(\d+)\.arrows$/.exec(f);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0); // its run-all is still running
    } catch {
      rmSync(join(cacheDir(), f), { force: true });
    }
  }
}

function rssRows(shared: string | null, ingested: { trace: string; ingest: IngestResult } | null): void {
  const goal = '< 512 MiB';
  // trace-size.ts: size ratio (row 5) and streaming RSS of the shared no-logits trace.
  const ts = benchScript('trace-size');
  const sizeWhat = 'trace bytes / raw payload (ids + f16 weights)';
  if (!ts) {
    missing(5, sizeWhat, '≤ 1.1', 'trace-size');
    missing(6, 'peak RSS streaming the trace', goal, 'trace-size');
  } else if (shared) {
    progress('5/6 trace size and streaming RSS (bench/trace-size.ts)');
    const r = runChild(process.execPath, [ts, '--trace', shared], { timeout: 600_000 });
    const out = r.stdout;
    const ratio = num(/size ratio[^:]*:\s*([\d.]+)/, out);
    const sizes = /trace: ([\d.]+) MiB for (\d+) tokens; raw payload ([\d.]+) MiB/.exec(out);
    const rss = [...out.matchAll(/^(batches\(.*?\)):\s+(\d+) ms = ([\d.]+)× plain read, peak RSS (\d+) MiB/gm)];
    if (r.status !== 0 || ratio === null) {
      failed(5, sizeWhat, '≤ 1.1', failure('trace-size.js', r));
    } else {
      row({
        n: 5,
        what: sizeWhat,
        goal: '≤ 1.1',
        result: `${ratio.toFixed(4)}`,
        baseline: sizes
          ? `${(Number(sizes[1]) / 1024).toFixed(2)} GiB file / ${(Number(sizes[3]) / 1024).toFixed(2)} GiB raw, ${fmtInt(Number(sizes[2]))} tokens`
          : '—',
        verdict: ratio <= 1.1 ? 'met' : 'MISSED',
      });
      const read = num(/plain sequential read[^:]*:\s*(\d+) ms/, out);
      for (const m of rss)
        row({
          n: 6,
          what: `peak RSS streaming ${(statSync(shared).size / 2 ** 30).toFixed(2)} GiB, no logits: ${m[1]}`,
          goal,
          result: `${m[4]} MiB`,
          baseline: `stream ${m[2]} ms = ${m[3]}× a plain read${read !== null ? ` (${read} ms)` : ''}`,
          verdict: Number(m[4]) < 512 ? 'met' : 'MISSED',
        });
      if (rss.length === 0)
        failed(6, 'peak RSS streaming the trace', goal, `unrecognised trace-size.js output: ${tail(out)}`);
    }
  }
  // rss-stream.ts: the trace recorded by the ingest bench (with logits) streamed back, its counts checked.
  if (!ingested) return;
  const rs = benchScript('rss-stream');
  const what = 'peak RSS streaming the ingest trace (with logits), reuse:true';
  if (!rs) return missing(6, what, goal, 'rss-stream');
  progress('6 streaming the recorded ingest trace back (bench/rss-stream.ts)');
  const r = runChild(process.execPath, [rs, ingested.trace, '--json'], { timeout: 600_000 });
  rmSync(ingested.trace, { force: true });
  const res = lastJsonLine<RssStreamResult>(r.stdout);
  if (!res) return failed(6, what, goal, failure('rss-stream.js', r));
  const same = res.loadSha1 === ingested.ingest.loadSha1 && res.tokens === ingested.ingest.produced;
  row({
    n: 6,
    what: `peak RSS streaming ${(res.bytes / 2 ** 30).toFixed(2)} GiB with logits, reuse:true`,
    goal,
    result: `${res.maxRssMiB.toFixed(0)} MiB`,
    baseline: `${res.openRssMiB.toFixed(0)} MiB after open; ${(res.bytes / 2 ** 20 / (res.ms / 1000)).toFixed(0)} MiB/s`,
    verdict: !same ? 'FAILED' : res.maxRssMiB < 512 ? 'met' : 'MISSED',
    notes: [
      same
        ? `recount of the trace = RoutingStats' live counts (${fmtInt(res.tokens)} tokens, load sha1 equal)`
        : `RECOUNT DIFFERS from the live stats: ${res.tokens} tokens, sha1 ${res.loadSha1} vs ${ingested.ingest.loadSha1}`,
    ],
  });
}

// ── 3. engine overhead ─────────────────────────────────────────────────────────────────────────────────────────

function engineRow(): void {
  const what = 'engine instrumentation overhead, demo model';
  const goal = '≤ 5%';
  const script = benchScript('engine');
  if (!script) return missing(3, what, goal, 'engine');
  progress(`3 engine overhead (bench/engine.ts ${SCALE.engine.join(' ')})`);
  const r = runChild(process.execPath, [script, ...SCALE.engine], { timeout: 600_000 });
  const v = new Map<string, { tps: number; overhead: number }>();
  for (const m of r.stdout.matchAll(/^\s+(\S+)\s+([\d.]+) tok\/s\s+ratio [\d.]+\s+overhead\s+(-?[\d.]+)%/gm))
    v.set(m[1]!, { tps: Number(m[2]), overhead: Number(m[3]) });
  const base = v.get('baseline');
  const cap = v.get('capture');
  if (r.status !== 0 || !base || !cap) return failed(3, what, goal, failure('engine.js', r));
  const logits = v.get('capture+logits');
  const header = /^engine capture overhead — (.*)$/m.exec(r.stdout)?.[1];
  const same = /greedy tokens identical across variants: (\w+)/.exec(r.stdout)?.[1];
  row({
    n: 3,
    what,
    goal,
    result: `capture ${cap.overhead.toFixed(1)}%${logits ? `; with logits ${logits.overhead.toFixed(1)}%` : ''}`,
    baseline: `uninstrumented ${base.tps.toFixed(0)} tok/s, lockstep (median step)`,
    verdict: cap.overhead <= 5 ? 'met' : 'MISSED',
    notes: [
      header ? `engine.ts: ${header}` : '',
      same ? `greedy tokens identical across variants: ${same}` : '',
    ].filter(Boolean),
    profile: { script, args: ['--reps', '3', '--tokens', '32'] },
  });
}

// ── 4. TUI frame ───────────────────────────────────────────────────────────────────────────────────────────────

/**
 * bench/ui.ts prints, per terminal size, a block "COLSxROWS: heatmap …" with the median / p90 of the naive Ink
 * heatmap (its same-run baseline) and of moescope's data frame and cursor move. Read leniently: a format change
 * there turns this row into FAILED with ui.ts's own last words, not a crash here.
 */
function uiRow(): void {
  const what = 'TUI overview frame, 58 × 256';
  const goal = '≤ 33 ms median';
  const script = benchScript('ui');
  if (!script) return missing(4, what, goal, 'ui');
  const args = QUICK ? ['--frames', '10', '--naive-frames', '3', '--size', '160x50'] : [];
  progress(`4 TUI frame (bench/ui.ts ${args.join(' ')})`);
  const r = runChild(process.execPath, [script, ...args], { timeout: 300_000 });
  if (r.status !== 0) return failed(4, what, goal, failure('ui.js', r));
  const ms = (name: string, block: string) => {
    const m = new RegExp(`^${name}\\s+([\\d.]+)\\s+([\\d.]+)`, 'm').exec(block);
    return m ? { median: Number(m[1]), p90: Number(m[2]) } : null;
  };
  const blocks = r.stdout.split(/\n(?=\d+×\d+: )/).slice(1);
  let found = 0;
  for (const b of blocks) {
    const size = /^(\d+×\d+): heatmap (.*)$/m.exec(b);
    const naive = ms('naive Ink heatmap', b);
    const data = ms('moescope, data frame', b);
    const cursor = ms('moescope, cursor move', b);
    const peer = ms('blessed, same heatmap', b);
    if (!size || !data) continue;
    found++;
    row({
      n: 4,
      what: `${what}, ${size[1]} terminal`,
      goal,
      result: `data frame ${data.median.toFixed(1)} ms (p90 ${data.p90.toFixed(1)})${cursor ? `; cursor ${cursor.median.toFixed(1)} ms` : ''}`,
      baseline:
        (naive
          ? `naive Ink heatmap ${naive.median.toFixed(1)} ms (p90 ${naive.p90.toFixed(1)}); ${(data.median / naive.median).toFixed(2)}× of it`
          : '—') +
        (peer
          ? `; blessed (moescope dash's grid) ${peer.median.toFixed(1)} ms, ${(data.median / peer.median).toFixed(2)}× of it`
          : ''),
      verdict: data.median <= 33 ? 'met' : 'MISSED',
      notes:
        found === 1
          ? [/^ingest: .*/m.exec(r.stdout)?.[0] ?? '', `${size[1]}: heatmap ${size[2]}`].filter(Boolean)
          : [`${size[1]}: heatmap ${size[2]}`],
      profile: { script, args: ['--frames', '20', '--naive-frames', '2', '--size', size[1]!.replace('×', 'x')] },
    });
  }
  if (found === 0) failed(4, what, goal, `no frame times found in ui.js output: ${tail(r.stdout)}`);
}

// ── 7. cold start ──────────────────────────────────────────────────────────────────────────────────────────────

function coldRow(): void {
  const what = '`moescope --help` cold start';
  const goal = '≤ 300 ms median';
  const script = benchScript('cold-start');
  if (!script) return missing(7, what, goal, 'cold-start');
  progress(`7 cold start: ${SCALE.coldRuns} interleaved runs`);
  const r = runChild(process.execPath, [script, '--runs', String(SCALE.coldRuns), '--json'], { timeout: 300_000 });
  const res = lastJsonLine<ColdStartResult>(r.stdout);
  if (!res) return failed(7, what, goal, failure('cold-start.js', r));
  row({
    n: 7,
    what,
    goal,
    result: `${fmtSummary(res.help, 0, ' ms')}`,
    baseline: `node -e 0 ${fmtSummary(res.node, 0, ' ms')}; moescope adds ${fmtSummary(res.added, 0, ' ms')}`,
    verdict: res.help.median <= 300 ? 'met' : 'MISSED',
    profile: { script: res.cli, args: ['--help'] },
  });
}

// ── 8. startup in a terminal ──────────────────────────────────────────────────────────────────────────────────

function startupRows(): void {
  const goal = 'first frame ≤ 500 ms; heatmap ≤ 2 s (medians)';
  const script = benchScript('startup');
  if (!script) return missing(8, 'first frame / first heatmap in a PTY', goal, 'startup');
  const runs = QUICK ? 3 : 5;
  progress(`8 startup in a PTY: ${runs} runs each`);
  const r = runChild(process.execPath, [script, '--runs', String(runs), '--json'], { timeout: 900_000 });
  const res = lastJsonLine<StartupResult[]>(r.stdout);
  if (!res) return failed(8, 'first frame / first heatmap in a PTY', goal, failure('startup.js', r));
  const floor = res.find((x) => x.floor);
  for (const x of res.filter((y) => !y.floor))
    row({
      n: 8,
      what: `startup in a PTY: ${x.name}`,
      goal,
      result: `first frame ${fmtSummary(x.first, 0, ' ms')}; heatmap ${fmtSummary(x.heatmap, 0, ' ms')}`,
      baseline: floor ? `a Node process printing at once: ${fmtSummary(floor.first, 0, ' ms')}` : '—',
      verdict: x.first.median <= 500 && x.heatmap.median <= 2000 ? 'met' : 'MISSED',
    });
}

// ── 10. whole commands vs peers ─────────────────────────────────────────────────────────────────────────────

function commandRows(trace: string): void {
  const what = (s: string) => `whole command: ${s} (${fmtInt(TOKENS)} tokens), CPU time`;
  const script = benchScript('commands');
  if (!script) return missing(10, what('stats'), '≤ 1.0× numpy analyses', 'commands');
  progress(`10 whole commands vs numpy / DuckDB peers: ${SCALE.commandRounds} interleaved rounds`);
  const r = runChild(process.execPath, [script, '--trace', trace, '--rounds', String(SCALE.commandRounds), '--json'], {
    timeout: 3_600_000,
  });
  const res = lastJsonLine<CommandsResult>(r.stdout);
  if (!res) return failed(10, what('stats'), '≤ 1.0× numpy analyses', failure('commands.js', r));
  const v = (name: string) => res.variants.find((x) => x.name.startsWith(name))!;
  const ms = (name: string) => `${fmtSummary(v(name).cpu, 0, ' ms')} CPU (wall ${fmtSummary(v(name).wall, 0, ' ms')})`;
  const ratio = (name: string) => res.ratios.find((x) => x.name === name)!;
  const bad = res.disagreement.length > 0;
  const profile = { script: join(PACKAGE_ROOT, 'dist', 'src', 'cli.js'), args: ['stats', trace, '--json'] };
  const rowFor = (name: string, vs: string, baseline: string, goal: number, cmd: string) => {
    const x = ratio(name);
    row({
      n: 10,
      what: what(`\`${cmd}\` / ${vs}`),
      goal: `≤ ${goal.toFixed(1)}×`,
      result: `${fmtSummary(x.cpu, 2, '×')} (wall ${fmtSummary(x.wall, 2, '×')}); ${cmd} ${ms(cmd === 'stats' ? 'moescope stats' : 'moescope check')}`,
      baseline,
      verdict: bad ? 'FAILED' : x.cpu.median <= goal ? 'met' : 'MISSED',
      ...(cmd === 'stats'
        ? { profile }
        : { profile: { script: profile.script, args: ['check', trace, '--max-maxvio', '1e9'] } }),
    });
  };
  rowFor(
    'stats / numpy analyses peer',
    'numpy analyses peer',
    `numpy analyses peer ${ms('numpy analyses')}: load metrics, co-activation, capacity, collapse windows`,
    1.0,
    'stats',
  );
  rowFor(
    'stats / numpy counting peer',
    'numpy counting peer',
    `numpy counting ${ms('numpy counting')}; DuckDB over Parquet ${ms('DuckDB')} (stats / DuckDB ${fmtSummary(ratio('stats / DuckDB counting peer').cpu, 2, '×')})`,
    1.5,
    'stats',
  );
  rowFor('check / numpy counting peer', 'numpy counting peer', `numpy counting ${ms('numpy counting')}`, 1.0, 'check');
  const first = rows.length - 3;
  // The other whole commands: report and replay against stats (the issue's goal), the rest against their peers.
  const stats = ms('moescope stats');
  const against = (cmd: string, vs: string, baseline: string, goal: number, args: string[]) => {
    const x = ratio(`${cmd} / ${vs}`);
    row({
      n: 10,
      what: what(`\`${cmd}\` / ${vs}`),
      goal: Number.isNaN(goal) ? '—' : `≤ ${goal.toFixed(1)}×`,
      result: `${fmtSummary(x.cpu, 2, '×')} (wall ${fmtSummary(x.wall, 2, '×')}); ${cmd} ${ms(`moescope ${cmd}`)}`,
      baseline,
      verdict: bad ? 'FAILED' : Number.isNaN(goal) ? 'measured' : x.cpu.median <= goal ? 'met' : 'MISSED',
      ...(args.length ? { profile: { script: profile.script, args } } : {}),
    });
  };
  const counting = `numpy counting ${ms('numpy counting')}`;
  against('report', 'stats', `stats ${stats}; ${counting}`, 1.5, ['report', trace, '-o', '/dev/null']);
  against('replay --no-ui', 'stats', `stats ${stats}; ${counting}`, 1.5, ['replay', trace, '--no-ui']);
  against('plan', 'numpy counting peer', counting, NaN, []);
  against('diff', 'numpy diff peer', `numpy diff peer ${ms('numpy diff')} (TV, JS, MaxVio; no agreement)`, NaN, []);
  against('export --parquet', 'pyarrow', `pyarrow writing the same batches ${ms('pyarrow export')}`, NaN, []);
  rows[first]!.notes.push(...(bad ? res.disagreement.slice(0, 5).map((d) => `NUMBERS DISAGREE: ${d}`) : res.agreement));
}

// ── Table ──────────────────────────────────────────────────────────────────────────────────────────────────────

function table(): string {
  const head = ['#', 'what', 'moescope', 'baseline, same run', 'goal', 'verdict'];
  const body = rows.map((r) => [String(r.n), r.what, r.result, r.baseline, r.goal, r.verdict]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`;
  return [line(head), `|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

function notes(): string {
  const out: string[] = [];
  for (const r of rows) for (const n of r.notes) out.push(`- ${r.n}: ${n}`);
  return out.join('\n');
}

function profiles(): string {
  const out: string[] = [];
  for (const r of rows) {
    if (!r.frames) continue;
    out.push(
      `Row ${r.n} (${r.what.trim()}) missed its goal; \`node --cpu-prof\` of a smaller run, self time of the hottest functions (${r.frames.totalMs.toFixed(0)} ms sampled):`,
    );
    out.push('```');
    for (const f of r.frames.frames) out.push(`${(f.selfShare * 100).toFixed(1).padStart(5)}%  ${f.frame}`);
    out.push('```');
  }
  return out.join('\n');
}

// ── 9. counting pushed down (opt-in) ─────────────────────────────────────────────────────────────────────────

function scaleRow(): void {
  const what = `stats over ${fmtInt(SCALE_TOKENS)} tokens in 16 partitions: duckdb / stream / polars`;
  const goal = '≥ 1.8× stream, ≤ 1.0× polars, RSS flat';
  const script = benchScript('scale');
  if (!script) return missing(9, what, goal, 'scale');
  progress(`9 scale: ${fmtInt(SCALE_TOKENS)} tokens (the dataset is made once and cached)`);
  const r = runChild(process.execPath, [script, '--tokens', String(SCALE_TOKENS), '--json'], {
    timeout: 6 * 3_600_000,
  });
  const res = lastJsonLine<import('./scale.js').ScaleResult>(r.stdout);
  if (!res) return failed(9, what, goal, failure('scale.js', r));
  const med = (xs: number[]) => summarise(xs).median;
  const met =
    res.agree && res.speedupVsStream >= 1.8 && res.vsPolars !== null && res.vsPolars <= 1 && res.memory.ratio < 1.5;
  row({
    n: 9,
    what,
    goal,
    result: `duckdb ${fmtSummary(summarise(res.seconds.duckdb), 1, ' s')}: ${res.speedupVsStream.toFixed(2)}× stream, ${res.vsPolars?.toFixed(2) ?? 'n/a'}× polars`,
    baseline: `stream ${med(res.seconds.stream).toFixed(1)} s, polars ${med(res.seconds.polars).toFixed(1)} s`,
    verdict: !res.agree ? 'FAILED' : met ? 'met' : 'MISSED',
    notes: [
      `peak RSS: duckdb ${med(res.rssMB.duckdb).toFixed(0)} MB (¼ of the partitions: ${res.memory.quarterMB.toFixed(0)} MB), stream ${med(res.rssMB.stream).toFixed(0)} MB, polars ${med(res.rssMB.polars).toFixed(0)} MB`,
      'spark: not measured (pyspark is not installable from the package indexes here)',
      ...res.notes,
    ],
  });
}

function main(): void {
  const started = new Date();
  const t0 = performance.now();
  const loadBefore = loadLine();
  const command =
    process.env.npm_lifecycle_event === 'bench'
      ? `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`
      : `node ${relative(process.cwd(), process.argv[1]!)}${argv.length ? ` ${argv.join(' ')}` : ''}`;
  process.stderr.write(`moescope benchmarks — ${QUICK ? 'QUICK' : 'full'} scale; ${machineLine()}; ${loadBefore}\n`);

  const needsShared = want(1) || want(5) || want(6) || want(10);
  let shared: string | null = null;
  if (needsShared) {
    try {
      shared = sharedTrace();
    } catch (e) {
      failed(1, 'synthesizing the shared trace', '—', String(e));
    }
  }
  if (want(1) && shared) statsRow();
  const ingested = want(2) || want(6) ? ingestRows() : null;
  if (want(5) || want(6)) rssRows(shared, ingested);
  else if (ingested) rmSync(ingested.trace, { force: true });
  if (want(3)) engineRow();
  if (want(4)) uiRow();
  if (want(7)) coldRow();
  if (want(8)) startupRows();
  if (want(9)) scaleRow();
  if (want(10) && shared) commandRows(shared);
  rows.sort((a, b) => a.n - b.n);

  if (PROFILE)
    for (const r of rows)
      if (r.verdict === 'MISSED' && r.profile) {
        progress(`profiling row ${r.n} (${r.what.trim()})`);
        r.frames = profileScript(r.profile.script, r.profile.args, r.profile.env);
      }

  const loadAfter = loadLine();
  const minutes = (performance.now() - t0) / 60_000;
  const scale =
    `scale: ${QUICK ? 'QUICK' : 'full'} — stats trace ${fmtInt(TOKENS)} tokens × ${L} layers × ${E} experts × top-${K}` +
    ` (${((TOKENS * L * K) / 1e6).toFixed(0)} M assignments); ingest ${SCALE.ingestRounds} × ${fmtInt(SCALE.ingestTokens)} tokens per variant with logits` +
    ` (+ a warm-up round), ${SCALE.plainRounds} × ${fmtInt(SCALE.plainTokens)} without; cold start ${SCALE.coldRuns} runs each`;
  const report = [
    `machine: ${machineLine()}`,
    `date: ${started.toISOString()}; took ${minutes.toFixed(1)} min`,
    `command: ${command}`,
    `load: before ${loadBefore}; after ${loadAfter.replace(/ on \d+ cores$/, '')}`,
    scale,
    'figures: median (min–max) over rounds; ratios and baselines are from the same run',
    '',
    table(),
    '',
    notes(),
    '',
    profiles(),
  ]
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
  process.stdout.write(`\n${report}\n`);
  if (RECORD) record(report);
  const bad = rows.filter((r) => r.verdict === 'FAILED').length;
  const missed = rows.filter((r) => r.verdict === 'MISSED').length;
  const na = rows.filter((r) => r.verdict === 'not available').length;
  const measured = rows.filter((r) => r.verdict === 'measured').length;
  process.stdout.write(
    `\n${rows.length - bad - missed - na - measured} met, ${missed} missed, ${measured} without a goal, ${na} not available, ${bad} failed\n`,
  );
  process.exitCode = bad ? 1 : 0;
}

/** Replaces the run-all block of bench/RESULTS.md (the hand-written analysis around it stays). */
function record(report: string): void {
  const file = join(PACKAGE_ROOT, 'bench', 'RESULTS.md');
  const begin = '<!-- run-all:begin — written by `npm run bench`; edits inside are overwritten -->';
  const end = '<!-- run-all:end -->';
  const block = `${begin}\n${report}\n${end}`;
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const i = old.indexOf('<!-- run-all:begin');
  const j = old.indexOf(end);
  const text =
    i >= 0 && j > i
      ? old.slice(0, i) + block + old.slice(j + end.length)
      : `# Benchmark results\n\n## Last run\n\n${block}\n\n## Analysis\n\n(none yet)\n`;
  writeFileSync(file, text);
  process.stderr.write(`· recorded in ${file}\n`);
}

main();
