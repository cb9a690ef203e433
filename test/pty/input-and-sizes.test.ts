/**
 * Input as terminals deliver it and the screen at the sizes people use: keys that arrive together in one read
 * (paste, auto-repeat, SSH, tmux), mouse clicks and the wheel, and the layout at 40×12, 80×24 and 250×70.
 * Real pseudo-terminal, the child with CI=false (harness.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DEMO_TRACE, tempDir } from '../store/helpers.js';
import { tabSpans } from '../../src/views/keys.js';
import { CLI, PtySession } from './harness.js';

const run = promisify(execFile);

/** SGR mouse report (mode 1006) of a press (button 0 left, 64/65 wheel) at 1-based column and row. */
const mouse = (button: number, column: number, row: number) => `\x1b[<${button};${column};${row}M`;

test('keys in one read: repeated keys and a paste into the : and / prompts are all handled', async (t) => {
  const s = PtySession.start(['replay', DEMO_TRACE], { cols: 120, rows: 36 });
  t.after(() => s.kill());
  await s.waitFor((x) => /■ end/.test(x) && /\? keys/.test(x), 30_000);
  s.press(',,,');
  await s.waitFor(/❚❚ paused ×1 │ token 716 \/ 719/);
  s.press('..');
  await s.waitFor(/token 718 \/ 719/);
  s.press('jjj');
  await s.waitFor(/▶L3/);
  s.press(':');
  await s.waitFor(/go to token \(number or %\):/);
  s.press('50%');
  await s.waitFor(/go to token \(number or %\): 50%/);
  s.press('\r');
  await s.waitFor(/token 360 \/ 719/);
  s.press('3');
  await s.waitFor(/Tokens · coloured by first-choice expert/);
  s.press('/');
  s.press('License');
  await s.waitFor(/^\/License/m);
  s.press('\r');
  await s.waitFor(/token [\d,]+ “[^”]*[Ll]icense/);
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
});

test('mouse: clicking a tab opens its pane, clicking a heatmap row selects the layer, the wheel moves', async (t) => {
  const s = PtySession.start(['replay', DEMO_TRACE], { cols: 120, rows: 36 });
  t.after(() => s.kill());
  let screen = await s.waitFor((x) => /■ end/.test(x) && /L3\s/.test(x), 30_000);
  assert.ok(s.raw.includes('\x1b[?1000h') && s.raw.includes('\x1b[?1006h'), 'mouse reporting on');
  const active = Number(/Warnings \((\d+)\)/.exec(screen)?.[1] ?? 0);
  const tokens = tabSpans(active).find((x) => x.pane === 'tokens')!;
  s.press(mouse(0, tokens.start + 3, 2));
  await s.waitFor(/Tokens · coloured by first-choice expert/);
  const overview = tabSpans(active).find((x) => x.pane === 'overview')!;
  s.press(mouse(0, overview.start + 3, 2));
  // Ink's frame and the heatmap's lines reach the terminal in separate writes: wait for the row itself.
  screen = await s.waitFor((x) => /Load per expert/.test(x) && /^[ !▶]L2\s+[█◆]/m.test(x));
  const row = screen.split('\n').findIndex((l) => /^[ !▶]L2\s/.test(l));
  assert.ok(row > 0, 'the L2 row is on screen');
  s.press(mouse(0, 10, row + 1));
  await s.waitFor(/▶L2\s/);
  s.press(mouse(65, 10, row + 1)); // wheel down
  await s.waitFor(/▶L3\s/);
  s.press(mouse(64, 10, row + 1)); // wheel up
  await s.waitFor(/▶L2\s/);
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
  assert.ok(s.raw.lastIndexOf('\x1b[?1000l') > s.raw.lastIndexOf('\x1b[?1000h'), 'mouse reporting off again');
});

test('40×12: the too-small message is shown whole, wrapped to the width', async (t) => {
  const s = PtySession.start(['replay', DEMO_TRACE], { cols: 40, rows: 12 });
  t.after(() => s.kill());
  const screen = await s.waitFor(/q to quit\./, 30_000);
  const text = screen
    .split('\n')
    .map((l) => l.trim())
    .join(' ');
  assert.match(
    text,
    /moescope needs a terminal of at least 80×24; this one is 40×12\. Enlarge it, or press q to quit\./,
  );
  assert.ok(screen.split('\n').every((l) => l.length <= 40));
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
});

test('80×24 at DeepSeek scale: metric columns and key hints that do not fit are dropped, and the screen says so', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const trace = join(dir, 'big.arrows');
  await run(process.execPath, [
    CLI,
    'synth',
    '-o',
    trace,
    '--layers',
    '58',
    '--experts',
    '256',
    '--top-k',
    '8',
    '--tokens',
    '400',
    '--skew',
    'zipf:1.1',
  ]);
  const s = PtySession.start(['replay', trace], { cols: 80, rows: 24 });
  t.after(() => s.kill());
  // A frame reaches the terminal in several writes (Ink's, then the heatmap's): wait for all of it.
  const screen = await s.waitFor((x) => /■ end/.test(x) && /\+\d+ more: \?/.test(x) && /^ *L14 /m.test(x), 30_000);
  assert.match(screen, /^Load per expert · MaxVio, entropy columns need \d+ columns/m);
  assert.match(screen, /^ *L\d+ .*\d\.\d\d$/m, 'the CV column stays');
  assert.match(
    screen,
    /^L\d+ experts? [\d–]+.* CV [\d.—]+ · MaxVio [\d.—]+ · entropy [\d.—]+/m,
    'the cursor line carries the dropped metrics',
  );
  const lines = screen.split('\n');
  assert.match(lines[22]!, /\? keys\s+q quit.*\+\d+ more: \?/);
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
});

test('250×70: the heatmap uses the space — every row and the full width', async (t) => {
  const s = PtySession.start(['replay', DEMO_TRACE], { cols: 250, rows: 70 });
  t.after(() => s.kill());
  const screen = await s.waitFor((x) => /■ end/.test(x) && /L3\s+[█◆]/.test(x) && /\? keys/.test(x), 30_000);
  const lines = screen.split('\n');
  const heat = lines.filter((l) => /█{20}/.test(l));
  assert.ok(heat.length >= 55, `heatmap lines: ${heat.length} of 70`);
  assert.ok(
    heat.some((l) => l.lastIndexOf('█') > 200),
    'cells reach across the width',
  );
  assert.match(lines[68]!, /\? keys/);
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
});

test('a bad trace on a terminal: the error is printed on the normal screen, exit 2', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const { writeFileSync } = await import('node:fs');
  const bad = join(dir, 'bad.arrows');
  writeFileSync(bad, 'not a trace at all');
  const s = PtySession.start(['replay', bad], { cols: 100, rows: 30 });
  t.after(() => s.kill());
  const exit = await s.exited;
  assert.equal(exit.exitCode, 2);
  await s.waitFor(() => s.bufferType() === 'normal');
  await s.waitFor(/^moescope: .*bad\.arrows/m);
});
