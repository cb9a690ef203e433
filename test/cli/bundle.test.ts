/**
 * The bundled CLI (dist/bin, tools/bundle.mjs: what `npm start` and the `moescope` bin run) against tsc's output
 * (dist/src/cli.js, what the other tests run): the same commands print the same bytes and exit alike, its workers
 * start (the live demo draws its heatmap in a terminal), and commands that draw nothing never load Ink or React —
 * in either build.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BUNDLED_MODEL } from '../../src/core/paths.js';
import { DEMO_TRACE } from '../store/helpers.js';
import { BUNDLED_CLI, CLI, PtySession } from '../pty/harness.js';

const DIST_SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true }))
    t = Math.max(t, e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs);
  return t;
}

function run(cli: string, args: string[], extra: string[] = []) {
  const r = spawnSync(process.execPath, [...extra, cli, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('the bundle is built from the current tsc output (else: npm run build)', () => {
  assert.ok(
    statSync(BUNDLED_CLI).mtimeMs >= newest(DIST_SRC),
    'dist/bin is older than dist/src: run `npm run build` (tsc, then tools/bundle.mjs)',
  );
});

test('bundled and unbundled CLI: same output, same exit code', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-bundle-'));
  try {
    const cases: string[][] = [
      ['--help'],
      ['--version'],
      ['stats', DEMO_TRACE, '--json'],
      ['check', DEMO_TRACE, '--max-maxvio', '1.5', '--format', 'github'],
      ['plan', DEMO_TRACE, '--replicas', '10', '--gpus', '2'],
      ['replay', DEMO_TRACE, '--no-ui'],
      ['inspect', BUNDLED_MODEL, '--json'],
      ['stats', join(dir, 'missing.arrows')],
    ];
    for (const args of cases) {
      const a = run(CLI, args);
      const b = run(BUNDLED_CLI, args);
      assert.equal(b.status, a.status, `${args.join(' ')}: exit code`);
      assert.equal(b.stdout, a.stdout, `${args.join(' ')}: stdout`);
      assert.equal(b.stderr, a.stderr, `${args.join(' ')}: stderr`);
    }
    // Generation runs in the engine's worker (and the logits reducer it imports by URL): greedy, so the same text.
    const gen = ['run', BUNDLED_MODEL, '--no-ui', '--max-tokens', '6', '--logits'];
    const a = run(CLI, gen);
    const b = run(BUNDLED_CLI, gen);
    assert.equal(a.status, 0, a.stderr);
    assert.equal(b.status, 0, b.stderr);
    const text = (s: string) => s.replace(/[\d.,]+ tok\/s|\d+(\.\d+)? ?(ms|s)\b/g, '#');
    assert.equal(text(b.stdout), text(a.stdout));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('commands that draw nothing load neither Ink nor React, bundled or not', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-bundle-'));
  try {
    // Records every module Node resolves (a resolve hook, registered before the CLI loads).
    const log = join(dir, 'loaded.txt');
    const hooks = join(dir, 'hooks.mjs');
    writeFileSync(
      hooks,
      `import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }\n`,
    );
    const register = join(dir, 'register.mjs');
    writeFileSync(
      register,
      `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
    );
    const cases = [
      ['stats', DEMO_TRACE],
      ['check', DEMO_TRACE, '--max-maxvio', '100'],
      ['report', DEMO_TRACE, '-o', join(dir, 'r.html')],
      ['diff', DEMO_TRACE, DEMO_TRACE],
      ['replay', DEMO_TRACE, '--no-ui'],
      ['export', DEMO_TRACE, '--parquet', join(dir, 'x.parquet')],
    ];
    // The bundle names its chunks by hash; esbuild's path comments say which packages a chunk holds.
    const ui = /node_modules\/(ink|react|react-reconciler|yoga-layout)\//;
    for (const cli of [CLI, BUNDLED_CLI])
      for (const args of cases) {
        rmSync(log, { force: true });
        const r = run(cli, args, ['--import', pathToFileURL(register).href]);
        assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
        const files = [...new Set(readFileSync(log, 'utf8').trim().split('\n'))].filter((u) => u.startsWith('file:'));
        assert.ok(files.length > 5, 'the hook saw the modules');
        const drawn = files.filter(
          (u) => ui.test(u) || (u.includes('/dist/bin/') && ui.test(readFileSync(fileURLToPath(u), 'utf8'))),
        );
        assert.deepEqual(drawn, [], `${cli} ${args[0]} loads the UI`);
      }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the bundled live demo draws its heatmap in a terminal (its engine worker runs)', async (t) => {
  const s = PtySession.start([], { cols: 120, rows: 36, cli: BUNDLED_CLI });
  t.after(() => s.kill());
  const screen = await s.waitFor((x) => /Load per expert/.test(x) && /L3\s+[█◆▓▒░]/.test(x), 60_000);
  assert.match(screen, /moescope live demo · bundled tiny-moe/);
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
});
