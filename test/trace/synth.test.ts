import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F16_TO_F32 } from '../../src/core/f16.js';
import { UserError } from '../../src/core/errors.js';
import { openTrace } from '../../src/trace/index.js';
import { selectTopK } from '../../src/core/topk.js';
import { parseCollapse, parseSkew, synthesize, type SynthSpec } from '../../src/trace/synth.js';
import { moescope } from './cli.js';
import { plain, tempDir } from './helpers.js';

const BASE: SynthSpec = {
  layers: 4,
  experts: 32,
  topK: 4,
  tokens: 4000,
  skew: { kind: 'uniform' },
  collapse: null,
  logits: false,
  seed: 3,
};

function loads(path: string, layer: number, from = 0) {
  const t = openTrace(path);
  const { layers, experts: E, topK: K } = t.schema;
  const L = layers.length;
  const counts = new Float64Array(E);
  const first = new Float64Array(E);
  let w0 = 0;
  let n = 0;
  for (const b of t.batches(from)) {
    for (let i = 0; i < b.length; i++) {
      const o = (i * L + layer) * K;
      const ids = new Set<number>();
      for (let k = 0; k < K; k++) {
        counts[b.experts[o + k]!]!++;
        ids.add(b.experts[o + k]!);
      }
      assert.equal(ids.size, K, 'experts of a token are distinct');
      first[b.experts[o]!]!++;
      w0 += F16_TO_F32[b.weights[o]!]!;
      n++;
    }
  }
  t.close();
  return { share: [...counts].map((c) => c / (n * K)), firstShare: [...first].map((c) => c / n), meanW0: w0 / n };
}

test('synth: same seed, same routing; skew and a planted collapse show up where asked', (ctx) => {
  const tmp = tempDir(ctx);
  synthesize(tmp.path('a.arrows'), BASE);
  synthesize(tmp.path('b.arrows'), BASE);
  synthesize(tmp.path('c.arrows'), { ...BASE, seed: 4 });
  const [a, b, c] = ['a', 'b', 'c'].map((x) => openTrace(tmp.path(`${x}.arrows`)));
  assert.deepEqual(plain(a!.readRange(0, 4000)), plain(b!.readRange(0, 4000)));
  assert.notDeepEqual([...a!.readRange(0, 50).experts], [...c!.readRange(0, 50).experts]);
  assert.equal(a!.meta.source, 'synth');
  [a, b, c].forEach((t) => t!.close());

  const uniform = loads(tmp.path('a.arrows'), 0);
  assert.ok(Math.max(...uniform.share) < 2 / 32, `uniform max share ${Math.max(...uniform.share)}`);
  synthesize(tmp.path('z.arrows'), {
    ...BASE,
    skew: { kind: 'zipf', s: 1.2 },
    collapse: { layer: 2, expert: 7, from: 0.5 },
  });
  const zipf = loads(tmp.path('z.arrows'), 0);
  assert.ok(Math.max(...zipf.share) > 3 / 32, `zipf max share ${Math.max(...zipf.share)}`);
  const before = loads(tmp.path('z.arrows'), 2, 0);
  const after = loads(tmp.path('z.arrows'), 2, 2000);
  assert.equal(after.firstShare[7], 1, 'collapsed expert is every token’s first choice');
  assert.ok(Math.abs(after.meanW0 - 0.9) < 0.01);
  assert.ok(before.firstShare[7]! < 0.75);
});

test('synth --logits: the stored selection is exactly selectTopK of the stored logits', (ctx) => {
  const tmp = tempDir(ctx);
  for (const scoring of ['softmax', 'sigmoid'] as const) {
    const p = tmp.path(`${scoring}.arrows`);
    synthesize(p, {
      ...BASE,
      tokens: 300,
      logits: true,
      scoring,
      skew: { kind: 'zipf', s: 1 },
      collapse: { layer: 1, expert: 5, from: 0.2 },
    });
    const t = openTrace(p);
    assert.equal(t.schema.scoring, scoring);
    const b = t.readRange(0, 300);
    const sel = selectTopK(
      [...b.logits!].map((h) => F16_TO_F32[h]!),
      32,
      4,
      scoring,
    );
    assert.deepEqual([...b.experts], [...sel.experts]);
    const collapsed = b.experts.filter(
      (_, i) => Math.floor(i / 4) % 4 === 1 && Math.floor(i / 16) >= 60 && i % 4 === 0,
    );
    assert.ok(collapsed.every((e) => e === 5));
    t.close();
  }
});

test('synth flags: bad specs are usage errors; the CLI writes the trace it reports', (ctx) => {
  assert.deepEqual(parseSkew('zipf:1.1'), { kind: 'zipf', s: 1.1 });
  assert.throws(() => parseSkew('zipf'), UserError);
  assert.deepEqual(parseCollapse('layer=2,expert=3,from=0.5', 4, 8), { layer: 2, expert: 3, from: 0.5 });
  assert.throws(() => parseCollapse('layer=4,expert=3', 4, 8), /layer must be 0…3/);
  assert.throws(() => parseCollapse('layer=1,expert=3,from=2', 4, 8), /from must be within 0…1/);
  assert.throws(() => parseCollapse('layer=1,exp=3', 4, 8), /unknown key "exp"/);
  const tmp = tempDir(ctx);
  const out = tmp.path('s.arrows');
  const r = moescope(
    'synth',
    '--layers',
    '3',
    '--experts',
    '16',
    '--top-k',
    '2',
    '--tokens',
    '500',
    '--skew',
    'zipf:1.1',
    '--collapse',
    'layer=1,expert=3,from=0.5',
    '-o',
    out,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote .*s\.arrows: 500 tokens, 3 MoE layers × 16 experts, top-2 softmax/);
  assert.equal(openTrace(out).tokenCount, 500);
  const bad = moescope('synth', '--skew', 'lognormal', '-o', tmp.path('x.arrows'));
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--skew must be "uniform" or "zipf:S"/);
});

test('synth --rank --step-tokens: a trace as one rank records it (rank and step columns), same routing as without', (ctx) => {
  const tmp = tempDir(ctx);
  const r = moescope(
    'synth',
    '--tokens',
    '300',
    '--seed',
    '3',
    '--rank',
    '5',
    '--step-tokens',
    '64',
    '-o',
    tmp.path('r.arrows'),
  );
  assert.equal(r.code, 0, r.stderr);
  synthesize(tmp.path('p.arrows'), { ...BASE, layers: 4, experts: 8, topK: 2, tokens: 300 });
  const t = openTrace(tmp.path('r.arrows'));
  assert.deepEqual(t.columns, ['step', 'rank']);
  const b = t.readRange(0, 300);
  assert.ok([...b.rank!].every((x) => x === 5));
  assert.deepEqual(
    [...b.step!],
    Array.from({ length: 300 }, (_, g) => Math.floor(g / 64)),
  );
  const p = openTrace(tmp.path('p.arrows'));
  assert.deepEqual([...b.experts], [...p.readRange(0, 300).experts]);
  t.close();
  p.close();
  const bad = moescope('synth', '--rank', '70000', '-o', tmp.path('x.arrows'));
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--rank must be ≤ 65535/);
});
