/** Tokens, Warnings and Devices panes, and the painted-region machinery they rely on. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RoutingSchema } from '../../src/core/batch.js';
import type { MemorySample } from '../../src/core/memory.js';
import { openTrace } from '../../src/trace/index.js';
import { RoutingModel } from '../../src/store/model.js';
import { buildFrame } from '../../src/store/frame.js';
import { contiguousSpec } from '../../src/store/placement.js';
import { TokensPane } from '../../src/views/components/TokensPane.js';
import { WarningsPane } from '../../src/views/components/WarningsPane.js';
import { DevicesPane } from '../../src/views/components/DevicesPane.js';
import { HeatRowCache, NO_DATA, renderHeatRow } from '../../src/views/heat-rows.js';
import { MARKER_WIDTH, PaintRegistry, ScreenWriter } from '../../src/views/paint.js';
import { makeTheme } from '../../src/views/theme.js';
import { visibleToken } from '../../src/views/glyphs.js';
import { formatSummary } from '../../src/views/summary.js';
import { DEMO_TRACE, META, batches } from '../store/helpers.js';
import { colourEscapes, renderView, strip } from './render.js';

const schema: RoutingSchema = { layers: [0, 1], experts: 4, topK: 2, scoring: 'softmax', hasLogits: false };
const words = ['def', ' f', '(x', '):\n', '  return', ' x', '\t#', ' done\x07'];

function tokensModel() {
  const m = new RoutingModel(schema, META);
  const toks = words.map((text, i) => ({ text, seq: i < 4 ? 0 : 1, tag: i < 4 ? 'code' : 'prose', isPrompt: i === 0, experts: [[i % 4, (i + 1) % 4], [3, 2]] }));
  for (const b of batches(schema, toks)) m.add(b);
  return m;
}

test('tokens: text made visible, sequences under headers, the selected token routed', () => {
  const m = tokensModel();
  const f = buildFrame(m, { scope: 'run', layer: 0, token: 5, placement: null });
  const r = renderView(<TokensPane frame={f} layer={0} token={5} detail={false} query="" width={100} height={16} />);
  const t = r.text();
  assert.match(t, /── sequence 0 · code ──/);
  assert.match(t, /── sequence 1 · prose ──/);
  assert.match(t, /def f\(x\):↵/);
  assert.match(t, /→# done␇/, 'tab and BEL made visible');
  assert.match(t, /token 5 “ x”/);
  assert.match(t, /L0: e1 0\.750 {2}e2 0\.250/);
  // The selected token is drawn in inverse video, coloured by its first-choice expert.
  assert.ok(r.frame().includes(`${r.view.theme.expertEscape(1, 4)}\x1b[7m x`));
  r.rerender(<TokensPane frame={f} layer={0} token={5} detail={true} query="" width={100} height={16} />);
  assert.match(r.text(), /routing in every layer/);
  assert.match(r.text(), /▶L0\s+e1\s+0\.750\s+e2\s+0\.250/);
  assert.match(r.text(), /L1\s+e3\s+0\.750\s+e2\s+0\.250/);
  r.unmount();
});

test('tokens without colour: the expert as a subscript, no colour escapes', () => {
  const m = tokensModel();
  const f = buildFrame(m, { scope: 'run', layer: 1, token: null, placement: null });
  const r = renderView(<TokensPane frame={f} layer={1} token={null} detail={false} query="" width={100} height={12} />, 'none');
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
  const r = renderView(<WarningsPane frame={f} selected={0} width={140} height={20} />);
  const text = r.text();
  assert.match(text, new RegExp(`${f.activeWarnings} active`));
  const first = f.warnings[0]!;
  const line = text.split('\n').find((x) => x.startsWith('▶'))!;
  assert.ok(line.includes(first.rule) && line.includes(`L${first.layer}`) && line.includes(first.message));
  const tokens = text
    .split('\n')
    .filter((x) => /^(▶| ) \d/.test(x))
    .map((x) => Number(x.slice(2, 10).replace(/,/g, '')));
  assert.deepEqual(tokens, [...tokens].sort((a, b) => b - a), 'newest first');
  r.unmount();
});

test('devices: one line per GPU with used/total and a sparkline; no GPU says so', () => {
  const m = tokensModel();
  const gib = 1024 ** 3;
  const sample = (i: number): MemorySample => ({
    tNs: BigInt(i) * 1_000_000_000n,
    gpus: Array.from({ length: 8 }, (_, g) => ({ index: g, name: 'NVIDIA H200', usedBytes: (10 + g + i) * gib, totalBytes: 140 * gib, utilization: 50 })),
    hostRssBytes: 300 * 1024 * 1024,
    ortBytes: null,
  });
  for (let i = 0; i < 5; i++) m.addMemory(sample(i));
  const f = buildFrame(m, { scope: 'run', layer: 0, token: null, placement: contiguousSpec(schema, 2) });
  const r = renderView(<DevicesPane frame={f} width={120} height={24} />);
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
  const r2 = renderView(<DevicesPane frame={buildFrame(m2, { scope: 'run', layer: 0, token: null, placement: null })} width={100} height={10} />);
  assert.match(r2.text(), /no GPU: running on the CPU/);
  assert.match(r2.text(), /none given: --devices D \(contiguous\) or --plan FILE/);
  r2.unmount();
});

test('painted regions: markers expand to their text, padding consumed, a new version only when text changes', () => {
  const reg = new PaintRegistry();
  const a1 = reg.marker('a', '\x1b[31mhello\x1b[0m', 5);
  assert.equal(a1.length, MARKER_WIDTH);
  assert.equal(reg.marker('a', '\x1b[31mhello\x1b[0m', 5), a1, 'same text, same marker');
  assert.equal(reg.expand(`[${a1} ] x`), '[\x1b[31mhello\x1b[0m] x');
  assert.equal(reg.expand(`[${a1}`), '[\x1b[31mhello\x1b[0m', 'trailing padding trimmed by Ink');
  const a2 = reg.marker('a', 'world', 5);
  assert.notEqual(a2, a1);
  assert.equal(reg.expand(a2 + ' '), 'world');
});

test('screen writer: rewrites only changed lines, at absolute rows; invalidate clears and redraws all', () => {
  const reg = new PaintRegistry();
  const out: string[] = [];
  const tty = { isTTY: true, columns: 20, rows: 5, write: (s: string) => out.push(s) } as unknown as NodeJS.WriteStream;
  const w = new ScreenWriter(tty, reg);
  w.write('one\ntwo\nthree');
  assert.ok(out[0]!.includes('\x1b[1;1Hone') && out[0]!.includes('\x1b[3;1Hthree'));
  w.write('one\n2\nthree');
  assert.equal(out.length, 2);
  assert.ok(out[1]!.includes('\x1b[2;1H2') && !out[1]!.includes('one'));
  w.write('one\n2\nthree');
  assert.equal(out.length, 2, 'unchanged frame: nothing written');
  w.write('\x1b[?25h');
  assert.equal(out.length, 2, 'cursor toggles are not frames');
  w.invalidate();
  w.write('one\n2\nthree');
  assert.ok(out[2]!.includes('\x1b[2J') && out[2]!.includes('one'));
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
