/** docs/tui.md stays true: every key of the binding table is in its key table. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/core/paths.js';
import { BINDINGS } from '../../src/views/keys.js';

test('docs/tui.md lists every key binding', () => {
  const doc = readFileSync(join(PACKAGE_ROOT, 'docs', 'tui.md'), 'utf8');
  const table = doc.slice(doc.indexOf('## Keys'), doc.indexOf('## Replay timing'));
  const shown = new Set([...table.matchAll(/`([^`]+)`/g)].flatMap((m) => m[1]!.split(/\s+/)));
  for (const b of BINDINGS) {
    if (!b.label) continue;
    for (const k of b.label.split(/\s+/)) assert.ok(shown.has(k), `docs/tui.md does not list ${k} (${b.action})`);
  }
});
