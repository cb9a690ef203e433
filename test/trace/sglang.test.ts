/**
 * `moescope import sglang`: dumps written by torch.save with SGLang's exact structures (tools/fixtures/sglang_dumps.py,
 * committed under fixtures/sglang/) give the loads SGLang's own reader logic gets (fixtures/sglang/expected.json,
 * computed with numpy by the generator); hostile and foreign .pt files are refused in one line, executing nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIXTURES } from '../../src/core/paths.js';
import { openTrace } from '../../src/trace/index.js';
import { tempDir } from './helpers.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
const DIR = join(FIXTURES, 'sglang');
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8'));
const filesOf = (mode: string) =>
  readdirSync(join(DIR, mode))
    .filter((f) => f.endsWith('.pt'))
    .map((f) => join(DIR, mode, f));
/** Layer 0 of the fixture model is dense (no routed tokens): the MoE layers are 1…L−1. */
const MOE = Array.from({ length: expected.layers - 1 }, (_, i) => i + 1);
const E: number = expected.logicalExperts;

function countRows(path: string): { steps: number[]; rows: number[][][] } {
  const t = openTrace(path);
  try {
    assert.equal(t.kind, 'counts');
    const steps: number[] = [];
    const rows: number[][][] = [];
    const L = t.schema.layers.length;
    for (const b of t.countBatches())
      for (let r = 0; r < b.length; r++) {
        steps.push(b.step[r]!);
        rows.push(
          Array.from({ length: L }, (_, l) => Array.from(b.counts.subarray((r * L + l) * E, (r * L + l + 1) * E))),
        );
      }
    return { steps, rows };
  } finally {
    t.close();
  }
}

test('stat dump: the filled logical_count steps, dense layer left out', (ctx) => {
  const out = tempDir(ctx).path('stat.arrows');
  const r = cli('import', 'sglang', ...filesOf('stat'), '-o', out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /count trace, 6 steps, 3 MoE layers × 8 experts/);
  assert.match(r.stderr, /2 all-zero buffer steps left out/);
  assert.match(r.stderr, /layer 0 routed no tokens \(dense layers\)/);
  const { rows } = countRows(out);
  const want = (expected.stat.logicalCount as number[][][])
    .slice(0, expected.stat.filledSteps)
    .map((s) => MOE.map((l) => s[l]!));
  assert.deepEqual(rows, want);
  const t = openTrace(out);
  assert.deepEqual(t.schema.layers, MOE);
  assert.equal(t.countInfo!.topKKnown, false);
  t.close();
});

test('per_pass dumps of two ranks: summed per forward pass, physical → logical, as reader.py does', (ctx) => {
  const out = tempDir(ctx).path('pass.arrows');
  const r = cli('import', 'sglang', ...filesOf('per_pass'), '-o', out, '--top-k', '2');
  assert.equal(r.status, 0, r.stderr);
  const { steps, rows } = countRows(out);
  assert.deepEqual(steps, expected.per_pass.forwardPassIds);
  assert.deepEqual(
    rows,
    (expected.per_pass.logicalCount as number[][][]).map((s) => MOE.map((l) => s[l]!)),
  );
  const t = openTrace(out);
  const p = t.countInfo!.placement!;
  t.close();
  assert.equal(p.devices, expected.ranks);
  assert.deepEqual(
    p.phy2log,
    MOE.map((l) => expected.per_pass.physicalToLogical[l]),
  );
  // stats shows the replicas and the balancedness under that placement.
  const s = cli('stats', out, '--json');
  assert.equal(s.status, 0, s.stderr);
  const j = JSON.parse(s.stdout);
  assert.equal(j.devices.placement, 'trace');
  assert.equal(j.devices.slots, expected.physicalExperts);
  assert.equal(j.devices.replicatedExperts, 2);
  assert.equal(j.tokens, (expected.per_pass.summedLoad[1] as number[]).reduce((a, b) => a + b, 0) / 2);
  j.layers.forEach((m: { load: number[] }, i: number) =>
    assert.deepEqual(m.load, expected.per_pass.summedLoad[MOE[i]!]),
  );
});

test('per_token dumps of two ranks: every token with its logical experts, in forward-pass then rank order', (ctx) => {
  const out = tempDir(ctx).path('tok.arrows');
  const r = cli('import', 'sglang', ...filesOf('per_token'), '-o', out);
  assert.equal(r.status, 0, r.stderr);
  const tokens = expected.per_token.tokens as {
    tokenId: number;
    position: number;
    forwardMode: number;
    experts: number[][];
  }[];
  assert.match(r.stdout, new RegExp(`${tokens.length} tokens, 3 MoE layers × 8 experts, top-2`));
  const t = openTrace(out);
  try {
    assert.equal(t.kind, 'tokens');
    const K = expected.per_token.topK as number;
    let i = 0;
    for (const b of t.batches())
      for (let x = 0; x < b.length; x++, i++) {
        const want = tokens[i]!;
        assert.equal(b.tokenId[x], want.tokenId);
        assert.equal(b.pos[x], want.position);
        assert.equal(b.isPrompt[x], want.forwardMode === 1 ? 1 : 0);
        assert.equal(b.tag![x], want.forwardMode === 1 ? 'extend' : 'decode');
        assert.deepEqual(
          Array.from(b.experts.subarray(x * MOE.length * K, (x + 1) * MOE.length * K)),
          want.experts.flat(),
        );
      }
    assert.equal(i, tokens.length);
  } finally {
    t.close();
  }
  // The loads of the token trace are the per-pass logical counts SGLang's reader gets from global_physical_count.
  const s = cli('stats', out, '--json');
  assert.equal(s.status, 0, s.stderr);
  JSON.parse(s.stdout).layers.forEach((m: { load: number[] }, i: number) =>
    assert.deepEqual(m.load, expected.per_token.summedLoad[MOE[i]!]),
  );
});

test('plan on a stat dump answers "should I turn EPLB on" with balancedness before and after', (ctx) => {
  const out = tempDir(ctx).path('stat.arrows');
  assert.equal(cli('import', 'sglang', ...filesOf('stat'), '-o', out).status, 0);
  const r = cli('plan', out, '--replicas', '10', '--gpus', '2', '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  // Before EPLB (contiguous: experts 0–3 on GPU 0, 4–7 on GPU 1), by hand from the expected loads.
  const eps = 1e-5;
  const loads = MOE.map((l) => expected.stat.summedLoad[l] as number[]);
  const ratios = loads.map((row) => {
    const g0 = row.slice(0, 4).reduce((a, b) => a + b, 0);
    const g1 = row.slice(4).reduce((a, b) => a + b, 0);
    return ((g0 + g1) / 2 + eps) / (Math.max(g0, g1) + eps);
  });
  assert.ok(Math.abs(j.before.balancedness.sglang - ratios.reduce((a, b) => a + b, 0) / ratios.length) < 1e-12);
  assert.ok(j.after.balancedness.sglang > j.before.balancedness.sglang);
  assert.equal(j.advice.turnOn, true);
  const text = cli('plan', out, '--replicas', '10', '--gpus', '2');
  assert.match(
    text.stdout,
    /should EPLB be on\? turn EPLB on: the busiest GPU carries \d\.\d\d× the mean load without EPLB/,
  );
});

test('hostile and foreign .pt files are refused in one line, executing and writing nothing', (ctx) => {
  const tmp = tempDir(ctx);
  const cases: [string, RegExp][] = [
    [
      'os_system.pt',
      /refused: pickle global posix\.system is not one that expert-distribution dumps hold \(nothing was executed\)/,
    ],
    ['huge_shape.pt', /refused: logical_count: shape \[1048576, 1048576, 1024\] has \d+ elements/],
    ['stride0.pt', /refused: logical_count: shape \[1, 100000, 8\] views more elements than its storage holds/],
    ['truncated.pt', /zip archive cut short/],
    ['legacy.pt', /not a zip archive/],
    ['foreign_state_dict.pt', /not an SGLang expert-distribution dump/],
  ];
  assert.deepEqual(cases.map((c) => c[0]).sort(), [...(expected.hostile as string[])].sort());
  for (const [name, why] of cases) {
    const out = tmp.path(`${name}.arrows`);
    const r = cli('import', 'sglang', join(DIR, 'hostile', name), '-o', out);
    assert.equal(r.status, 2, `${name}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${name}: ${r.stderr}`);
    assert.match(lines[0]!, /^moescope: /);
    assert.match(lines[0]!, why, name);
    assert.equal(existsSync(out), false);
    assert.deepEqual(
      readdirSync(tmp.dir).filter((f) => f.includes('partial')),
      [],
    );
  }
  assert.equal(existsSync('/tmp/moescope-sglang-pwned'), false);
  const mixed = cli('import', 'sglang', ...filesOf('stat'), ...filesOf('per_pass'), '-o', tmp.path('mixed.arrows'));
  assert.equal(mixed.status, 2);
  assert.match(mixed.stderr, /^moescope: the files mix recorder modes \(stat, per_pass\)/);
  // The same dump twice is imported once (test/trace/import-duplicates.test.ts); a different one under the same ids
  // is refused.
  const twice = cli('import', 'sglang', ...filesOf('per_pass'), ...filesOf('per_pass'), '-o', tmp.path('twice.arrows'));
  assert.equal(twice.status, 0, twice.stderr);
  assert.match(twice.stderr, /skipped \d+ duplicate forward-pass records/);
});
