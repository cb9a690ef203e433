import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../../src/core/errors.js';
import { checkLoads, contiguousPlacement, deviceLoads, replicaCounts, slotDevice } from '../../src/stats/placement.js';

const devicesOf = (slots: number, devices: number) =>
  Array.from({ length: slots }, (_, s) => slotDevice(s, slots, devices));

test('contiguous placement puts expert e on device ⌊e·D/E⌋', () => {
  assert.deepEqual(devicesOf(12, 8), [0, 0, 1, 2, 2, 3, 4, 4, 5, 6, 6, 7]);
  // D divides E: E/D consecutive experts per device.
  assert.deepEqual(devicesOf(8, 4), [0, 0, 1, 1, 2, 2, 3, 3]);
  const d256 = devicesOf(256, 32);
  for (let e = 0; e < 256; e++) assert.equal(d256[e], Math.floor(e / 8));
  // Fewer experts than devices: some devices hold none.
  assert.deepEqual(devicesOf(4, 8), [0, 2, 4, 6]);
  assert.deepEqual(Array.from(contiguousPlacement(5, 2).phy2log[0]!), [0, 1, 2, 3, 4]);
});

test("device loads under the contiguous placement sum each device's experts", () => {
  const loads = [
    [1, 2, 3, 4, 5, 6, 7, 8],
    [8, 0, 0, 0, 0, 0, 0, 8],
  ];
  const d = deviceLoads(loads, contiguousPlacement(8, 4));
  assert.deepEqual(
    d.map((r) => Array.from(r)),
    [
      [3, 7, 11, 15],
      [8, 0, 0, 8],
    ],
  );
  // Some devices empty.
  assert.deepEqual(Array.from(deviceLoads([[5, 5]], contiguousPlacement(2, 4))[0]!), [5, 0, 5, 0]);
});

test('a replicated expert splits its load evenly over its replicas', () => {
  // Slots 0..3 on 2 devices: expert 0 twice (5 + 5), expert 1 and 2 once.
  const d = deviceLoads([[10, 4, 6]], { devices: 2, phy2log: [[0, 1, 0, 2]] });
  assert.deepEqual(Array.from(d[0]!), [9, 11]);
  // Three replicas of a load of 9 over 3 devices: 3 each.
  assert.deepEqual(Array.from(deviceLoads([[9, 0, 0]], { devices: 3, phy2log: [[0, 1, 0, 2, 0, 1]] })[0]!), [3, 3, 3]);
  assert.deepEqual(Array.from(replicaCounts([0, 1, 0, 2, 0, 1], 3)), [3, 2, 1]);
});

test('one map per layer, or one shared by all layers', () => {
  const loads = [
    [4, 2],
    [2, 4],
  ];
  const shared = deviceLoads(loads, { devices: 2, phy2log: [[0, 1]] });
  assert.deepEqual(
    shared.map((r) => Array.from(r)),
    [
      [4, 2],
      [2, 4],
    ],
  );
  const perLayer = deviceLoads(loads, {
    devices: 2,
    phy2log: [
      [0, 1],
      [1, 0],
    ],
  });
  assert.deepEqual(
    perLayer.map((r) => Array.from(r)),
    [
      [4, 2],
      [4, 2],
    ],
  );
});

test('a zero-load expert may have no slot; a loaded one may not', () => {
  assert.deepEqual(Array.from(deviceLoads([[3, 0]], { devices: 1, phy2log: [[0]] })[0]!), [3]);
  assert.throws(
    () => deviceLoads([[3, 1]], { devices: 1, phy2log: [[0]] }),
    (e: unknown) => e instanceof UserError && /expert 1 of layer 0 has load 1 but no slot/.test(e.message),
  );
});

test('bad shapes and values are UserErrors naming the problem', () => {
  const bad = (f: () => unknown, re: RegExp) =>
    assert.throws(f, (e: unknown) => e instanceof UserError && re.test(e.message), String(re));
  bad(() => checkLoads([]), /no layers/);
  bad(() => checkLoads([[]]), /empty/);
  bad(() => checkLoads([[1, 2], [3]]), /ragged: layer 1 has 1 experts, layer 0 has 2/);
  bad(() => checkLoads([[1, NaN]]), /layer 0, expert 1 is NaN/);
  bad(() => checkLoads([[1, -1]]), /expert 1 is -1/);
  bad(() => checkLoads([[1, Infinity]]), /expert 1 is Infinity/);
  bad(() => deviceLoads([[1, 2]], { devices: 1, phy2log: [[0, 2]] }), /slot 1 holds expert 2, but there are 2 experts/);
  bad(
    () =>
      deviceLoads(
        [
          [1, 2],
          [1, 2],
          [1, 2],
        ],
        {
          devices: 1,
          phy2log: [
            [0, 1],
            [0, 1],
          ],
        },
      ),
    /placement has 2 layers, loads have 3/,
  );
  bad(
    () =>
      deviceLoads(
        [
          [1, 2],
          [1, 2],
        ],
        {
          devices: 1,
          phy2log: [
            [0, 1],
            [0, 1, 1],
          ],
        },
      ),
    /layer 1 has 3 slots/,
  );
  bad(() => contiguousPlacement(8, 0), /devices must be a whole number ≥ 1/);
});
