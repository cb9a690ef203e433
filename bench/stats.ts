/**
 * Load metrics over a DeepSeek-scale synthetic trace (default 1M tokens × 58 layers × 256 experts × top-8),
 * moescope vs numpy on the same file in the same run (machines are noisy: compare the ratio, not the times).
 *
 *   node dist/bench/stats.js [--tokens N] [--keep]
 *
 * The trace is made by `moescope synth` (Zipf-skewed, seed 1) under os.tmpdir() and deleted afterwards unless
 * --keep (a kept trace is reused by the next run). numpy side: bench/stats_numpy.py (python3 + numpy + pyarrow).
 * Both sides read the whole trace (moescope: its trace reader; numpy: pyarrow, memory-mapped) and count experts;
 * "count" times only the counting. Exit 1 when the numbers disagree.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../src/core/paths.js';
import { openTrace } from '../src/trace/index.js';
import { synthesize } from '../src/trace/synth.js';
import { countAssignments } from '../src/stats/counts.js';
import { deadExperts, loadCv, loadEntropy, loadMaxVio } from '../src/stats/load.js';

const argv = process.argv.slice(2);
const arg = (name: string, def: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : def;
};
const TOKENS = arg('--tokens', 1_000_000);
const L = 58;
const E = 256;
const K = 8;
const file = join(tmpdir(), `moescope-bench-stats-${TOKENS}x${L}x${E}x${K}.arrows`);

if (!existsSync(file)) {
  const t0 = performance.now();
  synthesize(file, {
    layers: L,
    experts: E,
    topK: K,
    tokens: TOKENS,
    skew: { kind: 'zipf', s: 1.1 },
    collapse: null,
    logits: false,
    seed: 1,
  });
  console.log(
    `synth: ${TOKENS.toLocaleString('en-US')} tokens in ${((performance.now() - t0) / 1000).toFixed(1)} s → ${file}`,
  );
}

// moescope: the trace reader + the same counting loop RoutingStats.add runs, then the per-layer metrics.
const t0 = performance.now();
const trace = openTrace(file);
const load = new Float64Array(L * E);
let countMs = 0;
let tokens = 0;
for (const b of trace.batches()) {
  const t1 = performance.now();
  countAssignments(b.experts, 0, b.length, L, K, E, load);
  countMs += performance.now() - t1;
  tokens += b.length;
}
trace.close();
const t2 = performance.now();
const ours = { cv: [] as number[], maxVio: [] as number[], entropy: [] as number[], dead: [] as number[] };
for (let l = 0; l < L; l++) {
  ours.cv.push(loadCv(load, l * E, E));
  ours.maxVio.push(loadMaxVio(load, l * E, E));
  ours.entropy.push(loadEntropy(load, l * E, E));
  ours.dead.push(deadExperts(load, l * E, E));
}
const metricsMs = performance.now() - t2;
const totalMs = performance.now() - t0;

const py = spawnSync('python3', [join(PACKAGE_ROOT, 'bench', 'stats_numpy.py'), file], {
  encoding: 'utf8',
  maxBuffer: 64 * 2 ** 20,
});
const fmt = (ms: number) => `${(ms / 1000).toFixed(3)} s`;
console.log(
  `trace: ${tokens.toLocaleString('en-US')} tokens × ${L} layers × ${E} experts × top-${K} (${((tokens * L * K) / 1e6).toFixed(0)} M assignments)`,
);
console.log(
  `moescope: total ${fmt(totalMs)} (read + count + metrics), count ${fmt(countMs)}, metrics ${fmt(metricsMs)}`,
);
let ok = true;
if (py.status !== 0) {
  console.log(
    `numpy baseline unavailable (python3 + numpy + pyarrow needed): ${(py.stderr || py.error?.message || '').trim().split('\n').pop()}`,
  );
} else {
  const np = JSON.parse(py.stdout) as {
    tokens: number;
    totalSeconds: number;
    countSeconds: number;
    load: number[];
    cv: number[];
    maxVio: number[];
    entropy: number[];
    dead: number[];
  };
  console.log(
    `numpy:    total ${fmt(np.totalSeconds * 1000)} (read + count + metrics), count ${fmt(np.countSeconds * 1000)}`,
  );
  console.log(
    `ratio moescope / numpy: total ${(totalMs / (np.totalSeconds * 1000)).toFixed(2)}×, count ${(countMs / (np.countSeconds * 1000)).toFixed(2)}× (goal ≤ 1.0×)`,
  );
  const diffs: string[] = [];
  if (np.tokens !== tokens) diffs.push(`tokens ${tokens} vs ${np.tokens}`);
  if (np.load.some((c, i) => c !== load[i])) diffs.push('load counts differ');
  for (const k of ['cv', 'maxVio', 'entropy', 'dead'] as const)
    ours[k].forEach((v, l) => {
      if (Math.abs(v - np[k][l]!) > 1e-9 * Math.max(1, Math.abs(v))) diffs.push(`layer ${l} ${k}: ${v} vs ${np[k][l]}`);
    });
  ok = diffs.length === 0;
  console.log(
    ok
      ? 'numbers agree: load counts identical, CV/MaxVio/entropy/dead equal within 1e-9'
      : `MISMATCH: ${diffs.slice(0, 5).join('; ')}`,
  );
}
if (!argv.includes('--keep')) rmSync(file, { force: true });
process.exit(ok ? 0 : 1);
