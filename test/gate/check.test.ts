import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../../src/core/errors.js';
import { runCheck } from '../../src/gate/check.js';
import { emptyConfig, parseConfig, withFlags, type GateConfig } from '../../src/gate/config.js';
import { memoryStream } from '../../src/core/routing-stream.js';
import { traceSource } from '../../src/gate/source.js';
import { RoutingStats } from '../../src/stats/index.js';
import { TraceWriter } from '../../src/trace/index.js';
import { META, makeBatches, schemaOf, tempDir, writeTrace, type TraceSpec } from './fixtures.js';

const t = tempDir();
const BALANCED: TraceSpec = { tokens: 3000 };
// Layer 2 collapses onto expert 5 halfway; layer 3 never uses expert 7.
const COLLAPSED: TraceSpec = { tokens: 3000, collapse: { layer: 2, expert: 5, from: 0.5 }, dead: { 3: [7] } };
let balanced = '';
let collapsed = '';

before(() => {
  balanced = writeTrace(t.path('balanced.arrows'), BALANCED);
  collapsed = writeTrace(t.path('collapsed.arrows'), COLLAPSED);
});
after(() => t.cleanup());

const flags = (f: Parameters<typeof withFlags>[1], base: GateConfig = emptyConfig()) => withFlags(base, f);

async function check(path: string, cfg: GateConfig) {
  const src = await traceSource(path);
  try {
    return await runCheck(src, cfg);
  } finally {
    src.close();
  }
}

test('a balanced trace passes every limit, each verdict carrying the value RoutingStats computes', async () => {
  const r = await check(
    balanced,
    flags({ maxMaxvio: 0.5, maxCv: 0.2, maxDead: 0, minEntropy: 0.95, maxHotShare: 0.2 }),
  );
  assert.equal(r.passed, true);
  assert.equal(r.verdicts.length, 4 * 5);
  // The gate reads the numbers of src/stats, not numbers of its own.
  const stats = new RoutingStats(schemaOf(BALANCED), { window: 0, topN: 1 });
  for (const b of makeBatches(BALANCED)) stats.add(b);
  for (let l = 0; l < 4; l++) {
    const m = stats.layerMetrics(l);
    const row = r.rows.find((x) => x.layer === m.layer)!;
    assert.equal(row.values.maxVio, m.maxVio);
    assert.equal(row.values.cv, m.cv);
    assert.equal(row.values.entropy, m.entropy);
    assert.equal(row.values.dead, m.deadExperts);
    assert.equal(row.values.hotShare, m.topNShare);
  }
});

test('a planted collapse fails exactly on the collapsed layer, a dead expert on its layer', async () => {
  const r = await check(collapsed, flags({ maxMaxvio: 0.5, maxDead: 0 }));
  assert.equal(r.passed, false);
  const failed = r.verdicts.filter((v) => !v.pass).map((v) => `${v.layer}:${v.id}`);
  assert.deepEqual(failed.sort(), ['2:max-maxvio', '3:max-dead']);
  const v = r.verdicts.find((x) => x.layer === 2 && x.id === 'max-maxvio')!;
  assert.ok(v.value > 1, `collapsed MaxVio ${v.value}`);
  assert.equal(v.source, '--max-maxvio');
});

test('per-layer overrides replace the shared limit; --layers narrows what is checked', async () => {
  const cfg = parseConfig({ thresholds: { maxMaxvio: 0.5 }, perLayer: { '2': { maxMaxvio: 5 } } }, 'gate.json');
  const r = await check(collapsed, cfg);
  assert.equal(r.passed, true);
  assert.equal(r.verdicts.find((x) => x.layer === 2)!.limit, 5);
  assert.equal(r.verdicts.find((x) => x.layer === 2)!.source, 'gate.json perLayer.2.maxMaxvio');
  assert.equal(r.verdicts.find((x) => x.layer === 1)!.source, 'gate.json thresholds.maxMaxvio');

  const only = await check(collapsed, flags({ maxMaxvio: 0.5, layers: [0, 1] }));
  assert.equal(only.passed, true);
  assert.deepEqual(
    only.rows.map((x) => x.layer),
    [0, 1, null],
  );
});

test('overall limits judge the whole-model row (mean over the checked layers, dead experts summed)', async () => {
  const r = await check(collapsed, parseConfig({ overall: { maxMaxvio: 0.2, maxDead: 0 } }, 'c.json'));
  const overall = r.verdicts.filter((v) => v.layer === null);
  assert.equal(overall.length, 2);
  assert.ok(overall.every((v) => !v.pass));
  const row = r.rows.find((x) => x.layer === null)!;
  const layerRows = r.rows.filter((x) => x.layer !== null);
  const mean = layerRows.reduce((s, x) => s + x.values.maxVio!, 0) / layerRows.length;
  assert.ok(Math.abs(row.values.maxVio! - mean) < 1e-12);
  assert.equal(row.values.dead, 1);
  await assert.rejects(
    check(collapsed, parseConfig({ overall: { maxHotShare: 0.5 } }, 'c.json')),
    /overall\.maxHotShare is not defined/,
  );
});

test('z-loss is judged from logits, and asking for it on a trace without logits is bad input', async () => {
  const spec: TraceSpec = { tokens: 600, logits: true, logitScale: 4 };
  const src = memoryStream('mem', schemaOf(spec), makeBatches(spec));
  const r = await runCheck(src, flags({ maxZLoss: 1 }));
  assert.equal(r.passed, false);
  assert.ok(r.columns.some((c) => c.key === 'zLoss'));
  assert.ok(r.verdicts.every((v) => v.value > 1));
  await assert.rejects(
    check(balanced, flags({ maxZLoss: 1 })),
    (e: unknown) =>
      e instanceof UserError && /--max-z-loss needs router logits, and .*balanced\.arrows has none/.test(e.message),
  );
});

test('bad input: no limits, an unknown layer, an empty trace', async () => {
  await assert.rejects(check(balanced, emptyConfig()), /no thresholds to check/);
  await assert.rejects(
    check(balanced, flags({ maxCv: 1, layers: [9] })),
    /there is no MoE layer 9 \(MoE layers: 0, 1, 2, 3\)/,
  );
  await assert.rejects(
    check(balanced, parseConfig({ thresholds: { maxCv: 1 }, perLayer: { '7': { maxCv: 2 } } }, 'c.json')),
    /c\.json perLayer: there is no MoE layer 7/,
  );
  await assert.rejects(
    runCheck(memoryStream('empty', schemaOf(BALANCED), []), flags({ maxCv: 1 })),
    /empty holds no tokens/,
  );
});

test('a trace whose recorder has not finished is checked on its whole batches, with a note saying so', async () => {
  const path = t.path('open.arrows');
  const w = TraceWriter.create(path, { schema: schemaOf(BALANCED), meta: META });
  try {
    for (const b of makeBatches({ tokens: 512 })) w.write(b);
    w.flush();
    const r = await check(path, flags({ maxCv: 1 }));
    assert.equal(r.passed, true);
    assert.equal(r.data.tokens, 512);
    assert.match(
      r.notes.join('\n'),
      /open\.arrows has no end-of-stream marker: its recorder was killed or is still writing; 512 complete tokens were read/,
    );
  } finally {
    w.close();
  }
});
