/**
 * The first frame (issue 17): for the invocations that draw a TUI, on a terminal, the loading screen is written
 * before the command line itself (commander and the command table) is loaded — src/cli.tsx draws it from the
 * arguments alone. Everything else (--help, --version, --no-ui, non-drawing commands, bad arguments, no terminal)
 * behaves as before: no alternate screen, errors on one line, exit 2. Errors found after the first frame (a missing
 * model or trace) give the screen back before they are printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BUNDLED_MODEL } from '../../src/core/paths.js';
import { DEMO_TRACE } from '../store/helpers.js';
import { BUNDLED_CLI, CLI, PtySession } from './harness.js';

const run = promisify(execFile);
const ENTER_ALT = '\x1b[?1049h';
const LEAVE_ALT = '\x1b[?1049l';

/**
 * A preload for the CLI under test that logs, in order, every module Node resolves (a resolve hook) and the
 * first write to stdout. The hook runs before the module it resolves loads, so the order in the log is the order
 * of events.
 */
function orderLog(t: { after: (f: () => void) => void }): { log: string; env: Record<string, string> } {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-first-frame-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const log = join(dir, 'order.txt');
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(log)}, 'load ' + r.url + '\\n'); return r; }\n`,
  );
  const preload = join(dir, 'preload.mjs');
  writeFileSync(
    preload,
    [
      "import { register } from 'node:module';",
      "import { appendFileSync } from 'node:fs';",
      `register(${JSON.stringify(pathToFileURL(hooks).href)});`,
      'const write = process.stdout.write.bind(process.stdout);',
      'let first = true;',
      `process.stdout.write = (chunk, ...rest) => { if (first) { first = false; appendFileSync(${JSON.stringify(log)}, 'write ' + JSON.stringify(String(chunk)) + '\\n'); } return write(chunk, ...rest); };`,
    ].join('\n'),
  );
  return { log, env: { NODE_OPTIONS: `--import ${pathToFileURL(preload).href}` } };
}

/** Whether a resolved module is commander, or a bundle chunk holding it (esbuild names bundled files in comments). */
function isCommander(url: string): boolean {
  if (!url.startsWith('file:')) return false;
  if (url.includes('/node_modules/commander/')) return true;
  return url.includes('/dist/bin/') && readFileSync(fileURLToPath(url), 'utf8').includes('// node_modules/commander/');
}

const DRAWING: { args: string[]; title: RegExp; what: RegExp }[] = [
  { args: [], title: /^moescope live demo · bundled tiny-moe$/m, what: /loading the bundled tiny-moe model/ },
  {
    args: ['--no-color', '--ep', 'cpu', '--max-tokens=8'],
    title: /^moescope live demo · bundled tiny-moe$/m,
    what: /onnxruntime, cpu, in a worker thread/,
  },
  { args: ['replay', DEMO_TRACE], title: /^moescope replay .*tiny-moe-demo\.arrows$/m, what: /opening the trace/ },
  {
    args: ['replay', '--speed', '8', DEMO_TRACE, '--follow'],
    title: /^moescope follow .*tiny-moe-demo\.arrows$/m,
    what: /opening the trace/,
  },
  { args: ['run', BUNDLED_MODEL, '--logits'], title: /^moescope run · tiny-moe$/m, what: /loading .*model\.onnx/ },
];

for (const cli of [BUNDLED_CLI, CLI])
  for (const c of DRAWING)
    test(`${cli === CLI ? 'unbundled' : 'bundled'} moescope ${c.args.join(' ')}: the loading screen is the first write, before commander loads`, async (t) => {
      const { log, env } = orderLog(t);
      const s = PtySession.start(c.args, { cols: 120, rows: 30, cli, env });
      t.after(() => s.kill());
      // Ink's frames follow within moments, so the loading screen is read from what was written, not the screen.
      await s.waitFor(/Load per expert/, 60_000);
      assert.equal(s.bufferType(), 'alternate');
      const order = readFileSync(log, 'utf8').trim().split('\n');
      const frame = order.findIndex((l) => l.startsWith('write '));
      assert.ok(frame >= 0, 'something was written');
      const first = JSON.parse(order[frame]!.slice(6)) as string;
      assert.ok(first.startsWith(ENTER_ALT), `the first write takes the alternate screen: ${JSON.stringify(first)}`);
      const text = first.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
      assert.match(text, c.title);
      assert.match(text, c.what);
      // (The terminal turns each \n into \r\n.)
      const lf = (x: string) => x.replace(/\r+\n/g, '\n');
      assert.ok(lf(s.raw).startsWith(lf(first)), 'the loading screen is the first thing on the terminal');
      // The command's action draws the same text again once commander has parsed: that must not redraw.
      assert.equal(s.raw.split('⧗').length - 1, 1, 'the loading screen drawn once');
      const commander = order.findIndex((l) => l.startsWith('load ') && isCommander(l.slice(5)));
      assert.ok(commander >= 0, 'commander was loaded');
      assert.ok(frame < commander, `the first frame (#${frame}) comes before commander loads (#${commander})`);
      s.press('q');
      assert.equal((await s.exited).exitCode, 0);
    });

const NOT_DRAWING: { args: string[]; code: number; screen: RegExp }[] = [
  { args: ['--help'], code: 0, screen: /Usage: moescope/ },
  { args: ['-h'], code: 0, screen: /Usage: moescope/ },
  { args: ['--version'], code: 0, screen: /^\d+\.\d+\.\d+/m },
  { args: ['replay', '--help'], code: 0, screen: /Usage: moescope replay/ },
  { args: ['replay', DEMO_TRACE, '--no-ui'], code: 0, screen: /balance over the whole run/ },
  { args: ['stats', DEMO_TRACE], code: 0, screen: /tokens/ },
  { args: ['--ep', 'bogus'], code: 2, screen: /--ep must be one of cpu, cuda, webgpu, got "bogus"/ },
  { args: ['--max-tokens', '-1'], code: 2, screen: /--max-tokens/ },
  { args: ['--ep', 'cpu', '--ep', 'bogus'], code: 2, screen: /--ep must be one of/ },
  { args: ['bogus'], code: 2, screen: /unknown command 'bogus'/ },
  { args: ['replay'], code: 2, screen: /missing required argument 'trace'/ },
  { args: ['replay', DEMO_TRACE, DEMO_TRACE], code: 2, screen: /too many arguments/ },
  { args: ['replay', DEMO_TRACE, '--speed', '100'], code: 2, screen: /--speed must be between 0\.25 and 64/ },
  { args: ['run', BUNDLED_MODEL, '--prompt', 'a', '--prompts', 'b'], code: 2, screen: /give one of --prompt/ },
  { args: ['run', BUNDLED_MODEL, '--greedy', '--temperature', '1'], code: 2, screen: /contradict each other/ },
  { args: ['run', BUNDLED_MODEL, '--no-ui', '--max-tokens', '0'], code: 0, screen: /tokens/ },
  { args: ['run'], code: 2, screen: /run needs a MODEL/ },
];

test('no first frame for help, version, --no-ui, commands that draw nothing, or bad arguments (bundled)', async () => {
  for (const c of NOT_DRAWING) {
    const s = PtySession.start(c.args, { cols: 120, rows: 40, cli: BUNDLED_CLI });
    try {
      const { exitCode } = await s.exited;
      await s.waitFor(() => c.screen.test(s.raw), 10_000); // --help is longer than the screen
      assert.equal(exitCode, c.code, `moescope ${c.args.join(' ')}: exit code`);
      assert.ok(!s.raw.includes(ENTER_ALT), `moescope ${c.args.join(' ')}: no alternate screen`);
      if (c.code === 2) {
        const errors = s.raw.split(/\r*\n/).filter((l) => /^(error|moescope):/.test(l));
        assert.equal(errors.length, 1, `moescope ${c.args.join(' ')}: one error line\n${s.raw}`);
      }
    } finally {
      s.kill();
    }
  }
});

test('a missing model or trace after the first frame: the screen is given back, one line, exit 2', async () => {
  for (const [args, message] of [
    [['run', '/nonexistent/tiny/model.onnx'], 'moescope: model not found: /nonexistent/tiny/model.onnx'],
    [['replay', '/nonexistent/x.arrows'], 'moescope: /nonexistent/x.arrows: no such trace'],
    [['--plan', '/nonexistent/plan.json'], 'moescope: '],
  ] as const) {
    const s = PtySession.start([...args], { cols: 120, rows: 30, cli: BUNDLED_CLI });
    try {
      const { exitCode } = await s.exited;
      await s.waitFor(message, 10_000);
      assert.equal(exitCode, 2, `moescope ${args.join(' ')}`);
      assert.ok(s.raw.startsWith(ENTER_ALT), `moescope ${args.join(' ')}: the first frame went up`);
      assert.ok(s.raw.lastIndexOf(LEAVE_ALT) > s.raw.lastIndexOf(ENTER_ALT), 'the alternate screen is left');
      assert.ok(s.raw.lastIndexOf(message) > s.raw.lastIndexOf(LEAVE_ALT), 'the error is printed after leaving it');
      assert.equal(s.bufferType(), 'normal');
      const printed = s.lines().filter((l) => l !== '');
      assert.equal(printed.length, 1, `one line:\n${s.screen()}`);
      assert.ok(printed[0]!.startsWith(message), printed[0]);
    } finally {
      s.kill();
    }
  }
});

test('without a terminal no first frame: the demo and replay print plain text (bundled)', async () => {
  const env = { ...process.env, NO_COLOR: '' };
  const replay = await run(process.execPath, [BUNDLED_CLI, 'replay', DEMO_TRACE], { env });
  assert.match(replay.stdout, /^moescope replay .*tiny-moe-demo\.arrows/);
  assert.doesNotMatch(replay.stdout, /\x1b/);
  const demo = await run(process.execPath, [BUNDLED_CLI, '--max-tokens', '1'], { env, timeout: 120_000 });
  assert.match(demo.stdout, /demo \(no terminal/);
  assert.doesNotMatch(demo.stdout, /\x1b/);
});
