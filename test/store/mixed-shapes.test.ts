/**
 * The store over a model whose MoE layers differ in E and K (fixtures/models/hf-mixed-shape: layer 0 routes to 8
 * experts top-2, layer 1 to 4 experts top-1), as the live TUI, replay and dash see it: every per-layer number of a
 * frame — load, CV, MaxVio, entropy, dead experts, busiest expert, over the window and the whole run — checked
 * against numpy over the recorded trace (read with pyarrow, each layer over its own E and K only), the columns past
 * a layer's own experts holding no expert, and the routing debugger showing each layer's own top-k. A planted dead
 * expert fires exactly one dead-expert warning: none for the padding columns of the smaller layer. Where routers
 * differ in role, warnings name the router by model layer and role.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { NO_EXPERT, type RoutingSchema } from '../../src/core/batch.js';
import type { RouterSummary, StreamMeta } from '../../src/core/stream.js';
import { tokenBatches } from '../../src/core/routing-stream.js';
import { buildFrame, type Frame } from '../../src/store/frame.js';
import { RoutingModel } from '../../src/store/model.js';
import { binnedRelLoad, layerColumns } from '../../src/store/selectors.js';
import { openTrace, traceStream } from '../../src/trace/index.js';
import { hasFixture, modelPath } from '../engine/helpers.js';
import { moescope } from '../trace/cli.js';
import { tempDir } from '../trace/helpers.js';
import { batches, META } from './helpers.js';

const NAME = 'hf-mixed-shape';
const PY = existsSync('/work/venv/bin/python') ? '/work/venv/bin/python' : 'python3';
const havePy = spawnSync(PY, ['-c', 'import pyarrow, numpy'], { encoding: 'utf8' }).status === 0;
const skip = !hasFixture(NAME) ? `${NAME} not generated yet` : !havePy ? 'needs python with pyarrow and numpy' : false;

/** The reference: numpy over the trace file, each layer's own K slots and E experts (docs/trace-format.md). */
const REFERENCE = `
import json, sys
import numpy as np, pyarrow.ipc as ipc
path, W = sys.argv[1], int(sys.argv[2])
t = ipc.open_stream(path).read_all()
s = json.loads(t.schema.metadata[b"moescope"])["schema"]
L, E, K = len(s["layers"]), s["experts"], s["topK"]
ex = t.column("experts").combine_chunks().values.to_numpy().reshape(-1, L, K)
out = {"tokens": int(ex.shape[0]), "layers": []}
def metrics(ids, e):
    c = np.bincount(ids.reshape(-1), minlength=e).astype(np.float64)
    assert c.shape[0] == e, "an id past the layer's E"
    mean = c.sum() / e
    p = c[c > 0] / c.sum()
    return {"load": c.tolist(), "cv": float(c.std() / mean), "maxVio": float((c.max() - mean) / mean),
            "entropy": float(-(p * np.log(p)).sum() / np.log(e)), "dead": int((c == 0).sum()),
            "busiest": int(np.argmax(c)), "busiestShare": float(c.max() / c.sum())}
for l, (e, k) in enumerate(zip(s["layerExperts"], s["layerTopK"])):
    own = ex[:, l, :k]
    assert (ex[:, l, k:] == 65535).all()
    out["layers"].append({"E": e, "K": k, "run": metrics(own, e), "window": metrics(own[-W:], e),
                          "last": own[-1].tolist()})
print(json.dumps(out))
`;

interface RefMetrics {
  load: number[];
  cv: number;
  maxVio: number;
  entropy: number;
  dead: number;
  busiest: number;
  busiestShare: number;
}
interface Ref {
  tokens: number;
  layers: { E: number; K: number; run: RefMetrics; window: RefMetrics; last: number[] }[];
}

function reference(trace: string, window: number): Ref {
  const r = spawnSync(PY, ['-c', REFERENCE, trace, String(window)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Ref;
}

function record(dir: { path: (n: string) => string }): string {
  const out = dir.path('mixed.arrows');
  const r = moescope('run', modelPath(NAME), '--no-ui', '--max-tokens', '6', '--logits', '--record', out);
  assert.equal(r.code, 0, r.stderr);
  return out;
}

async function modelOf(trace: string, window: number): Promise<RoutingModel> {
  const stream = traceStream(openTrace(trace));
  const m = new RoutingModel(stream.schema, stream.meta, { window });
  for await (const b of tokenBatches(stream)) m.add(b);
  stream.close();
  return m;
}

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

function checkFrame(f: Frame, ref: Ref, scope: 'run' | 'window'): void {
  const E = f.experts;
  ref.layers.forEach((x, l) => {
    const r = x[scope];
    const at = `layer ${l} ${scope}`;
    assert.equal(f.layerExperts[l], x.E, `${at} E`);
    assert.equal(f.layerTopK[l], x.K, `${at} K`);
    assert.deepEqual(Array.from(f.counts.subarray(l * E, l * E + x.E)), r.load, `${at} load`);
    // Past the layer's own experts: no expert — no count, no relative load (the views draw nothing there).
    assert.ok(
      f.counts.subarray(l * E + x.E, (l + 1) * E).every((c) => c === 0),
      `${at} no load past E`,
    );
    assert.ok(f.relLoad.subarray(l * E + x.E, (l + 1) * E).every(Number.isNaN), `${at} no relLoad past E`);
    close(f.cv[l]!, r.cv, `${at} CV`);
    close(f.maxVio[l]!, r.maxVio, `${at} MaxVio`);
    close(f.entropy[l]!, r.entropy, `${at} entropy`);
    assert.equal(f.dead[l], r.dead, `${at} dead`);
    assert.equal(f.busiest[l], r.busiest, `${at} busiest`);
    close(f.busiestShare[l]!, r.busiestShare, `${at} busiest share`);
  });
}

test('frames of a mixed-shape model: every layer over its own E and K, as numpy over the trace', {
  skip,
}, async (t) => {
  const dir = tempDir(t);
  const trace = record(dir);
  const W = 64;
  const ref = reference(trace, W);
  assert.ok(ref.tokens > W, 'the trace is longer than the window');
  const m = await modelOf(trace, W);
  assert.equal(m.tokens, ref.tokens);
  for (const scope of ['run', 'window'] as const) {
    for (let layer = 0; layer < 2; layer++) {
      const f = buildFrame(m, { scope, layer, token: m.ring.end - 1, placement: null });
      checkFrame(f, ref, scope);
      // The layer pane's metrics: the selected layer's own experts only.
      const d = f.layer!;
      const r = ref.layers[layer]![scope];
      assert.deepEqual(d.metrics.load, r.load);
      assert.equal(d.metrics.deadExperts, r.dead);
      close(d.metrics.cv, r.cv, `layer pane ${layer} CV`);
      close(d.uniformTopNShare, ref.layers[layer]!.K / ref.layers[layer]!.E, 'top-K share at balance');
      // The routing debugger: each layer's own top-k, no padding slot.
      const tok = f.token!;
      tok.layers.forEach((x, l) => {
        assert.deepEqual(x.experts, ref.layers[l]!.last, `token's layer ${l}`);
        assert.ok(!x.experts.includes(NO_EXPERT));
      });
    }
  }
  // The overview's columns: layer 1 has 4 of the 8, whatever the zoom.
  const f = buildFrame(m, { scope: 'run', layer: 0, token: null, placement: null });
  assert.equal(layerColumns(f, 0, 0, 1, 8), 8);
  assert.equal(layerColumns(f, 1, 0, 1, 8), 4);
  assert.equal(layerColumns(f, 1, 0, 3, 3), 2);
  assert.equal(layerColumns(f, 1, 4, 1, 4), 0);
  const row = binnedRelLoad(f, 1, 0, 1, 8);
  assert.ok(row.subarray(0, 4).every(Number.isFinite) && row.subarray(4).every(Number.isNaN));
  // A display window of another length: refilled from the ring, per shape.
  m.setDisplayWindow(256);
  checkFrame(
    buildFrame(m, { scope: 'window', layer: 1, token: null, placement: null }),
    reference(trace, 256),
    'window',
  );
});

/** Layer 0: 8 experts top-2, every expert used; layer 1: 4 experts top-1, expert 3 never. */
const MIXED: RoutingSchema = {
  layers: [0, 1],
  experts: 8,
  topK: 2,
  layerExperts: [8, 4],
  layerTopK: [2, 1],
  scoring: 'softmax',
  hasLogits: false,
};
const toks = Array.from({ length: 256 }, (_, t) => ({
  experts: [
    [t % 8, (t + 3) % 8],
    [t % 3, NO_EXPERT],
  ],
  weights: [
    [0.6, 0.4],
    [1, 0],
  ],
}));

test('a dead expert of the smaller layer is warned about; its padding columns never are', () => {
  const m = new RoutingModel(MIXED, META, { window: 64 });
  for (const b of batches(MIXED, toks, 50)) m.add(b);
  const f = buildFrame(m, { scope: 'window', layer: 1, token: null, placement: null });
  const dead = f.warnings.filter((w) => w.rule === 'dead-expert');
  assert.deepEqual(
    dead.map((w) => [w.layerIndex, w.expert]),
    [[1, 3]],
    'one dead expert: layer 1 expert 3 (experts 4–7 of layer 1 do not exist)',
  );
  assert.equal(dead[0]!.message, 'layer 1 expert 3: no tokens in the window');
  assert.equal(f.dead[1], 1);
  assert.equal(f.dead[0], 0);
});

test('warnings name the router by model layer and role where routers differ in role', () => {
  const schema: RoutingSchema = { layers: [0, 1], experts: 4, topK: 1, scoring: 'softmax', hasLogits: false };
  const router = (layer: number, role: string): RouterSummary => ({
    layer,
    experts: 4,
    topK: 1,
    scoring: 'softmax',
    kind: 'softmax-topk',
    modelLayer: 0,
    role,
  });
  const meta: StreamMeta = { ...META, routers: [router(0, 'attention'), router(1, 'mlp')] };
  const m = new RoutingModel(schema, meta, { window: 64 });
  const x = Array.from({ length: 128 }, (_, t) => ({ experts: [[t % 4], [t % 3]], weights: [[1], [1]] }));
  for (const b of batches(schema, x)) m.add(b);
  const f = buildFrame(m, { scope: 'window', layer: 1, token: null, placement: null });
  const dead = f.warnings.filter((w) => w.rule === 'dead-expert');
  assert.deepEqual(
    dead.map((w) => [w.layerIndex, w.expert, w.message]),
    [[1, 3, 'layer 0 mlp expert 3: no tokens in the window']],
  );
});
