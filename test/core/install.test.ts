/**
 * Installing stays offline-safe and quiet: onnxruntime-node's CUDA download (its install script) is denied through
 * package.json's allowScripts (npm ≥ 11.16 honours a `false` entry; npm 12 enforces the policy), not an .npmrc key
 * that npm 11 warns about on every command.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

test('package.json denies onnxruntime-node its install script; npm prints no config warning here', () => {
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { allowScripts?: Record<string, boolean> };
  assert.equal(pkg.allowScripts?.['onnxruntime-node'], false);
  if (existsSync(`${ROOT}.npmrc`))
    assert.doesNotMatch(readFileSync(`${ROOT}.npmrc`, 'utf8'), /onnxruntime-node-install/);
  const r = spawnSync('npm', ['config', 'get', 'registry'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /Unknown project config|will stop working/);
});
