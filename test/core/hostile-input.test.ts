/**
 * Bad input ends in one line and exit 2, never a crash, a hang or an unbounded allocation: sizes a file declares
 * are bounded before anything is allocated (src/trace/arrow-schema.ts checkShape), synth estimates its size first and
 * cleans up when interrupted, folders are refused and pipes / FIFOs read (src/core/input.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { moescope } from '../trace/cli.js';
import { tempDir } from '../trace/helpers.js';
import { writeSeedTrace } from '../fuzz/targets.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

function oneLine2(r: { code: number | null; stderr: string }, re: RegExp, what: string): void {
  assert.equal(r.code, 2, `${what}: exit ${r.code} ${r.stderr}`);
  assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, `${what}: ${r.stderr}`);
  assert.match(r.stderr, re, what);
}

test('a JSONL header declaring 1e8, 1e308 or 2^32 layers is refused at once', (t) => {
  const { path } = tempDir(t);
  for (const L of ['100000000', '1e308', '4294967296']) {
    const f = path(`h${L}.jsonl`);
    writeFileSync(f, `{"moescope":1,"layers":${L},"experts":8,"topK":2,"scoring":"softmax"}\n{"experts":[[0,1]]}\n`);
    const t0 = Date.now();
    oneLine2(moescope('import', 'jsonl', f, '-o', path('o.arrows')), /header: MoE layers must be 1…4096/, L);
    assert.ok(Date.now() - t0 < 10_000);
  }
});

test('synth refuses absurd shapes and sizes before writing, and leaves nothing', (t) => {
  const { dir, path } = tempDir(t);
  oneLine2(
    moescope('synth', '-o', path('a.arrows'), '--layers', '100000', '--experts', '65536'),
    /MoE layers must be 1…4096/,
    'layers',
  );
  oneLine2(
    moescope('synth', '-o', path('a.arrows'), '--layers', '4096', '--experts', '65536'),
    /values per token/,
    'L×E',
  );
  oneLine2(
    moescope(
      'synth',
      '-o',
      path('a.arrows'),
      '--layers',
      '64',
      '--experts',
      '4096',
      '--tokens',
      '100000000',
      '--logits',
    ),
    /would take about .* GiB .* free there/,
    'size',
  );
  assert.deepEqual(readdirSync(dir), []);
});

for (const sig of ['SIGINT', 'SIGTERM'] as const)
  test(`an interrupted synth (${sig}) removes its temporary file`, async (t) => {
    const { dir, path } = tempDir(t);
    const child = spawn(
      process.execPath,
      [CLI, 'synth', '-o', path('big.arrows'), '--layers', '8', '--experts', '64', '--tokens', '5000000', '--logits'],
      { stdio: 'ignore' },
    );
    const t0 = Date.now();
    while (!readdirSync(dir).some((f) => f.endsWith('.partial'))) {
      assert.ok(Date.now() - t0 < 20_000, 'no .partial appeared');
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill(sig);
    const [code, signal] = await new Promise<[number | null, string | null]>((r) =>
      child.on('exit', (c, s) => r([c, s])),
    );
    assert.ok(signal === sig || code !== 0, `ended with ${code} ${signal}`);
    assert.deepEqual(readdirSync(dir), []);
  });

test('a folder as input is one line and exit 2; a pipe or FIFO is read', (t) => {
  const { path } = tempDir(t);
  const trace = path('t.arrows');
  writeSeedTrace(trace);
  mkdirSync(path('folder'));
  for (const argv of [
    ['stats', path('folder')],
    ['replay', path('folder'), '--no-ui'],
    ['import', 'jsonl', path('folder'), '-o', path('o.arrows')],
    ['import', 'npy', path('folder'), '--top-k', '2', '-o', path('o.arrows')],
    ['check', trace, '--config', path('folder')],
    ['plan', '--weights', path('folder'), '--replicas', '8', '--gpus', '2'],
  ])
    oneLine2(moescope(...argv), /folder|EISDIR/, argv.join(' '));
  // stats <(cat t.arrows): the trace comes through /dev/fd/N, a pipe.
  const viaPipe = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" stats <(cat "${trace}") --json`], {
    encoding: 'utf8',
  });
  assert.equal(viaPipe.status, 0, viaPipe.stderr);
  const direct = moescope('stats', trace, '--json');
  assert.deepEqual(JSON.parse(viaPipe.stdout).layers, JSON.parse(direct.stdout).layers);
  const fifo = path('fifo');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  const viaFifo = spawnSync(
    'bash',
    ['-c', `cat "${trace}" > "${fifo}" & "${process.execPath}" "${CLI}" stats "${fifo}" --json`],
    { encoding: 'utf8', timeout: 30_000 },
  );
  assert.equal(viaFifo.status, 0, viaFifo.stderr);
  assert.deepEqual(JSON.parse(viaFifo.stdout).layers, JSON.parse(direct.stdout).layers);
  assert.ok(readFileSync(trace).length > 0);
});
