/**
 * What a new user does, in a real terminal: replay the recorded demo trace, move around, open things, ask for the
 * keys, resize, quit — and the same without colour, and the live demo. CI sets CI=true for the test process; the
 * child gets CI=false (Ink draws nothing while CI is set).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DEMO_TRACE } from '../store/helpers.js';
import { CLI, KEY, PtySession, colourEscapes } from './harness.js';

const run = promisify(execFile);

test('replay journey: heatmap, layer, token, keys, resize 160×50 → 80×24, q restores the terminal', async (t) => {
  const s = PtySession.start(['replay', DEMO_TRACE], { cols: 160, rows: 50 });
  t.after(() => s.kill());
  // A frame reaches the terminal in several writes: wait for all of it, not for its first lines.
  let screen = await s.waitFor((x) => /L3\s+█/.test(x) && /load ÷ uniform share/.test(x) && /\? keys/.test(x));
  assert.equal(s.bufferType(), 'alternate');
  assert.match(screen, /^moescope replay .*tiny-moe-demo\.arrows/);
  assert.match(screen, /Load per expert · 4 layers × 8 experts/);
  for (const l of ['L0', 'L1', 'L2', 'L3']) assert.match(screen, new RegExp(`${l}\\s+[█◆]`));
  assert.match(screen, /load ÷ uniform share \(1\/8\), log scale/);
  assert.ok(colourEscapes(s.raw).length > 0, 'colour by default');
  assert.ok(s.raw.includes('\x1b[38;5;'), '256 colours without COLORTERM');

  await s.waitFor(/■ end/); // the trace plays to its end (it was recorded in under a second)
  s.press('j');
  await s.waitFor(/▶L1/);
  s.press(KEY.enter);
  screen = await s.waitFor(
    (x) => /Layer L1 \(MoE layer 2 of 4\)/.test(x) && /router margin/.test(x) && /\? keys/.test(x),
  );
  assert.match(screen, /CV \d\.\d\d · MaxVio/);
  assert.match(screen, /co-activation/);
  assert.match(screen, /router margin/);

  s.press('3');
  await s.waitFor(/Tokens · coloured by first-choice expert in layer L1/);
  s.press(KEY.left);
  await s.waitFor(/token 718 “/);
  s.press(KEY.enter);
  screen = await s.waitFor((x) => /routing in every layer/.test(x) && /▶L1\s+e\d/.test(x));
  assert.match(screen, /▶L1\s+e\d+\s+0\.\d{3}/);

  s.press('?');
  screen = await s.waitFor((x) => /Keys · source: replay/.test(x) && /q\s+quit/.test(x) && /n N/.test(x));
  assert.match(screen, /space\s+pause\/play/);
  assert.match(screen, /q\s+quit \(restores the terminal\)/);
  s.press('?');
  await s.waitFor((x) => !x.includes('Keys · source'));

  s.press('1');
  await s.waitFor(/Load per expert/);
  s.resize(80, 24);
  screen = await s.waitFor((x) => {
    const ls = x.split('\n');
    // The frame is one row shorter than the terminal (Ink's renderer, docs/tui.md): hints on row 23 of 24.
    return (
      ls.length === 24 &&
      /^moescope replay/.test(ls[0]!) &&
      /\? keys/.test(ls[22]!) &&
      ls[23] === '' &&
      /Load per expert/.test(x)
    );
  });
  assert.ok(!/Load per expert.*Load per expert/s.test(screen), 'no leftovers of the 160-column frame');

  s.resize(70, 20);
  await s.waitFor(/needs a terminal of at least 80×24;\s+this one is 70×20/);
  s.resize(100, 30);
  await s.waitFor(/Load per expert/);

  s.press('q');
  const exit = await s.exited;
  assert.equal(exit.exitCode, 0);
  await s.waitFor(() => s.bufferType() === 'normal');
  assert.ok(s.raw.lastIndexOf('\x1b[?25h') > s.raw.lastIndexOf('\x1b[?25l'), 'cursor shown again');
  assert.ok(s.raw.lastIndexOf('\x1b[?1049l') > s.raw.lastIndexOf('\x1b[?1049h'), 'alternate screen left');
  assert.ok(s.raw.lastIndexOf('\x1b[?7h') > s.raw.lastIndexOf('\x1b[?7l'), 'auto-wrap back on');
});

test('NO_COLOR=1: no colour escapes anywhere, the glyph ramp instead', async (t) => {
  const s = PtySession.start(['replay', DEMO_TRACE, '--speed', '64'], { cols: 100, rows: 30, env: { NO_COLOR: '1' } });
  t.after(() => s.kill());
  const screen = await s.waitFor(
    (x) => /■ end/.test(x) && /idle ░/.test(x) && /L2\s+[ ░▒▓█◆]/.test(x) && /\? keys/.test(x),
  );
  assert.match(screen, /"\s" idle ░ <½ ▒ ½–2 ▓ 2–4 █ ≥4/);
  assert.match(screen, /L2\s+[ ░▒▓█◆]+/);
  s.press('3');
  await s.waitFor(/₀|₁|₂|₃|₄|₅|₆|₇/);
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
  assert.deepEqual(colourEscapes(s.raw), []);
});

test('live demo: the bundled model streams in; space freezes it; q stops the engine and exits 0', async (t) => {
  const s = PtySession.start([], { cols: 120, rows: 36, env: { COLORTERM: 'truecolor' } });
  t.after(() => s.kill());
  await s.waitFor(/loading the bundled tiny-moe model|● live/, 10_000);
  await s.waitFor(/● live │ [\d,]+ tokens/, 30_000);
  const loading = s.raw.indexOf('loading the bundled tiny-moe model');
  assert.ok(
    loading >= 0 && loading < s.raw.indexOf('Load per expert'),
    'a first frame says what is loading, before the heatmap',
  );
  await s.waitFor(/L3\s+[█◆]/);
  assert.ok(s.raw.includes('\x1b[38;2;'), 'truecolor when COLORTERM says so');
  s.press(' ');
  const frozen = await s.waitFor(/❚❚ frozen/);
  const count = /│ ([\d,]+) tokens/.exec(frozen)![1];
  await s.waitFor(/\+[\d,]+ buffered/);
  assert.ok(s.screen().includes(`│ ${count} tokens`), 'the view stays frozen while tokens arrive');
  s.press(' ');
  await s.waitFor(/● live/);
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
});

test('without a terminal: replay prints a plain summary', async () => {
  const { stdout } = await run(process.execPath, [CLI, 'replay', DEMO_TRACE], {
    env: { ...process.env, NO_COLOR: '' },
  });
  assert.match(stdout, /^moescope replay .*tiny-moe-demo\.arrows/);
  assert.match(stdout, /balance over the whole run/);
  assert.doesNotMatch(stdout, /\x1b/);
});

test('follow: a trace being written appears as it grows; its end is shown', async (t) => {
  const { join } = await import('node:path');
  const { openTrace, TraceWriter } = await import('../../src/trace/index.js');
  const { tempDir } = await import('../store/helpers.js');
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const src = openTrace(DEMO_TRACE);
  const path = join(dir, 'growing.arrows');
  const w = TraceWriter.create(path, { schema: src.schema, meta: src.meta, batchTokens: 50 });
  w.write(src.readRange(0, 100));
  w.flush();
  const s = PtySession.start(['replay', path, '--follow'], { cols: 120, rows: 36 });
  t.after(() => s.kill());
  await s.waitFor(/moescope follow growing\.arrows ● following │ 100 tokens/);
  w.write(src.readRange(100, 300));
  w.flush();
  await s.waitFor(/│ 300 tokens/);
  w.close();
  src.close();
  await s.waitFor(/■ ended │ 300 tokens/);
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
});
