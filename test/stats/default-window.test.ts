/**
 * One default collapse window (#16 item 6): the same trace gives the same collapse warnings in `moescope stats`,
 * in the HTML report and in the TUI's model, each naming the window it used; --window overrides it everywhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { traceSource } from '../../src/gate/source.js';
import { collectReport } from '../../src/report/collect.js';
import { DEFAULT_COLLAPSE_WINDOW } from '../../src/stats/defaults.js';
import { RoutingModel } from '../../src/store/model.js';
import { openTrace, traceStream } from '../../src/trace/index.js';
import { DEMO_TRACE } from '../store/helpers.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

function cli(...args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CI: 'true' } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

async function tuiModel(window?: number): Promise<RoutingModel> {
  const s = traceStream(openTrace(DEMO_TRACE));
  const m = new RoutingModel(s.schema, s.meta, window === undefined ? {} : { window });
  for await (const it of s.items()) if (it.kind === 'tokens') m.add(it.batch);
  s.close();
  return m;
}

async function report(window?: number) {
  const s = await traceSource(DEMO_TRACE);
  try {
    return await collectReport(s, window === undefined ? {} : { window });
  } finally {
    s.close();
  }
}

test('stats, report and the TUI model give the same warnings on one trace with the default window', async () => {
  const stats = JSON.parse(cli('stats', DEMO_TRACE, '--json')) as { window: { tokens: number }; warnings: unknown[] };
  const rep = await report();
  const model = await tuiModel();
  assert.equal(stats.window.tokens, DEFAULT_COLLAPSE_WINDOW);
  assert.equal(rep.window, DEFAULT_COLLAPSE_WINDOW);
  assert.equal(model.stats.window!.size, DEFAULT_COLLAPSE_WINDOW);
  assert.ok(stats.warnings.length > 0, 'the demo trace is long enough to fire warnings');
  assert.equal(rep.warnings.length, stats.warnings.length);
  assert.equal(model.stats.warnings.length, stats.warnings.length);
  // Each result names the window next to the warnings.
  assert.match(
    cli('stats', DEMO_TRACE),
    new RegExp(`Collapse warnings over a ${DEFAULT_COLLAPSE_WINDOW}-token window: ${stats.warnings.length}`),
  );
  assert.match(
    cli('replay', DEMO_TRACE, '--no-ui'),
    new RegExp(
      `collapse warnings: ${stats.warnings.length} fired.*rules over ${DEFAULT_COLLAPSE_WINDOW}-token windows`,
    ),
  );
});

test('--window overrides the default in all three', async () => {
  const w = 128;
  const stats = JSON.parse(cli('stats', DEMO_TRACE, '--json', '--window', String(w))) as {
    window: { tokens: number };
    warnings: unknown[];
  };
  const rep = await report(w);
  const model = await tuiModel(w);
  assert.equal(stats.window.tokens, w);
  assert.equal(rep.window, w);
  assert.equal(rep.warnings.length, stats.warnings.length);
  assert.equal(model.stats.warnings.length, stats.warnings.length);
  assert.match(
    cli('replay', DEMO_TRACE, '--no-ui', '--window', String(w)),
    new RegExp(`rules over ${w}-token windows`),
  );
});
