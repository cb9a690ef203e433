/**
 * Assembles every WebAssembly text module of src (src/**\/*.wat) with wabt into dist/src beside tsc's output
 * (src/stats/row-kernel.wat → dist/src/stats/row-kernel.wasm), where the module that loads it looks for it
 * (`new URL('./row-kernel.wasm', import.meta.url)`); tools/bundle.mjs copies the same files into dist/bin. Run by
 * `npm run build` after tsc. Only the text is committed: the binary is always made from it here.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');
const OUT = join(ROOT, 'dist', 'src');

function* watFiles(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* watFiles(p);
    else if (e.name.endsWith('.wat')) yield p;
  }
}

const wabt = await wabtInit();
for (const file of watFiles(SRC)) {
  const rel = relative(SRC, file);
  const mod = wabt.parseWat(rel, readFileSync(file, 'utf8'), { simd: true });
  try {
    mod.resolveNames();
    mod.validate();
    const { buffer } = mod.toBinary({});
    const out = join(OUT, rel.replace(/\.wat$/, '.wasm'));
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, buffer);
  } finally {
    mod.destroy();
  }
}
