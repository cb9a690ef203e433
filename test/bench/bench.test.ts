/**
 * The benchmark suite's own machinery: summaries, interleaving, the trace cache, CPU-profile summaries, and the
 * ingest bench's proof that no token was dropped (its live counts against a recount of the trace it wrote), and the
 * end-to-end ingest bench's (two threads, every count and the trace agreeing, the same stats every round).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cached, interleave, lastJsonLine, median, summarise, topFrames, fmtSummary } from '../../bench/common.js';
import { runIngest } from '../../bench/ingest.js';
import { runE2e } from '../../bench/ingest-e2e.js';
import { streamTrace } from '../../bench/rss-stream.js';

test('median, min–max and their printing', () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
  const s = summarise([10, 30, 20]);
  assert.deepEqual(s, { median: 20, min: 10, max: 30, n: 3 });
  assert.equal(fmtSummary(s, 1, ' ms'), '20.0 ms (10.0–30.0)');
  assert.equal(fmtSummary(summarise([7]), 0), '7');
});

test('interleave rotates which variant goes first and drops the warm-up round', () => {
  const order: string[] = [];
  const out = interleave(['a', 'b', 'c'], 3, (v, r) => {
    order.push(`${r}:${'abc'[v]}`);
    return r;
  });
  assert.deepEqual(order, ['-1:a', '-1:b', '-1:c', '0:a', '0:b', '0:c', '1:b', '1:c', '1:a', '2:c', '2:a', '2:b']);
  assert.deepEqual(out, [
    [0, 1, 2],
    [0, 1, 2],
    [0, 1, 2],
  ]);
});

test('lastJsonLine finds the result line after human-readable output', () => {
  assert.deepEqual(lastJsonLine('table\n{"a":1}\nmore text\n{"b":2}\n'), { b: 2 });
  assert.equal(lastJsonLine('no json {here\n'), null);
});

test('cached() makes a file once, reuses it while the spec holds, remakes it when the spec or the file changes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-bench-test-'));
  const prev = process.env.MOESCOPE_BENCH_CACHE;
  process.env.MOESCOPE_BENCH_CACHE = dir;
  try {
    let made = 0;
    const make = (p: string) => writeFileSync(p, `v${++made}`);
    const valid = (p: string) => readFileSync(p, 'utf8').startsWith('v');
    assert.equal(cached('t.bin', { n: 1 }, make, valid).made, true);
    const again = cached('t.bin', { n: 1 }, make, valid);
    assert.equal(again.made, false);
    assert.equal(readFileSync(again.path, 'utf8'), 'v1');
    assert.equal(cached('t.bin', { n: 2 }, make, valid).made, true, 'new spec');
    writeFileSync(join(dir, 't.bin'), 'corrupt');
    assert.equal(cached('t.bin', { n: 2 }, make, valid).made, true, 'invalid file');
    assert.equal(made, 3);
  } finally {
    if (prev === undefined) delete process.env.MOESCOPE_BENCH_CACHE;
    else process.env.MOESCOPE_BENCH_CACHE = prev;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('topFrames sums self time per function over every profile in a folder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-bench-prof-'));
  try {
    const frame = (id: number, functionName: string, line: number) => ({
      id,
      callFrame: { functionName, url: 'file:///x/dist/src/stats/scores.js', lineNumber: line },
    });
    const profile = {
      nodes: [frame(1, '(root)', 0), frame(2, 'score', 43), frame(3, 'add', 9)],
      samples: [2, 2, 3, 2],
      timeDeltas: [1000, 2000, 1000, 4000],
    };
    writeFileSync(join(dir, 'a.cpuprofile'), JSON.stringify(profile));
    writeFileSync(join(dir, 'b.cpuprofile'), JSON.stringify({ ...profile, samples: [3], timeDeltas: [2000] }));
    const r = topFrames(dir, 5);
    assert.equal(r.totalMs, 10);
    assert.deepEqual(
      r.frames.map((f) => [f.frame, f.selfMs]),
      [
        ['score (dist/src/stats/scores.js:44)', 7],
        ['add (dist/src/stats/scores.js:10)', 3],
      ],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ingest accounts for every token: stats, writer and the reopened trace agree, and a recount of the trace equals the live counts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-bench-ingest-'));
  try {
    const trace = join(dir, 'ingest.arrows');
    const r = runIngest({ rounds: 1, roundTokens: 150, logits: true, trace });
    assert.equal(r.ok, true);
    assert.ok(r.produced >= 300, `warm-up + 1 round of ≥ 150 tokens, got ${r.produced}`);
    assert.equal(r.statsTokens, r.produced);
    assert.equal(r.traceTokens, r.produced);
    assert.equal(r.traceComplete, true);
    assert.ok(r.ingest.median > 0 && r.producer.median > 0);
    const back = streamTrace(trace);
    assert.equal(back.tokens, r.produced);
    assert.equal(back.loadSha1, r.loadSha1, 'the trace holds exactly what the stats counted');
    assert.ok(Number.isFinite(back.logitSum) && back.logitSum !== 0, 'logits were recorded and read');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    assert.equal(existsSync(dir), false);
  }
});

test('end-to-end ingest accounts for every token across its two threads, and every round has the same stats', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-bench-ingest-e2e-'));
  try {
    const r = await runE2e({ tokens: 200, rounds: 2, batch: null, trace: join(dir, 'e2e.arrows') });
    assert.equal(r.ok, true);
    for (const x of r.rounds) {
      assert.ok(x.tokens >= 200, `a round makes at least the tokens asked for, got ${x.tokens}`);
      assert.equal(x.modelTokens, x.tokens);
      assert.equal(x.writerTokens, x.tokens);
      assert.equal(x.traceTokens, x.tokens);
      assert.equal(x.traceComplete, true);
      assert.ok(x.us.worker > 0 && x.us.main > 0 && x.us.process > 0, 'CPU read for both threads and the process');
    }
    assert.equal(r.rounds[0]!.digest, r.rounds[1]!.digest, 'the same seeded stream gives the same stats');
    const one = await runE2e({ tokens: 120, rounds: 1, batch: 1, trace: null });
    assert.equal(one.ok, true);
    assert.equal(one.rounds[0]!.tokens, 120, 'batches of one token: exactly the tokens asked for');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
