/**
 * Several routers in one layer (JetMoE: an attention and an MLP router per decoder layer): the stream numbers them in
 * graph order, so the views and exporters say which model layer and role each is — the TUI's layer labels, the HTML
 * report, the JSONL header — and a stream of one role keeps its plain layer ids.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { RoutingSchema } from '../../src/core/batch.js';
import { layerLabels, type RouterSummary, type StreamMeta } from '../../src/core/stream.js';
import { RoutingModel } from '../../src/store/model.js';
import { buildFrame } from '../../src/store/frame.js';
import { Overview } from '../../src/views/components/Overview.js';
import { TraceWriter } from '../../src/trace/index.js';
import { batches } from '../store/helpers.js';
import { moescope } from '../trace/cli.js';
import { tempDir } from '../trace/helpers.js';
import { paneStore, renderView } from './render.js';

const schema: RoutingSchema = { layers: [0, 1, 2, 3], experts: 8, topK: 2, scoring: 'softmax', hasLogits: false };
const router = (layer: number, modelLayer: number, role: string): RouterSummary => ({
  layer,
  experts: 8,
  topK: 2,
  scoring: 'softmax',
  kind: 'softmax-topk',
  modelLayer,
  role,
});
const routers = [router(0, 0, 'attention'), router(1, 0, 'mlp'), router(2, 1, 'attention'), router(3, 1, 'mlp')];
const meta: StreamMeta = { model: 'jetmoe', routers, tokenizer: null, devices: ['cpu'], source: 'run' };
const toks = Array.from({ length: 64 }, (_, t) => ({
  experts: schema.layers.map((_, l) => [(t + l) % 8, (t + l + 3) % 8]),
  tag: t % 2 ? 'code' : 'prose', // domains: the report's per-domain heatmaps get a heading per layer
}));

test('labels: model layer and role when routers differ in role, the stream ids otherwise', () => {
  assert.deepEqual(layerLabels(routers, schema.layers), ['0 attn', '0 mlp', '1 attn', '1 mlp']);
  const mlp = routers.map((r, i) => ({ ...r, role: 'mlp', modelLayer: i }));
  assert.deepEqual(layerLabels(mlp, schema.layers), ['0', '1', '2', '3']);
  assert.deepEqual(layerLabels([], schema.layers), ['0', '1', '2', '3']);
  // A role read from a file is shown only as a short word.
  const odd = [router(0, 0, '\u001b[31mx'), router(1, 0, 'mlp'), router(2, 1, 'attention'), router(3, 1, 'mlp')];
  assert.deepEqual(layerLabels(odd, schema.layers), ['0 ?', '0 mlp', '1 attn', '1 mlp']);
});

test('the TUI overview labels each row with its model layer and role', () => {
  const m = new RoutingModel(schema, meta, { window: 64 });
  for (const b of batches(schema, toks)) m.add(b);
  const frame = buildFrame(m, { scope: 'window', layer: 2, token: null, placement: null });
  const store = paneStore(m, frame, 100, 20, { layer: 2, expert: 0 });
  const r = renderView(<Overview />, { store, pane: true, mode: 'none' });
  const t = r.text();
  for (const label of ['L0 attn', 'L0 mlp', 'L1 attn', 'L1 mlp']) assert.ok(t.includes(label), label);
  assert.match(t, /▶\s*L1 attn/, 'the selected row');
  r.unmount();
});

test('the HTML report and the JSONL export say which model layer and role each router is', (t) => {
  const dir = tempDir(t);
  const trace = dir.path('roles.arrows');
  const w = TraceWriter.create(trace, { schema, meta });
  for (const b of batches(schema, toks)) w.write(b);
  w.close();
  const html = dir.path('r.html');
  const rep = moescope('report', trace, '-o', html);
  assert.equal(rep.code, 0, rep.stderr);
  const page = readFileSync(html, 'utf8');
  for (const label of ['layer 0 attn', 'layer 0 mlp', 'layer 1 attn', 'layer 1 mlp']) {
    assert.ok(page.includes(label), label);
    assert.ok(page.includes(`<h3>${label}</h3>`), `domain heading ${label}`);
  }
  const out = dir.path('r.jsonl');
  const ex = moescope('export', trace, '--jsonl', out);
  assert.equal(ex.code, 0, ex.stderr);
  const header = JSON.parse(readFileSync(out, 'utf8').split('\n')[0]!) as { routers: unknown };
  assert.deepEqual(header.routers, [
    { layer: 0, modelLayer: 0, role: 'attention' },
    { layer: 1, modelLayer: 0, role: 'mlp' },
    { layer: 2, modelLayer: 1, role: 'attention' },
    { layer: 3, modelLayer: 1, role: 'mlp' },
  ]);
  // and import jsonl still reads it back
  const back = moescope('import', 'jsonl', out, '-o', dir.path('back.arrows'));
  assert.equal(back.code, 0, back.stderr);
});
