/**
 * No thread that draws ever blocks on another (#16 item 4): nothing the TUI loads (src/views, src/store and every
 * module they import, transitively) may call Atomics.wait or start the stats' logits worker; and the formula
 * library never starts a worker by itself (only a command hands RoutingStats a LogitsThread).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { importsOf } from './layering.test.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SRC = join(ROOT, 'src');

function sourceOf(jsPath: string): string {
  for (const ext of ['.ts', '.tsx']) {
    try {
      return readFileSync(jsPath.replace(/\.js$/, ext), 'utf8');
    } catch {
      /* try the next extension */
    }
  }
  throw new Error(`no source for ${jsPath}`);
}

/** Every src module reachable from the entries, by static and dynamic imports. */
function closure(entries: string[]): Map<string, string> {
  const seen = new Map<string, string>();
  const todo = entries.map((e) => join(SRC, e));
  while (todo.length) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    const text = sourceOf(f);
    seen.set(f, text);
    // Type-only imports are erased: they load nothing.
    const code = text.replace(/^\s*(import|export) type [^;]*;/gms, '');
    for (const spec of importsOf(code)) todo.push(resolve(dirname(f), spec));
  }
  return seen;
}

test('nothing the TUI loads waits with Atomics.wait or starts the logits worker', () => {
  const mods = closure(['views/index.js', 'views/run-tui.js', 'store/index.js']);
  assert.ok(mods.size > 20, `the closure reached the TUI's modules (${mods.size})`);
  const bad = [...mods]
    .filter(([, text]) => /Atomics\.wait\b|new LogitsThread\b|logits-worker/.test(text))
    .map(([f]) => relative(ROOT, f));
  assert.deepEqual(bad, []);
});

test('RoutingStats never starts a thread itself', () => {
  const text = readFileSync(join(SRC, 'stats/routing-stats.ts'), 'utf8');
  assert.doesNotMatch(text, /new LogitsThread|new Worker|Atomics\.wait|worker_threads/);
  assert.match(text, /import type \{ LogitsThread \}/, 'it only takes one it is given');
});
