/**
 * Whole commands as users run them, against peers that compute the same thing from the same file (issue 17):
 *
 *   moescope stats TRACE --json        vs  numpy analyses peer (bench/stats_analyses_numpy.py): load metrics,
 *                                          co-activation, capacity drops, collapse windows — what stats prints
 *                                          but repeat rates and specialisation
 *                                      vs  numpy counting peer (bench/stats_numpy.py): load metrics only
 *                                      vs  DuckDB counting peer (bench/stats_duckdb.py) over the Parquet export
 *   moescope check TRACE …             vs  the numpy counting peer (check computes the load metrics)
 *   moescope report TRACE -o R.html    vs  stats (goal ≤ 1.5×) and the numpy counting peer (its metrics table is
 *                                          checked against the peer's numbers)
 *   moescope replay TRACE --no-ui      vs  stats (goal ≤ 1.5×) and the numpy counting peer (its summary table)
 *   moescope plan TRACE --replicas 288 --gpus 8 --json
 *                                      vs  the numpy counting peer (GPU loads before EPLB, from the peer's counts)
 *   moescope diff TRACE TRACE2 --format json
 *                                      vs  numpy diff peer (bench/diff_numpy.py): per-layer TV, JS, MaxVio of both
 *                                          (TRACE2: the same synth recipe, seed 2)
 *   moescope export TRACE --parquet P  vs  pyarrow writing the same record batches as Parquet
 *                                          (bench/export_pyarrow.py); both files read back: same rows, same ids
 *
 *   node dist/bench/commands.js [--tokens N | --trace FILE] [--rounds 3] [--json] [--earlier-cli PATH]
 *                               [--only NAME,NAME…]
 *
 * Each is a separate process, timed from outside: wall time, and the CPU time (user + sys) the shell's `times`
 * reports for it — on a shared machine the CPU time is the figure that carries over. Rounds are interleaved, the
 * order rotating. Every peer's numbers (from the first round) are checked against moescope's on the same file
 * (exit 1 when they disagree). The trace is the cached synthetic one of bench/stats.ts (Zipf 1.1, seed 1); the Parquet export
 * is made once beside it with `moescope export`. python/tests/test_stats_analyses.py checks the numpy analyses peer
 * against `stats --json` on small traces. Peers need python3 with numpy + pyarrow (+ duckdb for its row):
 * $PYTHON, else python3 on PATH. --earlier-cli adds `stats` and `export --parquet` of another build (its
 * dist/src/cli.js) to the rounds, for a before/after in the same run (outputs checked equal: the stats JSON, and
 * the two Parquet files read back by pyarrow). --only keeps the commands whose name contains one of the given
 * strings (`--only 'stats --json,counting'`: `stats` of both builds and the numpy counting peer), with the checks
 * and ratios among those.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  BENCH_DIR,
  sharedSynthTrace,
  cacheDir,
  fmtInt,
  fmtSummary,
  flag,
  isMain,
  loadLine,
  machineLine,
  numArg,
  strArg,
  summarise,
  type Summary,
} from './common.js';
import { openTrace } from '../src/trace/index.js';

const ROOT = join(BENCH_DIR, '..', '..');
const CLI = join(ROOT, 'dist', 'bin', 'moescope.js'); // the bundle (tools/bundle.mjs): what the bin runs
const PY_DIR = join(ROOT, 'bench');
const PYTHON = process.env.PYTHON ?? 'python3';
const CHECK_ARGS = ['--max-maxvio', '1e9', '--format', 'json'];

interface Timed {
  wallMs: number;
  cpuMs: number;
  stdout: string;
}

/** Runs argv in `sh -c` with stdout to a file; `times` then prints the shell's and its children's CPU time. */
function timed(argv: readonly string[], out: string, okStatus = 0): Timed {
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  const t0 = performance.now();
  // Exit `okStatus` counts as success too (diff exits 1 when a drift limit is broken: still a complete run).
  const r = spawnSync(
    'sh',
    ['-c', `${argv.map(q).join(' ')} > ${q(out)}; s=$?; [ $s = 0 ] || [ $s = ${okStatus} ] || exit $s; times`],
    {
      encoding: 'utf8',
      maxBuffer: 16 * 2 ** 20,
    },
  );
  const wallMs = performance.now() - t0;
  if (r.status !== 0)
    throw new Error(
      `${argv.join(' ')} exited ${r.status}: ${(r.stderr || '').trim().split('\n').slice(-3).join(' | ')}`,
    );
  // `times`: two lines "XmY.YYYs XmY.YYYs" — the shell, then its children (user, sys).
  const lines = r.stdout.trim().split('\n');
  const secs = (s: string) => {
    const m = /(\d+)m([\d.]+)s/.exec(s);
    return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
  };
  const [u, s] = lines[lines.length - 1]!.trim().split(/\s+/);
  return { wallMs, cpuMs: (secs(u!) + secs(s!)) * 1000, stdout: readFileSync(out, 'utf8') };
}

interface Variant {
  name: string;
  argv: string[];
  /** What it computes, for the table. */
  computes: string;
  /** An exit status that is a complete run too (besides 0). */
  okStatus?: number;
}

export interface CommandsResult {
  tokens: number;
  rounds: number;
  variants: { name: string; computes: string; wall: Summary; cpu: Summary }[];
  /** CPU-time ratios, median (min–max) over rounds, of the pairs the issue sets goals for. */
  ratios: { name: string; goal: number; cpu: Summary; wall: Summary }[];
  agreement: string[];
  disagreement: string[];
}

function sharedTrace(tokens: number, seed = 1, layers = 58, experts = 256, topK = 8): string {
  return sharedSynthTrace(tokens, { seed, layers, experts, topK }).path;
}

/** The Parquet export beside the trace, made again when older than it. */
function parquetOf(trace: string): string {
  const pq = `${trace}.parquet`;
  if (!existsSync(pq) || statSync(pq).mtimeMs < statSync(trace).mtimeMs) {
    rmSync(pq, { force: true });
    const r = spawnSync(process.execPath, [CLI, 'export', trace, '--parquet', pq], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`moescope export --parquet failed: ${r.stderr.trim()}`);
  }
  return pq;
}

const close = (a: number | null, b: number | null, rel = 1e-9) =>
  a === null || b === null ? a === b : Math.abs(a - b) <= rel * Math.max(1, Math.abs(a), Math.abs(b));

interface StatsOut {
  tokens: number;
  layers: {
    load: number[];
    cv: number;
    maxVio: number;
    entropy: number;
    deadExperts: number;
    capacity: { droppedPerExpert: number[]; probs: Record<string, number>; position: Record<string, number> };
    coactivation: { a: number; b: number; ratio: number; together: number }[] | null;
  }[];
  capacity: { batches: number; droppedShare: number };
  warnings: {
    rule: string;
    layerIndex: number;
    expert: number | null;
    firstToken: number;
    clearedAt: number | null;
    window: { start: number; end: number };
    value: number;
  }[];
  warningsSuppressed: number;
}
interface CountOut {
  tokens?: number;
  load: number[];
  cv: number[];
  maxVio: number[];
  entropy: number[];
  dead: number[];
}
interface AnalysesOut extends CountOut {
  capacity: {
    batches: number;
    droppedShare: number;
    layers: { droppedPerExpert: number[]; probs: Record<string, number>; position: Record<string, number> }[];
  };
  coactivation: StatsOut['layers'][number]['coactivation'][] | null;
  fired: Record<string, number> | null;
  warnings: Record<string, StatsOut['warnings']> | null;
}

/** Differences between moescope's load metrics and a counting peer's (empty when they agree). */
function compareCounts(s: StatsOut, c: CountOut, who: string): string[] {
  const bad: string[] = [];
  if (c.tokens !== undefined && c.tokens !== s.tokens) bad.push(`${who}: tokens ${c.tokens} vs ${s.tokens}`);
  const load = s.layers.flatMap((l) => l.load);
  if (load.length !== c.load.length || load.some((x, i) => x !== c.load[i])) bad.push(`${who}: load counts differ`);
  s.layers.forEach((l, i) => {
    for (const [k, v] of [
      ['cv', l.cv],
      ['maxVio', l.maxVio],
      ['entropy', l.entropy],
      ['dead', l.deadExperts],
    ] as const)
      if (!close(v, c[k][i]!)) bad.push(`${who}: layer ${i} ${k} ${v} vs ${c[k][i]}`);
  });
  return bad;
}

/** Differences between `stats --json` and the numpy analyses peer. */
function compareAnalyses(s: StatsOut, p: AnalysesOut): string[] {
  const bad = compareCounts(s, p, 'numpy analyses');
  if (s.capacity.batches !== p.capacity.batches)
    bad.push(`capacity batches ${s.capacity.batches} vs ${p.capacity.batches}`);
  if (!close(s.capacity.droppedShare, p.capacity.droppedShare))
    bad.push(`capacity dropped share ${s.capacity.droppedShare} vs ${p.capacity.droppedShare}`);
  s.layers.forEach((l, i) => {
    const c = p.capacity.layers[i]!;
    if (l.capacity.droppedPerExpert.some((x, e) => x !== c.droppedPerExpert[e]))
      bad.push(`layer ${i} drops per expert differ`);
    for (const pol of ['probs', 'position'] as const)
      for (const k of Object.keys(c[pol]))
        if (!close(l.capacity[pol][k]!, c[pol][k]!))
          bad.push(`layer ${i} ${pol} ${k} ${l.capacity[pol][k]} vs ${c[pol][k]}`);
    if (p.coactivation && JSON.stringify(l.coactivation) !== JSON.stringify(p.coactivation[i]))
      bad.push(`layer ${i} co-activation top pairs differ`);
  });
  if (p.warnings && p.fired) {
    const fired = Object.values(p.fired).reduce((a, b) => a + b, 0);
    if (fired !== s.warnings.length + s.warningsSuppressed)
      bad.push(`warnings fired ${s.warnings.length} + ${s.warningsSuppressed} suppressed vs ${fired}`);
    for (const [rule, list] of Object.entries(p.warnings)) {
      const ours = s.warnings.filter((w) => w.rule === rule);
      if (ours.length !== list.length) {
        bad.push(`${rule}: ${ours.length} warnings kept vs ${list.length}`);
        continue;
      }
      const k = ours.findIndex((w, i) => {
        const o = list[i]!;
        return (
          w.layerIndex !== o.layerIndex ||
          w.expert !== o.expert ||
          w.firstToken !== o.firstToken ||
          w.clearedAt !== o.clearedAt ||
          w.window.start !== o.window.start ||
          w.window.end !== o.window.end ||
          !close(w.value, o.value)
        );
      });
      if (k >= 0) bad.push(`${rule} warning ${k}: ${JSON.stringify(ours[k])} vs ${JSON.stringify(list[k])}`);
    }
  }
  return bad;
}

/** A per-layer table as printed (3 decimals): MaxVio, CV, entropy, dead per layer, in layer order. */
interface PrintedLayer {
  maxVio: number;
  cv: number;
  entropy: number;
  dead: number;
}

/** The metrics table of the HTML report: layer, MaxVio, CV, dead, entropy, … */
function reportTable(html: string): PrintedLayer[] {
  const t = html.slice(html.indexOf('<table class="metrics">'));
  const rows = t.slice(0, t.indexOf('</table>'));
  return [
    ...rows.matchAll(
      /<tr><td class="l">\d+<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td>/g,
    ),
  ].map((m) => ({ maxVio: Number(m[1]), cv: Number(m[2]), dead: Number(m[3]), entropy: Number(m[4]) }));
}

/** The balance table of `replay --no-ui` (src/views/summary.ts): `L<n> CV MaxVio entropy dead …`. */
function summaryTable(text: string): PrintedLayer[] {
  return [...text.matchAll(/^\s+L\d+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s/gm)].map((m) => ({
    cv: Number(m[1]),
    maxVio: Number(m[2]),
    entropy: Number(m[3]),
    dead: Number(m[4]),
  }));
}

/** Differences between a printed table (3 decimals) and the counting peer's numbers. */
function comparePrinted(rows: PrintedLayer[], c: CountOut, who: string): string[] {
  if (rows.length !== c.cv.length) return [`${who}: ${rows.length} layers printed, the peer has ${c.cv.length}`];
  const bad: string[] = [];
  rows.forEach((r, i) => {
    for (const k of ['cv', 'maxVio', 'entropy'] as const)
      if (!(Math.abs(r[k] - c[k][i]!) <= 0.0005 + 1e-9)) bad.push(`${who}: layer ${i} ${k} ${r[k]} vs ${c[k][i]}`);
    if (r.dead !== c.dead[i]) bad.push(`${who}: layer ${i} dead ${r.dead} vs ${c.dead[i]}`);
  });
  return bad;
}

interface DiffOut {
  base: { tokens: number };
  new: { tokens: number };
  rows: { layer: number; tv: number; js: number; maxVioBase: number; maxVioNew: number }[];
}
interface DiffPeerOut {
  tokens: [number, number];
  tv: number[];
  js: number[];
  maxVioBase: number[];
  maxVioNew: number[];
}

function compareDiff(d: DiffOut, p: DiffPeerOut): string[] {
  const bad: string[] = [];
  if (d.base.tokens !== p.tokens[0] || d.new.tokens !== p.tokens[1])
    bad.push(`diff tokens ${d.base.tokens}/${d.new.tokens} vs ${p.tokens.join('/')}`);
  if (d.rows.length !== p.tv.length) return [...bad, `diff: ${d.rows.length} layers vs ${p.tv.length}`];
  d.rows.forEach((r, i) => {
    for (const k of ['tv', 'js', 'maxVioBase', 'maxVioNew'] as const)
      if (!close(r[k], p[k][i]!)) bad.push(`diff layer ${i} ${k} ${r[k]} vs ${p[k][i]}`);
  });
  return bad;
}

/** plan's GPU loads before EPLB (contiguous placement) against the counting peer's load, summed per GPU. */
function comparePlan(plan: { before: { gpuLoads: number[][] } }, c: CountOut, experts: number, gpus: number): string[] {
  const per = experts / gpus;
  const want = plan.before.gpuLoads.map((_, l) =>
    Array.from({ length: gpus }, (_, g) => {
      let x = 0;
      for (let e = g * per; e < (g + 1) * per; e++) x += c.load[l * experts + e]!;
      return x;
    }),
  );
  return JSON.stringify(want) === JSON.stringify(plan.before.gpuLoads)
    ? []
    : ['plan: GPU loads before EPLB differ from the counting peer’s'];
}

export function runCommands(
  trace: string,
  rounds: number,
  log: (s: string) => void = () => {},
  earlierCli?: string,
  only?: readonly string[],
): CommandsResult {
  const t = openTrace(trace);
  const tokens = t.tokenCount;
  const { layers, experts, topK } = t.schema;
  t.close();
  const parquet = parquetOf(trace);
  // diff's second trace: the same recipe, another seed (another routing of the same shape).
  const trace2 = sharedTrace(tokens, 2, layers.length, experts, topK);
  const html = join(cacheDir(), `commands-report-${process.pid}.html`);
  const pqOurs = join(cacheDir(), `commands-export-${process.pid}.parquet`);
  const pqPeer = join(cacheDir(), `commands-export-pyarrow-${process.pid}.parquet`);
  const pqEarlier = join(cacheDir(), `commands-export-earlier-${process.pid}.parquet`);
  const GPUS = 8;
  const variants: Variant[] = [
    {
      name: 'moescope stats --json',
      argv: [process.execPath, CLI, 'stats', trace, '--json'],
      computes: 'everything stats prints',
    },
    {
      name: 'numpy analyses peer',
      argv: [PYTHON, join(PY_DIR, 'stats_analyses_numpy.py'), trace],
      computes: 'load metrics, co-activation, capacity, collapse windows',
    },
    {
      name: 'numpy counting peer',
      argv: [PYTHON, join(PY_DIR, 'stats_numpy.py'), trace],
      computes: 'load counts + CV/MaxVio/entropy/dead',
    },
    {
      name: 'DuckDB counting peer (Parquet)',
      argv: [PYTHON, join(PY_DIR, 'stats_duckdb.py'), parquet, String(layers.length), String(experts), String(topK)],
      computes: 'load counts + CV/MaxVio/entropy/dead, SQL',
    },
    {
      name: 'moescope check',
      argv: [process.execPath, CLI, 'check', trace, ...CHECK_ARGS],
      computes: 'load metrics against thresholds',
    },
    {
      name: 'moescope report',
      argv: [process.execPath, CLI, 'report', trace, '-o', html],
      computes: 'everything stats computes, as a self-contained HTML page',
    },
    {
      name: 'moescope replay --no-ui',
      argv: [process.execPath, CLI, 'replay', trace, '--no-ui'],
      computes: 'the TUI model over the whole trace, printed as a summary',
    },
    {
      name: 'moescope plan',
      argv: [
        process.execPath,
        CLI,
        'plan',
        trace,
        '--replicas',
        String(experts + experts / GPUS),
        '--gpus',
        String(GPUS),
        '--json',
      ],
      computes: `load counts, EPLB placement over ${GPUS} GPUs, balancedness before / after`,
    },
    {
      name: 'moescope diff',
      argv: [process.execPath, CLI, 'diff', trace, trace2, '--format', 'json'],
      computes: 'per-layer drift (TV, JS), MaxVio of both, router agreement on identical tokens',
      okStatus: 1,
    },
    {
      name: 'numpy diff peer',
      argv: [PYTHON, join(PY_DIR, 'diff_numpy.py'), trace, trace2],
      computes: 'per-layer TV, JS, MaxVio of both (no router agreement)',
    },
    {
      name: 'moescope export --parquet',
      argv: [process.execPath, CLI, 'export', trace, '--parquet', pqOurs],
      computes: 'the trace as Parquet, one row per token',
    },
    {
      name: 'pyarrow export peer',
      argv: [PYTHON, join(PY_DIR, 'export_pyarrow.py'), trace, pqPeer],
      computes: "the trace's record batches written as Parquet by pyarrow",
    },
  ];
  if (earlierCli)
    variants.push(
      {
        name: 'earlier build: stats --json',
        argv: [process.execPath, earlierCli, 'stats', trace, '--json'],
        computes: `everything stats prints (${earlierCli})`,
      },
      {
        name: 'earlier build: export --parquet',
        argv: [process.execPath, earlierCli, 'export', trace, '--parquet', pqEarlier],
        computes: `the trace as Parquet (${earlierCli})`,
      },
    );
  // --only: the variants whose name contains one of the given strings (the checks and ratios of the others skipped).
  if (only?.length) {
    const keep = variants.filter((v) => only.some((o) => v.name.includes(o)));
    if (!keep.length) throw new Error(`--only ${only.join(',')} matches no command of this bench`);
    variants.splice(0, variants.length, ...keep);
  }
  const out = (i: number) => join(cacheDir(), `commands-out-${process.pid}-${i}.json`);
  const wall: number[][] = variants.map(() => []);
  const cpu: number[][] = variants.map(() => []);
  const outputs: string[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      for (let j = 0; j < variants.length; j++) {
        const v = (j + r) % variants.length;
        log(`round ${r + 1}/${rounds}: ${variants[v]!.name}`);
        const x = timed(variants[v]!.argv, out(v), variants[v]!.okStatus);
        wall[v]!.push(x.wallMs);
        cpu[v]!.push(x.cpuMs);
        if (r === 0) outputs[v] = x.stdout;
      }
    }
  } finally {
    variants.forEach((_, i) => rmSync(out(i), { force: true }));
  }
  const at = (name: string) => variants.findIndex((v) => v.name === name);
  const has = (...names: string[]) => names.every((n) => at(n) >= 0);
  const output = (name: string) => outputs[at(name)]!;
  const json = <T>(name: string): T | null => (has(name) ? (JSON.parse(output(name)) as T) : null);
  const stats = json<StatsOut>('moescope stats --json');
  const analyses = json<AnalysesOut>('numpy analyses peer');
  const counting = json<CountOut>('numpy counting peer');
  const duck = json<CountOut>('DuckDB counting peer (Parquet)');
  const check = json<{ passed: boolean; tokens: number }>('moescope check');
  const disagreement: string[] = [];
  /** What was checked, for the agreement line (all of it without --only). */
  const checked: string[] = [];
  if (stats && analyses) disagreement.push(...compareAnalyses(stats, analyses));
  if (stats && counting) disagreement.push(...compareCounts(stats, counting, 'numpy counting'));
  if (stats && duck) disagreement.push(...compareCounts(stats, duck, 'DuckDB'));
  if (check && (!check.passed || check.tokens !== tokens))
    disagreement.push(`check: passed ${check.passed}, tokens ${check.tokens}`);
  // The rows of the other commands: their printed numbers against the peers' (the files from the last round).
  if (counting && has('moescope report'))
    disagreement.push(...comparePrinted(reportTable(readFileSync(html, 'utf8')), counting, 'report'));
  if (counting && has('moescope replay --no-ui')) {
    const summary = output('moescope replay --no-ui');
    disagreement.push(...comparePrinted(summaryTable(summary), counting, 'replay --no-ui'));
    if (!summary.includes(`${fmtInt(tokens)} tokens`)) disagreement.push('replay --no-ui: token count not printed');
  }
  if (counting && has('moescope plan'))
    disagreement.push(...comparePlan(JSON.parse(output('moescope plan')), counting, experts, GPUS));
  if (has('moescope diff', 'numpy diff peer'))
    disagreement.push(...compareDiff(JSON.parse(output('moescope diff')), JSON.parse(output('numpy diff peer'))));
  let pqSame: { rows?: number[]; expertsEqual?: boolean; bytes?: number[] } = {};
  if (has('moescope export --parquet', 'pyarrow export peer')) {
    const pc = spawnSync(PYTHON, [join(PY_DIR, 'parquet_compare.py'), pqOurs, pqPeer], { encoding: 'utf8' });
    pqSame = JSON.parse(pc.stdout || '{}') as typeof pqSame;
    if (pqSame.rows?.[0] !== tokens || pqSame.rows?.[1] !== tokens || !pqSame.expertsEqual)
      disagreement.push(
        `export --parquet: rows ${pqSame.rows} (want ${tokens}), ids equal ${pqSame.expertsEqual} ${pc.stderr}`,
      );
  }
  if (has('earlier build: stats --json', 'moescope stats --json')) {
    if (output('earlier build: stats --json') !== output('moescope stats --json'))
      disagreement.push("the earlier build's stats --json differs from this one's");
    else checked.push("the earlier build's stats --json byte-identical to this one's");
  }
  if (earlierCli && has('earlier build: export --parquet', 'moescope export --parquet')) {
    // The two builds' Parquet files hold the same table: same schema, footer metadata and values (pyarrow).
    const same = spawnSync(
      PYTHON,
      [
        '-c',
        'import sys, pyarrow.parquet as pq; a, b = (pq.read_table(p) for p in sys.argv[1:]); print(a.equals(b, check_metadata=True))',
        pqOurs,
        pqEarlier,
      ],
      { encoding: 'utf8' },
    );
    if (same.stdout.trim() !== 'True')
      disagreement.push(`the earlier build's Parquet export differs from this one's ${same.stderr.trim()}`);
  }
  for (const f of [html, pqOurs, pqPeer, pqEarlier]) rmSync(f, { force: true });
  const warned = stats ? stats.warnings.length + stats.warningsSuppressed : 0;
  const full = !only?.length;
  const agreement = disagreement.length
    ? []
    : !full
      ? [
          `numbers agree (first round): ${[
            ...(stats && counting
              ? ['load counts identical; CV/MaxVio/entropy/dead within 1e-9 (numpy counting)']
              : []),
            ...(stats && analyses
              ? [`capacity, co-activation and ${fmtInt(warned)} collapse warnings as the numpy analyses peer's`]
              : []),
            ...checked,
          ].join('; ')}`,
        ]
      : [
          `numbers agree (first round): load counts identical in all four; CV/MaxVio/entropy/dead within 1e-9; capacity drops per expert identical, ` +
            `dropped weight and tokens hit within 1e-9; co-activation top pairs identical; ${fmtInt(warned)} collapse warnings fired on both sides, ` +
            `the kept ones equal (rule, layer, expert, window, first token, cleared at; value within 1e-9)`,
          `report's metrics table and replay --no-ui's summary (3 decimals) = the counting peer's CV/MaxVio/entropy/dead; ` +
            `plan's GPU loads before EPLB = the peer's counts summed per GPU; diff's TV/JS/MaxVio per layer = the numpy diff peer's within 1e-9; ` +
            `both Parquet files read back by pyarrow: ${fmtInt(tokens)} rows, identical expert ids (${pqSame.bytes?.map((b) => `${(b / 2 ** 20).toFixed(0)} MiB`).join(' ours / ')} pyarrow's)`,
        ];
  const ratio = (a: number | string, b: number | string, what: number[][]) => {
    const [i, j] = [a, b].map((x) => (typeof x === 'number' ? x : at(x))) as [number, number];
    return summarise(what[i]!.map((x, r) => x / what[j]![r]!));
  };
  const pair = (name: string, a: string, b: string, goal = NaN) =>
    has(a, b) ? [{ name, goal, cpu: ratio(a, b, cpu), wall: ratio(a, b, wall) }] : [];
  return {
    tokens,
    rounds,
    variants: variants.map((v, i) => ({
      name: v.name,
      computes: v.computes,
      wall: summarise(wall[i]!),
      cpu: summarise(cpu[i]!),
    })),
    ratios: [
      ...pair('stats / numpy analyses peer', 'moescope stats --json', 'numpy analyses peer', 1.0),
      ...pair('stats / numpy counting peer', 'moescope stats --json', 'numpy counting peer', 1.5),
      ...pair('stats / DuckDB counting peer', 'moescope stats --json', 'DuckDB counting peer (Parquet)'),
      ...pair('check / numpy counting peer', 'moescope check', 'numpy counting peer', 1.0),
      ...pair('report / stats', 'moescope report', 'moescope stats --json', 1.5),
      ...pair('replay --no-ui / stats', 'moescope replay --no-ui', 'moescope stats --json', 1.5),
      ...pair('report / numpy counting peer', 'moescope report', 'numpy counting peer'),
      ...pair('replay --no-ui / numpy counting peer', 'moescope replay --no-ui', 'numpy counting peer'),
      ...pair('plan / numpy counting peer', 'moescope plan', 'numpy counting peer'),
      ...pair('diff / numpy diff peer', 'moescope diff', 'numpy diff peer'),
      ...pair('export --parquet / pyarrow', 'moescope export --parquet', 'pyarrow export peer'),
      ...pair("stats / earlier build's stats", 'moescope stats --json', 'earlier build: stats --json'),
      ...pair("export / earlier build's export", 'moescope export --parquet', 'earlier build: export --parquet'),
    ],
    agreement,
    disagreement,
  };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const rounds = numArg(argv, '--rounds', 3);
  const given = strArg(argv, '--trace');
  const trace = given ?? sharedTrace(numArg(argv, '--tokens', 1_000_000));
  const only = strArg(argv, '--only')
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const res = runCommands(trace, rounds, (s) => process.stderr.write(`· ${s}\n`), strArg(argv, '--earlier-cli'), only);
  console.log(
    `${machineLine()}\n${loadLine()}\nwhole commands on ${trace} (${fmtInt(res.tokens)} tokens), ${rounds} interleaved rounds, min / median / max:`,
  );
  for (const v of res.variants)
    console.log(
      `  ${v.name.padEnd(32)} cpu ${fmtSummary(v.cpu, 0, ' ms').padEnd(26)} wall ${fmtSummary(v.wall, 0, ' ms').padEnd(26)} ${v.computes}`,
    );
  for (const r of res.ratios)
    console.log(
      `  ${r.name.padEnd(32)} cpu ${fmtSummary(r.cpu, 2, '×').padEnd(26)} wall ${fmtSummary(r.wall, 2, '×').padEnd(26)} ${Number.isNaN(r.goal) ? '' : `goal ≤ ${r.goal}× ${r.cpu.median <= r.goal ? 'met' : 'MISSED'} (cpu)`}`,
    );
  for (const a of res.agreement) console.log(a);
  for (const d of res.disagreement.slice(0, 10)) console.log(`DISAGREE: ${d}`);
  if (flag(argv, '--json')) console.log(JSON.stringify(res));
  process.exitCode = res.disagreement.length ? 1 : 0;
}

if (isMain(import.meta.url))
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
