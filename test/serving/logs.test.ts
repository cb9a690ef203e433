/**
 * `import log` over server logs whose balancedness lines are formatted as SGLang and vLLM format them
 * (fixtures/serving/logs, tools/fixtures/serving/make_logs.py), and `check --min-balancedness` over the series.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSeriesTrace } from '../../src/trace/series.js';
import { moescope } from '../trace/cli.js';
import { tempDir } from '../trace/helpers.js';
import { HAVE_PYARROW, python } from '../trace/python.js';
import { SERVING } from './fake-servers.js';

const DIR = join(SERVING, 'logs');
const EXPECTED = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as Record<
  string,
  {
    steps: number;
    first: number;
    last: number;
    mean: number;
    min: number;
    lastValue: number;
    last1000?: number;
    t0?: number;
  }
>;

test('import log: SGLang "[Expert Balancedness]" lines → a series trace, steps, times and values as printed', (ctx) => {
  const out = tempDir(ctx).path('sg.arrows');
  const r = moescope('import', 'log', join(DIR, 'sglang.log'), '-o', out);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /a sglang balancedness series of 120 steps/);
  const s = readSeriesTrace(out);
  const want = EXPECTED['sglang.log']!;
  assert.equal(s.length, want.steps);
  assert.equal(s.header.series.producer, 'sglang');
  assert.deepEqual(s.header.series.columns, [
    'balancedness',
    'balancedness_last_10',
    'balancedness_last_100',
    'balancedness_last_1000',
    'assignments',
  ]);
  assert.deepEqual(
    [...s.step],
    Array.from({ length: 120 }, (_, i) => i),
  );
  assert.equal(s.tNs[0], BigInt(want.t0!) * 1_000_000_000n);
  assert.equal(s.tNs[2], BigInt(want.t0! + 1) * 1_000_000_000n, 'pass 2 logged a second later');
  const b = s.values.balancedness!;
  assert.ok(Math.abs(b.reduce((a, x) => a + x, 0) / b.length - want.mean) < 1e-12);
  assert.equal(s.values.balancedness_last_1000![119], want.last1000);
  assert.equal(s.values.assignments![0], 1288);
});

test('import log: vLLM "EPLB step:" lines of both shapes; steps numbered where the line has none', (ctx) => {
  const out = tempDir(ctx).path('v.arrows');
  const r = moescope('import', 'log', join(DIR, 'vllm.log'), '-o', out);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /no year: the rows carry no time/);
  const s = readSeriesTrace(out);
  assert.deepEqual(
    [...s.step],
    Array.from({ length: 40 }, (_, i) => i + 1),
  );
  assert.deepEqual(s.header.series.columns, ['balancedness', 'avg_tokens', 'max_tokens']);
  const b = s.values.balancedness!;
  assert.ok(Math.abs(b.reduce((a, x) => a + x, 0) / b.length - EXPECTED['vllm.log']!.mean) < 1e-12);
  assert.equal(s.values.max_tokens![0], 363);
});

test('check --min-balancedness over a log: pass, fail (exit 1), JSON and GitHub formats name the measured mean', (ctx) => {
  const tmp = tempDir(ctx);
  const out = tmp.path('sg.arrows');
  assert.equal(moescope('import', 'log', join(DIR, 'sglang.log'), '-o', out).code, 0);
  const want = EXPECTED['sglang.log']!;
  const pass = moescope('check', out, '--min-balancedness', '0.7');
  assert.equal(pass.code, 0, pass.stdout + pass.stderr);
  assert.match(pass.stdout, /PASS/);
  assert.match(pass.stdout, new RegExp(want.mean.toFixed(3).replace('.', '\\.')));
  const fail = moescope('check', out, '--min-balancedness', '0.8', '--format', 'json');
  assert.equal(fail.code, 1, fail.stdout + fail.stderr);
  const j = JSON.parse(fail.stdout) as {
    passed: boolean;
    verdicts: { rule: string; value: number; limit: number; pass: boolean }[];
  };
  assert.equal(j.passed, false);
  assert.equal(j.verdicts[0]!.rule, 'min-balancedness');
  assert.ok(Math.abs(j.verdicts[0]!.value - want.mean) < 1e-12);
  const gh = moescope('check', out, '--min-balancedness', '0.8', '--format', 'github');
  assert.equal(gh.code, 1);
  assert.match(gh.stdout, /::error/);
});

test('import log / check on it: bad input → one line, exit 2', (ctx) => {
  const tmp = tempDir(ctx);
  const empty = tmp.path('empty.log');
  writeFileSync(empty, 'INFO nothing here\n[Expert Balancedness] forward_pass_id=x\n');
  const mixed = tmp.path('mixed.log');
  writeFileSync(mixed, readFileSync(join(DIR, 'sglang.log'), 'utf8'));
  appendFileSync(mixed, 'EPLB step: avg_tokens=1.00, max_tokens=2, balancedness=0.5000\n');
  const series = tmp.path('s.arrows');
  assert.equal(moescope('import', 'log', join(DIR, 'vllm.log'), '-o', series).code, 0);
  const cases: [string[], RegExp][] = [
    [['import', 'log', empty, '-o', tmp.path('x.arrows')], /no SGLang .* or vLLM .* lines found \(1 lines name them/],
    [['import', 'log', mixed, '-o', tmp.path('x.arrows')], /mixed\.log:129: a vllm line in a sglang log/],
    [['import', 'log', tmp.path('missing.log'), '-o', tmp.path('x.arrows')], /no such file/],
    [
      ['import', 'log', join(DIR, 'vllm.log'), '-o', tmp.path('x.arrows'), '--top-k', '2'],
      /--top-k does not go with import log/,
    ],
    [['check', series, '--max-cv', '1'], /balancedness series .* --max-cv does not apply/],
    [['check', series], /give --min-balancedness/],
    [['check', series, '--min-balancedness', '2'], /between 0 and 1/],
    [
      ['check', join(SERVING, '..', 'traces', 'tiny-moe-demo.arrows'), '--min-balancedness', '0.5'],
      /--min-balancedness reads a balancedness series/,
    ],
  ];
  for (const [args, want] of cases) {
    const r = moescope(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, want, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('a series trace reads in pyarrow as the docs say', { skip: !HAVE_PYARROW && 'pyarrow not installed' }, (ctx) => {
  const out = tempDir(ctx).path('sg.arrows');
  assert.equal(moescope('import', 'log', join(DIR, 'sglang.log'), '-o', out).code, 0);
  const r = python(
    `import pyarrow as pa, json; r = pa.ipc.open_stream('${out}'); h = json.loads(r.schema.metadata[b'moescope']); t = r.read_all(); print(h['kind'], h['series']['producer'], t.num_rows, round(t.column('balancedness').to_numpy().mean(), 6))`,
  );
  assert.ok(r.ok, r.err);
  assert.equal(r.out.trim(), `series sglang 120 ${Number(EXPECTED['sglang.log']!.mean.toFixed(6))}`);
});

test('report on a log series: a self-contained page with the summary and balancedness over the steps', (ctx) => {
  const tmp = tempDir(ctx);
  const out = tmp.path('sg.arrows');
  assert.equal(moescope('import', 'log', join(DIR, 'sglang.log'), '-o', out).code, 0);
  const html = tmp.path('r.html');
  const r = moescope('report', out, '-o', html);
  assert.equal(r.code, 0, r.stderr);
  const page = readFileSync(html, 'utf8');
  assert.match(page, /EPLB balancedness report/);
  assert.match(page, new RegExp(`mean balancedness</td><td>${EXPECTED['sglang.log']!.mean.toFixed(3)}`));
  assert.match(page, new RegExp(`lowest</td><td>${EXPECTED['sglang.log']!.min.toFixed(3)}`));
  assert.equal((page.match(/<path d="M[\d.,L]+"/g) ?? []).length, 2, 'the balancedness and its 100-pass average');
  assert.doesNotMatch(page, /<script|https?:\/\/(?!www\.w3)/);
});
