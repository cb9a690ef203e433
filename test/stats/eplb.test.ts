import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RoutingBatchBuilder, type RoutingSchema } from '../../src/core/batch.js';
import { UserError } from '../../src/core/errors.js';
import { PACKAGE_ROOT } from '../../src/core/paths.js';
import { balancedness } from '../../src/stats/balancedness.js';
import { comparePlacements } from '../../src/stats/eplb-plan.js';
import { introsortDescending } from '../../src/stats/eplb-sort.js';
import { rebalanceExperts } from '../../src/stats/eplb.js';
import { contiguousPlacement, slotDevice } from '../../src/stats/placement.js';
import { TraceWriter } from '../../src/trace/index.js';

// DeepSeek's EPLB README (github.com/deepseek-ai/EPLB): 2 layers × 12 experts, 16 replicas, 4 groups,
// 2 nodes, 8 GPUs, and the phy2log it prints.
const README_WEIGHT = [
  [90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
  [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27],
];
const README_PHY2LOG = [
  [5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1],
  [7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1],
];

interface RefCase {
  name: string;
  weight: number[][];
  replicas: number;
  groups: number;
  nodes: number;
  gpus: number;
  phy2log: number[][];
  log2phy: number[][][];
  logcnt: number[][];
}
// Made by the Python original: `python3 test/stats/reference/eplb_reference.py eplb.py` (see that file).
const REF = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'test/stats/reference/eplb-expected.json'), 'utf8')) as {
  cases: RefCase[];
  sorts: { keys: number[]; order: number[] }[];
};

test("reproduces the worked example of DeepSeek's EPLB README", () => {
  const r = rebalanceExperts(README_WEIGHT, 16, 4, 2, 8);
  assert.equal(r.policy, 'hierarchical');
  assert.deepEqual(r.phy2log, README_PHY2LOG);
  assert.deepEqual(r.logcnt, [
    [1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1],
    [1, 2, 1, 1, 1, 2, 2, 1, 2, 1, 1, 1],
  ]);
  assert.deepEqual(r.log2phy[0]![1], [15, 13]);
  assert.deepEqual(r.log2phy[0]![0], [12, -1]);
});

test('equals the Python original on every reference case (ties, both policies, DeepSeek-V3 sizes)', () => {
  assert.ok(REF.cases.length >= 12);
  for (const c of REF.cases) {
    const r = rebalanceExperts(c.weight, c.replicas, c.groups, c.nodes, c.gpus);
    assert.deepEqual(r.phy2log, c.phy2log, `${c.name}: phy2log`);
    assert.deepEqual(r.log2phy, c.log2phy, `${c.name}: log2phy`);
    assert.deepEqual(r.logcnt, c.logcnt, `${c.name}: logcnt`);
  }
  const readme = REF.cases.find((c) => c.name === 'readme')!;
  assert.deepEqual(readme.phy2log, README_PHY2LOG, 'the reference run itself reproduces the README');
});

test('visits items in torch.sort(descending=True) order, ties included', () => {
  for (const s of REF.sorts) assert.deepEqual(Array.from(introsortDescending(s.keys)), s.order, `n=${s.keys.length}`);
  // Up to 16 items it is an insertion sort: ties keep index order.
  assert.deepEqual(Array.from(introsortDescending([1, 3, 1, 3, 2])), [1, 3, 4, 0, 2]);
  // Beyond 16 it is not stable: the order the original relies on is not index order.
  const keys = [3, ...new Array<number>(16).fill(1), 2, 2, 2];
  assert.deepEqual(
    Array.from(introsortDescending(keys)),
    [0, 19, 18, 17, 10, 16, 15, 14, 13, 12, 11, 9, 8, 7, 6, 5, 4, 3, 2, 1],
  );
});

test('the plan is a valid placement: every slot filled, counts and inverse maps consistent', () => {
  const c = REF.cases.find((x) => x.name === 'deepseek-v3-hierarchical')!;
  const r = rebalanceExperts(c.weight, c.replicas, c.groups, c.nodes, c.gpus);
  const E = c.weight[0]!.length;
  const perNode = c.replicas / c.nodes;
  const groupSize = E / c.groups;
  for (let l = 0; l < c.weight.length; l++) {
    const cnt = new Array<number>(E).fill(0);
    r.phy2log[l]!.forEach((e) => cnt[e]!++);
    assert.deepEqual(cnt, r.logcnt[l]);
    assert.equal(
      cnt.reduce((a, b) => a + b),
      c.replicas,
    );
    for (let e = 0; e < E; e++) {
      const slots = r.log2phy[l]![e]!.filter((p) => p >= 0);
      assert.equal(slots.length, cnt[e]);
      for (const p of slots) assert.equal(r.phy2log[l]![p], e);
    }
    // Hierarchical: all replicas of all experts of a group live on one node.
    for (let g = 0; g < c.groups; g++) {
      const nodes = new Set<number>();
      for (let e = g * groupSize; e < (g + 1) * groupSize; e++)
        for (const p of r.log2phy[l]![e]!) if (p >= 0) nodes.add(Math.floor(p / perNode));
      assert.equal(nodes.size, 1, `layer ${l} group ${g}`);
    }
  }
});

test('EPLB balances better than the contiguous placement; the global policy best on a skewed load', () => {
  // Zipf-like loads over 256 experts (the hottest expert carries ~15% of a layer): contiguous on 32 GPUs is poor;
  // hierarchical EPLB must keep each group's replicas on its node, the global policy may spread them anywhere.
  const score = (name: string) => {
    const c = REF.cases.find((x) => x.name === name)!;
    const r = rebalanceExperts(c.weight, c.replicas, c.groups, c.nodes, c.gpus);
    const before = balancedness(c.weight, contiguousPlacement(256, c.gpus));
    const after = balancedness(c.weight, { devices: c.gpus, phy2log: r.phy2log });
    return { before, after };
  };
  const h = score('deepseek-v3-hierarchical');
  assert.ok(h.before.sglang < 0.2 && h.after.sglang > 0.6, `${h.before.sglang} → ${h.after.sglang}`);
  assert.ok(h.after.vllm > 3 * h.before.vllm);
  const g = score('deepseek-v3-global');
  assert.ok(g.before.sglang < 0.2 && g.after.sglang > 0.99, `${g.before.sglang} → ${g.after.sglang}`);
  // Each GPU holds replicas/gpus consecutive slots: ⌊s·P/R⌋ = ⌊s / (R/P)⌋.
  assert.equal(slotDevice(8, 288, 32), 0);
  assert.equal(slotDevice(9, 288, 32), 1);
});

test('policy: hierarchical when groups divide over nodes, global otherwise', () => {
  assert.equal(rebalanceExperts(README_WEIGHT, 16, 4, 2, 8).policy, 'hierarchical');
  assert.equal(rebalanceExperts(README_WEIGHT, 16, 3, 2, 8).policy, 'global');
  assert.deepEqual(
    rebalanceExperts(README_WEIGHT, 16, 3, 2, 8).phy2log,
    REF.cases.find((x) => x.name === 'readme-global')!.phy2log,
  );
});

test('inputs the algorithm cannot place are UserErrors', () => {
  const bad = (f: () => unknown, re: RegExp) =>
    assert.throws(f, (e: unknown) => e instanceof UserError && re.test(e.message), String(re));
  bad(() => rebalanceExperts(README_WEIGHT, 8, 4, 2, 8), /replicas \(8\) must be ≥ the number of experts \(12\)/);
  bad(() => rebalanceExperts(README_WEIGHT, 18, 4, 2, 8), /replicas \(18\) must be a multiple of gpus \(8\)/);
  bad(() => rebalanceExperts(README_WEIGHT, 16, 5, 1, 8), /groups \(5\) must divide the number of experts \(12\)/);
  bad(() => rebalanceExperts(README_WEIGHT, 16, 4, 3, 8), /gpus \(8\) must be a multiple of nodes \(3\)/);
  bad(() => rebalanceExperts([[1, 2], [1]], 2, 1, 1, 1), /ragged/);
  bad(() => rebalanceExperts([[1, NaN]], 2, 1, 1, 1), /NaN/);
  bad(() => rebalanceExperts(README_WEIGHT, 16, 0, 1, 8), /groups must be a whole number ≥ 1/);
});

test('comparePlacements: before/after summary for the README example', () => {
  const c = comparePlacements(README_WEIGHT, { replicas: 16, groups: 4, nodes: 2, gpus: 8 });
  assert.deepEqual(c.plan.phy2log, README_PHY2LOG);
  assert.deepEqual(c.replicated, [4, 4]);
  assert.equal(c.maxReplicas, 2);
  assert.deepEqual(c.before.gpuTotals, [349, 144, 248, 362, 387, 245, 341, 113]);
  assert.deepEqual(c.after.gpuTotals, [294.5, 266, 245.5, 285, 270.5, 283.5, 274.5, 269.5]);
  assert.equal(c.before.busiestGpu, 4);
  assert.equal(c.before.idlestGpu, 7);
  assert.deepEqual(
    c.worstBefore.map((x) => x.index),
    [1, 0],
  );
  assert.ok(Math.abs(c.after.perLayer[0]! - (1033 / 8 + 1e-5) / (156 + 1e-5)) < 1e-12);
});

// The CLI, from whichever dist folder this test was compiled into.
const cli = new URL('../../src/cli.js', import.meta.url).pathname;
const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'plan', ...args], { encoding: 'utf8' });

test('moescope plan --weights prints before/after balancedness and --json the full plan', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-plan-'));
  try {
    const f = join(dir, 'w.json');
    writeFileSync(f, JSON.stringify(README_WEIGHT));
    const args = ['--weights', f, '--replicas', '16', '--groups', '4', '--nodes', '2', '--gpus', '8'];
    const text = run(...args);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /2 layers × 12 experts → 16 slots on 2 nodes × 4 GPUs \(2 per GPU\); hierarchical/);
    assert.match(text.stdout, /balancedness \(SGLang\)\s+0\.480\s+0\.816/);
    assert.match(text.stdout, /balancedness \(vLLM\)\s+0\.469\s+0\.816/);
    assert.match(text.stdout, /^\s+4\s+1\s+387\s+270\.5$/m);
    const json = run(...args, '--json');
    assert.equal(json.status, 0, json.stderr);
    const j = JSON.parse(json.stdout);
    assert.deepEqual(j.phy2log, README_PHY2LOG);
    assert.equal(j.policy, 'hierarchical');
    assert.deepEqual(j.before.gpuLoads[0], [222, 40, 165, 165, 43, 73, 239, 86]);
    assert.equal(j.log2phy.length, 2);
    assert.equal(j.logcnt[0].length, 12);
    assert.ok(j.after.balancedness.vllm > j.before.balancedness.vllm);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('moescope plan --json at DeepSeek-V3 size: 58 layers × 256 experts, output over 64 KiB arrives whole', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-plan-'));
  try {
    // Deterministic skewed loads: expert e of layer l gets ⌊10⁵ / (1 + ((e·37 + l·11) mod 256))^1.1⌋.
    const weight = Array.from({ length: 58 }, (_, l) =>
      Array.from({ length: 256 }, (_, e) => Math.floor(1e5 / (1 + ((e * 37 + l * 11) % 256)) ** 1.1)),
    );
    const f = join(dir, 'v3.json');
    writeFileSync(f, JSON.stringify(weight));
    const r = run('--weights', f, '--replicas', '288', '--groups', '8', '--nodes', '4', '--gpus', '32', '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.length > 65536);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(j.phy2log, rebalanceExperts(weight, 288, 8, 4, 32).phy2log);
    assert.equal(j.before.gpuLoads.length, 58);
    assert.equal(j.after.gpuLoads[0].length, 32);
    const text = run('--weights', f, '--replicas', '288', '--groups', '8', '--nodes', '4', '--gpus', '32');
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /least balanced layers before \(of 58/);
    assert.match(text.stdout, /before: busiest GPU \d+ \(\d+\), idlest GPU \d+/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('moescope plan TRACE counts expert selections per layer from the trace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-plan-'));
  try {
    const schema: RoutingSchema = { layers: [1, 3], experts: 8, topK: 2, scoring: 'softmax', hasLogits: false };
    const path = join(dir, 't.arrows');
    const w = TraceWriter.create(path, {
      schema,
      meta: { model: null, routers: [], tokenizer: null, devices: ['cpu'], source: 'test' },
    });
    const b = new RoutingBatchBuilder(schema, 200);
    const expected = [new Array<number>(8).fill(0), new Array<number>(8).fill(0)];
    for (let t = 0; t < 200; t++) {
      // Layer 1 favours experts 0 and 1; layer 3 spreads by token.
      const sel = [t % 3 === 0 ? 0 : 1, 2 + (t % 6), t % 8, (t + 3) % 8];
      for (let j = 0; j < 4; j++) expected[j >> 1]![sel[j]!]!++;
      b.push({
        seq: 0,
        pos: t,
        tokenId: t,
        token: `t${t}`,
        isPrompt: false,
        tNs: 0n,
        experts: sel,
        weights: [0.5, 0.5, 0.5, 0.5],
      });
    }
    w.write(b.finish());
    w.close();
    const r = run(path, '--replicas', '12', '--gpus', '4', '--json');
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(j.layers, [1, 3]);
    // Contiguous: 2 experts per GPU.
    assert.deepEqual(
      j.before.gpuLoads,
      expected.map((row) => [0, 1, 2, 3].map((g) => row[2 * g]! + row[2 * g + 1]!)),
    );
    assert.deepEqual(j.phy2log, rebalanceExperts(expected, 12, 1, 1, 4).phy2log);
    const text = run(path, '--replicas', '12', '--gpus', '4');
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /layer 1 /);
    assert.match(text.stdout, /layer 3 /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('moescope plan: bad input is one line on stderr and exit 2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-plan-'));
  try {
    const f = (name: string, body: string) => {
      const p = join(dir, name);
      writeFileSync(p, body);
      return p;
    };
    const readme = f('w.json', JSON.stringify(README_WEIGHT));
    const cases: [string[], RegExp][] = [
      [
        ['--weights', join(dir, 'missing.json'), '--replicas', '16', '--gpus', '8'],
        /missing\.json: no such weights file/,
      ],
      [['--replicas', '16', '--gpus', '8'], /either a trace or --weights/],
      [[join(dir, 'x.arrows'), '--weights', readme, '--replicas', '16', '--gpus', '8'], /either a trace or --weights/],
      [
        ['--weights', f('rag.json', '[[1,2,3],[1,2]]'), '--replicas', '4', '--gpus', '2'],
        /rag\.json: expert loads are ragged/,
      ],
      [['--weights', f('bad.json', '[[1,2'), '--replicas', '4', '--gpus', '2'], /bad\.json: not valid JSON/],
      [
        ['--weights', f('obj.json', '{"a":[1]}'), '--replicas', '4', '--gpus', '2'],
        /expected \[\[load per logical expert\] per layer\]/,
      ],
      [['--weights', f('str.json', '[[1,"x"]]'), '--replicas', '4', '--gpus', '2'], /expert 1 is "x"/],
      [
        ['--weights', readme, '--replicas', '8', '--gpus', '8'],
        /replicas \(8\) must be ≥ the number of experts \(12\)/,
      ],
      [['--weights', readme, '--replicas', '20', '--gpus', '8'], /replicas \(20\) must be a multiple of gpus \(8\)/],
      [['--weights', readme, '--replicas', '16', '--gpus', '8', '--groups', '5'], /groups \(5\) must divide/],
      [[join(dir, 'none.arrows'), '--replicas', '16', '--gpus', '8'], /none\.arrows: no such trace/],
    ];
    for (const [args, re] of cases) {
      const r = run(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(r.stdout, '');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
