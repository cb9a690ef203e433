/**
 * The folder layering of src/ (docs/architecture.md): data flows one way, core ← engine, trace, stats ← store ←
 * views, with gate, report and commands above (report may use gate, never the reverse). Every static and dynamic
 * import of every source file is read from the TypeScript sources and checked against the allowed edges, so a
 * backwards import fails here instead of growing into a cycle.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SRC = join(ROOT, 'src');

/** Which folders each folder may import from (besides itself). Files directly in src/ (cli, index) may import all. */
const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  engine: ['core'],
  trace: ['core'],
  stats: ['core'],
  store: ['core', 'stats'],
  views: ['core', 'stats', 'store'],
  serving: ['core', 'trace'],
  listen: ['core', 'trace'],
  dash: ['core', 'store'],
  gate: ['core', 'engine', 'trace', 'stats'],
  report: ['core', 'engine', 'trace', 'stats', 'gate'],
  scale: ['core', 'trace', 'stats'],
  commands: [
    'core',
    'engine',
    'trace',
    'stats',
    'store',
    'views',
    'dash',
    'gate',
    'report',
    'serving',
    'listen',
    'scale',
  ],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.tsx?$/.test(e.name) ? [p] : [];
  });
}

/** Relative module specifiers of a file: `from '…'`, `import '…'`, `import('…')`, `export … from '…'`. */
export function importsOf(text: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.[^'"]*)\1/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[2]!);
  return out;
}

function folderOf(file: string): string | null {
  const rel = relative(SRC, file).split(/[\\/]/);
  return rel.length > 1 ? rel[0]! : null;
}

test('the import scanner sees static, dynamic and re-export imports', () => {
  const text = `import { a } from '../core/a.js';\nexport { b } from "./b.js";\nconst c = await import('../trace/index.js');\nimport './side.js';\nimport x from 'ink';`;
  assert.deepEqual(importsOf(text), ['../core/a.js', './b.js', '../trace/index.js', './side.js']);
});

test('every folder of src/ is in the layering, and no file imports a folder above it', () => {
  const folders = new Set(
    readdirSync(SRC, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name),
  );
  assert.deepEqual(
    [...folders].filter((f) => !(f in ALLOWED)),
    [],
    'a new folder of src/ needs a place in the layering (and in docs/architecture.md)',
  );
  const broken: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = folderOf(file);
    if (from === null) continue;
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), spec);
      const to = folderOf(target);
      if (!target.startsWith(SRC + '/') || to === null) {
        broken.push(`${relative(ROOT, file)} imports ${spec}, outside the src/ folders`);
        continue;
      }
      if (to !== from && !ALLOWED[from]!.includes(to))
        broken.push(`${relative(ROOT, file)} (${from}) imports ${spec} (${to})`);
    }
  }
  assert.deepEqual(broken, []);
});
