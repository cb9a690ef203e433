/**
 * A model whose MoE layers differ in E and K (fixtures/models/hf-mixed-shape: layer 0 routes to 8 experts top-2,
 * layer 1 to 4 experts top-1) in a real terminal: `replay` of its recorded trace and the live `run`. The overview
 * draws each layer with its own width (layer 1's row ends after its 4 experts: blank, never idle cells), and the
 * collapse rules, run over short windows, never warn about the experts layer 1 does not have.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasFixture, modelPath } from '../engine/helpers.js';
import { moescope } from '../trace/cli.js';
import { tempDir } from '../trace/helpers.js';
import { PtySession } from './harness.js';

const NAME = 'hf-mixed-shape';
const skip = !hasFixture(NAME) && `${NAME} not generated yet`;

/** The heat cells (█ or the cursor ◆) of the row labelled `label`, and whether anything follows them. */
function rowCells(screen: string, label: string): { cells: number; rest: string } {
  const line = screen.split('\n').find((l) => new RegExp(`^[▶! ]\\s*${label} `).test(l));
  assert.ok(line, `a row for ${label}:\n${screen}`);
  const body = line.slice(line.indexOf(label) + label.length + 1);
  const m = /^[█◆ ]*?[█◆](?=[^█◆]*$)/.exec(body) ?? /^/.exec(body)!;
  return { cells: m[0].length, rest: body.slice(m[0].length, body.search(/\d|$/)) };
}

/** Layer 0's row spans the 8 experts' width, layer 1's half of it; no dead-expert warning for layer 1's e4–e7. */
function checkWidths(screen: string): void {
  const l0 = rowCells(screen, 'L0');
  const l1 = rowCells(screen, 'L1');
  assert.ok(l0.cells > 0 && l1.cells > 0, screen);
  assert.ok(Math.abs(l0.cells - 2 * l1.cells) <= 2, `layer 1 is half as wide: ${l0.cells} vs ${l1.cells}\n${screen}`);
  assert.match(l1.rest, /^\s*$/, 'blank past layer 1’s experts');
  assert.match(screen, /2 layers × 4–8 experts \(each layer its own\)/);
}

function checkWarnings(screen: string): void {
  assert.match(screen, /Collapse warnings/);
  assert.doesNotMatch(screen, /L1\s+e[4-7]\b/, 'no warning about an expert layer 1 does not have');
  assert.doesNotMatch(screen, /layer 1 expert [4-7]/);
}

test('replay of a mixed-shape model: each layer its own width, no warnings on padding', { skip }, async (t) => {
  const dir = tempDir(t);
  const trace = dir.path('mixed.arrows');
  const r = moescope('run', modelPath(NAME), '--no-ui', '--max-tokens', '8', '--record', trace);
  assert.equal(r.code, 0, r.stderr);
  const s = PtySession.start(['replay', trace, '--speed', '64', '--window', '64'], { cols: 120, rows: 36 });
  t.after(() => s.kill());
  const screen = await s.waitFor((x) => /■ end/.test(x) && /L1\s+[█◆]/.test(x) && /\? keys/.test(x));
  checkWidths(screen);
  s.press('j');
  s.press('2');
  const layer = await s.waitFor(/Layer L1 .*\(4 experts, top-1\)/);
  assert.match(layer, /dead \d\/4/);
  assert.doesNotMatch(layer, /^e[4-7] /m, 'the layer pane lists layer 1’s 4 experts only');
  s.press('4');
  checkWarnings(await s.waitFor(/rules checked over 64-token windows/));
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
});

test('live run of a mixed-shape model: each layer its own width, no warnings on padding', { skip }, async (t) => {
  const s = PtySession.start(['run', modelPath(NAME), '--max-tokens', '8'], { cols: 120, rows: 36 });
  t.after(() => s.kill());
  const screen = await s.waitFor((x) => /L1\s+[█◆]/.test(x) && /L0\s+[█◆]/.test(x) && /\? keys/.test(x), 60_000);
  checkWidths(screen);
  s.press('4');
  checkWarnings(await s.waitFor(/Collapse warnings/));
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
});
