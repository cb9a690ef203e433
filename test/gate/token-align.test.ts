/**
 * TokenAligner (src/gate/token-align.ts) when half the sequences are in one trace only: their tokens wait for a
 * partner that never comes. Past its memory budget the aligner spills them to a temp file: the pairs are the same
 * (every token of a shared sequence, its own routing on each side), the rows in memory stay within the budget, and
 * the file is gone after close().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { allocBatch, type RoutingBatch, type RoutingSchema } from '../../src/core/batch.js';
import { TokenAligner } from '../../src/gate/token-align.js';

const S: RoutingSchema = { layers: [0, 1, 2, 3], experts: 64, topK: 8, scoring: 'softmax', hasLogits: false };
const W = S.layers.length * S.topK;
const SEQ = 100;

/** Token `i` of a trace: sequence i / SEQ (odd ones renamed by `rename` in trace B), routing from (side, i). */
function batch(side: number, first: number, n: number, rename: number): RoutingBatch {
  const b = allocBatch(S, n);
  for (let j = 0; j < n; j++) {
    const i = first + j;
    const seq = Math.floor(i / SEQ);
    b.seq[j] = seq % 2 === 1 ? seq + rename : seq;
    b.pos[j] = i % SEQ;
    b.tokenId[j] = (i * 7919) % 32000;
    for (let k = 0; k < W; k++) {
      b.experts[j * W + k] = (i + k * 3 + side) % 64;
      b.weights[j * W + k] = (i * 31 + k + side * 7) & 0x3fff;
    }
  }
  return b;
}

test('sequences in one trace only: held rows spill past the budget, the pairs are unchanged', () => {
  const N = 40_000;
  const rowBytes = W * 4;
  const hold = 64 * 1024 * rowBytes; // 64 pages of 1024 rows, both sides: 32 each
  const before = new Set(readdirSync(tmpdir()).filter((f) => f.startsWith('moescope-diff-')));
  const got: { a: number[]; b: number[] }[] = [];
  const al = new TokenAligner(
    [S, S],
    (a, b) => {
      for (let i = 0; i < a.length; i++)
        got.push({ a: [...a.experts.subarray(i * W, (i + 1) * W)], b: [...b.experts.subarray(i * W, (i + 1) * W)] });
    },
    { holdBytes: hold / 8 }, // 4 pages a side
  );
  // A first, then B: every token of A waits (the worst case), B's disjoint ones wait to the end.
  for (let t = 0; t < N; t += 1000) al.add(0, batch(0, t, 1000, 0));
  for (let t = 0; t < N; t += 1000) al.add(1, batch(1, t, 1000, 1_000_000));
  const s = al.finish();
  // Shared: the even sequences, every token, in trace order; each side's own routing.
  const want: { a: number[]; b: number[] }[] = [];
  for (let i = 0; i < N; i++)
    if (Math.floor(i / SEQ) % 2 === 0) {
      const row = (side: number) => Array.from({ length: W }, (_, k) => (i + k * 3 + side) % 64);
      want.push({ a: row(0), b: row(1) });
    }
  assert.equal(s.pairs, N / 2);
  assert.deepEqual(got, want);
  assert.equal(s.heldPeak[0], N);
  assert.ok(s.residentPeak[0] <= 4 * 1024, `resident ${s.residentPeak[0]} rows`);
  assert.ok(s.spilled[0] >= N - 4 * 1024, `spilled ${s.spilled[0]} rows`);
  assert.deepEqual(s.dropped, [0, 0]);
  al.close();
  const after = readdirSync(tmpdir()).filter((f) => f.startsWith('moescope-diff-') && !before.has(f));
  assert.deepEqual(after, []);
});

test('a full spill file: tokens that cannot wait end their sequence and are counted', () => {
  const al = new TokenAligner([S, S], () => {}, { holdBytes: 2 * 1024 * W * 4, spillBytes: 2 * 1024 * W * 4 });
  for (let t = 0; t < 10_000; t += 1000) al.add(0, batch(0, t, 1000, 0));
  for (let t = 0; t < 10_000; t += 1000) al.add(1, batch(1, t, 1000, 0));
  const s = al.finish();
  al.close();
  // One page in memory and two in the file a side: 3072 tokens can wait. Sequences 0-29 are held whole and pair;
  // the token that finds no room ends its sequence (counted), whose rows go free for the next.
  assert.ok(s.dropped[0] > 0, `dropped ${s.dropped[0]}`);
  assert.ok(s.pairs >= 3000 && s.pairs < 10_000, `pairs ${s.pairs}`);
  assert.ok(s.heldPeak[0] <= 3 * 1024);
});
