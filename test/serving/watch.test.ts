/**
 * `watch` over /metrics pages that prometheus_client wrote for metrics declared and filled as SGLang does
 * (fixtures/serving/metrics, tools/fixtures/serving/make_metrics_pages.py): per-interval counts per layer × GPU and
 * balancedness against the generator's own numbers, a restarted server, a loopback server replaying the pages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../src/core/errors.js';
import { EplbIntervals, decodeEplb, parseMetricsPage, type EplbInterval } from '../../src/serving/prometheus.js';
import { SERVING, moescopeAsync, serve, type Handler } from './fake-servers.js';

const DIR = join(SERVING, 'metrics');
interface Expected {
  ranks: number;
  layers: number[];
  pages: number;
  resetAt: number;
  intervals: { counts: number[][]; balancednessMean: number; countsBalancedness: number }[];
}
const EXPECTED = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as Expected;
const page = (i: number) => readFileSync(join(DIR, `page-${i}.txt`), 'utf8');

test('decoding the pages: cumulative GPU buckets → per-interval counts per layer × GPU; a restart resets them', () => {
  const iv = new EplbIntervals();
  const got: EplbInterval[] = [];
  for (let p = 0; p < EXPECTED.pages; p++) {
    const s = decodeEplb(parseMetricsPage(page(p), `page-${p}`), BigInt(p) * 1_000_000_000n, `page-${p}`);
    if (p === 0) assert.equal(s.ranks, 0, 'no series before the first collection');
    const i = iv.push(s, `page-${p}`);
    if (i) got.push(i);
  }
  assert.deepEqual(iv.layers, EXPECTED.layers);
  assert.equal(iv.ranks, EXPECTED.ranks);
  assert.equal(got.length, EXPECTED.intervals.length);
  got.forEach((i, k) => {
    const want = EXPECTED.intervals[k]!;
    assert.deepEqual([...i.counts], want.counts.flat(), `interval ${k + 1}`);
    assert.ok(Math.abs(i.balancednessMean! - want.balancednessMean) < 1e-12, `interval ${k + 1} balancedness`);
    assert.deepEqual(i.resets, k + 1 === EXPECTED.resetAt ? EXPECTED.layers : []);
    assert.equal(i.seconds, 1);
  });
});

test('pages that are not Prometheus, or EPLB series that are not GPU buckets → one clear error', () => {
  const bad: [string, RegExp][] = [
    ['sglang:eplb_gpu_physical_count_bucket{layer="0",le="0.0"} abc\n', /not a number/],
    ['sglang:eplb_gpu_physical_count_bucket{layer="x",le="0.0"} 1\n', /not a layer index/],
    ['sglang:eplb_gpu_physical_count_bucket{layer="0",le="0.5"} 1\n', /expected GPU ranks 0,1/],
    [
      'sglang:eplb_gpu_physical_count_bucket{layer="0",le="0.0"} 5\nsglang:eplb_gpu_physical_count_bucket{layer="0",le="1.0"} 3\n',
      /not cumulative/,
    ],
    ['sglang:eplb_gpu_physical_count_bucket{layer="0",le="0.0"} -1\n', /not a count/],
    ['<html>\n<body>hi</body>\n', /not a number|not a Prometheus/],
  ];
  for (const [text, want] of bad)
    assert.throws(
      () => decodeEplb(parseMetricsPage(text, 'p'), 0n, 'p'),
      (e: unknown) => e instanceof UserError && want.test(e.message),
      text,
    );
});

/** Serves page 0, 1, … one per GET /metrics, then the last again. */
function pages(): Handler {
  let next = 0;
  return (_req, _body, res) => {
    const i = Math.min(next++, EXPECTED.pages - 1);
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    res.end(page(i));
  };
}

test('watch --no-ui against a loopback SGLang: waits for the histogram, one line per interval, the table at the end', async (ctx) => {
  const srv = await serve({ 'GET /metrics': pages() });
  ctx.after(() => srv.close());
  const n = EXPECTED.intervals.length;
  const r = await moescopeAsync(['watch', srv.url, '--interval', '0.05', '--samples', String(n), '--no-ui']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /no sglang:eplb_gpu_physical_count yet.*waiting/);
  assert.match(r.stdout, /watching http:\/\/127\.0\.0\.1:\d+\/metrics: 3 layers × 4 GPUs/);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('interval '));
  assert.equal(lines.length, n);
  EXPECTED.intervals.forEach((want, k) => {
    const total = want.counts.flat().reduce((a, b) => a + b, 0);
    assert.match(
      lines[k]!,
      new RegExp(
        `^interval ${k + 1} · [\\d.]+ s · ${total.toLocaleString('en-US')} assignments · balancedness ${want.countsBalancedness.toFixed(3)} · server's sglang:eplb_balancedness ${want.balancednessMean.toFixed(3)}`,
      ),
    );
  });
  assert.match(lines[n - 1]!, /counters reset \(server restarted\) in layers 0,1,2/);
  // The table: each GPU's share of every interval's assignments, per layer.
  const sum = EXPECTED.layers.map((_, l) =>
    [0, 1, 2, 3].map((g) => EXPECTED.intervals.reduce((a, i) => a + i.counts[l]![g]!, 0)),
  );
  const row0 = sum[0]!.map((c) => `${((100 * c) / sum[0]!.reduce((a, b) => a + b, 0)).toFixed(1)}%`);
  assert.match(r.stdout, new RegExp(`\\n\\s+0\\s+${row0.join('\\s+')}\\s+0\\.\\d{3}\\n`));
});

test('watch: nothing listening, not a metrics page, never an EPLB histogram → one line, exit 2', async (ctx) => {
  const closed = await serve({});
  const dead = closed.url;
  await closed.close();
  const html = await serve({ 'GET /metrics': (_q, _b, res) => res.end('<html>\n<p>\u001b[2Jhi</p>\n') });
  const plain = await serve({ 'GET /metrics': (_q, _b, res) => res.end(page(0)) });
  ctx.after(() => Promise.all([html.close(), plain.close()]));
  for (const [url, want] of [
    [dead, /ECONNREFUSED|connect/],
    [html.url, /not a number|not a Prometheus/],
    [plain.url, /no sglang:eplb_gpu_physical_count in 3 scrapes.*SGLANG_EPLB_HEATMAP_COLLECTION_INTERVAL/],
    ['ftp://x', /only http and https/],
  ] as const) {
    const r = await moescopeAsync(['watch', url, '--interval', '0.05', '--samples', '2', '--no-ui']);
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr
      .trim()
      .split('\n')
      .filter((l) => !/waiting$/.test(l));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, want);
    assert.doesNotMatch(r.stderr, /\u001b/);
  }
});

test('watch --record: the intervals as a count trace (axis = GPU) holding exactly the decoded counts', async (ctx) => {
  const srv = await serve({ 'GET /metrics': pages() });
  ctx.after(() => srv.close());
  const { tempDir } = await import('../trace/helpers.js');
  const out = tempDir(ctx).path('watch.arrows');
  const n = EXPECTED.intervals.length;
  const r = await moescopeAsync([
    'watch',
    srv.url,
    '--interval',
    '0.05',
    '--samples',
    String(n),
    '--no-ui',
    '--record',
    out,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`recorded .*watch\\.arrows: ${n} intervals`));
  const { openTrace } = await import('../../src/trace/index.js');
  const t = openTrace(out);
  try {
    assert.equal(t.kind, 'counts');
    assert.equal(t.complete, true);
    assert.deepEqual(t.schema.layers, EXPECTED.layers);
    const rows: number[][] = [];
    for (const b of t.countBatches()) {
      assert.equal(b.axis, 'device');
      assert.equal(b.bins, EXPECTED.ranks);
      for (let i = 0; i < b.length; i++) rows.push([...b.counts.subarray(i * 12, (i + 1) * 12)]);
    }
    assert.deepEqual(
      rows,
      EXPECTED.intervals.map((i) => i.counts.flat()),
    );
  } finally {
    t.close();
  }
});

test("vLLM's vllm:eplb_* series are passed through: gauges averaged over label sets, counters summed", () => {
  const page = [
    '# HELP vllm:eplb_balancedness_avg Average balancedness.',
    '# TYPE vllm:eplb_balancedness_avg gauge',
    'vllm:eplb_balancedness_avg{engine="0",model_name="m"} 0.8',
    'vllm:eplb_balancedness_avg{engine="1",model_name="m"} 0.6',
    '# TYPE vllm:eplb_rearrangements_total counter',
    'vllm:eplb_rearrangements_total{engine="0",model_name="m"} 3.0',
    'vllm:eplb_rearrangements_total{engine="1",model_name="m"} 2.0',
    '# TYPE vllm:num_requests_running gauge',
    'vllm:num_requests_running{engine="0",model_name="m"} 7.0',
  ].join('\n');
  const s = decodeEplb(parseMetricsPage(page, 'p'), 0n, 'p');
  assert.equal(s.ranks, 0, 'no per-GPU counts on a vLLM page');
  assert.ok(Math.abs(s.vllm['vllm:eplb_balancedness_avg']! - 0.7) < 1e-12);
  assert.equal(s.vllm['vllm:eplb_rearrangements_total'], 5);
  assert.equal(s.vllm['vllm:num_requests_running'], undefined);
});
