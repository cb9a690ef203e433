/** The Devices pane's Ranks section (multi-rank streams: `moescope listen`, merged traces). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RoutingSchema } from '../../src/core/batch.js';
import { allocBatch } from '../../src/core/batch.js';
import { RoutingModel } from '../../src/store/model.js';
import { buildFrame } from '../../src/store/frame.js';
import { contiguousSpec } from '../../src/store/placement-spec.js';
import { DevicesPane } from '../../src/views/components/DevicesPane.js';
import { paneStore, renderView } from './render.js';

const schema: RoutingSchema = { layers: [2, 5], experts: 8, topK: 2, scoring: 'softmax', hasLogits: false };
const meta = { model: null, routers: [], tokenizer: null, devices: [], source: 'listen', world: 2 };

/** n tokens of `rank`, each routed to experts (a, b) in layer 0 and (c, d) in layer 1. */
function batch(rank: number, n: number, ids: [number, number, number, number]) {
  const b = allocBatch(schema, n, ['rank']);
  b.rank!.fill(rank);
  for (let t = 0; t < n; t++) b.experts.set(ids, t * 4);
  return b;
}

test('devices pane: one line per rank — its tokens, busiest expert in the selected layer, MaxVio, load per device', () => {
  const m = new RoutingModel(schema, meta);
  m.add(batch(1, 30, [6, 7, 0, 1])); // rank 1: layer 0 on experts 6,7 (device 1 of 2), layer 1 on 0,1 (device 0)
  m.add(batch(0, 10, [0, 1, 2, 3]));
  m.add(batch(0, 10, [0, 2, 2, 4]));
  const f = buildFrame(m, { scope: 'run', layer: 0, token: null, placement: contiguousSpec(schema, 2) });
  assert.deepEqual(
    f.ranks!.map((r) => [r.rank, r.tokens, r.busiest, r.busiestShare, r.deviceShares]),
    [
      // rank 0, layer 0: e0 takes 20 of its 40 assignments; over both layers 70 of its 80 land on experts 0…3
      // (device 0) and 10 on expert 4 (device 1).
      [0, 20, 0, 0.5, [70 / 80, 10 / 80]],
      [1, 30, 6, 0.5, [0.5, 0.5]],
    ],
  );
  // MaxVio of rank 1 in layer 0: c̄ = 30·2/8 = 7.5, max 30 → 3.
  assert.equal(f.ranks![1]!.maxVio, 3);
  const r = renderView(<DevicesPane />, { store: paneStore(m, f, 120, 30), pane: true });
  const text = r.text();
  assert.match(
    text,
    /Ranks · 2 · whole run · layer L2: busiest expert, MaxVio of the rank's own tokens · load on each device, all layers/,
  );
  assert.match(text, /rank 0\s+20 tok busiest e0 50\.0%\s+MaxVio\s+3\.00\s+d0 88% d1 13%/);
  assert.match(text, /rank 1\s+30 tok busiest e6 50\.0%\s+MaxVio\s+3\.00\s+d0 50% d1 50%/);
  r.unmount();
  const single = new RoutingModel(schema, meta);
  single.add(allocBatch(schema, 5));
  assert.equal(
    buildFrame(single, { scope: 'run', layer: 0, token: null, placement: null }).ranks,
    null,
    'no section without ranks',
  );
});
