/**
 * Data never reaches the terminal as escape sequences (src/core/sanitize.ts): unit cases, then whole commands on a
 * trace whose model name, device names, tags and tokens carry an OSC title sequence, a CSI, a C1 CSI, a carriage
 * return and a bidi override; and replay --no-ui keeps its errors on stderr, out of the summary it prints.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cutMiddle, oneLine, quoteValue, sanitizeJson, sanitizeLine, sanitizeText } from '../../src/core/sanitize.js';
import { TraceWriter } from '../../src/trace/writer.js';
import { makeBatch, META, SCHEMA, tempDir } from '../trace/helpers.js';
import { BUNDLED_MODEL } from '../../src/core/paths.js';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { moescope } from '../trace/cli.js';

const HOSTILE = 'evil\x1b]0;pwned\x07\x1b[2J\u009b31m\rX\u202eabc\u2066';
/** Anything a terminal would act on: C0 but \t \n, DEL, C1, bidi controls. */
const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

test('sanitizeText makes every control and bidi override visible and keeps newlines and tabs', () => {
  const s = sanitizeText(`${HOSTILE}\n\tok`);
  assert.doesNotMatch(s, RAW);
  assert.equal(s, 'evil\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\rX\\u202eabc\\u2066\n\tok');
  assert.equal(sanitizeText('plain ✓ é 漢字'), 'plain ✓ é 漢字');
});

test('sanitizeLine also escapes newlines, tabs and line separators; sanitizeJson keeps JSON valid and equal', () => {
  assert.equal(sanitizeLine('a\nb\tc\u2028'), 'a\\nb\\tc\\u2028');
  const obj = { model: HOSTILE, n: 1 };
  const json = sanitizeJson(JSON.stringify(obj));
  assert.doesNotMatch(json, RAW);
  assert.deepEqual(JSON.parse(json), obj);
});

test('error messages are one line and cut; quoted values are cut to 80 characters', () => {
  const long = 'x'.repeat(700_000);
  const m = oneLine(`bad value ${long} at line 3\nsecond`);
  assert.ok(m.length <= 400);
  assert.match(m, /^bad value x+…x+ at line 3\\nsecond$/);
  const q = quoteValue(long);
  assert.equal(Array.from(q).length, 82);
  assert.ok(q.endsWith('…"'));
  assert.equal(cutMiddle('short', 80), 'short');
});

function hostileTrace(path: string): void {
  const w = TraceWriter.create(path, {
    schema: SCHEMA,
    meta: { model: HOSTILE, routers: [], tokenizer: null, devices: [HOSTILE], source: 'test' },
  });
  const b = makeBatch(SCHEMA, 200, 0, { tags: true });
  for (let i = 0; i < b.length; i++) {
    b.token[i] = HOSTILE;
    b.tag![i] = HOSTILE;
  }
  w.write(b);
  w.close();
}

test('stats, check (text, markdown, json), plan and replay --no-ui print hostile trace data without raw controls', (t) => {
  const { path } = tempDir(t);
  const tr = path('hostile.arrows');
  hostileTrace(tr);
  const runs = [
    moescope('stats', tr),
    moescope('stats', tr, '--json'),
    moescope('check', tr, '--max-maxvio', '100'),
    moescope('check', tr, '--max-maxvio', '100', '--format', 'markdown'),
    moescope('check', tr, '--max-maxvio', '100', '--format', 'json'),
    moescope('plan', tr, '--replicas', '8', '--gpus', '2'),
    moescope('replay', tr, '--no-ui'),
  ];
  for (const r of runs) {
    assert.ok(r.code === 0 || r.code === 1, `exit ${r.code}: ${r.stderr}`);
    assert.doesNotMatch(r.stdout, RAW, r.stdout.slice(0, 400));
    assert.doesNotMatch(r.stderr, RAW);
  }
  assert.match(runs[0]!.stdout, /evil\\x1b\]0;pwned/); // shown, not hidden
  const json = JSON.parse(runs[1]!.stdout) as object;
  assert.ok(json);
});

test('an error naming a hostile, huge argument is one short, terminal-safe line', (t) => {
  const { path } = tempDir(t);
  const name = path(`${'y'.repeat(3000)}\x1b[31m`);
  const r = moescope('stats', name);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.split('\n').length, 2, r.stderr);
  assert.ok(r.stderr.length <= 420, `${r.stderr.length} chars`);
  assert.doesNotMatch(r.stderr, RAW);
});

test('run --no-ui on the bundled model prints a hostile prompt and the generated text without raw controls', () => {
  const r = moescope('run', BUNDLED_MODEL, '--no-ui', '--prompt', `hi ${HOSTILE} there`, '--max-tokens', '4');
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, RAW, r.stdout.slice(0, 400));
  assert.doesNotMatch(r.stderr, RAW);
  assert.match(r.stdout, /hi evil\\x1b\]0;pwned\\x07/); // shown, not hidden
});

test('replay --no-ui says what is wrong on stderr, not stdout: a cut trace (summary + one line, exit 2), a non-trace', (t) => {
  const { path } = tempDir(t);
  const whole = path('whole.arrows');
  const w = TraceWriter.create(whole, { schema: SCHEMA, meta: META, batchTokens: 64 });
  for (let i = 0; i < 4; i++) w.write(makeBatch(SCHEMA, 64, i * 64));
  w.close();
  const cut = path('cut.arrows');
  writeFileSync(cut, readFileSync(whole).subarray(0, statSync(whole).size - 300));
  const r = moescope('replay', cut, '--no-ui');
  assert.equal(r.code, 2);
  assert.match(r.stdout, /cut short/); // the summary of the complete tokens, naming the cut
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(
    lines[0]!,
    /^moescope: .*cut\.arrows: the trace is cut short: .* tokens lost; the summary covers its complete tokens$/,
  );
  const junk = path('junk.arrows');
  writeFileSync(junk, 'not a trace at all\n');
  const j = moescope('replay', junk, '--no-ui');
  assert.equal(j.code, 2);
  assert.equal(j.stdout, '');
  assert.match(j.stderr, /^moescope: .*junk\.arrows: not an Arrow IPC stream trace\n$/);
});
