/** The check/diff formatters on hand-made results: escaping of hostile text, undefined values, pass/fail wording. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judge, type GateResult } from '../../src/gate/verdict.js';
import { formatResult, FORMATS } from '../../src/report/result-formats/index.js';
import { escapeData, escapeProperty } from '../../src/report/result-formats/github.js';
import { childrenNamed, parseXml } from './xml.js';

const NASTY = 'runs/50%<&>"quoted"|pipe\nnext line.arrows';

function result(values: number[]): GateResult {
  const verdicts = values.map((v, i) =>
    judge({
      id: 'max-cv',
      label: 'CV of expert load',
      source: '--max-cv',
      layer: i,
      column: 'cv',
      value: v,
      limit: 0.5,
      bound: 'max',
    }),
  );
  return {
    command: 'check',
    subject: NASTY,
    facts: [['model', 'a <b> & "c"']],
    columns: [{ key: 'cv', label: 'CV', digits: 3 }],
    rows: values.map((v, i) => ({ layer: i, values: { cv: v } })),
    verdicts,
    notes: ['note with | pipe & <angle>'],
    passed: verdicts.every((v) => v.pass),
    data: {},
  };
}

test('an undefined metric (NaN) never passes and prints as n/a; JSON writes null', () => {
  const r = result([0.1, NaN]);
  assert.equal(r.passed, false);
  assert.equal(r.verdicts[1]!.pass, false);
  assert.match(
    formatResult(r, 'text'),
    /FAIL layer 1: CV of expert load is undefined \(no assignments\), limit ≤ 0\.5 \(--max-cv\)/,
  );
  assert.match(formatResult(r, 'text'), /^1\s+n\/a!$/m);
  const doc = JSON.parse(formatResult(r, 'json'));
  assert.equal(doc.rows[1].cv, null);
  assert.equal(doc.verdicts[1].value, null);
});

test('JUnit output stays well-formed and round-trips hostile text exactly', () => {
  const xml = formatResult(result([0.1, 0.9]), 'junit');
  const root = parseXml(xml);
  const props = childrenNamed(childrenNamed(root, 'testsuite')[0]!, 'properties')[0]!;
  assert.equal(childrenNamed(props, 'property').find((p) => p.attrs.name === 'subject')!.attrs.value, NASTY);
  assert.equal(childrenNamed(props, 'property').find((p) => p.attrs.name === 'model')!.attrs.value, 'a <b> & "c"');
  const failure = childrenNamed(childrenNamed(childrenNamed(root, 'testsuite')[1]!, 'testcase')[0]!, 'failure')[0]!;
  assert.ok(failure.text.startsWith(NASTY));
  assert.equal(root.attrs.failures, '1');
});

test('GitHub annotations escape %, CR and LF (and : , in properties) so one message stays one command', () => {
  assert.equal(escapeData('50%\r\nx'), '50%25%0D%0Ax');
  assert.equal(escapeProperty('a: b, c'), 'a%3A b%2C c');
  const out = formatResult(result([0.9]), 'github');
  const lines = out.trim().split('\n');
  assert.equal(lines.length, 3, out); // one error, one warning (the note), one notice
  assert.match(
    lines[0]!,
    /^::error title=moescope check%3A max-cv \(layer 0\)::runs\/50%25<&>"quoted"\|pipe%0Anext line\.arrows: layer 0/,
  );
  assert.match(lines[1]!, /^::warning title=moescope check::note with \| pipe/);
});

test('Markdown escapes table-breaking characters in cells', () => {
  const md = formatResult(result([0.9]), 'markdown');
  assert.match(md, /note with \\\| pipe & \\<angle\\>/);
  assert.match(md, /^\| 0 \| \*\*0\.900\*\* ❌ \|$/m);
  for (const line of md.split('\n').filter((l) => l.startsWith('|'))) {
    const cells = line.replace(/\\\|/g, '').split('|').length;
    assert.ok(cells === 4 || cells === 7, `row keeps its columns: ${line}`);
  }
});

test('every format says pass when all verdicts pass', () => {
  const r = result([0.1, 0.2]);
  const expect: Record<(typeof FORMATS)[number], RegExp> = {
    text: /PASS: all 2 checks passed\./,
    json: /"passed": true/,
    junit: /failures="0"/,
    github: /^::notice title=moescope check::.*all 2 checks passed$/m,
    markdown: /^### ✅ moescope check: all 2 checks passed$/m,
  };
  for (const f of FORMATS) assert.match(formatResult(r, f), expect[f], f);
});
