/**
 * A recorder killed mid-batch leaves a trace cut short. Every command that reads traces must still use its complete
 * tokens (nothing readable is lost), name the cut in one stderr line and exit 2 — or refuse outright (check).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cli = new URL('../../src/cli.js', import.meta.url).pathname;
const run = (...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });

test('commands on a truncated trace: complete tokens used, one error line, exit 2', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-cut-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const whole = join(dir, 'whole.arrows');
  const made = run(
    'synth',
    '--layers',
    '3',
    '--experts',
    '8',
    '--top-k',
    '2',
    '--tokens',
    '150000',
    '--seed',
    '3',
    '-o',
    whole,
  );
  assert.equal(made.status, 0, made.stderr);
  const cut = join(dir, 'cut.arrows');
  copyFileSync(whole, cut);
  truncateSync(cut, statSync(whole).size - 500);

  const stats = run('stats', cut, '--json');
  assert.equal(stats.status, 2, stats.stderr);
  const lines = stats.stderr.trim().split('\n');
  assert.equal(lines.length, 1, stats.stderr);
  assert.match(
    lines[0]!,
    /^moescope: .*cut\.arrows is truncated at byte \d+ \(\d+ tokens lost\); the output covers its (\d+) complete tokens$/,
  );
  const complete = Number(/covers its (\d+)/.exec(lines[0]!)![1]);
  const json = JSON.parse(stats.stdout) as { tokens: number; truncated: boolean };
  assert.equal(json.truncated, true);
  assert.equal(json.tokens, complete);
  assert.ok(complete > 0 && complete < 150000, `complete tokens ${complete}`);

  const plan = run('plan', cut, '--replicas', '8', '--gpus', '2', '--json');
  assert.equal(plan.status, 2, plan.stderr);
  assert.match(plan.stderr, /is truncated at byte/);
  assert.doesNotThrow(() => JSON.parse(plan.stdout));

  const check = run('check', cut, '--max-cv', '10');
  assert.equal(check.status, 2);
  assert.match(check.stderr, /^moescope: .*truncated/);
  assert.doesNotMatch(check.stderr, /\n\s+at /);
});
