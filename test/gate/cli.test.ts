/** `moescope check` and `moescope diff` as CI runs them: exit codes, every output format, --output, config files. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from '../../src/core/paths.js';
import { childrenNamed, parseXml } from '../report/xml.js';
import { tempDir, writeTrace } from './fixtures.js';

const cli = new URL('../../src/cli.js', import.meta.url).pathname;
const t = tempDir();
let balanced = '';
let collapsed = '';
let other = '';

function run(args: string[], cwd = t.dir) {
  const r = spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    cwd,
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(() => {
  balanced = writeTrace(t.path('balanced.arrows'), { tokens: 2000 });
  collapsed = writeTrace(t.path('collapsed.arrows'), {
    tokens: 2000,
    collapse: { layer: 2, expert: 5, from: 0.5 },
    dead: { 3: [7] },
  });
  other = writeTrace(t.path('other-tokens.arrows'), { tokens: 2000, tokenSeed: 99, routeSeed: 7 });
});
after(() => t.cleanup());

const LIMITS = ['--max-maxvio', '0.5', '--max-dead', '0', '--min-entropy', '0.9'];

test('check exits 0 when every limit holds and 1 on a violation, naming the layer and rule', () => {
  const ok = run(['check', balanced, ...LIMITS]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /PASS: all 12 checks passed\./);
  const bad = run(['check', collapsed, ...LIMITS]);
  assert.equal(bad.status, 1, bad.stderr);
  assert.match(bad.stdout, /^FAIL layer 2: MaxVio \(DeepSeek, global\) = [\d.]+ > limit 0\.5 \(--max-maxvio\)$/m);
  assert.match(bad.stdout, /^FAIL layer 3: dead experts \(no assignment\) = 1 > limit 0 \(--max-dead\)$/m);
  assert.match(bad.stdout, /^2\s+[\d.]+!/m, 'the broken cell is marked in the table');
  assert.match(bad.stdout, /FAIL: 2 of 12 checks failed\./);
});

test('check exits 2 on bad input, with one line and no stack trace', () => {
  const cases: [string[], RegExp][] = [
    [['check', t.path('missing.arrows'), '--max-cv', '1'], /missing\.arrows/],
    [['check', balanced], /no thresholds to check/],
    [['check', '--max-cv', '1'], /nothing to check: give a TRACE, or --model MODEL --prompts FILE/],
    [['check', balanced, '--model', 'm.onnx', '--prompts', 'p.jsonl', '--max-cv', '1'], /either a TRACE or --model/],
    [['check', balanced, '--max-cv', 'lots'], /--max-cv must be a number, got "lots"/],
    [['check', balanced, '--max-hot-share', '2'], /--max-hot-share must be ≤ 1, got 2/],
    [['check', balanced, '--max-cv', '1', '--layers', '1,x'], /--layers must be a comma-separated list/],
    [['check', balanced, '--max-cv', '1', '--layers', '8'], /there is no MoE layer 8/],
    [
      ['check', balanced, '--max-cv', '1', '--format', 'xml'],
      /--format must be one of text, json, junit, github, markdown/,
    ],
    [['check', balanced, '--max-z-loss', '1'], /needs router logits/],
    [['check', balanced, '--config', 'absent.json'], /config file not found: absent\.json/],
  ];
  for (const [args, re] of cases) {
    const r = run(args);
    assert.equal(r.status, 2, `${args.join(' ')} → ${r.status}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  const truncated = t.path('truncated.arrows');
  const bytes = readFileSync(balanced);
  writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
  const r = run(['check', truncated, '--max-cv', '1']);
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /truncated/);
});

test('check reads moescope.config.json from the working directory, and reports a bad one as exit 2', () => {
  const dir = tempDir();
  try {
    writeFileSync(
      dir.path('moescope.config.json'),
      JSON.stringify({ thresholds: { maxMaxvio: 0.5 }, perLayer: { '2': { maxMaxvio: 10 } } }),
    );
    const r = run(['check', collapsed], dir.dir);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /config\s+moescope\.config\.json/);
    // A flag replaces the shared limit; the per-layer override still holds for its layer.
    assert.equal(run(['check', collapsed, '--max-maxvio', '0.01'], dir.dir).status, 1);
    writeFileSync(dir.path('moescope.config.json'), JSON.stringify({ thresholds: { maxMaxVio: 0.5 } }));
    const bad = run(['check', collapsed], dir.dir);
    assert.equal(bad.status, 2);
    assert.equal(
      bad.stderr.trim(),
      'moescope: moescope.config.json: unknown key thresholds.maxMaxVio (did you mean "maxMaxvio"?)',
    );
  } finally {
    dir.cleanup();
  }
});

test('check --format json is the stable JSON form', () => {
  const r = run(['check', collapsed, ...LIMITS, '--format', 'json']);
  assert.equal(r.status, 1);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.command, 'check');
  assert.equal(doc.passed, false);
  assert.equal(doc.tokens, 2000);
  assert.deepEqual(doc.schema.layers, [0, 1, 2, 3]);
  assert.equal(doc.rows.length, 5);
  assert.equal(doc.rows[4].layer, null);
  assert.equal(doc.verdicts.length, 12);
  const failed = doc.verdicts.filter((v: { pass: boolean }) => !v.pass);
  assert.deepEqual(failed.map((v: { rule: string; layer: number }) => `${v.layer}:${v.rule}`).sort(), [
    '2:max-maxvio',
    '3:max-dead',
  ]);
  const mv = failed.find((v: { rule: string }) => v.rule === 'max-maxvio');
  assert.equal(mv.value, doc.rows[2].maxVio);
  assert.equal(mv.limit, 0.5);
  assert.equal(mv.bound, 'max');
});

test('check --format junit is well-formed JUnit XML with one testcase per layer and rule', () => {
  const r = run(['check', collapsed, ...LIMITS, '--format', 'junit']);
  assert.equal(r.status, 1);
  const root = parseXml(r.stdout);
  assert.equal(root.name, 'testsuites');
  assert.equal(root.attrs.tests, '12');
  assert.equal(root.attrs.failures, '2');
  const suites = childrenNamed(root, 'testsuite');
  assert.deepEqual(
    suites.map((s) => s.attrs.name),
    [0, 1, 2, 3].map((l) => `moescope check layer ${l}`),
  );
  let cases = 0;
  let failures = 0;
  for (const s of suites) {
    const tc = childrenNamed(s, 'testcase');
    assert.equal(String(tc.length), s.attrs.tests);
    assert.deepEqual(
      tc.map((c) => c.attrs.name),
      ['max-maxvio', 'max-dead', 'min-entropy'],
    );
    const f = tc.filter((c) => childrenNamed(c, 'failure').length === 1);
    assert.equal(String(f.length), s.attrs.failures);
    cases += tc.length;
    failures += f.length;
  }
  assert.equal(cases, 12);
  assert.equal(failures, 2);
  const fail = childrenNamed(suites[2]!, 'testcase')[0]!;
  assert.equal(fail.attrs.classname, 'moescope.check.layer2');
  assert.match(childrenNamed(fail, 'failure')[0]!.attrs.message!, /MaxVio \(DeepSeek, global\) = [\d.]+ > limit 0\.5/);
});

test('check --format github prints one ::error per broken limit and a ::notice summary', () => {
  const bad = run(['check', collapsed, ...LIMITS, '--format', 'github']);
  assert.equal(bad.status, 1);
  const lines = bad.stdout.trim().split('\n');
  const errors = lines.filter((l) => l.startsWith('::error '));
  assert.equal(errors.length, 2);
  assert.match(
    errors[0]!,
    /^::error title=moescope check%3A max-maxvio \(layer 2\)::.*collapsed\.arrows: layer 2: MaxVio/,
  );
  assert.match(lines[lines.length - 1]!, /^::notice title=moescope check::.*2 of 12 checks failed$/);
  const ok = run(['check', balanced, ...LIMITS, '--format', 'github']);
  assert.equal(ok.status, 0);
  assert.doesNotMatch(ok.stdout, /::error/);
  assert.match(ok.stdout, /::notice title=moescope check::.*all 12 checks passed/);
});

test('check --format markdown renders a table for $GITHUB_STEP_SUMMARY with the broken cells marked', () => {
  const r = run(['check', collapsed, ...LIMITS, '--format', 'markdown']);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /^### ❌ moescope check: 2 of 12 checks failed$/m);
  assert.match(r.stdout, /^\| layer \| MaxVio \| CV \| dead \| entropy \| hot share \|$/m);
  assert.match(r.stdout, /^\|---:\|---:\|---:\|---:\|---:\|---:\|$/m);
  assert.match(r.stdout, /^\| 2 \| \*\*[\d.]+\*\* ❌ \|/m);
  assert.match(r.stdout, /^\| layer 3 \| dead experts \(no assignment\) \| 1 \| ≤ 0 \| `--max-dead` \|$/m);
});

test('check --output writes the report to a file and prints a one-line summary', () => {
  const out = t.path('junit.xml');
  const r = run(['check', collapsed, ...LIMITS, '--format', 'junit', '--output', out]);
  assert.equal(r.status, 1);
  assert.equal(r.stdout.trim(), `moescope check: FAIL, 2 of 12 checks failed (junit written to ${out})`);
  assert.equal(parseXml(readFileSync(out, 'utf8')).name, 'testsuites');
  const bad = run(['check', collapsed, ...LIMITS, '--output', t.path('no/such/dir/x.txt')]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /cannot write .*x\.txt: the folder .* does not exist/);
});

test('diff: identical traces pass; a collapse breaks --max-drift (exit 1); formats carry the drift table', () => {
  const same = run(['diff', balanced, balanced, '--max-drift', '0.01', '--min-agreement', '0.99']);
  assert.equal(same.status, 0, same.stdout + same.stderr);
  assert.match(same.stdout, /identical tokens\s+2,000 of 2,000 in base/);
  assert.match(same.stdout, /^0\s+0\.0000\s+0\.0000\s+1\.000\s+1\.000/m);

  const drift = run(['diff', balanced, collapsed, '--max-drift', '0.01']);
  assert.equal(drift.status, 1, drift.stdout + drift.stderr);
  assert.match(
    drift.stdout,
    /^FAIL layer 2: load drift, Jensen–Shannon \(bits\) = [\d.]+ > limit 0\.01 \(--max-drift\)$/m,
  );

  const json = JSON.parse(run(['diff', balanced, collapsed, '--max-drift', '0.01', '--format', 'json']).stdout);
  assert.equal(json.command, 'diff');
  assert.equal(json.identicalTokens, 2000);
  const l2 = json.rows.find((x: { layer: number }) => x.layer === 2);
  const l0 = json.rows.find((x: { layer: number }) => x.layer === 0);
  assert.ok(l2.js > 10 * l0.js && l2.tv > 0.1, `layer 2 drifts: ${JSON.stringify(l2)}`);

  const junit = parseXml(run(['diff', balanced, collapsed, '--max-drift', '0.01', '--format', 'junit']).stdout);
  assert.equal(junit.attrs.tests, '4');
  assert.equal(childrenNamed(junit, 'testsuite').flatMap((s) => childrenNamed(s, 'testcase')).length, 4);
  assert.match(
    run(['diff', balanced, collapsed, '--max-drift', '0.01', '--format', 'github']).stdout,
    /^::error title=moescope diff%3A max-drift \(layer 2\)::/m,
  );
  assert.match(
    run(['diff', balanced, collapsed, '--format', 'markdown']).stdout,
    /^\| layer \| TV \| JS \(bits\) \| agreement \| same 1st \| MaxVio base \| MaxVio new \|$/m,
  );
});

test('diff without identical tokens reports no agreement; asking for it then is bad input; other mismatches exit 2', () => {
  const r = run(['diff', balanced, other]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /identical tokens\s+none/);
  assert.match(r.stdout, /note: router agreement not computed/);
  const need = run(['diff', balanced, other, '--min-agreement', '0.5']);
  assert.equal(need.status, 2);
  assert.match(need.stderr, /--min-agreement needs both traces to hold the same tokens/);
  const wide = writeTrace(t.path('wide.arrows'), { tokens: 100, experts: 16 });
  const mismatch = run(['diff', balanced, wide]);
  assert.equal(mismatch.status, 2);
  assert.match(mismatch.stderr, /routes over 8 experts per layer, .*wide\.arrows over 16/);
  assert.equal(run(['diff', balanced, t.path('missing.arrows')]).status, 2);
  assert.match(run(['diff', balanced, balanced, '--max-drift', '1.5']).stderr, /--max-drift must be ≤ 1/);
});

test('check --model --prompts gates the routing the model computes, the same numbers as its recorded trace', () => {
  const model = join(FIXTURES, 'models', 'tiny-moe', 'model.onnx');
  const prompts = join(FIXTURES, 'prompts', 'demo.jsonl');
  const recorded = t.path('tiny.arrows');
  const rec = spawnSync(
    process.execPath,
    [cli, 'run', model, '--prompts', prompts, '--max-tokens', '0', '--no-ui', '--record', recorded],
    { encoding: 'utf8' },
  );
  assert.equal(rec.status, 0, rec.stderr);
  const live = run(['check', '--model', model, '--prompts', prompts, '--max-cv', '5', '--format', 'json']);
  assert.equal(live.status, 0, live.stderr);
  const fromTrace = run(['check', recorded, '--max-cv', '5', '--format', 'json']);
  assert.equal(fromTrace.status, 0, fromTrace.stderr);
  const a = JSON.parse(live.stdout);
  const b = JSON.parse(fromTrace.stdout);
  assert.ok(a.tokens > 100);
  assert.equal(a.tokens, b.tokens);
  assert.deepEqual(a.rows, b.rows);
  // A limit the model breaks exits 1; a missing model is bad input.
  assert.equal(run(['check', '--model', model, '--prompts', prompts, '--max-cv', '0.01']).status, 1);
  const missing = run(['check', '--model', t.path('nope.onnx'), '--prompts', prompts, '--max-cv', '1']);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /nope\.onnx/);
  assert.match(run(['check', '--model', model, '--max-cv', '1']).stderr, /--model needs --prompts FILE/);
  assert.match(
    run(['check', recorded, '--max-tokens', '4', '--max-cv', '1']).stderr,
    /--max-tokens applies to --model only/,
  );
});

test('a collapse planted by `moescope synth` fails check on that layer and shows as drift in diff', () => {
  const base = t.path('synth-base.arrows');
  const planted = t.path('synth-collapse.arrows');
  const synth = (out: string, ...extra: string[]) =>
    assert.equal(
      run(['synth', '-o', out, '--layers', '4', '--experts', '8', '--tokens', '4000', '--seed', '3', ...extra]).status,
      0,
    );
  synth(base);
  synth(planted, '--collapse', 'layer=1,expert=3,from=0.5');
  const r = run(['check', planted, '--max-maxvio', '1', '--format', 'json']);
  assert.equal(r.status, 1);
  const failed = JSON.parse(r.stdout).verdicts.filter((v: { pass: boolean }) => !v.pass);
  assert.deepEqual(
    failed.map((v: { layer: number }) => v.layer),
    [1],
  );
  assert.equal(run(['check', base, '--max-maxvio', '1']).status, 0);
  const d = JSON.parse(run(['diff', base, planted, '--format', 'json']).stdout);
  const tv = d.rows.map((x: { tv: number }) => x.tv);
  assert.ok(tv[1] > 5 * Math.max(tv[0], tv[2], tv[3]), `layer 1 drifts most: ${tv}`);
  assert.equal(run(['diff', base, planted, '--max-tv', '0.1']).status, 1);
});
