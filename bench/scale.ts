/**
 * Counting pushed down (docs/scale.md), measured on whole commands as users run them: `moescope stats` over a
 * DeepSeek-scale dataset of P partitions (58 MoE layers × 256 experts, top-8; default 10M tokens, 16 partitions,
 * one per rank, 4,096 tokens per step) with
 *   - duckdb:  `moescope stats PARQUET_DIR --engine duckdb`  (the dataset as `export --partition-by rank` writes it)
 *   - stream:  `moescope stats ARROW_DIR --engine stream`    (the single-process path: every trace read in turn)
 *   - polars:  bench/scale_polars.py PARQUET_DIR              (the peer: the same counts with polars' streaming engine)
 * interleaved, R rounds after a warm-up round, wall time and peak RSS of each process (/usr/bin/time). Then memory
 * against dataset size: DuckDB's peak RSS over a quarter of the partitions and over all of them.
 * Goals (issue #19): DuckDB ≥ 1.8× faster than stream, ≤ 1.0× polars' time; memory independent of dataset size.
 * The numbers of all three must agree (MaxVio per layer to 1e-9), else exit 1.
 *
 *   node dist/bench/scale.js [--tokens N] [--partitions P] [--rounds R] [--no-warmup] [--polars-per-file] [--json]
 *   node dist/bench/scale.js --logits [--tokens N] [--partitions P] [--rounds R]   (the logits sums; below)
 *
 * --polars-per-file: the peer counts file by file (scale_polars.py --per-file): its one query over all the files
 * grows with the dataset (killed past 15 GB RSS at 10 M tokens). --no-warmup: no warm-up round (at 10 M tokens a
 * round is many minutes, and the page cache holds only part of the two copies anyway).
 *
 * The dataset is made once under the bench cache (bench/common.ts cacheDir) by `moescope synth` and
 * `moescope export --partition-by rank`, and reused.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../src/core/paths.js';
import {
  cacheDir,
  fmtInt,
  interleave,
  isMain,
  machineLine,
  loadLine,
  numArg,
  flag,
  runChild,
  summarise,
  fmtSummary,
  tail,
} from './common.js';

const L = 58;
const E = 256;
const K = 8;
const CLI = join(PACKAGE_ROOT, 'dist', 'src', 'cli.js');

export interface ScaleResult {
  tokens: number;
  partitions: number;
  seconds: { duckdb: number[]; stream: number[]; polars: number[] };
  /** CPU seconds (user + sys) of each process: what the load of other processes changes least. */
  cpu: { duckdb: number[]; stream: number[]; polars: number[] };
  rssMB: { duckdb: number[]; stream: number[]; polars: number[] };
  speedupVsStream: number;
  vsPolars: number | null;
  memory: { quarterMB: number; allMB: number; ratio: number };
  agree: boolean;
  notes: string[];
}

/** Runs a command under /usr/bin/time: wall seconds, peak RSS in MB, stdout. */
function timed(
  cmd: string,
  args: string[],
): { seconds: number; cpu: number; rssMB: number; stdout: string; ok: boolean; why: string } {
  const r = runChild('/usr/bin/time', ['-f', '@@TIME %e %M %U %S', cmd, ...args], { timeout: 3_600_000 });
  const m = /@@TIME ([\d.]+) (\d+) ([\d.]+) ([\d.]+)/.exec(r.stderr);
  return {
    seconds: m ? Number(m[1]) : r.ms / 1000,
    cpu: m ? Number(m[3]) + Number(m[4]) : NaN,
    rssMB: m ? Number(m[2]) / 1024 : NaN,
    stdout: r.stdout,
    ok: r.status === 0,
    why: tail(r.stderr.replace(/@@TIME.*/, ''), 3),
  };
}

function progress(s: string): void {
  process.stderr.write(`· ${s}\n`);
}

/** The dataset, made once: P Arrow traces (one per rank) and their partitioned Parquet export. */
export function dataset(tokens: number, partitions: number, logits = false): { arrow: string; parquet: string } {
  const root = join(cacheDir(), `scale-${tokens}x${partitions}-${L}x${E}x${K}${logits ? '-logits' : ''}`);
  const arrow = join(root, 'arrow');
  const parquet = join(root, 'parquet');
  const done = join(root, 'complete');
  if (existsSync(done)) return { arrow, parquet };
  rmSync(root, { recursive: true, force: true });
  mkdirSync(arrow, { recursive: true });
  const per = Math.floor(tokens / partitions);
  const t0 = performance.now();
  for (let r = 0; r < partitions; r++) {
    progress(`synth rank ${r + 1}/${partitions}: ${fmtInt(per)} tokens`);
    const s = runChild(process.execPath, [
      CLI,
      'synth',
      '-o',
      join(arrow, `rank-${String(r).padStart(2, '0')}.arrows`),
      '--layers',
      String(L),
      '--experts',
      String(E),
      '--top-k',
      String(K),
      '--tokens',
      String(per),
      '--skew',
      'zipf:1.1',
      '--seed',
      String(r + 1),
      '--rank',
      String(r),
      '--step-tokens',
      '4096',
      ...(logits ? ['--logits', '--scoring', 'sigmoid'] : []),
    ]);
    if (s.status !== 0) throw new Error(`synth failed: ${tail(s.stderr)}`);
  }
  const t1 = performance.now();
  progress(`export --parquet --partition-by rank (${((t1 - t0) / 1000).toFixed(0)} s of synth so far)`);
  const files = readdirSync(arrow)
    .sort()
    .map((f) => join(arrow, f));
  const x = runChild(process.execPath, [CLI, 'export', ...files, '--parquet', parquet, '--partition-by', 'rank'], {
    timeout: 6 * 3_600_000,
  });
  if (x.status !== 0) throw new Error(`export failed: ${tail(x.stderr)}`);
  writeFileSync(
    done,
    JSON.stringify({ synthSeconds: (t1 - t0) / 1000, exportSeconds: (performance.now() - t1) / 1000 }),
  );
  return { arrow, parquet };
}

export interface ScaleOptions {
  /** The polars peer counts file by file (scale_polars.py --per-file). */
  polarsPerFile?: boolean;
  /** A warm-up round before the measured ones (default true). */
  warmup?: boolean;
}

export function runScale(tokens: number, partitions: number, rounds: number, opts: ScaleOptions = {}): ScaleResult {
  const { arrow, parquet } = dataset(tokens, partitions);
  const notes: string[] = [];
  const variants = ['duckdb', 'stream', 'polars'] as const;
  const maxVio: Record<string, number[]> = {};
  const run = (v: number) => {
    const name = variants[v]!;
    progress(`${name}`);
    const r =
      name === 'polars'
        ? timed('python3', [
            join(PACKAGE_ROOT, 'bench', 'scale_polars.py'),
            parquet,
            String(K),
            ...(opts.polarsPerFile ? ['--per-file'] : []),
          ])
        : timed(process.execPath, [CLI, 'stats', name === 'duckdb' ? parquet : arrow, '--engine', name, '--json']);
    if (!r.ok) {
      notes.push(`${name} failed: ${r.why}`);
      return { seconds: NaN, cpu: NaN, rssMB: NaN };
    }
    const j = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { maxVio?: number[]; layers?: { maxVio: number }[] };
    maxVio[name] = j.maxVio ?? j.layers!.map((l) => l.maxVio);
    return { seconds: r.seconds, cpu: r.cpu, rssMB: r.rssMB };
  };
  const out = interleave([...variants], rounds, run, opts.warmup ?? true);
  const secs = (i: number) => out[i]!.map((x) => x.seconds);
  const rss = (i: number) => out[i]!.map((x) => x.rssMB);
  const cpu = (i: number) => out[i]!.map((x) => x.cpu);
  const med = (xs: number[]) => summarise(xs).median;
  // Memory against size: DuckDB over a quarter of the partitions, then all of them.
  const quarter = Math.max(1, Math.floor(partitions / 4));
  const some = readdirSync(parquet)
    .sort()
    .slice(0, quarter)
    .map((d) => join(parquet, d));
  const qglob = some.length === 1 ? some[0]! : `${parquet}/rank=[0-${quarter - 1}]/*.parquet`;
  progress(`duckdb over ${quarter} of ${partitions} partitions (memory vs size)`);
  const q = quarter < 10 ? timed(process.execPath, [CLI, 'stats', qglob, '--engine', 'duckdb', '--json']) : null;
  const quarterMB = q?.ok ? q.rssMB : NaN;
  const allMB = med(rss(0));
  const ref = maxVio.stream ?? [];
  // The engines must both have run and agree; the polars peer, where it ran (a failure is in the notes).
  const agree = variants.every(
    (v) =>
      (v === 'polars' && maxVio[v] === undefined) ||
      (maxVio[v] !== undefined &&
        maxVio[v]!.length === ref.length &&
        maxVio[v]!.every((x, i) => Math.abs(x - ref[i]!) <= 1e-9)),
  );
  return {
    tokens,
    partitions,
    seconds: { duckdb: secs(0), stream: secs(1), polars: secs(2) },
    cpu: { duckdb: cpu(0), stream: cpu(1), polars: cpu(2) },
    rssMB: { duckdb: rss(0), stream: rss(1), polars: rss(2) },
    speedupVsStream: med(secs(1)) / med(secs(0)),
    vsPolars: Number.isFinite(med(secs(2))) ? med(secs(0)) / med(secs(2)) : null,
    memory: { quarterMB, allMB, ratio: allMB / quarterMB },
    agree,
    notes,
  };
}

export interface ScaleLogitsResult {
  tokens: number;
  partitions: number;
  variants: string[];
  seconds: number[][];
  cpu: number[][];
  rssMB: number[][];
  /** Largest relative difference of a logits metric (per layer) between DuckDB and the stream engine. */
  maxRelDiff: number;
  histogramsEqual: boolean;
  agree: boolean;
  notes: string[];
}

/**
 * `--logits`: the logits sums (docs/scale.md § The logits sums) on a DeepSeek-scale dataset whose traces have
 * logits (sigmoid router, as DeepSeek-V3): `stats` by DuckDB with and without them (--no-logit-sums: the counts'
 * share), and by the stream engine over the Arrow traces. The losses must agree to 1e-9 relative and the margin
 * histograms exactly, else exit 1.
 */
export function runScaleLogits(tokens: number, partitions: number, rounds: number): ScaleLogitsResult {
  const { arrow, parquet } = dataset(tokens, partitions, true);
  const notes: string[] = [];
  const variants = ['duckdb', 'duckdb --no-logit-sums', 'stream'] as const;
  type Out = { layers: Record<string, number | null>[]; marginHistograms?: { counts: number[] }[] };
  const got: Record<string, Out> = {};
  const run = (v: number) => {
    const name = variants[v]!;
    progress(name);
    const args =
      name === 'stream'
        ? [CLI, 'stats', arrow, '--engine', 'stream', '--json']
        : [CLI, 'stats', parquet, '--engine', 'duckdb', '--json', ...(v === 1 ? ['--no-logit-sums'] : [])];
    const r = timed(process.execPath, args);
    if (!r.ok) {
      notes.push(`${name} failed: ${r.why}`);
      return { seconds: NaN, cpu: NaN, rssMB: NaN };
    }
    got[name] = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as Out;
    return { seconds: r.seconds, cpu: r.cpu, rssMB: r.rssMB };
  };
  const out = interleave([...variants], rounds, run);
  const keys = ['hfAuxLoss', 'switchAuxLoss', 'gshardAuxLoss', 'seqAuxLoss', 'importanceLoss', 'zLoss', 'routerMargin'];
  let maxRelDiff = 0;
  const a = got.duckdb;
  const b = got.stream;
  if (a && b)
    a.layers.forEach((la, l) => {
      for (const k of keys) {
        const x = la[k]!;
        const y = b.layers[l]![k]!;
        const d = Math.abs(x - y) / Math.max(Math.abs(x), Math.abs(y));
        maxRelDiff = Math.max(maxRelDiff, Number.isFinite(d) ? d : Infinity);
      }
    });
  const histogramsEqual = !!a && JSON.stringify(a.marginHistograms) === JSON.stringify(b?.marginHistograms);
  return {
    tokens,
    partitions,
    variants: [...variants],
    seconds: out.map((xs) => xs.map((x) => x.seconds)),
    cpu: out.map((xs) => xs.map((x) => x.cpu)),
    rssMB: out.map((xs) => xs.map((x) => x.rssMB)),
    maxRelDiff,
    histogramsEqual,
    agree: !!a && !!b && maxRelDiff <= 1e-9 && histogramsEqual,
    notes,
  };
}

if (isMain(import.meta.url) && process.argv.includes('--logits')) {
  const argv = process.argv.slice(2);
  const tokens = numArg(argv, '--tokens', 8_000);
  const partitions = numArg(argv, '--partitions', 4);
  const rounds = numArg(argv, '--rounds', 3);
  console.log(machineLine());
  console.log(loadLine());
  const r = runScaleLogits(tokens, partitions, rounds);
  const s = (xs: number[]) => fmtSummary(summarise(xs), 2, ' s');
  const m = (xs: number[]) => fmtSummary(summarise(xs), 0, ' MB');
  console.log(
    `dataset with logits: ${fmtInt(r.tokens)} tokens × ${L} layers × ${E} experts × top-${K}, sigmoid, ${r.partitions} partitions`,
  );
  r.variants.forEach((v, i) =>
    console.log(`${v.padEnd(23)} ${s(r.seconds[i]!)}  CPU ${s(r.cpu[i]!)}  peak RSS ${m(r.rssMB[i]!)}`),
  );
  console.log(`largest relative difference of a loss, DuckDB vs stream: ${r.maxRelDiff.toExponential(2)}`);
  console.log(`margin histograms equal: ${r.histogramsEqual ? 'yes' : 'NO'}`);
  console.log(`load after: ${loadLine()}`);
  for (const n of r.notes) console.log(`note: ${n}`);
  if (flag(argv, '--json')) console.log(JSON.stringify(r));
  if (!r.agree) process.exitCode = 1;
} else if (isMain(import.meta.url)) {
  const argv = process.argv.slice(2);
  const tokens = numArg(argv, '--tokens', 10_000_000);
  const partitions = numArg(argv, '--partitions', 16);
  const rounds = numArg(argv, '--rounds', 3);
  console.log(machineLine());
  console.log(loadLine());
  const r = runScale(tokens, partitions, rounds, {
    polarsPerFile: flag(argv, '--polars-per-file'),
    warmup: !flag(argv, '--no-warmup'),
  });
  const s = (xs: number[]) => fmtSummary(summarise(xs), 2, ' s');
  const m = (xs: number[]) => fmtSummary(summarise(xs), 0, ' MB');
  console.log(
    `dataset: ${fmtInt(r.tokens)} tokens × ${L} layers × ${E} experts × top-${K}, ${r.partitions} partitions`,
  );
  for (const v of ['duckdb', 'stream', 'polars'] as const)
    console.log(`${v.padEnd(7)} ${s(r.seconds[v])}  CPU ${s(r.cpu[v])}  peak RSS ${m(r.rssMB[v])}`);
  console.log(
    `duckdb speed-up over stream: ${r.speedupVsStream.toFixed(2)}× (goal ≥ 1.8×) — ${r.speedupVsStream >= 1.8 ? 'met' : 'MISSED'}`,
  );
  console.log(
    `duckdb time / polars time: ${r.vsPolars === null ? 'n/a (polars did not finish: see the notes)' : `${r.vsPolars.toFixed(2)}× (goal ≤ 1.0×) — ${r.vsPolars <= 1 ? 'met' : 'MISSED'}`}`,
  );
  console.log(
    `duckdb peak RSS, ¼ of the partitions → all: ${r.memory.quarterMB.toFixed(0)} → ${r.memory.allMB.toFixed(0)} MB (${r.memory.ratio.toFixed(2)}×; goal: independent of size)`,
  );
  console.log(`numbers agree (MaxVio per layer, 1e-9): ${r.agree ? 'yes' : 'NO'}`);
  console.log("spark: not measured (pyspark is not installable from this machine's package indexes; docs/scale.md)");
  for (const n of r.notes) console.log(`note: ${n}`);
  if (flag(argv, '--json')) console.log(JSON.stringify(r));
  if (!r.agree) process.exitCode = 1;
}
