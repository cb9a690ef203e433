/**
 * The metric catalogue (src/stats/catalogue.ts) is the one definition every output reads (#16 item 1): this fails
 * when docs/metrics.md, `check`'s flags and config keys, the report's table or the `stats` text table disagree
 * with it. `UPDATE_DOCS=1` rewrites the docs table instead of failing (npm run docs:metrics).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/gate/config.js';
import { traceSource } from '../../src/gate/source.js';
import { collectReport } from '../../src/report/collect.js';
import { renderReportHtml } from '../../src/report/html/page.js';
import { GATED, METRICS, balancedText, catalogueMarkdown } from '../../src/stats/catalogue.js';
import { RoutingStats } from '../../src/stats/index.js';
import { openTrace, traceStream } from '../../src/trace/index.js';
import { DEMO_TRACE } from '../store/helpers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const CLI = join(ROOT, 'dist/src/cli.js');
const DOC = join(ROOT, 'docs/metrics.md');
const START = '<!-- metric-catalogue:start -->\n';
const END = '<!-- metric-catalogue:end -->';

test('docs/metrics.md holds the catalogue table, generated from the catalogue', () => {
  const doc = readFileSync(DOC, 'utf8');
  const a = doc.indexOf(START);
  const b = doc.indexOf(END);
  assert.ok(a >= 0 && b > a, 'docs/metrics.md has the catalogue markers');
  const want = catalogueMarkdown();
  if (process.env.UPDATE_DOCS === '1') writeFileSync(DOC, doc.slice(0, a + START.length) + want + doc.slice(b));
  else assert.equal(doc.slice(a + START.length, b), want, 'run `npm run docs:metrics` to regenerate the table');
  for (const m of METRICS) assert.ok(m.definition.length > 10 && m.source.length > 3, `${m.key} is documented`);
});

test('every balanced formula of the docs evaluates to the balanced value the outputs print', () => {
  for (const m of METRICS) {
    assert.equal(m.balanced === null, m.balancedFormula === null, m.key);
    if (!m.balanced || !m.balancedFormula) continue;
    const f = new Function(
      'E',
      'K',
      'N',
      `return ${m.balancedFormula.replace('⌈', 'Math.ceil(').replace('⌉', ')').replaceAll('·', '*')};`,
    ) as (E: number, K: number, N: number) => number;
    for (const [E, K, N] of [
      [8, 2, 2],
      [64, 6, 6],
      [256, 8, 1],
    ] as const)
      assert.equal(f(E, K, N), m.balanced(E, K, N), `${m.key} at E=${E} K=${K}`);
  }
});

test("`check` takes exactly the catalogue's gated metrics, as flags and as config keys", () => {
  const help = spawnSync(process.execPath, [CLI, 'check', '--help'], { encoding: 'utf8' }).stdout;
  // --min-balancedness limits a balancedness series from a server log (import log), not a per-layer metric.
  const flags = [...help.matchAll(/--(max|min)-[a-z-]+/g)]
    .map((m) => m[0])
    .filter((f) => f !== '--max-tokens' && f !== '--min-balancedness');
  assert.deepEqual(
    flags,
    GATED.map((m) => m.gate.flag),
  );
  const flat = help.replace(/\s+/g, ' '); // commander wraps long help lines
  for (const m of GATED)
    assert.ok(flat.includes(`${m.gate.flag} ${m.gate.integer ? '<n>' : '<x>'} ${m.gate.help}`), m.gate.flag);
  const dir = mkdtempSync(join(tmpdir(), 'moescope-catalogue-'));
  try {
    const path = join(dir, 'moescope.config.json');
    writeFileSync(
      path,
      JSON.stringify({
        thresholds: Object.fromEntries(GATED.map((m) => [m.gate.key, m.gate.bound === 'min' ? 0 : 1])),
      }),
    );
    const cfg = loadConfig(path);
    assert.deepEqual(Object.keys(cfg.thresholds).sort(), GATED.map((m) => m.gate.key).sort());
    writeFileSync(path, JSON.stringify({ thresholds: { maxNotAMetric: 1 } }));
    assert.throws(() => loadConfig(path), /maxNotAMetric/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the report's metrics table and the stats text table show the catalogue's labels, balanced values and digits", async () => {
  const src = await traceSource(DEMO_TRACE); // 4 layers × 8 experts, top-2, with logits
  const data = await collectReport(src);
  src.close();
  const html = renderReportHtml(data, { moescopeVersion: 'test', generatedAt: new Date(0) });
  const table = html.slice(
    html.indexOf('<table class="metrics">'),
    html.indexOf('</table>', html.indexOf('<table class="metrics">')),
  );
  const heads = [...table.matchAll(/<th title="[^"]*">([^<]*)<small>([^<]*)<\/small>/g)].map((m) => [m[1], m[2]]);
  const shown = METRICS.filter((m) => m.report);
  assert.deepEqual(
    heads,
    shown.map((m) => [
      m.key === 'topN' ? `top-${data.topN} share` : m.label,
      balancedText(m, 8, 2, data.topN) ? `balanced ${balancedText(m, 8, 2, data.topN)}` : '&nbsp;',
    ]),
  );
  const text = spawnSync(process.execPath, [CLI, 'stats', DEMO_TRACE], { encoding: 'utf8' }).stdout;
  const header = text.split('\n').find((l) => l.trim().startsWith('layer'))!;
  assert.deepEqual(
    header
      .trim()
      .split(/\s{2,}/)
      .slice(1),
    METRICS.filter((m) => m.text).map((m) => m.short.replace('{N}', '2')),
  );
  // Every getter reads a real value off a real stream with logits.
  const t = traceStream(openTrace(DEMO_TRACE));
  // Expert 7 of each layer marked as a zero-computation expert, so the zero-expert share has a value too.
  const stats = new RoutingStats(t.schema, { zeroExperts: t.schema.layers.map(() => [7]) });
  for await (const it of t.items()) if (it.kind === 'tokens') stats.add(it.batch);
  t.close();
  const snap = stats.snapshot('run');
  for (const m of METRICS) {
    assert.equal(typeof m.layer(snap.layers[0]!), 'number', `${m.key} per layer`);
    if (m.global) assert.equal(typeof m.global(snap.global), 'number', `${m.key} overall`);
    const digits = m.digits;
    const cell = table.match(/<tbody><tr><td class="l">\d+<\/td>((?:<td>[^<]*<\/td>)+)/)![1]!.split('</td>')[
      shown.indexOf(m)
    ];
    if (m.report)
      assert.match(
        cell!,
        digits === 0 ? /^<td>\d+$/ : new RegExp(`^<td>-?\\d+\\.\\d{${digits}}$`),
        `${m.key} printed with ${digits} digits`,
      );
  }
});
