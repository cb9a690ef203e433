/**
 * docs/architecture.md lists every module: each folder of src/ has a `### \`src/…/\`` heading in its "Modules, file
 * by file" section, and each source file a row under its folder saying what it holds. A file added without its
 * line, or removed with its line left behind, fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SRC = join(ROOT, 'src');

/** Folders of src/ (src/ itself as ''), each with its .ts / .tsx files. */
function tree(dir: string, out = new Map<string, string[]>()): Map<string, string[]> {
  const entries = readdirSync(dir, { withFileTypes: true });
  out.set(
    relative(SRC, dir),
    entries
      .filter((e) => e.isFile() && /\.tsx?$/.test(e.name))
      .map((e) => e.name)
      .sort(),
  );
  for (const e of entries) if (e.isDirectory()) tree(join(dir, e.name), out);
  return out;
}

/** The folders and files the section lists, with each file's description. */
function listed(doc: string): Map<string, Map<string, string>> {
  const start = doc.indexOf('\n## Modules, file by file\n');
  assert.ok(start >= 0, 'docs/architecture.md has no "## Modules, file by file" section');
  const end = doc.indexOf('\n## ', start + 1);
  const out = new Map<string, Map<string, string>>();
  let folder: Map<string, string> | null = null;
  for (const line of doc.slice(start, end < 0 ? undefined : end).split('\n')) {
    const h = /^### `src\/(.*?)\/?`$/.exec(line);
    if (h) out.set(h[1]!, (folder = new Map()));
    const row = /^\| `([^`]+)` \| (.*) \|$/.exec(line);
    if (row && folder) folder.set(row[1]!, row[2]!.trim());
  }
  return out;
}

test('docs/architecture.md lists every folder and file of src/, and nothing that is gone', () => {
  const actual = tree(SRC);
  const docs = listed(readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8'));
  const problems: string[] = [];
  for (const [folder, files] of actual) {
    const rows = docs.get(folder);
    if (!rows) {
      problems.push(`folder src/${folder ? `${folder}/` : ''} has no heading`);
      continue;
    }
    for (const f of files) if (!rows.has(f)) problems.push(`src/${folder ? `${folder}/` : ''}${f} is not listed`);
    for (const [f, what] of rows) {
      if (!files.includes(f)) problems.push(`src/${folder ? `${folder}/` : ''}${f} is listed but does not exist`);
      else if (what === '')
        problems.push(`src/${folder ? `${folder}/` : ''}${f} is listed without saying what it holds`);
    }
  }
  for (const folder of docs.keys())
    if (!actual.has(folder)) problems.push(`src/${folder}/ is listed but does not exist`);
  assert.deepEqual(problems, [], 'docs/architecture.md § Modules, file by file: one line per file, under its folder');
});
