/** Tokens, Warnings and Devices panes, and the heatmap layer. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RoutingSchema } from '../../src/core/batch.js';
import type { MemorySample } from '../../src/core/memory.js';
import { openTrace } from '../../src/trace/index.js';
import { RoutingModel } from '../../src/store/model.js';
import { buildFrame } from '../../src/store/frame.js';
import { contiguousSpec } from '../../src/store/placement-spec.js';
import { TokensPane } from '../../src/views/components/TokensPane.js';
import { WarningsPane } from '../../src/views/components/WarningsPane.js';
import { DevicesPane } from '../../src/views/components/DevicesPane.js';
import { HeatRowCache, NO_DATA, renderHeatRow } from '../../src/views/heat-rows.js';
import { HeatmapLayer } from '../../src/views/heatmap-layer.js';
import { makeTheme } from '../../src/views/theme.js';
import { visibleToken } from '../../src/views/glyphs.js';
import { formatSummary } from '../../src/views/summary.js';
import { DEMO_TRACE, META, batches } from '../store/helpers.js';
import { colourEscapes, paneStore, renderView, strip, tick } from './render.js';

const schema: RoutingSchema = { layers: [0, 1], experts: 4, topK: 2, scoring: 'softmax', hasLogits: false };
const words = ['def', ' f', '(x', '):\n', '  return', ' x', '\t#', ' done\x07'];

function tokensModel() {
  const m = new RoutingModel(schema, META);
  const toks = words.map((text, i) => ({
    text,
    seq: i < 4 ? 0 : 1,
    tag: i < 4 ? 'code' : 'prose',
    isPrompt: i === 0,
    experts: [
      [i % 4, (i + 1) % 4],
      [3, 2],
    ],
  }));
  for (const b of batches(schema, toks)) m.add(b);
  return m;
}

test('tokens: text made visible, sequences under headers, the selected token routed', async () => {
  const m = tokensModel();
  const f = buildFrame(m, { scope: 'run', layer: 0, token: 5, placement: null, tokenSpan: 1000 });
  const store = paneStore(m, f, 100, 16, { pane: 'tokens', layer: 0, token: 5 });
  const r = renderView(<TokensPane />, { store, pane: true });
  const t = r.text();
  assert.match(t, /── sequence 0 · code ──/);
  assert.match(t, /── sequence 1 · prose ──/);
  assert.match(t, /def f\(x\):↵/);
  assert.match(t, /→# done␇/, 'tab and BEL made visible');
  assert.match(t, /token 5 “ x”/);
  assert.match(t, /L0: e1 0\.750 {2}e2 0\.250/);
  // The selected token is drawn in inverse video, coloured by its first-choice expert.
  const line = r
    .frame()
    .split('\n')
    .find((x) => strip(x).includes('return x'))!;
  assert.match(line, /\x1b\[7m(\x1b\[[0-9;]*m)* x/);
  assert.ok(colourEscapes(line).length >= 2);
  store.getState().actions.setTokenDetail(true);
  await tick();
  assert.match(r.text(), /routing in every layer/);
  assert.match(r.text(), /▶L0\s+e1\s+0\.750\s+e2\s+0\.250/);
  assert.match(r.text(), /L1\s+e3\s+0\.750\s+e2\s+0\.250/);
  r.unmount();
});

test('tokens without colour: the expert as a subscript, no colour escapes', () => {
  const m = tokensModel();
  const f = buildFrame(m, { scope: 'run', layer: 1, token: null, placement: null, tokenSpan: 1000 });
  const r = renderView(<TokensPane />, {
    store: paneStore(m, f, 100, 12, { pane: 'tokens', layer: 1 }, true),
    pane: true,
    mode: 'none',
  });
  assert.match(r.text(), /def₃ f₃\(x₃/);
  assert.deepEqual(colourEscapes(r.frame()), []);
  r.unmount();
});

test('visibleToken never lets control or private-use characters through', () => {
  assert.equal(visibleToken('a\nb\r\t'), 'a↵b␍→');
  assert.equal(visibleToken('\x1b[31m'), '␛[31m');
  assert.equal(visibleToken('\uE000x'), '�x');
  assert.equal(visibleToken(''), '∅');
});

test('warnings from the demo trace, newest first, with rule, layer, expert, value and token', () => {
  const t = openTrace(DEMO_TRACE);
  const m = new RoutingModel(t.schema, t.meta);
  for (const b of t.batches()) m.add(b);
  t.close();
  const f = buildFrame(m, { scope: 'run', layer: 0, token: null, placement: null });
  assert.ok(f.warnings.length > 0, 'the demo model collapses enough to warn');
  const r = renderView(<WarningsPane />, { store: paneStore(m, f, 140, 20, { pane: 'warnings' }), pane: true });
  const text = r.text();
  assert.match(text, new RegExp(`${f.activeWarnings} active`));
  const first = f.warnings[0]!;
  const line = text.split('\n').find((x) => x.startsWith('▶'))!;
  assert.ok(line.includes(first.rule) && line.includes(`L${first.layer}`) && line.includes(first.message));
  const tokens = text
    .split('\n')
    .filter((x) => /^(▶| ) \d/.test(x))
    .map((x) => Number(x.slice(2, 10).replace(/,/g, '')));
  assert.deepEqual(
    tokens,
    [...tokens].sort((a, b) => b - a),
    'newest first',
  );
  r.unmount();
});

test('devices: one line per GPU with used/total and a sparkline; no GPU says so', () => {
  const m = tokensModel();
  const gib = 1024 ** 3;
  const sample = (i: number): MemorySample => ({
    tNs: BigInt(i) * 1_000_000_000n,
    gpus: Array.from({ length: 8 }, (_, g) => ({
      index: g,
      name: 'NVIDIA H200',
      usedBytes: (10 + g + i) * gib,
      totalBytes: 140 * gib,
      utilization: 50,
    })),
    hostRssBytes: 300 * 1024 * 1024,
    ortBytes: null,
  });
  for (let i = 0; i < 5; i++) m.addMemory(sample(i));
  const f = buildFrame(m, { scope: 'run', layer: 0, token: null, placement: contiguousSpec(schema, 2) });
  const r = renderView(<DevicesPane />, { store: paneStore(m, f, 120, 24), pane: true });
  const t = r.text();
  assert.match(t, /sampled every 1\.0 s/);
  for (let g = 0; g < 8; g++) assert.match(t, new RegExp(`GPU${g}\\s+NVIDIA H200`));
  assert.match(t, /GPU7 .*21\.0 GiB \/ 140\.0 GiB\s+15%/);
  assert.match(t, /host\s+RSS .*300\.0 MiB/);
  assert.match(t, /dev0\s+2 experts\/layer/);
  assert.match(t, /balancedness: SGLang/);
  r.unmount();
  const m2 = tokensModel();
  m2.addMemory({ tNs: 1n, gpus: null, hostRssBytes: 1, ortBytes: null });
  const r2 = renderView(<DevicesPane />, {
    store: paneStore(m2, buildFrame(m2, { scope: 'run', layer: 0, token: null, placement: null }), 100, 20),
    pane: true,
  });
  assert.match(r2.text(), /no GPU: running on the CPU/);
  assert.match(r2.text(), /none given: --devices D \(contiguous\) or --plan FILE/);
  r2.unmount();
});

test('heatmap layer: writes changed lines at their rows with the cursor kept, repaints after an erase, blanks on removal', async () => {
  const settle = () => new Promise<void>((r) => queueMicrotask(r));
  const out: string[] = [];
  const layer = new HeatmapLayer({ write: (x: string) => out.push(x) });
  layer.paint(4, ['aaa', 'bbb', 'ccc']);
  assert.equal(out.length, 1);
  assert.ok(
    out[0]!.includes('\x1b7') && out[0]!.endsWith('\x1b8\x1b[?2026l'),
    'cursor saved and restored, in a synchronized update',
  );
  assert.ok(
    out[0]!.includes('\x1b[5;1H\x1b[0maaa') && out[0]!.includes('\x1b[7;1H\x1b[0mccc'),
    'row 4 (0-based) is terminal row 5',
  );
  layer.afterInkWrite('\x1b[1;1Hstatus\x1b[K'); // the box is new: Ink's first write after it repaints all
  await settle();
  assert.equal(out.length, 2);
  layer.paint(4, ['aaa', 'BBB', 'ccc']);
  assert.equal(out.length, 3);
  assert.ok(out[2]!.includes('\x1b[6;1H\x1b[0mBBB') && !out[2]!.includes('aaa'), 'only the changed line');
  layer.paint(4, ['aaa', 'BBB', 'ccc']);
  assert.equal(out.length, 3, 'nothing changed: nothing written');
  layer.afterInkWrite('\x1b[3;1Hother line\x1b[K');
  await settle();
  assert.equal(out.length, 3, "Ink rewrote another line: the heatmap's are untouched");
  layer.afterInkWrite('\x1b[2K\x1b[1A\x1b[2K\x1b[G');
  layer.paint(4, ['aaa', 'BBB', 'ccc']); // the same commit's rows: painted once, by the queued repaint
  await settle();
  assert.equal(out.length, 4);
  assert.ok(
    ['aaa', 'BBB', 'ccc'].every((x) => out[3]!.includes(x)),
    'Ink erased lines: all repainted',
  );
  layer.remove();
  assert.ok(out[4]!.includes('\x1b[5;1H\x1b[2K') && out[4]!.includes('\x1b[7;1H\x1b[2K'));
  assert.deepEqual(layer.snapshot().rows, []);
});

test('heat rows: escapes only where the level changes; the cache rebuilds only changed rows', () => {
  const theme = makeTheme('ansi256');
  const row = renderHeatRow(Uint8Array.from([3, 3, 3, 7, NO_DATA]), theme);
  assert.equal(strip(row), '███' + '█' + '·');
  assert.equal(row.split(theme.heatEscape[3]!).length - 1, 1);
  const cache = new HeatRowCache();
  const a = Uint8Array.from([1, 2, 3]);
  cache.row('r0', a, theme);
  cache.row('r1', a, theme);
  cache.takeRebuilt();
  cache.row('r0', a, theme);
  cache.row('r1', Uint8Array.from([1, 2, 4]), theme);
  assert.equal(cache.takeRebuilt(), 1);
  cache.row('r0', a, theme, 1);
  assert.equal(cache.takeRebuilt(), 1, 'moving the cursor onto a row rebuilds it');
});

test('plain summary of the demo trace: per-layer balance and warnings', () => {
  const t = openTrace(DEMO_TRACE);
  const m = new RoutingModel(t.schema, t.meta);
  for (const b of t.batches()) m.add(b);
  t.close();
  const s = formatSummary(m, { title: 'replay demo.arrows' }, contiguousSpec(m.schema, 2));
  assert.match(s, /^moescope replay demo\.arrows\n {2}4 MoE layers × 8 experts, top-2 softmax, with logits/);
  assert.match(s, /719 tokens in 15 sequences/);
  assert.match(s, /layer\s+CV\s+MaxVio\s+entropy\s+dead\s+busiest expert/);
  assert.match(s, /L2\s+1\.094\s+2\.421\s+0\.727\s+1\s+e4 42\.8%/);
  assert.match(s, /collapse warnings: \d+ fired/);
  assert.match(s, /placement contiguous over 2 devices: balancedness SGLang \d\.\d{3}, vLLM \d\.\d{3}/);
  assert.doesNotMatch(s, /\x1b/);
});
