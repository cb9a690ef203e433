/** Interop tests' access to python3 (pyarrow, polars, DuckDB, numpy): skipped where absent. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/core/paths.js';

export function python(code: string): { ok: boolean; out: string; err: string } {
  const r = spawnSync('python3', ['-c', code], { encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout ?? '', err: r.stderr ?? '' };
}

const installed = new Map<string, boolean>();
/** Whether python3 can import `mod` (asked once per module). */
export function has(mod: string): boolean {
  let ok = installed.get(mod);
  if (ok === undefined) installed.set(mod, (ok = python(`import ${mod}`).ok));
  return ok;
}

export const HAVE_PYARROW = has('pyarrow');

/**
 * Runs each shell line of the ```sh block after `<!-- <marker>` in docs/trace-format.md with `placeholder`
 * replaced by `file`, skipping lines whose Python imports are not installed; asserts each exits 0 and returns
 * what the ones that ran printed.
 */
export function runDocOneLiners(marker: string, placeholder: string, file: string): { line: string; stdout: string }[] {
  const doc = readFileSync(join(PACKAGE_ROOT, 'docs', 'trace-format.md'), 'utf8');
  const block = new RegExp(`<!-- ${marker}[^\\n]*\\n\`\`\`sh\\n([\\s\\S]*?)\`\`\``).exec(doc);
  assert.ok(block, `docs/trace-format.md has the "${marker}" block`);
  const lines = block[1]!.trim().split('\n');
  assert.ok(lines.length >= 3);
  const ran: { line: string; stdout: string }[] = [];
  for (const line of lines) {
    const mods = /import ([\w., ]+?);/
      .exec(line)![1]!
      .split(',')
      .map((m) => m.trim().split(' ')[0]!);
    if (!mods.every(has)) continue; // polars / duckdb may be absent
    const r = spawnSync('sh', ['-c', line.replaceAll(`'${placeholder}'`, `'${file}'`)], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${line}\n${r.stderr}`);
    ran.push({ line, stdout: r.stdout });
  }
  return ran;
}
