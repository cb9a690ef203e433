/**
 * The live views' co-activation, counted in chunks (src/store/coact-chunks.ts): whatever the batch sizes and
 * wherever a read falls, the top pairs are those of a brute-force count over every token seen so far.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RoutingSchema } from '../../src/core/batch.js';
import { ChunkedCoactivation } from '../../src/store/coact-chunks.js';

const schema: RoutingSchema = { layers: [1, 2, 3], experts: 16, topK: 4, scoring: 'softmax', hasLogits: false };
const L = schema.layers.length;
const { experts: E, topK: K } = schema;

/** Deterministic pseudo-random ids, K distinct per token and layer, skewed towards low ids. */
function tokens(n: number, seed: number): Uint16Array {
  let x = seed;
  const rand = () => ((x = (x * 1103515245 + 12345) >>> 0), x / 2 ** 32);
  const out = new Uint16Array(n * L * K);
  for (let t = 0; t < n; t++)
    for (let l = 0; l < L; l++) {
      const picked = new Set<number>();
      while (picked.size < K) picked.add(Math.floor(rand() ** 2 * E));
      out.set([...picked], (t * L + l) * K);
    }
  return out;
}

/** Top pairs by brute force: N(i and j) over every pair of each token's K ids, ratio N(i and j) / N(i). */
function bruteTopPairs(ids: Uint16Array, n: number, l: number, count: number) {
  const N = new Array<number>(E).fill(0);
  const both = new Map<string, number>();
  for (let t = 0; t < n; t++) {
    const row = Array.from(ids.subarray((t * L + l) * K, (t * L + l + 1) * K));
    for (const i of row) N[i]!++;
    for (const i of row) for (const j of row) if (i !== j) both.set(`${i},${j}`, (both.get(`${i},${j}`) ?? 0) + 1);
  }
  const pairs = [...both].map(([k, together]) => {
    const [a, b] = k.split(',').map(Number) as [number, number];
    return { a, b, ratio: together / N[a]!, together };
  });
  pairs.sort((x, y) => y.ratio - x.ratio || y.together - x.together || x.a - y.a || x.b - y.b);
  return pairs.slice(0, count);
}

test('co-activation counted in chunks: the same top pairs as a count of every token, read at any point', () => {
  const total = 2600; // crosses the 1,024-token chunk twice, and ends inside a third
  const ids = tokens(total, 7);
  const c = new ChunkedCoactivation(schema);
  const sizes = [1, 1, 5, 700, 1, 300, 1024, 17, 64, 1];
  let seen = 0;
  for (let i = 0; seen < total; i++) {
    const n = Math.min(sizes[i % sizes.length]!, total - seen);
    c.add({ length: n, experts: ids.subarray(seen * L * K, (seen + n) * L * K) });
    seen += n;
    if (i % 3 === 0 || seen === total)
      for (let l = 0; l < L; l++)
        assert.deepEqual(c.topPairs(l, 6), bruteTopPairs(ids, seen, l, 6), `layer ${l} at ${seen}`);
  }
});
