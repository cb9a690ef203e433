import { test } from 'node:test';
import assert from 'node:assert/strict';
import { balancedness, balancednessOfDeviceLoads } from '../../src/stats/balancedness.js';
import { contiguousPlacement } from '../../src/stats/placement.js';

const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${a} ≉ ${b}`);

// Device loads and the values SGLang's and vLLM's expressions give for them, evaluated in torch by
// `python3 test/stats/reference/balancedness_reference.py` (SGLang works in float32: tolerance 1e-6).
const REFERENCE = [
  {
    devices: [
      [615, 892, 721, 286, 283, 347, 287, 279],
      [988, 761, 158, 631, 8, 217, 262, 930],
      [666, 472, 983, 518, 596, 840, 895, 751],
      [708, 368, 443, 127, 930, 678, 451, 940],
      [116, 463, 605, 176, 416, 727, 365, 360],
    ],
    sglang: 0.5840955972671509,
    vllm: 0.5866169977924944,
  },
  {
    devices: [
      [10, 0, 0, 0],
      [1000, 1000, 1000, 1000],
      [0, 0, 0, 0],
    ],
    sglang: 0.7500002384185791,
    vllm: 0.9925742574257426,
  },
  {
    devices: [
      [29, 11, 4, 2, 2, 21, 4, 48, 12, 42, 9, 19, 7, 33, 0, 17],
      [0, 150, 320, 320, 0, 270, 30, 320, 100, 400, 430, 390, 420, 90, 210, 420],
      [100, 3500, 3700, 4200, 4500, 600, 300, 4800, 2100, 1100, 3100, 500, 1100, 1900, 2900, 4700],
    ],
    sglang: 0.47005215287208557,
    vllm: 0.511912656309208,
  },
];

test('both conventions agree with SGLang and vLLM evaluated in torch', () => {
  for (const r of REFERENCE) {
    const b = balancednessOfDeviceLoads(r.devices);
    close(b.sglang, r.sglang, 1e-6);
    close(b.vllm, r.vllm, 1e-12);
  }
});

test('a perfectly even spread is 1 in both conventions', () => {
  const b = balancednessOfDeviceLoads([
    [5, 5, 5, 5],
    [300, 300, 300, 300],
  ]);
  assert.equal(b.sglang, 1);
  assert.equal(b.vllm, 1);
  assert.deepEqual(b.perLayer, [1, 1]);
  assert.deepEqual(b.mean, [5, 300]);
  assert.deepEqual(b.max, [5, 300]);
});

test('the same skew on every layer: both 0.75 (the case vLLM PR #36304 shows its buggy version reporting 1.0)', () => {
  const b = balancednessOfDeviceLoads([
    [100, 200],
    [100, 200],
  ]);
  close(b.sglang, 150.00001 / 200.00001);
  close(b.vllm, 0.75);
});

test('the conventions differ: SGLang averages layers, vLLM weighs them by load', () => {
  // A lightly loaded skewed layer and a heavily loaded even one.
  const b = balancednessOfDeviceLoads([
    [10, 0],
    [1000, 1000],
  ]);
  close(b.perLayer[0]!, 5.00001 / 10.00001);
  close(b.sglang, (5.00001 / 10.00001 + 1) / 2);
  close(b.vllm, 1005 / 1010);
  assert.ok(b.vllm - b.sglang > 0.2);
});

test('idle layers: SGLang counts them as balanced (ε/ε = 1), vLLM gives 0 when everything is idle', () => {
  const idle = balancednessOfDeviceLoads([
    [0, 0, 0],
    [0, 0, 0],
  ]);
  assert.equal(idle.sglang, 1);
  assert.equal(idle.vllm, 0);
  const mixed = balancednessOfDeviceLoads([
    [0, 0],
    [4, 0],
  ]);
  close(mixed.sglang, (1 + 2.00001 / 4.00001) / 2);
  close(mixed.vllm, 2 / 4);
});

test('balancedness() derives device loads from expert loads and a placement', () => {
  // DeepSeek's EPLB README, layer 0: 12 experts, contiguous on 8 GPUs (expert e on GPU ⌊e·8/12⌋).
  const loads = [[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86]];
  const b = balancedness(loads, contiguousPlacement(12, 8));
  assert.deepEqual(Array.from(b.devices[0]!), [222, 40, 165, 165, 43, 73, 239, 86]);
  close(b.mean[0]!, 1033 / 8);
  assert.equal(b.max[0], 239);
  close(b.sglang, (1033 / 8 + 1e-5) / (239 + 1e-5));
  close(b.vllm, 1033 / 8 / 239);
  // EPLB's placement of the same layer (phy2log from the README): replicas of experts 1, 4, 5, 10 halve their load.
  const after = balancedness(loads, { devices: 8, phy2log: [[5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1]] });
  assert.deepEqual(Array.from(after.devices[0]!), [121.5, 86.5, 125, 113, 147.5, 131.5, 156, 152]);
  close(after.vllm, 1033 / 8 / 156);
});
