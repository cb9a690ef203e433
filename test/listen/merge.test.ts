/**
 * `moescope merge`: per-rank traces into one, ordered by step then time, each row tagged with its rank; what
 * cannot be merged (pipeline stages, other experts, the same rank twice, the output being an input) is one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NO_STEP } from '../../src/core/batch.js';
import { TraceWriter, openTrace } from '../../src/trace/index.js';
import { synthesize, type SynthSpec } from '../../src/trace/synth.js';
import { moescope } from '../trace/cli.js';
import { META, SCHEMA, makeBatch, withColumns } from '../trace/helpers.js';
import { countsOf } from './helpers.js';

const SPEC: SynthSpec = {
  layers: 3,
  experts: 8,
  topK: 2,
  tokens: 900,
  skew: { kind: 'uniform' },
  collapse: null,
  logits: false,
  seed: 1,
};

function tmp(ctx: { after: (fn: () => void) => void }) {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-merge-'));
  ctx.after(() => rmSync(dir, { recursive: true, force: true }));
  return (name: string) => join(dir, name);
}

test('merge: ranks 0,1,2 in order given; rows by step then time; loads are the sum; memory samples kept', (ctx) => {
  const p = tmp(ctx);
  synthesize(p('a.arrows'), { ...SPEC, seed: 1, stepTokens: 100 });
  synthesize(p('b.arrows'), { ...SPEC, seed: 2, tokens: 700, stepTokens: 50 });
  synthesize(p('c.arrows'), { ...SPEC, seed: 3, tokens: 333, stepTokens: 10 });
  const r = moescope('merge', p('a.arrows'), p('b.arrows'), p('c.arrows'), '-o', p('all.arrows'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /wrote .*all\.arrows: 1933 tokens, 3 MoE layers × 8 experts, top-2 softmax · .*a\.arrows \(rank 0\): 900, .*b\.arrows \(rank 1\): 700, .*c\.arrows \(rank 2\): 333/,
  );
  const t = openTrace(p('all.arrows'));
  assert.deepEqual(t.columns, ['step', 'rank']);
  assert.equal(t.meta.source, 'merge');
  assert.equal(t.meta.world, 3);
  const m = t.readRange(0, t.tokenCount);
  const steps = [...m.step!];
  assert.ok(
    steps.every((s, i) => i === 0 || s >= steps[i - 1]!),
    'non-decreasing steps',
  );
  const srcs = ['a', 'b', 'c'].map((x) => {
    const s = openTrace(p(`${x}.arrows`));
    const b = s.readRange(0, s.tokenCount);
    s.close();
    return b;
  });
  for (let rank = 0; rank < 3; rank++) {
    const rows = [...m.rank!].flatMap((x, i) => (x === rank ? [i] : []));
    assert.deepEqual(
      rows.map((i) => m.tokenId[i]),
      [...srcs[rank]!.tokenId],
      `rank ${rank} rows in their order`,
    );
  }
  assert.deepEqual([...countsOf([m], 3, 8, 2)], [...countsOf(srcs, 3, 8, 2)]);
  // Step 3 holds rank 0's tokens 300…399, rank 1's 150…199 and rank 2's 30…39 (synth: token g at g ms), in time order.
  const s3 = steps.flatMap((s, i) => (s === 3 ? [m.rank![i]!] : []));
  assert.deepEqual(s3, [...new Array(10).fill(2), ...new Array(50).fill(1), ...new Array(100).fill(0)]);
  t.close();
});

test('merge: traces that carry ranks keep them; memory samples and null steps survive', (ctx) => {
  const p = tmp(ctx);
  for (const rank of [3, 1]) {
    const w = TraceWriter.create(p(`r${rank}.arrows`), {
      schema: SCHEMA,
      meta: META,
      batchTokens: 8,
      columns: ['step', 'rank', 'dropped'],
    });
    w.write(withColumns(makeBatch(SCHEMA, 10, 0), 0, rank));
    w.writeMemory({ tNs: BigInt(rank), gpus: null, hostRssBytes: rank, ortBytes: null });
    w.write(withColumns(makeBatch(SCHEMA, 20, 10), 10, rank));
    w.close();
  }
  const r = moescope('merge', p('r3.arrows'), p('r1.arrows'), '-o', p('m.arrows'));
  assert.equal(r.code, 0, r.stderr);
  const t = openTrace(p('m.arrows'));
  assert.deepEqual(t.columns, ['step', 'rank', 'dropped']);
  const b = t.readRange(0, 60);
  assert.deepEqual([...new Set(b.rank!)].sort(), [1, 3]);
  assert.equal([...b.step!].filter((s) => s === NO_STEP).length, 2, 'the null steps stay null');
  assert.equal(
    [...b.dropped!].reduce((x, y) => x + y, 0),
    2 * withColumns(makeBatch(SCHEMA, 30, 0), 0, 0).dropped!.reduce((x, y) => x + y, 0),
  );
  const mem = t.memorySamples();
  assert.deepEqual(mem.map((m) => m.sample.hostRssBytes).sort(), [1, 3]);
  for (const m of mem)
    assert.equal(b.tokenId[m.token], makeBatch(SCHEMA, 1, 10).tokenId[0], 'each sample rides on its rank’s token 10');
  t.close();
});

test('merge refuses, in one line and exit 2: pipeline stages, other experts, one rank twice, the output as an input', (ctx) => {
  const p = tmp(ctx);
  synthesize(p('a.arrows'), SPEC);
  synthesize(p('b.arrows'), { ...SPEC, seed: 2 });
  synthesize(p('stage.arrows'), { ...SPEC, layers: 2 });
  synthesize(p('wide.arrows'), { ...SPEC, experts: 16 });
  synthesize(p('r1.arrows'), { ...SPEC, rank: 1 });
  synthesize(p('r1b.arrows'), { ...SPEC, rank: 1, seed: 9 });
  const before = readFileSync(p('a.arrows'));
  const cases: [string[], RegExp][] = [
    [
      [p('a.arrows'), p('stage.arrows')],
      /stage\.arrows cannot be merged with .*a\.arrows: it routes MoE layers 0…1, the others 0…2 \(pipeline stages are not merged/,
    ],
    [[p('a.arrows'), p('wide.arrows')], /wide\.arrows cannot be merged with .*: 16 experts per layer, the others 8/],
    [[p('r1.arrows'), p('r1b.arrows')], /r1\.arrows and .*r1b\.arrows both hold rank 1/],
    [[p('a.arrows'), p('r1.arrows')], /r1\.arrows has a rank column but .*a\.arrows does not/],
  ];
  for (const [inputs, re] of cases) {
    const r = moescope('merge', ...inputs, '-o', p('out.arrows'));
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, re);
  }
  const r = moescope('merge', p('a.arrows'), p('b.arrows'), '-o', p('a.arrows'));
  assert.equal(r.code, 2);
  assert.match(r.stderr, /moescope: merge output .*a\.arrows is also an input; refusing to overwrite it/);
  assert.deepEqual(readFileSync(p('a.arrows')), before);
});

test('merge of a trace cut short: its complete tokens are merged, one line names the cut, exit 2', (ctx) => {
  const p = tmp(ctx);
  const w = TraceWriter.create(p('cut-src.arrows'), { schema: SCHEMA, meta: META, batchTokens: 10 });
  w.write(makeBatch(SCHEMA, 30, 0));
  w.close();
  const bytes = readFileSync(p('cut-src.arrows'));
  writeFileSync(p('cut.arrows'), bytes.subarray(0, bytes.length - 8 - 20)); // inside the last batch, no end marker
  const ok = TraceWriter.create(p('ok.arrows'), { schema: SCHEMA, meta: META });
  ok.write(makeBatch(SCHEMA, 5, 100));
  ok.close();
  const r = moescope('merge', p('ok.arrows'), p('cut.arrows'), '-o', p('m.arrows'));
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(
    r.stderr,
    /cut\.arrows is truncated at byte \d+ \(10 tokens lost\); the output covers its 20 complete tokens/,
  );
  const t = openTrace(p('m.arrows'));
  assert.equal(t.tokenCount, 25);
  assert.ok(t.complete);
  t.close();
});
