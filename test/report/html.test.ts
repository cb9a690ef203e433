/** The HTML report as a file: self-contained, one heatmap cell per layer and expert bin, sections that follow the data. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memoryStream } from '../../src/core/routing-stream.js';
import { collectReport } from '../../src/report/collect.js';
import { viridis } from '../../src/report/colour.js';
import { expertBins } from '../../src/report/html/bins.js';
import { renderReportHtml } from '../../src/report/html/page.js';
import { RoutingStats } from '../../src/stats/index.js';
import { makeBatches, schemaOf, type TraceSpec } from '../gate/fixtures.js';

const OPTS = { moescopeVersion: '0.0.0-test', generatedAt: new Date('2025-01-01T00:00:00Z') };

async function render(spec: TraceSpec, opts: { devices?: number } = {}) {
  const data = await collectReport(memoryStream('trace <"x">.arrows', schemaOf(spec), makeBatches(spec)), opts);
  return { data, html: renderReportHtml(data, OPTS) };
}

/** The <rect class="cell"> elements of one heatmap, with their attributes. */
function cells(html: string, id: string): Record<string, string>[] {
  const svg = new RegExp(`<svg class="heatmap" data-heatmap="${id}"[\\s\\S]*?</svg>`).exec(html);
  assert.ok(svg, `heatmap ${id} present`);
  return [...svg[0].matchAll(/<rect class="cell"([^>]*)>/g)].map((m) =>
    Object.fromEntries([...m[1]!.matchAll(/([\w-]+)="([^"]*)"/g)].map((a) => [a[1]!, a[2]!])),
  );
}

test('the report is self-contained: no scripts, no external loads, a CSP that forbids them, escaped text', async () => {
  const { html } = await render({ tokens: 800 });
  assert.match(html, /^<!doctype html>/);
  assert.match(
    html,
    /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">/,
  );
  assert.doesNotMatch(html, /<script|<link|<img|<iframe|@import|url\((?!#)/i);
  assert.doesNotMatch(html, /\s(src|href)="(?!#)/, 'only in-page links');
  assert.match(html, /<title>moescope report — trace &lt;&quot;x&quot;&gt;\.arrows<\/title>/);
});

test('the load heatmap has one cell per layer and expert, coloured by the share RoutingStats computes', async () => {
  const spec: TraceSpec = { tokens: 2000, layers: [1, 3, 5], experts: 8, collapse: { layer: 3, expert: 6, from: 0.3 } };
  const { html } = await render(spec);
  const c = cells(html, 'load');
  assert.equal(c.length, 3 * 8);
  const stats = new RoutingStats(schemaOf(spec), { window: 0 });
  for (const b of makeBatches(spec)) stats.add(b);
  const shares = [0, 1, 2].map((l) => stats.layerMetrics(l).share);
  const max = Math.max(...shares.flat(), 2 / 8);
  for (const cell of c) {
    const l = [1, 3, 5].indexOf(Number(cell['data-layer']));
    const e = Number(cell['data-bin']);
    assert.equal(cell['data-experts'], `${e}-${e}`);
    assert.equal(Number(cell['data-value']), shares[l]![e]);
    assert.equal(cell.fill, viridis(shares[l]![e]! / max));
  }
  // The collapsed expert is the hottest cell.
  const hottest = c.reduce((a, b) => (Number(b['data-value']) > Number(a['data-value']) ? b : a));
  assert.deepEqual([hottest['data-layer'], hottest['data-bin']], ['3', '6']);
  assert.match(html, /share of the layer&#39;s top-2 assignments \(balanced: 12\.5% per expert\)/);
});

test('256 experts are drawn as 128 bins of 2; each bin holds the sum of its experts', async () => {
  assert.deepEqual(expertBins(256).slice(0, 2), [
    { first: 0, last: 1 },
    { first: 2, last: 3 },
  ]);
  assert.equal(expertBins(256).length, 128);
  assert.equal(expertBins(100).length, 100);
  assert.deepEqual(expertBins(300).at(-1), { first: 297, last: 299 });
  const { data, html } = await render({ tokens: 300, layers: [0, 1], experts: 256, topK: 8 });
  const c = cells(html, 'load');
  assert.equal(c.length, 2 * 128);
  const cell = c.find((x) => x['data-layer'] === '1' && x['data-bin'] === '10')!;
  assert.equal(cell['data-experts'], '20-21');
  assert.equal(Number(cell['data-value']), data.layers[1]!.share[20]! + data.layers[1]!.share[21]!);
});

test('metrics table, warnings, placement and domains follow the data', async () => {
  const plain = await render({ tokens: 1600 });
  assert.match(plain.html, /<table class="metrics">/);
  assert.match(plain.html, /This trace has no router logits/);
  assert.doesNotMatch(plain.html, /id="devices"|id="domains"/);
  assert.match(plain.html, /No collapse warnings over sliding windows of 512 tokens\./);

  const rich = await render(
    { tokens: 1600, logits: true, tags: ['code', 'prose'], collapse: { layer: 2, expert: 1, from: 0.5, share: 1 } },
    { devices: 4 },
  );
  assert.match(rich.html, /<th title="[^"]*">z-loss<small>/);
  assert.match(rich.html, /<span class="rule">hot-expert<\/span> layer 2 expert 1/);
  assert.match(rich.html, /<h2>Placement on 4 devices<\/h2>/);
  assert.equal(cells(rich.html, 'devices').length, 4 * 4);
  assert.match(rich.html, /GPU 3 \(experts 6–7\)/);
  assert.equal(cells(rich.html, 'domain-0').length, 2 * 8);
  // Tag i prefers expert i in the fixture: the specialisation table says so.
  assert.match(rich.html, /<td class="l">code<\/td><td>800<\/td><td [^>]*>expert 0 · /);
  assert.match(rich.html, /<td class="l">prose<\/td><td>800<\/td><td [^>]*>expert 1 · /);
  await assert.rejects(
    render({ tokens: 100 }, { devices: 9 }),
    /--devices must be between 1 and the 8 experts per layer, got 9/,
  );
  await assert.rejects(collectReport(memoryStream('empty', schemaOf({ tokens: 0 }), []), {}), /empty holds no tokens/);
});

test('zero-computation experts (LongCat): their columns are marked, and a busy identity expert is not a hot expert', async () => {
  // Layer 0's expert 7 takes most first choices from a fifth of the run on: a hot expert — unless 6 and 7 are the
  // router's zero-computation experts, as the trace header says for a LongCat-Flash model.
  const spec: TraceSpec = { tokens: 2000, layers: [0, 1], collapse: { layer: 0, expert: 7, from: 0.2, share: 0.9 } };
  const schema = schemaOf(spec);
  const routers = schema.layers.map((layer) => ({
    layer,
    experts: 8,
    topK: 2,
    scoring: 'softmax' as const,
    kind: 'softmax-topk',
    zeroExperts: { ids: [6, 7], kind: 'identity' },
  }));
  const meta = { model: 'longcat.onnx', routers, tokenizer: null, devices: [], source: 'run' };
  const plain = renderReportHtml(await collectReport(memoryStream('t', schema, makeBatches(spec))), OPTS);
  const data = await collectReport(memoryStream('t', schema, makeBatches(spec), meta));
  const html = renderReportHtml(data, OPTS);
  assert.match(plain, /layer 0 expert 7: [\d.]+% of assignments/, 'hot when nothing marks it');
  assert.doesNotMatch(html, /expert 7: [\d.]+% of assignments/);
  assert.doesNotMatch(plain, /zero-computation|data-zero/);
  const heat = cells(html, 'load');
  assert.deepEqual(
    heat.filter((c) => c['data-zero']).map((c) => `${c['data-layer']}/${c['data-bin']}/${c['data-zero']}`),
    ['0/6/identity', '0/7/identity', '1/6/identity', '1/7/identity'],
  );
  assert.match(html, />6z</);
  assert.match(html, />7z</);
  assert.match(html, /Zero-computation experts \(identity; marked <b>z<\/b>/);
  // The share shown is the share of the layer's slots on experts 6 and 7, counted here from the batches.
  let zero = 0;
  let all = 0;
  for (const b of makeBatches(spec))
    for (let t = 0; t < b.length; t++)
      for (let k = 0; k < 2; k++) {
        const e = b.experts[t * 4 + k]!; // layer 0 of [tokens, L=2, K=2]
        all++;
        if (e >= 6) zero++;
      }
  assert.match(html, new RegExp(`layer 0: experts 6, 7, ${((100 * zero) / all).toFixed(1)}% of its slots`));
});
