/**
 * `--plan FILE` for a model whose MoE layers differ in E and K (fixtures/models/hf-mixed-shape: layer 0 routes to
 * 8 experts top-2, layer 1 to 4 experts top-1): the file `moescope plan --json` writes for such a model (one EPLB
 * plan per shape) places each layer's own experts on the same GPUs, and the Devices view's numbers — each device's
 * share of the load, its slots per layer, balancedness in SGLang's and vLLM's conventions — are checked against
 * numpy over the recorded trace and the plan file (docs/placement.md's definitions). A plan of the wrong shape is
 * refused in one line naming why; replay --no-ui prints the placement.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { tokenBatches } from '../../src/core/routing-stream.js';
import { buildFrame } from '../../src/store/frame.js';
import { RoutingModel } from '../../src/store/model.js';
import { readPlanFile } from '../../src/store/placement-spec.js';
import { openTrace, traceStream } from '../../src/trace/index.js';
import { hasFixture, modelPath } from '../engine/helpers.js';
import { moescope } from '../trace/cli.js';
import { tempDir } from '../trace/helpers.js';

const NAME = 'hf-mixed-shape';
const PY = existsSync('/work/venv/bin/python') ? '/work/venv/bin/python' : 'python3';
const havePy = spawnSync(PY, ['-c', 'import pyarrow, numpy'], { encoding: 'utf8' }).status === 0;
const skip = !hasFixture(NAME) ? `${NAME} not generated yet` : !havePy ? 'needs python with pyarrow and numpy' : false;

/** Per device under the plan: share of all layers' load, slots per layer; balancedness (docs/placement.md). */
const REFERENCE = `
import json, sys
import numpy as np, pyarrow.ipc as ipc
t = ipc.open_stream(sys.argv[1]).read_all()
plan = json.load(open(sys.argv[2]))
s = json.loads(t.schema.metadata[b"moescope"])["schema"]
L, K = len(s["layers"]), s["topK"]
ex = t.column("experts").combine_chunks().values.to_numpy().reshape(-1, L, K)
dev, slots = [], []
for l, (e, k) in enumerate(zip(s["layerExperts"], s["layerTopK"])):
    load = np.bincount(ex[:, l, :k].reshape(-1), minlength=e).astype(np.float64)
    shape = next(p for p in plan["shapes"] if (p["shape"]["experts"], p["shape"]["topK"]) == (e, k))
    j = [i for i, (ee, kk) in enumerate(zip(s["layerExperts"], s["layerTopK"])) if (ee, kk) == (e, k)].index(l)
    m = np.array(shape["phy2log"][j if len(shape["phy2log"]) > 1 else 0])
    D, S = shape["gpus"], len(m)
    cnt = np.bincount(m, minlength=e)
    d = np.zeros(D)
    on = (np.arange(S) * D) // S
    np.add.at(d, on, load[m] / cnt[m])
    dev.append(d)
    slots.append(np.bincount(on, minlength=D))
dev = np.array(dev)
mean, mx = dev.mean(axis=1), dev.max(axis=1)
print(json.dumps({"shares": (dev.sum(axis=0) / dev.sum()).tolist(), "slots": np.mean(slots, axis=0).tolist(),
                  "sglang": float(np.mean((mean + 1e-5) / (mx + 1e-5))), "vllm": float(mean.sum() / mx.sum())}))
`;

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

test('a plan per shape from moescope plan places each layer over its own experts: the Devices view as numpy', {
  skip,
}, async (t) => {
  const dir = tempDir(t);
  const trace = dir.path('mixed.arrows');
  let r = moescope('run', modelPath(NAME), '--no-ui', '--max-tokens', '4', '--record', trace);
  assert.equal(r.code, 0, r.stderr);
  for (const replicas of ['8', '12']) {
    const plan = dir.path(`plan${replicas}.json`);
    r = moescope('plan', trace, '--gpus', '2', '--replicas', replicas, '--json');
    assert.equal(r.code, 0, r.stderr);
    writeFileSync(plan, r.stdout);
    const py = spawnSync(PY, ['-c', REFERENCE, trace, plan], { encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    const ref = JSON.parse(py.stdout) as { shares: number[]; slots: number[]; sglang: number; vllm: number };

    const stream = traceStream(openTrace(trace));
    const spec = readPlanFile(plan, stream.schema);
    const m = new RoutingModel(stream.schema, stream.meta);
    for await (const b of tokenBatches(stream)) m.add(b);
    stream.close();
    assert.match(spec.label, new RegExp(`^plan${replicas}\\.json \\(EPLB `));
    const f = buildFrame(m, { scope: 'run', layer: 0, token: null, placement: spec });
    const d = f.devices!;
    assert.equal(d.devices, 2);
    d.loads.forEach((x, i) => {
      close(x.loadShare, ref.shares[i]!, `replicas ${replicas} device ${i} share`);
      close(x.slots, ref.slots[i]!, `replicas ${replicas} device ${i} slots`);
    });
    close(d.sglang, ref.sglang, `replicas ${replicas} SGLang balancedness`);
    close(d.vllm, ref.vllm, `replicas ${replicas} vLLM balancedness`);

    r = moescope('replay', trace, '--no-ui', '--plan', plan);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(
        `placement plan${replicas}\\.json \\(EPLB \\w+\\) over 2 devices: balancedness SGLang ${ref.sglang.toFixed(3)}`,
      ),
    );
  }
});

test('a plan of the wrong shape is refused in one line that says why', { skip }, async (t) => {
  const dir = tempDir(t);
  const trace = dir.path('mixed.arrows');
  let r = moescope('run', modelPath(NAME), '--no-ui', '--max-tokens', '2', '--record', trace);
  assert.equal(r.code, 0, r.stderr);
  const uniform = dir.path('uniform.json');
  writeFileSync(uniform, JSON.stringify({ gpus: 2, phy2log: [[0, 1, 2, 3, 4, 5, 6, 7]] }));
  r = moescope('replay', trace, '--no-ui', '--plan', uniform);
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr.trim(),
    `moescope: ${uniform}: a plan for layers of one shape, the stream's layers differ in experts/k (layer 0: 8 experts top-2, layer 1: 4 experts top-1): make the plan from this model's routing (moescope plan)`,
  );
  const swapped = dir.path('swapped.json');
  const shapes = [
    { shape: { experts: 4, topK: 1 }, gpus: 2, phy2log: [[0, 1, 2, 3]] },
    { shape: { experts: 8, topK: 2 }, gpus: 2, phy2log: [[0, 1, 2, 3, 4, 5, 6, 7]] },
  ];
  writeFileSync(swapped, JSON.stringify({ shapes }));
  r = moescope('replay', trace, '--no-ui', '--plan', swapped);
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /the plan's shapes are 4 experts top-1, 8 experts top-2; the stream's layers are 8 experts top-2, 4 experts top-1/,
  );
  // An id past a layer's own experts: the 4-expert layer's map holding expert 5.
  writeFileSync(swapped, JSON.stringify({ shapes: [shapes[1], { ...shapes[0], phy2log: [[0, 1, 2, 5]] }] }));
  r = moescope('replay', trace, '--no-ui', '--plan', swapped);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /slot 3 holds expert 5/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});
