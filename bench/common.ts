/**
 * Shared helpers of the benchmark suite (bench/run-all.ts and the benches it runs): summaries of repeated
 * measurements (median, min–max), interleaved rounds so load from other processes hits every variant alike,
 * child-process runs that hand back one JSON line, the cache of large synthetic traces, and CPU-profile summaries.
 * Machines running these are noisy and shared: every figure is compared with a baseline measured in the same run.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openTrace } from '../src/trace/index.js';
import { synthesize, type SynthSpec } from '../src/trace/synth.js';

/** Folder of the compiled benches (dist…/bench): sibling scripts are run from here. */
export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));

// ── Summaries ────────────────────────────────────────────────────────────────────────────────────────────────

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function summarise(xs: readonly number[]): Summary {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

/** "12.3 (11.9–13.0)" with `digits` decimals; a single sample prints alone. */
export function fmtSummary(s: Summary, digits = 1, unit = ''): string {
  const f = (x: number) => x.toFixed(digits);
  return s.n > 1 ? `${f(s.median)}${unit} (${f(s.min)}–${f(s.max)})` : `${f(s.median)}${unit}`;
}

/** 12345.6 → "12,346". */
export function fmtInt(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

/** sha1 of a load matrix (Float64 counts): equal counts, equal digest — to compare counts across processes. */
export function loadSha1(load: Float64Array): string {
  return createHash('sha1')
    .update(new Uint8Array(load.buffer, load.byteOffset, load.byteLength))
    .digest('hex');
}

// ── Interleaving ─────────────────────────────────────────────────────────────────────────────────────────────

/**
 * Runs every variant once per round, the order rotating each round (variant i goes first in round i mod V), so a
 * burst of load from another process lands on all variants alike. `run` returns one sample (whatever the caller
 * measures); the result holds each variant's samples in round order. Round -1 is a warm-up and is not kept.
 */
export function interleave<T>(
  names: readonly string[],
  rounds: number,
  run: (variant: number, round: number) => T,
  warmup = true,
): T[][] {
  const out: T[][] = names.map(() => []);
  for (let r = warmup ? -1 : 0; r < rounds; r++) {
    for (let j = 0; j < names.length; j++) {
      const v = (j + Math.max(r, 0)) % names.length;
      const x = run(v, r);
      if (r >= 0) out[v]!.push(x);
    }
  }
  return out;
}

/** Whether the module at `url` is the script node was started with (so importing it runs nothing). */
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && resolve(fileURLToPath(url)) === resolve(process.argv[1]);
}

// ── Arguments ────────────────────────────────────────────────────────────────────────────────────────────────

export function flag(argv: readonly string[], name: string): boolean {
  return argv.includes(name);
}

export function numArg(argv: readonly string[], name: string, def: number): number {
  const i = argv.indexOf(name);
  if (i < 0) return def;
  const v = Number(argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} needs a positive number, got "${argv[i + 1] ?? ''}"`);
  return v;
}

export function strArg(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

// ── Child processes ──────────────────────────────────────────────────────────────────────────────────────────

export interface ChildResult {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** Signal that ended it (a crash, or the timeout's kill). */
  signal: string | null;
  /** Spawn failure or timeout (ETIMEDOUT). */
  error: string | null;
}

/** "stats.js exited 1: <last lines>", "ui.js was killed (SIGABRT): …", "… timed out: …". */
export function failure(name: string, r: ChildResult): string {
  const how = r.error?.includes('ETIMEDOUT')
    ? 'timed out'
    : r.signal
      ? `was killed (${r.signal})`
      : r.error
        ? `could not run (${r.error})`
        : `exited ${r.status}`;
  return `${name} ${how}: ${tail(r.stdout + r.stderr)}`;
}

export function runChild(cmd: string, args: readonly string[], opts: SpawnSyncOptions = {}): ChildResult {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 2 ** 20, ...opts });
  return {
    status: r.status,
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
    ms: performance.now() - t0,
    signal: r.signal ?? null,
    error: r.error ? r.error.message : null,
  };
}

/** Runs a compiled bench (dist…/bench/<name>.js) with this Node; null path when it was not built. */
export function benchScript(name: string): string | null {
  const p = join(BENCH_DIR, `${name}.js`);
  return existsSync(p) ? p : null;
}

/** The last line of stdout that parses as a JSON object (benches print their result so). */
export function lastJsonLine<T>(stdout: string): T | null {
  const lines = stdout.trim().split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i]!.trim();
    if (!l.startsWith('{')) continue;
    try {
      return JSON.parse(l) as T;
    } catch {
      /* not JSON: keep looking */
    }
  }
  return null;
}

/** Last few lines of a child's output, for a row that could not be read. */
export function tail(s: string, lines = 3): string {
  return s.trim().split('\n').slice(-lines).join(' | ');
}

// ── Machine ──────────────────────────────────────────────────────────────────────────────────────────────────

export function machineLine(): string {
  const c = cpus();
  return `${c[0]?.model.trim() ?? 'unknown CPU'}, ${c.length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${process.platform}`;
}

/** 1/5/15-minute load averages and what they mean on this many cores. */
export function loadLine(): string {
  const [a, b, c] = loadavg();
  return `load average ${a!.toFixed(2)} / ${b!.toFixed(2)} / ${c!.toFixed(2)} (1/5/15 min) on ${cpus().length} cores`;
}

// ── Cache of large synthetic traces ──────────────────────────────────────────────────────────────────────────

/** Where big generated inputs live between runs (MOESCOPE_BENCH_CACHE overrides). */
export function cacheDir(): string {
  const d = process.env.MOESCOPE_BENCH_CACHE ?? join(tmpdir(), 'moescope-bench');
  mkdirSync(d, { recursive: true });
  return d;
}

/**
 * A file in the cache made by `make(path)` once and reused while `spec` (recorded beside it as <file>.spec.json)
 * is unchanged and `valid(path)` holds. Returns the path and whether it was made now.
 */
export function cached(
  name: string,
  spec: unknown,
  make: (path: string) => void,
  valid: (path: string) => boolean,
): { path: string; made: boolean } {
  const path = join(cacheDir(), name);
  const specPath = `${path}.spec.json`;
  const want = JSON.stringify(spec);
  const have = existsSync(specPath) ? readFileSync(specPath, 'utf8') : null;
  if (have === want && existsSync(path)) {
    try {
      if (valid(path)) return { path, made: false };
    } catch {
      /* unreadable: make it again */
    }
  }
  rmSync(specPath, { force: true });
  rmSync(path, { force: true });
  make(path);
  writeFileSync(specPath, want);
  return { path, made: true };
}

/**
 * The shared synthetic trace of bench/stats.ts, bench/commands.ts and run-all (Zipf 1.1, no logits; DeepSeek-V3's
 * 58 × 256 top-8 unless told), made once into the cache and reused. Its file name is the one bench/stats.ts uses
 * under os.tmpdir(), so stats.ts run with TMPDIR = the cache finds it; seeds other than 1 get their own name.
 */
export function sharedSynthTrace(
  tokens: number,
  opts: { seed?: number; layers?: number; experts?: number; topK?: number; onMake?: () => void } = {},
): { path: string; made: boolean } {
  const { seed = 1, layers = 58, experts = 256, topK = 8 } = opts;
  const spec: SynthSpec = {
    layers,
    experts,
    topK,
    tokens,
    skew: { kind: 'zipf', s: 1.1 },
    collapse: null,
    logits: false,
    seed,
  };
  return cached(
    `moescope-bench-stats-${tokens}x${layers}x${experts}x${topK}${seed === 1 ? '' : `-seed${seed}`}.arrows`,
    spec,
    (p) => {
      opts.onMake?.();
      synthesize(p, spec);
    },
    (p) => {
      const t = openTrace(p);
      const ok = t.complete && t.tokenCount === tokens;
      t.close();
      return ok;
    },
  );
}

// ── CPU profiles ─────────────────────────────────────────────────────────────────────────────────────────────

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface Frame {
  /** "name (file:line)". */
  frame: string;
  /** Share of all sampled time spent in this function itself. */
  selfShare: number;
  selfMs: number;
}

/** Self time per function over every .cpuprofile in `dir`, largest first. */
export function topFrames(dir: string, n = 8): { totalMs: number; frames: Frame[] } {
  const self = new Map<string, number>();
  let total = 0;
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
    const p = JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile;
    const byId = new Map(p.nodes.map((nd) => [nd.id, nd]));
    p.samples.forEach((id, i) => {
      const dt = (p.timeDeltas[i] ?? 0) / 1000;
      const cf = byId.get(id)!.callFrame;
      const file = cf.url ? cf.url.replace(/^file:\/\//, '').replace(/.*\/(dist[^/]*\/|node_modules\/)/, '$1') : '';
      const key = file
        ? `${cf.functionName || '(anonymous)'} (${file}:${cf.lineNumber + 1})`
        : cf.functionName || '(anonymous)';
      self.set(key, (self.get(key) ?? 0) + dt);
      total += dt;
    });
  }
  const frames = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([frame, ms]) => ({ frame, selfMs: ms, selfShare: total > 0 ? ms / total : 0 }));
  return { totalMs: total, frames };
}

/**
 * Runs a Node script under --cpu-prof and summarises where its time went (Node children it spawns are not
 * profiled: Node 20 refuses --cpu-prof in NODE_OPTIONS). The profiles are deleted afterwards.
 */
export function profileScript(
  script: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  n = 8,
): { totalMs: number; frames: Frame[]; status: number | null } {
  const dir = join(cacheDir(), `profile-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  try {
    const r = runChild(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, script, ...args], {
      env: { ...process.env, ...env },
      timeout: 600_000,
    });
    return { ...topFrames(dir, n), status: r.status };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
