/**
 * The command as users run it: tsc's output (dist/src) bundled by esbuild into dist/bin — `moescope.js` (the bin,
 * what `npm start` runs) and one file per module that a thread or a worker loads by URL. Run by `npm run build`
 * and `prepare`, after tsc.
 *
 * Why: unbundled, the live demo's main thread resolves and reads ~600 modules to load Ink (417 of them for Ink's
 * `es-toolkit/compat` import alone), and the engine worker ~100 more — 0.45–0.65 s of CPU before the TUI can
 * draw (bench/RESULTS.md § Startup). Bundled and tree-shaken, the same code loads in a few dozen files.
 *
 * - Code splitting keeps every lazy `import()` lazy: each becomes its own chunk, so `moescope --help` still loads
 *   no Arrow or onnxruntime, and commands that draw nothing never load Ink or React.
 * - Every output sits in one flat folder, because the code finds its workers relative to itself
 *   (`new URL('./worker.js', import.meta.url)`): a chunk holding that line and the worker's entry must be
 *   siblings. The build fails when a module is referenced that way and is not an entry here.
 * - Packages with native addons or runtime `require`s of their own files stay in node_modules (EXTERNAL).
 * - WebAssembly modules (dist/src/**\/*.wasm, assembled by tools/wasm.mjs) are copied beside the chunks: the code
 *   loads them by URL as it loads workers.
 * - tsc's dist/src stays as it is: the library (`import … from 'moescope'`) and the tests use it.
 */
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'dist', 'src');
const OUT = join(ROOT, 'dist', 'bin');

/** Output name → tsc output it is built from. The CLI, and every module loaded by URL (workers, reducers). */
const ENTRIES = {
  moescope: join(SRC, 'cli.js'),
  // src/engine/generation-handle.ts: the generation worker.
  worker: join(SRC, 'engine', 'worker.js'),
  // src/stats/logits-thread.ts: the logits half of RoutingStats.
  'logits-worker': join(SRC, 'stats', 'logits-worker.js'),
  // src/commands/stats-threads.ts: a layer range of `moescope stats` on another core.
  'stats-worker': join(SRC, 'commands', 'stats-worker.js'),
  // src/stats/live-logits.ts: the reducer the engine worker imports by URL.
  'live-logits': join(SRC, 'stats', 'live-logits.js'),
};

const EXTERNAL = [
  'onnxruntime-node', // native addon
  '@duckdb/node-api', // native addon
  'blessed', // requires its widgets and terminfo files by computed path
  'blessed-contrib', // requires blessed's widgets
  'react-devtools-core', // Ink imports it only with DEV=true; not a dependency
];

for (const f of Object.values(ENTRIES))
  if (!existsSync(f)) throw new Error(`${f} is missing: run tsc first (npm run build does both)`);
rmSync(OUT, { recursive: true, force: true });
await build({
  entryPoints: ENTRIES,
  outdir: OUT,
  chunkNames: '[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  // CommonJS dependencies bundled into ESM call `require` for Node's built-ins: give each file one.
  banner: {
    js: "import { createRequire as __moescopeRequire } from 'node:module'; const require = __moescopeRequire(import.meta.url);",
  },
  logLevel: 'warning',
});

// The WebAssembly modules, loaded by URL like the workers.
function* wasmFiles(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* wasmFiles(p);
    else if (e.name.endsWith('.wasm')) yield p;
  }
}
for (const f of wasmFiles(SRC)) copyFileSync(f, join(OUT, basename(f)));

// Every `new URL('./x.js', import.meta.url)` in the output must name a file beside it.
const missing = [];
for (const f of readdirSync(OUT)) {
  if (!f.endsWith('.js')) continue;
  const text = readFileSync(join(OUT, f), 'utf8');
  for (const m of text.matchAll(/new URL\(\s*["'](\.\/[^"']+)["']\s*,\s*import\.meta\.url\s*\)/g))
    if (!existsSync(join(OUT, m[1]))) missing.push(`${f} loads ${m[1]}`);
}
if (missing.length)
  throw new Error(`dist/bin: modules loaded by URL that are not bundle entries (add them to ENTRIES): ${missing}`);
