/** Overview heatmap: what a user reads off it, in colour and without. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RoutingSchema } from '../../src/core/batch.js';
import { RoutingModel } from '../../src/store/model.js';
import { buildFrame } from '../../src/store/frame.js';
import { Overview } from '../../src/views/components/Overview.js';
import { levelOf } from '../../src/views/scale.js';
import { META, batches } from '../store/helpers.js';
import type { Frame } from '../../src/store/frame.js';
import type { UiState } from '../../src/store/app-store.js';
import type { ColorMode } from '../../src/views/theme.js';
import { colourEscapes, paneStore, renderView, strip, tick } from './render.js';

const schema: RoutingSchema = { layers: [2, 5, 9], experts: 8, topK: 2, scoring: 'softmax', hasLogits: false };

function frameOf(s: RoutingSchema, n: number, pick: (t: number, l: number) => number[]) {
  const m = new RoutingModel(s, META, { window: 64 });
  const toks = Array.from({ length: n }, (_, t) => ({ experts: s.layers.map((_, l) => pick(t, l)) }));
  for (const b of batches(s, toks)) m.add(b);
  return { model: m, frame: buildFrame(m, { scope: 'window', layer: 0, token: null, placement: null }) };
}

// Layer index 1 sends every token to experts 0 and 1 (4× uniform each); the others spread evenly.
const small = frameOf(schema, 64, (t, l) => (l === 1 ? [0, 1] : [(2 * t) % 8, (2 * t + 1) % 8]));

function overview(
  f: { model: RoutingModel; frame: Frame },
  ui: Partial<UiState>,
  width: number,
  height: number,
  mode: ColorMode = 'ansi256',
) {
  const store = paneStore(f.model, f.frame, width, height, ui);
  return { store, r: renderView(<Overview />, { store, pane: true, mode }) };
}

test('shows every layer with its model index, the legend with units and the window', () => {
  const { r } = overview(small, { layer: 1, expert: 0 }, 100, 20);
  const t = r.text();
  for (const l of ['L2', 'L5', 'L9']) assert.match(t, new RegExp(`${l}\\b`));
  assert.match(t, /▶\s*L5/, 'the selected layer is marked');
  assert.match(t, /load ÷ uniform share \(1\/8\), log scale/);
  assert.match(t, /window: last 64 tokens \(64 in it\)/);
  assert.match(t, /L5 expert 0 load 4\.00× uniform · 64 assignments = 50\.00% of the layer/);
  r.unmount();
});

test('cells are coloured by load ÷ uniform on the scale (4× hot, idle, balanced)', () => {
  const { r } = overview(small, { layer: 0, expert: 0 }, 100, 20);
  const lines = r.frame().split('\n');
  const hot = lines.find((x) => strip(x).includes('L5'))!;
  const even = lines.find((x) => strip(x).includes('L9'))!;
  const esc = r.view.theme.heatEscape;
  assert.ok(hot.includes(esc[levelOf(4)]!), 'experts 0 and 1 at 4×');
  assert.ok(hot.includes(esc[levelOf(0)]!), 'idle experts');
  assert.ok(even.includes(esc[levelOf(1)]!), 'balanced layer');
  assert.ok(!even.includes(esc[levelOf(4)]!));
  r.unmount();
});

test('without colour: no colour escapes at all, and the glyph ramp carries the values', () => {
  const { r } = overview(small, { layer: 0, expert: 3 }, 100, 20, 'none');
  const f = r.frame();
  assert.deepEqual(colourEscapes(f), []);
  const hot = strip(f.split('\n').find((x) => strip(x).includes('L5'))!);
  assert.ok(hot.includes('█'), '4× is the fullest glyph');
  const even = strip(f.split('\n').find((x) => strip(x).includes('L9'))!);
  assert.ok(even.includes('▒') && !even.includes('█'), 'balanced is the middle glyph');
  assert.match(strip(f), /"\s" idle ░ <½ ▒ ½–2 ▓ 2–4 █ ≥4/);
  r.unmount();
});

test('58 layers × 256 experts: binned to the width, scrolled to the selected layer, zoom shows a range', async () => {
  const big: RoutingSchema = {
    layers: Array.from({ length: 58 }, (_, i) => i + 3),
    experts: 256,
    topK: 8,
    scoring: 'sigmoid',
    hasLogits: false,
  };
  const f = frameOf(big, 40, (t) => Array.from({ length: 8 }, (_, k) => (t * 8 + k) % 256));
  const { r, store } = overview(f, { layer: 40, expert: 200 }, 100, 30);
  const t = r.text();
  assert.match(t, /layers \d+–\d+ of 58/);
  assert.match(t, /▶L43/, 'layer index 40 is model layer 43, scrolled into view');
  assert.doesNotMatch(t, /L3\s/, 'the first layers are scrolled away');
  assert.match(t, /4 experts\/column \(busiest shown\)/);
  assert.match(t, /L43 experts 200–203 \(busiest \d+\)/);
  assert.match(t, /CV MaxVio entropy/, 'at 100 columns the metric columns still leave 64 cells');
  store.getState().actions.setZoom(1);
  await tick();
  assert.match(r.text(), /experts \d+–\d+ of 256/);
  assert.match(r.text(), /L43 expert 200 /);
  r.unmount();
});
