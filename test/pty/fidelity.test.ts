/**
 * What a trace cannot vouch for, in a real terminal (issue #18): LongCat-Flash's zero-computation experts marked
 * "z" in the overview's heatmap, the layer pane and the dashboard's heat grid, with the share of slots routed to them
 * (the numbers `stats --json` prints for the same trace); a router whose weights the engine could not follow to the
 * mixing named with why in the overview, its weights shown as unknown ("?", never NaN) in the token debugger, and
 * in the dashboard's log. Traces are recorded here from the fixture models (real ONNX runs).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from '../../src/core/paths.js';
import { hasFixture, MODELS, modelPath } from '../engine/helpers.js';
import { moescope } from '../trace/cli.js';
import { tempDir } from '../trace/helpers.js';
import { KEY, PtySession } from './harness.js';

const LONGCAT = 'hf-longcat-flash';
const UNFOLLOWED = 'unfollowed-mixing';
const TOKENIZER = join(FIXTURES, 'tokenizer', 'tokenizer.json');
const PROMPTS = join(FIXTURES, 'prompts', 'demo.jsonl');

function record(model: string, out: string, ...more: string[]): void {
  const r = moescope('run', modelPath(model), '--no-ui', '--record', out, ...more);
  assert.equal(r.code, 0, r.stderr);
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** The heat cells of the row labelled `label` (label, then cells up to the metric columns). */
function rowCells(screen: string, label: string): string {
  const line = screen.split('\n').find((l) => new RegExp(`^[▶! ]\\s*${label} `).test(l));
  assert.ok(line, `a row for ${label}:\n${screen}`);
  return line.slice(line.indexOf(label) + label.length + 1).replace(/\s+[\d.]+\s+[\d.]+\s+[\d.]+\s*$/, '');
}

test('LongCat zero experts: "z" columns in the overview, the layer pane and the dashboard, with the share stats reports', {
  skip: !hasFixture(LONGCAT) && `${LONGCAT} not generated yet`,
}, async (t) => {
  const dir = tempDir(t);
  const trace = dir.path('longcat.arrows');
  record(LONGCAT, trace, '--prompts', PROMPTS, '--max-tokens', '2');
  const st = moescope('stats', trace, '--json');
  assert.equal(st.code, 0, st.stderr);
  const stats = JSON.parse(st.stdout) as {
    layers: { zeroShare: number; cv: number; deadExperts: number }[];
    global: { zeroShare: number };
  };
  const [z0, z1] = stats.layers.map((l) => pct(l.zeroShare));

  const s = PtySession.start(['replay', trace, '--speed', '64'], { cols: 120, rows: 36 });
  t.after(() => s.kill());
  let screen = await s.waitFor(
    (x) => /■ end/.test(x) && /L1\s+[█◆]/.test(x) && /zero-computation experts/.test(x) && /\? keys/.test(x),
  );
  // Experts 6 and 7 of 8: the last quarter of each row is "z", the rest heat cells (the cursor on expert 0).
  for (const l of ['L0', 'L1']) {
    const cells = rowCells(screen, l);
    const m = /^([█◆ ]+?)(z+)$/.exec(cells.trimEnd());
    assert.ok(m, `${l}: heat cells then z cells: ${JSON.stringify(cells)}`);
    const share = m[2]!.length / (m[1]!.length + m[2]!.length);
    assert.ok(Math.abs(share - 2 / 8) < 0.03, `${l}: z over ${share} of the row`);
  }
  assert.ok(screen.includes(`z zero-computation experts (identity): L0 ${z0}, L1 ${z1} of slots`), screen);
  assert.match(screen, /z zero-computation expert/, 'the legend names the mark');
  // The row's CV column is the real experts' CV, as `stats` prints it.
  assert.match(screen, new RegExp(`L0 .*\\s${stats.layers[0]!.cv.toFixed(2)}\\s`));

  // The cursor on expert 6: a zero-computation expert, its share of the layer's slots.
  for (let i = 0; i < 6; i++) s.press(KEY.right);
  screen = await s.waitFor(/L0 expert 6 zero-computation \(identity\)/);
  assert.match(screen, /of the layer's slots · not in the balance/);

  s.press('2');
  screen = await s.waitFor((x) => /Layer L0/.test(x) && /e7z/.test(x));
  assert.match(screen, /e6z /);
  assert.doesNotMatch(screen, /e[0-5]z/);
  assert.ok(screen.includes(`z zero-computation experts 6, 7 (identity): ${z0} of slots`), screen);
  assert.match(screen, /balance over the 6 real experts/);
  assert.match(screen, new RegExp(`dead ${stats.layers[0]!.deadExperts}/6`));
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);

  // The dashboard: the grid's label gives the shares, its zero columns are "z".
  const d = PtySession.start(['dash', trace], { cols: 120, rows: 40 });
  t.after(() => d.kill());
  screen = await d.waitFor((x) => /■ end/.test(x) && /z zero-computation, /.test(x) && /\? keys/.test(x));
  assert.ok(screen.includes(`load ÷ uniform · z zero-computation, ${pct(stats.global.zeroShare)} of slots`), screen);
  const grid = screen.split('\n').find((l) => /│L0 [█z]/.test(l));
  const cells = grid ? /│L0 (█+)(z+) *│/.exec(grid) : null;
  assert.ok(cells, `the grid's L0 row ends in z cells:\n${screen}`);
  assert.ok(Math.abs(cells[2]!.length / (cells[1]!.length + cells[2]!.length) - 2 / 8) < 0.03, grid);
  d.press('q');
  assert.equal((await d.exited).exitCode, 0);
});

test('a router not followed to the mixing: named with why in the overview and the dashboard; weights "?" in the debugger', {
  skip: !hasFixture(UNFOLLOWED) && `${UNFOLLOWED} not generated yet`,
}, async (t) => {
  const dir = tempDir(t);
  const trace = dir.path('unfollowed.arrows');
  record(UNFOLLOWED, trace, '--tokenizer', TOKENIZER, '--prompts', PROMPTS, '--max-tokens', '2');
  const header = JSON.parse(readFileSync(join(MODELS, UNFOLLOWED, 'meta.json'), 'utf8')) as { mixing: string[] };
  assert.deepEqual(header.mixing, ['followed', 'not-followed']);
  const ins = moescope('inspect', modelPath(UNFOLLOWED), '--json');
  const note = (JSON.parse(ins.stdout) as { routers: { mixing: { note: string } }[] }).routers[1]!.mixing.note;
  assert.ok(note.length > 10, note);

  const s = PtySession.start(['replay', trace, '--speed', '64'], { cols: 160, rows: 36 });
  t.after(() => s.kill());
  let screen = await s.waitFor((x) => /■ end/.test(x) && /weights not followed/.test(x) && /\? keys/.test(x));
  assert.ok(
    screen.includes(
      `⚠ weights not followed to the mixing L1: ${note} — the selection is the model's; its weights are unknown`,
    ),
    screen,
  );
  assert.doesNotMatch(screen, /L0: .*not followed/);

  s.press('3');
  await s.waitFor(/Tokens · coloured by first-choice expert/);
  s.press(KEY.left);
  await s.waitFor(/token [\d,]+ “/);
  s.press(KEY.enter);
  screen = await s.waitFor((x) => /routing in every layer/.test(x) && /L1\s+e\d/.test(x));
  assert.match(screen, /L0\s+e\d\s+0\.\d{3}\s+e\d\s+0\.\d{3}/, 'layer 0: the weights the model mixed with');
  assert.match(screen, /L1\s+e\d\s+\?\s+e\d\s+\?/, 'layer 1: the selection, weights unknown');
  assert.match(screen, /weight \?: not followed to the mixing/);
  assert.doesNotMatch(screen, /NaN/);
  s.press('1');
  s.press('j');
  await s.waitFor(/▶L1/);
  s.press('2');
  screen = await s.waitFor(/Layer L1/);
  assert.ok(screen.includes(`⚠ weights not followed to the mixing (${note})`), screen);
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);

  const d = PtySession.start(['dash', trace], { cols: 140, rows: 40 });
  t.after(() => d.kill());
  screen = await d.waitFor((x) => /■ end/.test(x) && /⚠ L1: weights not followed/.test(x) && /\? keys/.test(x));
  assert.match(screen, /⚠ L1: weights not followed to the mixing \(no Mul/);
  d.press('q');
  assert.equal((await d.exited).exitCode, 0);
});
