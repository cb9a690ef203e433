/**
 * `moescope listen` in a real terminal: the live TUI over producers that connect after it started — the heatmap of
 * their routing, a refused producer's line in the hint bar, the Ranks section of the Devices pane, q to quit with
 * the merged recording finished.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTrace } from '../../src/trace/index.js';
import { synthesize } from '../../src/trace/synth.js';
import { produce, until } from '../listen/helpers.js';
import { PtySession } from './harness.js';

test('listen: producers stream into the live TUI; a refused one is one line; Devices shows the ranks; q finishes the recording', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-pty-listen-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const base = {
    layers: 4,
    experts: 8,
    topK: 2,
    tokens: 2000,
    skew: { kind: 'zipf' as const, s: 1 },
    collapse: null,
    logits: false,
    seed: 4,
  };
  synthesize(join(dir, 'r0.arrows'), base);
  synthesize(join(dir, 'wide.arrows'), { ...base, experts: 16 });
  const record = join(dir, 'all.arrows');
  const s = PtySession.start(['listen', '--port', '0', '--record', record], { cols: 120, rows: 36 });
  t.after(() => s.kill());
  await until(() => /listening on tcp:\/\/127\.0\.0\.1:\d+/.test(s.raw), 20_000, 'the listening line');
  const address = /listening on (tcp:\/\/127\.0\.0\.1:\d+)/.exec(s.raw)![1]!;
  const good = produce({
    connect: address,
    rank: 0,
    world: 2,
    trace: join(dir, 'r0.arrows'),
    holdMs: 60_000,
    eos: true,
  });
  t.after(() => good.child.kill());
  let screen = await s.waitFor(
    (x) => /listen · 127\.0\.0\.1:\d+/.test(x) && /L3\s+[█◆]/.test(x) && /2,000 tokens/.test(x),
    30_000,
  );
  assert.match(screen, /Load per expert · 4 layers × 8 experts/);
  const bad = produce({ connect: address, rank: 1, world: 2, trace: join(dir, 'wide.arrows') });
  await bad.exited;
  screen = await s.waitFor(
    /rank 1: its routing schema differs from rank 0's: 16 experts per layer, the others 8; connection closed/,
  );
  s.press('5');
  screen = await s.waitFor(
    (x) => /Ranks · 1 · whole run · layer L0/.test(x) && /rank 0\s+2,000 tok busiest e\d/.test(x),
  );
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
  const tr = openTrace(record);
  assert.equal(tr.tokenCount, 2000, 'everything rank 0 sent is recorded');
  assert.ok(tr.complete, 'the recording is finished cleanly');
  assert.deepEqual([...new Set(tr.readRange(0, 2000).rank!)], [0]);
  tr.close();
});
