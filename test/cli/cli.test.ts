import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
// Run the compiled CLI from whichever dist folder this test was compiled into.
const cli = new URL('../../src/cli.js', import.meta.url).pathname;

function run(...args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
}

const COMMANDS = [
  'run',
  'replay',
  'dash',
  'inspect',
  'instrument',
  'stats',
  'check',
  'diff',
  'report',
  'plan',
  'import',
  'export',
  'synth',
];

test('--help lists every subcommand and exits 0', () => {
  const r = run('--help');
  assert.equal(r.status, 0, r.stderr);
  for (const c of COMMANDS) assert.match(r.stdout, new RegExp(`^\\s+${c} `, 'm'), `--help lists ${c}`);
});

test('every subcommand has its own --help', () => {
  for (const c of COMMANDS) {
    const r = run(c, '--help');
    assert.equal(r.status, 0, `${c} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`Usage: moescope ${c}`));
  }
});

test('--version prints the package version', () => {
  const r = run('--version');
  assert.equal(r.status, 0);
  assert.match(r.stdout.trim(), /^\d+\.\d+\.\d+/);
});

test('an unknown command prints usage and exits 2', () => {
  const r = run('no-such-command');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command 'no-such-command'/);
  assert.match(r.stderr, /Usage: moescope/);
});

test('a bad flag value is a usage error, exit 2, no stack trace', () => {
  const r = run('synth', '-o', '/tmp/x.arrows', '--tokens', 'many');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--tokens must be an integer/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('an unknown flag is a usage error, exit 2', () => {
  const r = run('inspect', '--frobnicate', 'model.onnx');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown option '--frobnicate'/);
});
