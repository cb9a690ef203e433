/**
 * `replay` of a count trace in a real terminal: an SGLang per_pass dump imported as counts — the heatmap over the
 * whole trace, the Devices view under the recorded placement with its redundant replicas, q to quit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES } from '../../src/core/paths.js';
import { CLI, PtySession } from './harness.js';

test('replay of a count trace: heatmap of the counts, Devices view under the recorded placement', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-pty-counts-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'pass.arrows');
  const src = join(FIXTURES, 'sglang', 'per_pass');
  const files = readdirSync(src).map((f) => join(src, f));
  const imp = spawnSync(process.execPath, [CLI, 'import', 'sglang', ...files, '-o', out, '--top-k', '2'], {
    encoding: 'utf8',
  });
  assert.equal(imp.status, 0, imp.stderr);
  const s = PtySession.start(['replay', out], { cols: 120, rows: 36 });
  t.after(() => s.kill());
  // The load metrics of the counts (the frame is complete once the last layer's row carries them).
  let screen = await s.waitFor(
    (x) =>
      /cumulative: all 63 tokens/.test(x) &&
      /L2 █+\s+0\.64\s+1\.16\s+0\.907/.test(x) &&
      /L3 .+0\.46\s+0\.84\s+0\.953/.test(x) &&
      /count trace: load counts per step/.test(x),
    30_000,
  );
  assert.match(screen, /Load per expert · 3 layers × 8 experts/);
  s.press('5');
  screen = await s.waitFor((x) => /recorded \(10 slots for 8 experts, redundant replicas\)/.test(x));
  assert.match(screen, /0\.70\d/, 'SGLang balancedness under the recorded placement');
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
});
