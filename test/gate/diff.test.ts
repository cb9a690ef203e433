import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyConfig } from '../../src/gate/config.js';
import { runDiff } from '../../src/gate/diff.js';
import { memoryStream } from '../../src/core/routing-stream.js';
import { concatBatches } from '../../src/gate/subset.js';
import { makeBatches, schemaOf, type TraceSpec } from './fixtures.js';

function source(label: string, spec: TraceSpec) {
  return memoryStream(label, schemaOf(spec), makeBatches(spec));
}

test('identical tokens: same sequence, position and token id, until the first difference in that sequence', async () => {
  const spec: TraceSpec = { tokens: 128, seqLen: 32 };
  const schema = schemaOf(spec);
  const a = concatBatches(makeBatches(spec), schema);
  const b = concatBatches(makeBatches(spec), schema);
  b.tokenId[32 + 5] = -1; // sequence 1 diverges at position 5: positions 5… of it see another prefix
  // Sequences 2 and 3 are stored in the other order in b: pairing goes by sequence id, not by row order.
  const rows = Array.from({ length: 64 }, (_, i) => 64 + i);
  const swapped = rows.map((r) => (r < 96 ? r + 32 : r - 32));
  const take = (src: typeof a, order: number[]) =>
    order.map((r) => [src.seq[r]!, src.pos[r]!, src.tokenId[r]!] as const);
  for (const [i, [s, p, id]] of take(a, swapped).entries()) {
    b.seq[rows[i]!] = s;
    b.pos[rows[i]!] = p;
    b.tokenId[rows[i]!] = id;
  }
  const r = await runDiff(memoryStream('a', schema, [a]), memoryStream('b', schema, [b]), emptyConfig());
  assert.equal(r.data.identicalTokens, 32 + 5 + 32 + 32);
  assert.deepEqual(r.notes, []);
});

test('a sequence that goes back in position ends its pairing there, with a note', async () => {
  const spec: TraceSpec = { tokens: 96, seqLen: 32 };
  const schema = schemaOf(spec);
  const a = concatBatches(makeBatches(spec), schema);
  const b = concatBatches(makeBatches(spec), schema);
  // Sequence 2 is stored in reverse order in b: one pass cannot sort it, so none of it pairs.
  for (let i = 0; i < 32; i++) {
    b.pos[64 + i] = a.pos[64 + 31 - i]!;
    b.tokenId[64 + i] = a.tokenId[64 + 31 - i]!;
  }
  const r = await runDiff(memoryStream('a', schema, [a]), memoryStream('b', schema, [b]), emptyConfig());
  assert.equal(r.data.identicalTokens, 64);
  assert.deepEqual(r.notes, [
    '1 sequence of b goes back in position: identical tokens after that point are not paired',
  ]);
});

test('router agreement is 1 for the same routing and near K/E for independent routing of the same tokens', async () => {
  const base: TraceSpec = { tokens: 4000, experts: 8, topK: 2 };
  const same = await runDiff(source('a', base), source('b', base), emptyConfig());
  for (const r of same.rows) {
    assert.equal(r.values.agreement, 1);
    assert.equal(r.values.firstChoice, 1);
    assert.equal(r.values.tv, 0);
    assert.equal(r.values.js, 0);
  }
  const indep = await runDiff(source('a', base), source('b', { ...base, routeSeed: 99 }), emptyConfig());
  for (const r of indep.rows) {
    assert.ok(Math.abs(r.values.agreement! - 2 / 8) < 0.03, `agreement ${r.values.agreement}`);
    assert.ok(r.values.tv! < 0.05, 'same distribution, different choices: little load drift');
  }
  assert.equal(indep.data.identicalTokens, 4000);
});

test('layers only in one trace are left out with a note; --layers narrows the comparison', async () => {
  const a: TraceSpec = { tokens: 500, layers: [0, 1, 2, 3] };
  const b: TraceSpec = { tokens: 500, layers: [1, 2, 3, 4] };
  const r = await runDiff(source('a', a), source('b', b), emptyConfig());
  assert.deepEqual(
    r.rows.map((x) => x.layer),
    [1, 2, 3],
  );
  assert.ok(r.notes.includes('MoE layers only in a, not compared: 0'));
  assert.ok(r.notes.includes('MoE layers only in b, not compared: 4'));
  const only = await runDiff(source('a', a), source('b', b), { ...emptyConfig(), layers: [2] });
  assert.deepEqual(
    only.rows.map((x) => x.layer),
    [2],
  );
  await assert.rejects(
    runDiff(source('a', a), source('b', b), { ...emptyConfig(), layers: [0] }),
    /there is no MoE layer 0/,
  );
  await assert.rejects(
    runDiff(source('a', { tokens: 10, layers: [0] }), source('b', { tokens: 10, layers: [1] }), emptyConfig()),
    /share no MoE layer/,
  );
});
