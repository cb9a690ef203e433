/**
 * `moescope stats` over layer ranges in worker threads (src/commands/stats-threads.ts) prints what one thread
 * prints, byte for byte: the whole command (--json and text, stdout, stderr and exit code) with
 * MOESCOPE_STATS_WORKERS 0, 1 and 2 on real traces — uniform, skewed with a planted collapse, collapse warnings past
 * the kept limit, with logits (never split), mixed layer shapes (each shape split on its own), cut short — and the
 * split itself in-process, where it cannot fall back to one thread unseen.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NO_EXPERT, schemaOfShapes, type RoutingBatch } from '../../src/core/batch.js';
import { f32ToF16 } from '../../src/core/f16.js';
import { openTrace, TraceWriter } from '../../src/trace/index.js';
import { TraceAnalysis, defaultAnalysisOptions, type AnalysisOptions } from '../../src/stats/analysis.js';
import { layerRanges } from '../../src/stats/layer-split.js';
import { SplitAnalysis, statsWorkers } from '../../src/commands/stats-threads.js';
import { UserError } from '../../src/core/errors.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

function run(workers: number | null, ...args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  if (workers === null) delete env.MOESCOPE_STATS_WORKERS;
  else env.MOESCOPE_STATS_WORKERS = String(workers);
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env, maxBuffer: 256 * 2 ** 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tempDir(t: { after: (f: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), 'moescope-stats-threads-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function synth(dir: string, name: string, ...args: string[]): string {
  const out = join(dir, name);
  const r = run(0, 'synth', ...args, '-o', out);
  assert.equal(r.code, 0, r.stderr);
  return out;
}

/** stats with 0, 1 and 2 workers: identical stdout, stderr and exit code, as --json and as text. */
function sameOnEveryCount(trace: string, extra: string[] = []): { json: string; code: number | null } {
  let json = '';
  let code: number | null = null;
  for (const form of [['--json'], []]) {
    const one = run(0, 'stats', trace, ...form, ...extra);
    assert.ok(one.code === 0 || one.code === 2, one.stderr);
    for (const w of [1, 2]) {
      const many = run(w, 'stats', trace, ...form, ...extra);
      assert.equal(many.code, one.code, `${w} workers: exit ${many.code} vs ${one.code}: ${many.stderr}`);
      assert.equal(many.stderr, one.stderr, `${w} workers: stderr differs`);
      assert.ok(many.stdout === one.stdout, `${w} workers: ${form.join(' ') || 'text'} output differs from one thread`);
    }
    if (form.length) {
      json = one.stdout;
      code = one.code;
    }
  }
  return { json, code };
}

test('stats: 1 and 2 workers print what one thread prints (uniform, skewed with collapse, past the kept limit)', (t) => {
  const dir = tempDir(t);
  const uniform = synth(dir, 'u.arrows', '--layers', '5', '--experts', '16', '--top-k', '4', '--tokens', '6000');
  sameOnEveryCount(uniform, ['--devices', '4']);

  const skewed = synth(
    dir,
    's.arrows',
    ...['--layers', '7', '--experts', '32', '--top-k', '4', '--tokens', '20000', '--seed', '5'],
    ...['--skew', 'zipf:1.2', '--collapse', 'layer=4,expert=3,from=0.5'],
  );
  const { json } = sameOnEveryCount(skewed, ['--batch-tokens', '1000', '--capacity-factor', '1.1']);
  const doc = JSON.parse(json) as { warnings: { rule: string; layerIndex: number }[] };
  // The planted collapse is found in the last layers, which a worker analyses when split.
  assert.ok(doc.warnings.some((w) => w.layerIndex === 4));

  // A short window evaluated every token over skewed routing: the hot- and dead-expert rules fire past their
  // limit of 2,000 kept, so the merge must re-apply the limit over the ranges' warnings in firing order.
  const { json: capped } = sameOnEveryCount(skewed, ['--window', '16', '--warn-hot', '0.05']);
  const c = JSON.parse(capped) as { warnings: { rule: string; layerIndex: number }[]; warningsSuppressed: number };
  assert.ok(c.warningsSuppressed > 0, 'the kept limit was reached');
  const rules = new Map<string, Set<number>>();
  for (const w of c.warnings) rules.set(w.rule, (rules.get(w.rule) ?? new Set()).add(w.layerIndex));
  assert.ok(
    [...rules.values()].some((layers) => layers.has(0) && layers.has(6)),
    'kept warnings of one rule come from the first and the last range',
  );
});

test('stats: a trace with logits and a trace cut short print the same with workers', (t) => {
  const dir = tempDir(t);
  const logits = synth(
    dir,
    'l.arrows',
    ...['--layers', '4', '--experts', '16', '--top-k', '2', '--tokens', '3000', '--logits', '--skew', 'zipf:1'],
  );
  sameOnEveryCount(logits);

  const whole = synth(dir, 'w.arrows', '--layers', '6', '--experts', '8', '--top-k', '2', '--tokens', '40000');
  const cut = join(dir, 'cut.arrows');
  copyFileSync(whole, cut);
  truncateSync(cut, statSync(whole).size - 500);
  const { code, json } = sameOnEveryCount(cut);
  assert.equal(code, 2);
  assert.equal((JSON.parse(json) as { truncated: boolean }).truncated, true);
});

test('stats: a trace whose layers differ in shape prints the same with workers (each shape split on its own)', (t) => {
  const dir = tempDir(t);
  // Layers 0–2: 16 experts top-4; layers 3–5: 8 experts top-2 (slots past a layer's K hold NO_EXPERT).
  const shapes = [0, 1, 2].map(() => ({ experts: 16, topK: 4 }));
  shapes.push(...[0, 1, 2].map(() => ({ experts: 8, topK: 2 })));
  const schema = schemaOfShapes([0, 1, 2, 3, 4, 5], shapes, 'softmax', false);
  const path = join(dir, 'mixed.arrows');
  const w = TraceWriter.create(path, {
    schema,
    meta: { model: 'mixed', routers: [], tokenizer: null, devices: ['cpu'], source: 'synth' },
    batchTokens: 500,
  });
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const N = 4000;
  const L = 6;
  const K = 4;
  const experts = new Uint16Array(N * L * K).fill(NO_EXPERT);
  const weights = new Uint16Array(N * L * K);
  for (let t = 0; t < N; t++)
    for (let l = 0; l < L; l++) {
      const { experts: E, topK: k } = shapes[l]!;
      const picked = new Set<number>();
      // skewed: low ids more often
      while (picked.size < k) picked.add(Math.floor(E * rand() * rand()));
      [...picked].forEach((e, j) => {
        experts[(t * L + l) * K + j] = e;
        weights[(t * L + l) * K + j] = f32ToF16(1 / (j + 1));
      });
    }
  const batch: RoutingBatch = {
    length: N,
    seq: Uint32Array.from({ length: N }, (_, t) => Math.floor(t / 256)),
    pos: Uint32Array.from({ length: N }, (_, t) => t % 256),
    tokenId: Int32Array.from({ length: N }, (_, t) => t % 97),
    token: Array.from({ length: N }, (_, t) => `t${t % 97}`),
    isPrompt: new Uint8Array(N),
    tNs: new BigInt64Array(N),
    experts,
    weights,
    logits: null,
    tag: null,
  };
  w.write(batch);
  w.close();
  const { json } = sameOnEveryCount(path, ['--window', '64']);
  assert.equal((JSON.parse(json) as { shapes: unknown[] }).shapes.length, 2);
});

test('SplitAnalysis: layer ranges in 1 and 2 workers merge to the result of one analysis', async (t) => {
  const dir = tempDir(t);
  const trace = synth(
    dir,
    'x.arrows',
    ...['--layers', '9', '--experts', '32', '--top-k', '6', '--tokens', '12000', '--seed', '2', '--skew', 'zipf:1.3'],
  );
  const r = openTrace(trace);
  t.after(() => r.close());
  const options: AnalysisOptions = { ...defaultAnalysisOptions(r.schema), window: 32, batchTokens: 700 };
  const one = new TraceAnalysis(r.schema, options);
  for (const b of r.batches()) one.add(b);
  const want = JSON.stringify(one.result({ balancedness: null }));
  for (const workers of [1, 2, 3]) {
    const split = new SplitAnalysis(r.schema, options, workers);
    try {
      for (const b of r.batches()) await split.add(b);
      const got = JSON.stringify(await split.result(() => ({ balancedness: null })));
      assert.ok(got === want, `${workers} workers: the merged result differs from one analysis`);
    } finally {
      split.close();
    }
  }
});

test('statsWorkers: none for small traces or logits, MOESCOPE_STATS_WORKERS sets it, bad values refused', (t) => {
  const saved = process.env.MOESCOPE_STATS_WORKERS;
  t.after(() => {
    if (saved === undefined) delete process.env.MOESCOPE_STATS_WORKERS;
    else process.env.MOESCOPE_STATS_WORKERS = saved;
  });
  delete process.env.MOESCOPE_STATS_WORKERS;
  const big = { layers: [...Array(58).keys()], experts: 256, topK: 8, scoring: 'softmax' as const, hasLogits: false };
  assert.equal(statsWorkers(big, 1000), 0, 'a small trace stays on one thread');
  assert.equal(statsWorkers({ ...big, hasLogits: true }, 1e6), 0, 'logits are never split');
  process.env.MOESCOPE_STATS_WORKERS = '2';
  assert.equal(statsWorkers(big, 10), 2);
  assert.equal(statsWorkers({ ...big, layers: [0, 1] }, 10), 1, 'at most one range per layer');
  assert.equal(statsWorkers({ ...big, hasLogits: true }, 10), 0);
  process.env.MOESCOPE_STATS_WORKERS = 'two';
  assert.throws(() => statsWorkers(big, 10), UserError);
  assert.deepEqual(layerRanges(10, 3, 0.5), [
    { start: 0, end: 2 },
    { start: 2, end: 6 },
    { start: 6, end: 10 },
  ]);
});
