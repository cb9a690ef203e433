/**
 * An output never replaces an input, and every writer follows one policy (src/core/output.ts): temp file + rename,
 * symlinks followed, devices written directly, folders refused, nothing left behind on failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  copyFileSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OutputFile, resolveOutput, writeOutputFile } from '../../src/core/output.js';
import { UserError } from '../../src/core/errors.js';
import { TraceWriter } from '../../src/trace/writer.js';
import { makeBatch, META, SCHEMA, tempDir } from '../trace/helpers.js';
import { moescope } from '../trace/cli.js';

function trace(path: string, n = 300): Buffer {
  const w = TraceWriter.create(path, { schema: SCHEMA, meta: META });
  w.write(makeBatch(SCHEMA, n, 0));
  w.close();
  return readFileSync(path);
}

function partials(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.partial'));
}

test('report, check --output, diff --output, export, import refuse to write over an input, by any path', (t) => {
  const { dir, path } = tempDir(t);
  const a = path('a.arrows');
  const b = path('b.arrows');
  const bytes = trace(a);
  trace(b, 200);
  const hard = path('hard-link.arrows');
  linkSync(a, hard);
  const soft = path('soft-link.arrows');
  symlinkSync('a.arrows', soft);
  const cases: string[][] = [
    ['report', a, '-o', a],
    ['report', a, '-o', hard],
    ['check', a, '--max-maxvio', '100', '--output', a],
    ['check', a, '--max-maxvio', '100', '--output', soft],
    ['diff', a, b, '--output', a],
    ['diff', b, a, '--output', hard],
    ['export', a, '--jsonl', hard],
    ['export', a, '--parquet', soft],
    ['import', 'jsonl', a, '-o', a],
    ['synth', '-o', path('sub')], // a folder
  ];
  mkdirSync(path('sub'));
  for (const c of cases) {
    const r = moescope(...c);
    assert.equal(r.code, 2, `${c.join(' ')}: exit ${r.code} ${r.stderr}`);
    assert.match(r.stderr, /^moescope: .*(refusing to overwrite|is a folder)/, c.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.ok(readFileSync(a).equals(bytes), `${c.join(' ')} changed the input`);
  }
  assert.equal(lstatSync(soft).isSymbolicLink(), true);
  assert.deepEqual(partials(dir), []);
});

test('an output through a symlink writes the file it points to; an existing file is replaced keeping its mode', (t) => {
  const { dir, path } = tempDir(t);
  const a = path('a.arrows');
  trace(a);
  mkdirSync(path('out'));
  writeFileSync(path('out/report.html'), 'old');
  symlinkSync('out/report.html', path('link.html'));
  const r = moescope('report', a, '-o', path('link.html'));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readlinkSync(path('link.html')), 'out/report.html');
  assert.match(readFileSync(path('out/report.html'), 'utf8'), /^<!doctype html>/i);

  writeFileSync(path('keep.txt'), 'x', { mode: 0o640 });
  writeOutputFile(path('keep.txt'), 'new');
  assert.equal(statSync(path('keep.txt')).mode & 0o777, 0o640);
  assert.equal(readFileSync(path('keep.txt'), 'utf8'), 'new');

  symlinkSync('missing', path('dangling'));
  assert.throws(
    () => resolveOutput(path('dangling')),
    (e) => e instanceof UserError && /missing file/.test(e.message),
  );
  assert.throws(
    () => resolveOutput(path('nowhere/x.txt')),
    (e) => e instanceof UserError && /does not exist/.test(e.message),
  );
  assert.deepEqual(partials(dir), []);
  assert.deepEqual(partials(path('out')), []);
});

test('a device is written directly; an aborted output leaves nothing, not even on an exception', (t) => {
  const { dir, path } = tempDir(t);
  writeOutputFile('/dev/null', 'discarded');
  const f = OutputFile.create(path('x.bin'));
  f.write(new Uint8Array(10));
  assert.equal(partials(dir).length, 1);
  f.abort();
  assert.deepEqual(readdirSync(dir), []);
  const a = path('a.arrows');
  trace(a);
  const r = moescope('check', a, '--max-maxvio', '100', '--format', 'json', '--output', '/dev/null');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /PASS/);
});

test('instrument into a folder whose model.onnx.data differs refuses instead of writing a broken model', (t) => {
  const { path } = tempDir(t);
  const src = fileURLToPath(new URL('../../../fixtures/models/external-data/', import.meta.url));
  const out = path('out');
  mkdirSync(out);
  writeFileSync(join(out, 'model.onnx.data'), Buffer.alloc(statSync(join(src, 'model.onnx.data')).size, 7));
  const r = moescope('instrument', join(src, 'model.onnx'), '-o', join(out, 'model.onnx'));
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /differs from the model's external data/);
  assert.deepEqual(readdirSync(out), ['model.onnx.data']);
  // The same data (a copy) is fine.
  const out2 = path('out2');
  mkdirSync(out2);
  copyFileSync(join(src, 'model.onnx.data'), join(out2, 'model.onnx.data'));
  const ok = moescope('instrument', join(src, 'model.onnx'), '-o', join(out2, 'model.onnx'));
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(readdirSync(out2).sort(), ['model.onnx', 'model.onnx.data']);
});
