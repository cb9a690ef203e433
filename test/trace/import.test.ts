import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { F16_TO_F32, f32ToF16 } from '../../src/core/f16.js';
import { UserError } from '../../src/core/errors.js';
import { openTrace } from '../../src/trace/index.js';
import { selectTopK } from '../../src/core/topk.js';
import { importTrace } from '../../src/trace/import/index.js';
import { moescope } from './cli.js';
import { npy, tempDir } from './helpers.js';

const jl = (...objs: unknown[]) => objs.map((o) => (typeof o === 'string' ? o : JSON.stringify(o))).join('\n') + '\n';
const HEADER = { moescope: 1, layers: 2, experts: 4, topK: 2, scoring: 'softmax', layerIds: [1, 3], model: 'm' };

test('jsonl: selections, defaults, tags, time and memory samples read back', async (ctx) => {
  const tmp = tempDir(ctx);
  const src = tmp.path('in.jsonl');
  writeFileSync(
    src,
    jl(
      HEADER,
      { memory: { tNs: '1700000000000000001', gpus: null, hostRssBytes: 10, ortBytes: null } },
      {
        token: 'Hi',
        tokenId: 5,
        seq: 2,
        isPrompt: true,
        tNs: '1700000000000000002',
        experts: [
          [3, 1],
          [0, 2],
        ],
        weights: [
          [0.75, 0.25],
          [0.5, 0.5],
        ],
        tag: 'code',
      },
      '',
      {
        token: '!',
        seq: 2,
        experts: [
          [1, 0],
          [2, 3],
        ],
      },
      {
        seq: 7,
        pos: 40,
        tNs: 12,
        experts: [
          [0, 1],
          [0, 1],
        ],
        weights: [
          [1, 0],
          [0.3, 0.7],
        ],
      },
    ),
  );
  const out = tmp.path('out.arrows');
  const r = await importTrace('jsonl', [src], out);
  assert.equal(r.tokens, 3);
  const t = openTrace(out);
  assert.deepEqual(t.schema, { layers: [1, 3], experts: 4, topK: 2, scoring: 'softmax', hasLogits: false });
  assert.equal(t.meta.model, 'm');
  assert.equal(t.meta.source, 'import:jsonl');
  const b = t.readRange(0, 3);
  assert.deepEqual([...b.experts], [3, 1, 0, 2, 1, 0, 2, 3, 0, 1, 0, 1]);
  assert.deepEqual(
    [...b.weights].map((h) => F16_TO_F32[h]),
    [0.75, 0.25, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 1, 0, 0.3, 0.7].map((v) => F16_TO_F32[f32ToF16(v)]),
  );
  assert.deepEqual([...b.seq], [2, 2, 7]);
  assert.deepEqual([...b.pos], [0, 1, 40]);
  assert.deepEqual([...b.tokenId], [5, -1, -1]);
  assert.deepEqual(b.token, ['Hi', '!', '']);
  assert.deepEqual([...b.isPrompt], [1, 0, 0]);
  assert.deepEqual([...b.tNs], [1700000000000000002n, 0n, 12n]);
  assert.deepEqual(b.tag, ['code', null, null]);
  assert.deepEqual(t.memorySamples(), [
    { token: 0, sample: { tNs: 1700000000000000001n, gpus: null, hostRssBytes: 10, ortBytes: null } },
  ]);
  t.close();
});

test('jsonl with logits only: the selection is selectTopK of the scoring function, logits kept', async (ctx) => {
  const tmp = tempDir(ctx);
  const src = tmp.path('logits.jsonl');
  const tokens = [
    [
      [0.1, 2.5, -1, 0.7],
      [3, 0, 0, 1],
    ],
    [
      [-2, -1, -3, -0.5],
      [0.2, 0.1, 0.4, 0.3],
    ],
  ];
  writeFileSync(src, jl({ ...HEADER, scoring: 'sigmoid' }, ...tokens.map((logits) => ({ logits }))));
  const out = tmp.path('logits.arrows');
  await importTrace('jsonl', [src], out);
  const t = openTrace(out);
  assert.equal(t.schema.hasLogits, true);
  const b = t.readRange(0, 2);
  tokens.forEach((lg, i) => {
    const sel = selectTopK(lg.flat(), 4, 2, 'sigmoid');
    assert.deepEqual([...b.experts.subarray(i * 4, i * 4 + 4)], [...sel.experts]);
    assert.deepEqual([...b.weights.subarray(i * 4, i * 4 + 4)], [...sel.weights].map(f32ToF16));
    assert.deepEqual([...b.logits!.subarray(i * 8, i * 8 + 8)], lg.flat().map(f32ToF16));
  });
  t.close();
});

test('jsonl: malformed input names file, line and reason; exit 2; nothing left behind', async (ctx) => {
  const tmp = tempDir(ctx);
  const ok = {
    experts: [
      [0, 1],
      [2, 3],
    ],
    weights: [
      [0.5, 0.5],
      [0.5, 0.5],
    ],
  };
  const cases: [string, string, RegExp][] = [
    ['badjson', jl(HEADER, ok, '{"experts": [[0,1],'), /:3: not valid JSON/],
    ['noheader', jl(ok), /:1: the first line must be the header/],
    ['version', jl({ ...HEADER, moescope: 2 }), /:1: unsupported interchange version 2/],
    [
      'count',
      jl(HEADER, ok, {
        experts: [
          [0, 1, 2],
          [2, 3],
        ],
      }),
      /:3: experts of layer 0 has 3 values, expected 2/,
    ],
    [
      'range',
      jl(HEADER, {
        experts: [
          [0, 9],
          [2, 3],
        ],
      }),
      /:2: experts of layer 0 has 9, expected an expert id 0…3/,
    ],
    [
      'repeat',
      jl(HEADER, {
        experts: [
          [1, 1],
          [2, 3],
        ],
      }),
      /:2: experts of layer 0 repeats an id/,
    ],
    ['layers', jl(HEADER, { experts: [[0, 1]] }), /:2: "experts" must be 2 arrays \(one per layer\), got 1/],
    [
      'mixed',
      jl(HEADER, ok, {
        logits: [
          [0, 0, 0, 0],
          [0, 0, 0, 0],
        ],
      }),
      /:3: this token has "logits" but earlier ones do not/,
    ],
    [
      'nan',
      jl(HEADER, '{"logits": [[0, 1, 2, "x"], [0, 0, 0, 0]]}'),
      /:2: logits of layer 0 has "x", expected a number, "Infinity", "-Infinity", "NaN" or null/,
    ],
    ['time', jl(HEADER, { ...ok, tNs: 'soon' }), /:2: "tNs" must be an integer/],
    ['empty', jl(HEADER), /no tokens after the header/],
    ['nothing', jl(HEADER, { token: 'a' }), /:2: a token needs "experts" \(with "weights"\) or "logits"/],
  ];
  for (const [name, content, re] of cases) {
    const src = tmp.path(`${name}.jsonl`);
    writeFileSync(src, content);
    const out = tmp.path(`${name}.arrows`);
    await assert.rejects(
      () => importTrace('jsonl', [src], out),
      (e: unknown) => e instanceof UserError && re.test(e.message) && e.message.startsWith(src),
      name,
    );
    assert.equal(existsSync(out), false, name);
  }
  // Through the CLI: one line on stderr, exit 2, no trace, no temp file.
  const r = moescope('import', 'jsonl', tmp.path('count.jsonl'), '-o', tmp.path('cli.arrows'));
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^moescope: .*count\.jsonl:3: experts of layer 0 has 3 values, expected 2\n$/);
  assert.deepEqual(
    readdirSync(tmp.dir).filter((f) => f.includes('arrows')),
    [],
  );
});

/** A Megatron-core router trace record. */
const rec = (step: number, layer: number, rank: number, rows: number[][], extra: object = {}) => ({
  step,
  stage: 'pre_dispatch',
  block: 'decoder',
  layer,
  rank,
  num_tokens: rows.length,
  topk: rows[0]?.length ?? 2,
  top_indices: rows,
  ...extra,
});

test('megatron: ranks merge step by step; calls, mtp records and inferred E are handled as documented', async (ctx) => {
  const tmp = tempDir(ctx);
  const r0 = tmp.path('router_trace_rank0.jsonl');
  const r1 = tmp.path('router_trace_rank1.jsonl');
  writeFileSync(
    r0,
    jl(
      rec(0, 2, 0, [
        [0, 1],
        [2, 3],
      ]),
      rec(0, 5, 0, [
        [4, 5],
        [6, 7],
      ]),
      { ...rec(0, 1, 0, [[9, 9]]), block: 'mtp', mtp_idx: 0 },
      rec(1, 2, 0, [[1, 0]]),
      rec(1, 5, 0, [[5, 4]]),
      rec(1, 2, 0, [[3, 2]]), // a second call (microbatch) in step 1
      rec(1, 5, 0, [[7, 6]]),
    ),
  );
  writeFileSync(r1, jl(rec(0, 5, 1, [[1, 2]]), rec(0, 2, 1, [[3, 4]]), rec(1, 2, 1, [[5, 6]]), rec(1, 5, 1, [[7, 0]])));
  const out = tmp.path('mega.arrows');
  // Files given out of rank order: tokens still come rank 0 first.
  const res = await importTrace('megatron', [r1, r0], out);
  assert.equal(res.tokens, 6);
  assert.ok(res.notes.some((n) => /inferred as 8/.test(n)));
  assert.ok(res.notes.some((n) => /skipped 1 records of block "mtp"/.test(n)));
  const t = openTrace(out);
  assert.deepEqual(t.schema, { layers: [2, 5], experts: 8, topK: 2, scoring: 'softmax', hasLogits: false });
  assert.equal(t.meta.source, 'import:megatron');
  const b = t.readRange(0, 6);
  assert.deepEqual([...b.seq], [0, 0, 0, 1, 1, 1]);
  assert.deepEqual([...b.pos], [0, 1, 2, 0, 1, 2]);
  assert.deepEqual(b.tag, ['rank 0', 'rank 0', 'rank 1', 'rank 0', 'rank 0', 'rank 1']);
  assert.deepEqual(t.columns, ['step', 'rank']);
  assert.deepEqual([...b.step!], [0, 0, 0, 1, 1, 1]);
  assert.deepEqual([...b.rank!], [0, 0, 1, 0, 0, 1]);
  assert.deepEqual([...b.experts], [0, 1, 4, 5, 2, 3, 6, 7, 3, 4, 1, 2, 1, 0, 5, 4, 3, 2, 7, 6, 5, 6, 7, 0]);
  assert.ok([...b.weights].every((h) => F16_TO_F32[h] === 0.5));
  assert.deepEqual([...b.tokenId], [-1, -1, -1, -1, -1, -1]);
  t.close();
  await importTrace('megatron', [r0], out, { experts: 16, scoring: 'sigmoid' });
  const t2 = openTrace(out);
  assert.equal(t2.schema.experts, 16);
  assert.equal(t2.schema.scoring, 'sigmoid');
  assert.equal(t2.tokenCount, 4);
  t2.close();
});

test('megatron: inconsistent records are errors naming file and line', async (ctx) => {
  const tmp = tempDir(ctx);
  const cases: [string, string[], RegExp, number?][] = [
    [
      'pp',
      [jl(rec(0, 1, 0, [[0, 1]]), rec(0, 2, 0, [[0, 1]])), jl(rec(0, 3, 1, [[0, 1]]), rec(0, 4, 1, [[0, 1]]))],
      /rank0\.jsonl:1: step 0 of rank 0 has no records for layers 3,4.*pipeline-parallel/,
    ],
    [
      'ntok',
      [
        jl(
          rec(0, 1, 0, [[0, 1]]),
          rec(0, 2, 0, [
            [0, 1],
            [1, 2],
          ]),
        ),
      ],
      /rank0\.jsonl:2: num_tokens 2 differs from layer 1's 1/,
    ],
    [
      'row',
      [jl(rec(0, 1, 0, [[0, 1]]), { ...rec(0, 2, 0, [[0, 1]]), top_indices: [[0, 1, 2]] })],
      /rank0\.jsonl:2: top_indices row 0 must have topk = 2 ids/,
    ],
    ['json', [jl(rec(0, 1, 0, [[0, 1]]), 'not json')], /rank0\.jsonl:2: not valid JSON/],
    ['field', [jl({ ...rec(0, 1, 0, [[0, 1]]), step: -1 })], /rank0\.jsonl:1: "step" must be a non-negative integer/],
    ['order', [jl(rec(1, 1, 0, [[0, 1]]), rec(0, 1, 0, [[0, 1]]))], /rank0\.jsonl:2: step 0 comes after step 1/],
    ['range', [jl(rec(0, 1, 0, [[0, 9]]))], /rank0\.jsonl:1: expert id 9 ≥ --experts 8/, 8],
  ];
  for (const [name, contents, re, experts] of cases) {
    const files = contents.map((c, i) => {
      const p = tmp.path(`${name}_router_trace_rank${i}.jsonl`);
      writeFileSync(p, c);
      return p;
    });
    const out = tmp.path(`${name}.arrows`);
    await assert.rejects(
      () => importTrace('megatron', files, out, { experts }),
      (e: unknown) => e instanceof UserError && re.test(e.message),
      name,
    );
    assert.equal(existsSync(out), false);
  }
});

test('npy: float16/32/64 logits [T, L, E] or [T, E] give selectTopK selections and stored logits', async (ctx) => {
  const tmp = tempDir(ctx);
  const T = 7;
  const L = 2;
  const E = 6;
  const values = Array.from({ length: T * L * E }, (_, i) => Math.sin(i * 1.7) * 3);
  const cases: [string, ArrayBufferView, number[]][] = [
    ['<f4', Float32Array.from(values), [T, L, E]],
    ['<f8', Float64Array.from(values), [T, L, E]],
    ['<f2', Uint16Array.from(values.map(f32ToF16)), [T, L, E]],
    ['<f4', Float32Array.from(values), [T * L, E]],
  ];
  for (const [dtype, data, shape] of cases) {
    const src = tmp.path('x.npy');
    writeFileSync(src, npy(dtype as '<f4', shape, data));
    const out = tmp.path('x.arrows');
    await importTrace('npy', [src], out, {
      topK: 3,
      scoring: 'softmax',
      layerIds: shape.length === 3 ? [4, 9] : undefined,
    });
    const t = openTrace(out);
    const l = shape.length === 3 ? L : 1;
    assert.deepEqual(t.schema, {
      layers: shape.length === 3 ? [4, 9] : [0],
      experts: E,
      topK: 3,
      scoring: 'softmax',
      hasLogits: true,
    });
    assert.equal(t.tokenCount, shape[0]);
    const b = t.readRange(0, shape[0]!);
    const exact =
      dtype === '<f2'
        ? values.map((v) => F16_TO_F32[f32ToF16(v)]!)
        : dtype === '<f4'
          ? [...Float32Array.from(values)]
          : values;
    const sel = selectTopK(exact, E, 3, 'softmax');
    assert.deepEqual([...b.experts], [...sel.experts], dtype);
    assert.deepEqual([...b.weights], [...sel.weights].map(f32ToF16), dtype);
    assert.deepEqual([...b.logits!], values.map(f32ToF16), dtype);
    assert.deepEqual(
      [...b.pos],
      Array.from({ length: shape[0]! }, (_, i) => i),
    );
    assert.equal(l * 3 * shape[0]!, b.experts.length);
    t.close();
  }
  writeFileSync(tmp.path('y.npy'), npy('<f4', [T, L, E], Float32Array.from(values)));
  await importTrace('npy', [tmp.path('y.npy')], tmp.path('y.arrows'), { topK: 2, scoring: 'sigmoid', logits: false });
  const t = openTrace(tmp.path('y.arrows'));
  assert.equal(t.schema.hasLogits, false);
  assert.deepEqual(
    [...t.readRange(0, T).experts],
    [...selectTopK([...Float32Array.from(values)], E, 2, 'sigmoid').experts],
  );
  t.close();
});

test('npy: wrong dtype, Fortran order, truncation, NaN and missing --top-k are clear errors', async (ctx) => {
  const tmp = tempDir(ctx);
  const f = (name: string, buf: Buffer) => {
    writeFileSync(tmp.path(name), buf);
    return tmp.path(name);
  };
  const good = npy('<f4', [2, 1, 4], new Float32Array(8));
  const cases: [string, RegExp, number?][] = [
    [f('int.npy', npy('<i4', [2, 1, 4], new Int32Array(8))), /dtype <i4 is not supported/],
    [f('fortran.npy', npy('<f4', [2, 1, 4], new Float32Array(8), true)), /Fortran-order/],
    [f('cut.npy', good.subarray(0, good.length - 5)), /truncated: shape \[2, 1, 4\] needs 160 bytes, the file has 155/],
    [
      f('nan.npy', npy('<f4', [2, 1, 4], Float32Array.from([0, 1, 2, 3, 4, NaN, 0, 0]))),
      /token 1, layer 0, expert 1: logit is NaN/,
    ],
    [f('notnpy.npy', Buffer.from('hello world, not numpy')), /not a NumPy \.npy file/],
    [f('ok.npy', good), /--top-k must be within 1…4/, 5],
  ];
  for (const [src, re, topK] of cases) {
    const out = tmp.path('o.arrows');
    await assert.rejects(
      () => importTrace('npy', [src], out, { topK: topK ?? 2 }),
      (e: unknown) => e instanceof UserError && re.test(e.message),
      src,
    );
    assert.equal(existsSync(out), false);
  }
  const r = moescope('import', 'npy', tmp.path('ok.npy'), '-o', tmp.path('o.arrows'));
  assert.equal(r.code, 2);
  assert.match(r.stderr, /needs --top-k/);
});
