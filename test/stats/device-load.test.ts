/** Per-device totals over layers, shares, slots and weight bytes under a placement, against values worked out by hand. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { comparePlacements } from '../../src/stats/eplb-plan.js';
import { balancedness } from '../../src/stats/balancedness.js';
import { contiguousPlacement, type Placement } from '../../src/stats/placement.js';
import { deviceShares, deviceSlotsPerLayer, deviceTotals, deviceWeightBytes } from '../../src/stats/index.js';

test('device totals sum each device over layers; shares and ratios to the even share 1/D', () => {
  // Two layers on 2 devices: (30, 10) and (10, 30) → totals (40, 40); (60, 20) alone → 0.75 / 0.25.
  assert.deepEqual(
    deviceTotals([
      [30, 10],
      [10, 30],
    ]),
    [40, 40],
  );
  const even = deviceShares([
    [30, 10],
    [10, 30],
  ]);
  assert.deepEqual(even, { totals: [40, 40], total: 80, shares: [0.5, 0.5], relative: [1, 1] });
  const skew = deviceShares([Float64Array.from([60, 20])]);
  assert.deepEqual(skew.shares, [0.75, 0.25]);
  assert.deepEqual(skew.relative, [1.5, 0.5]);
  // Four devices, one takes half: 2× its fair quarter.
  assert.deepEqual(deviceShares([[4, 2, 1, 1]]).relative, [2, 1, 0.5, 0.5]);
});

test('no load: every share and ratio is 0', () => {
  const z = deviceShares([[0, 0, 0]]);
  assert.equal(z.total, 0);
  assert.deepEqual(z.shares, [0, 0, 0]);
  assert.deepEqual(z.relative, [0, 0, 0]);
  assert.deepEqual(deviceTotals([]), []);
});

test('slots per device per layer, replicas included, and weight bytes per device over layers', () => {
  // 5 slots on 2 devices: slot s on ⌊2s/5⌋ → slots 0–2 on device 0, 3–4 on device 1 (expert 0 replicated).
  const p: Placement = { devices: 2, phy2log: [Int32Array.from([0, 1, 2, 3, 0])] };
  assert.deepEqual(deviceSlotsPerLayer(p, 3), [3, 2]);
  // Layer experts of 100 and 10 bytes: device 0 holds 3 slots of each, device 1 two.
  assert.deepEqual(deviceWeightBytes(p, [100, 10]), [330, 220]);
  // One map per layer (same slot count, different experts): bytes still follow the slots of each layer.
  const q: Placement = { devices: 2, phy2log: [Int32Array.from([0, 1, 2, 3]), Int32Array.from([3, 3, 0, 1])] };
  assert.deepEqual(deviceSlotsPerLayer(q, 2), [2, 2]);
  assert.deepEqual(deviceWeightBytes(q, [1, 1000]), [2002, 2002]);
  const uneven: Placement = { devices: 3, phy2log: [Int32Array.from([0, 1, 2, 3])] };
  // ⌊3s/4⌋: slots 0, 1 → device 0; 2 → 1; 3 → 2.
  assert.deepEqual(deviceSlotsPerLayer(uneven, 1), [2, 1, 1]);
  assert.deepEqual(deviceWeightBytes(uneven, [8]), [16, 8, 8]);
});

test('moescope plan reports the same per-GPU totals as deviceTotals of the balancedness device loads', () => {
  const loads = [
    [8, 1, 1, 2],
    [0, 4, 4, 4],
  ];
  const c = comparePlacements(loads, { replicas: 4, groups: 1, nodes: 1, gpus: 2 });
  // Contiguous on 2 GPUs: layer 0 (9, 3), layer 1 (4, 8) → (13, 11).
  assert.deepEqual(c.before.gpuTotals, [13, 11]);
  assert.deepEqual(c.before.gpuTotals, deviceTotals(balancedness(loads, contiguousPlacement(4, 2)).devices));
});
