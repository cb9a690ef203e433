/** `moescope stats` end to end: a trace written by the real TraceWriter, read back by the CLI. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TraceWriter } from '../../src/trace/index.js';
import { TraceAnalysis, defaultAnalysisOptions, type StatsJson } from '../../src/stats/analysis.js';
import { buildBatches, caseTokens, referenceCases } from './helpers.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
let dir = '';
let tracePath = '';
const ref = referenceCases()[0]!;

function cli(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'moescope-stats-'));
  tracePath = join(dir, 'ref.arrows');
  const w = TraceWriter.create(tracePath, {
    schema: ref.input.schema,
    meta: { model: 'reference', routers: [], tokenizer: null, devices: ['cpu'], source: 'synth' },
    batchTokens: 16,
  });
  for (const b of buildBatches(ref.input.schema, caseTokens(ref), 10)) w.write(b);
  w.close();
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('stats --json gives the documented JSON with the numbers of the reference', () => {
  const r = cli(
    'stats',
    tracePath,
    '--json',
    '--devices',
    '4',
    '--capacity-factor',
    '1',
    '--batch-tokens',
    '16',
    '--bias-rate',
    '0.01',
  );
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as StatsJson & { truncated: boolean };
  const ex = ref.expected;
  assert.equal(j.version, 1);
  assert.equal(j.tokens, 64);
  assert.equal(j.truncated, false);
  assert.ok(Math.abs(j.global.hfAuxLoss! - ex.hfAuxLossPooled) < 1e-9);
  j.layers.forEach((m, l) => {
    assert.deepEqual(m.load, ex.layers[l]!.load);
    assert.ok(Math.abs(m.maxVio - (ex.layers[l]!.maxVio as number)) < 1e-12);
    assert.ok(Math.abs(m.zLoss! - (ex.layers[l]!.zLoss as number)) < 1e-9);
    assert.deepEqual(m.capacity.droppedPerExpert, ex.capacity[l]!.droppedPerExpert);
  });
  for (const key of ['layer', 'load', 'cv', 'maxVio', 'entropy', 'hfAuxLoss', 'switchAuxLoss', 'zLoss', 'deadExperts'])
    assert.ok(key in j.layers[0]!, `layers[].${key}`);
  const bal = j.global.balancedness as { devices: number; sglang: number; vllm: number; perLayer: number[] };
  assert.equal(bal.devices, 4);
  // Layer 2 of the reference is skewed: its device loads (experts 0-1, 2-3, 4-5, 6-7) are uneven.
  const load = ex.layers[2]!.load as number[];
  const dev = [0, 2, 4, 6].map((e) => load[e]! + load[e + 1]!);
  const want = (dev.reduce((a, b) => a + b, 0) / 4 + 1e-5) / (Math.max(...dev) + 1e-5);
  assert.ok(Math.abs(bal.perLayer[2]! - want) < 1e-12);
  assert.ok(Array.isArray(j.warnings));
});

test('the JSON equals what the library computes from the same batches, logits metrics included', () => {
  const r = cli('stats', tracePath, '--json', '--window', '16');
  const j = JSON.parse(r.stdout) as StatsJson;
  const a = new TraceAnalysis(ref.input.schema, { ...defaultAnalysisOptions(ref.input.schema), window: 16 });
  const batches = buildBatches(ref.input.schema, caseTokens(ref), 64);
  for (const b of batches) a.add(b);
  for (const b of batches) a.route(b);
  const lib = JSON.parse(JSON.stringify(a.result({ balancedness: null }))) as StatsJson;
  assert.deepEqual(
    { ...j, truncated: undefined, closed: undefined },
    { ...lib, truncated: undefined, closed: undefined },
  );
  assert.ok(j.warnings.length > 0, 'the skewed layer trips a rule with a 16-token window');
  assert.equal(j.global.balancedness, null);
});

test('stats prints a readable table with conventions and balanced values', () => {
  const r = cli('stats', tracePath);
  assert.equal(r.status, 0, r.stderr);
  for (const s of [
    '64 tokens',
    '3 MoE layers × 8 experts, top-2 softmax',
    'MaxVio',
    'HF load_balancing_loss_func',
    'balanced = K = 2',
    'Switch / Megatron',
    'z-loss',
    'Capacity factor 1.25',
    'probs policy',
    'position policy',
    'same first choice',
    'loss-free',
    'code (40 tokens)',
  ])
    assert.ok(r.stdout.includes(s), `missing "${s}" in:\n${r.stdout}`);
  assert.match(r.stdout, /^\s+5\s+1\.563\s+0\.\d{3}\s/m, 'layer 5 (the skewed one) shows MaxVio 1.5625');
});

test('bad input: missing file, not a trace, bad flags → one line, exit 2', () => {
  const missing = cli('stats', join(dir, 'nope.arrows'));
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /^moescope: .*nope\.arrows.*\n$/);
  const junk = join(dir, 'junk.arrows');
  writeFileSync(junk, 'hello, not arrow');
  const bad = cli('stats', junk);
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.equal(cli('stats', tracePath, '--window', '-3').status, 2);
  assert.equal(cli('stats', tracePath, '--devices', '9').status, 2);
  assert.match(cli('stats', tracePath, '--vocab-layer', '3').stderr, /--vocab-layer must be 0…2/);
});
