/**
 * `import routed-experts` over responses written as SGLang and vLLM write them (fixtures/serving, made by
 * tools/fixtures/serving/make_serving_fixtures.py with numpy); loads checked against numpy's counts (expected.json).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from '../../src/core/paths.js';
import { openTrace } from '../../src/trace/index.js';
import { importRoutedExperts } from '../../src/serving/import-responses.js';
import { UserError } from '../../src/core/errors.js';
import { moescope } from '../trace/cli.js';
import { tempDir } from '../trace/helpers.js';

const DIR = join(FIXTURES, 'serving');
const importRx = (files: string[], out: string, o: { layers?: number; topK?: number }) =>
  importRoutedExperts(files, out, { ...o, scoring: 'softmax' });
interface Expected {
  flags?: { layers?: number; topK?: number };
  tokens: number;
  layers: number[];
  experts: number;
  topK: number;
  counts: number[][];
  ids?: number[];
  texts?: (string | null)[];
}
const EXPECTED = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as Record<string, Expected>;

/** Per-layer expert counts of a trace, counted from its rows. */
function traceCounts(path: string) {
  const t = openTrace(path);
  try {
    const b = t.readRange(0, t.tokenCount);
    const { layers, experts, topK } = t.schema;
    const L = layers.length;
    const counts = layers.map(() => new Array<number>(experts).fill(0));
    for (let i = 0; i < b.length; i++)
      for (let l = 0; l < L; l++) for (let k = 0; k < topK; k++) counts[l]![b.experts[(i * L + l) * topK + k]!]!++;
    return { t, b, counts };
  } finally {
    t.close();
  }
}

for (const file of Object.keys(EXPECTED)) {
  test(`import routed-experts ${file}: the loads numpy counts`, async (ctx) => {
    const want = EXPECTED[file]!;
    const out = tempDir(ctx).path('out.arrows');
    const r = await importRx([join(DIR, file)], out, want.flags ?? {});
    assert.equal(r.tokens, want.tokens);
    const { t, b, counts } = traceCounts(out);
    assert.deepEqual(t.schema, {
      layers: want.layers,
      experts: want.experts,
      topK: want.topK,
      scoring: 'softmax',
      hasLogits: false,
    });
    assert.deepEqual(counts, want.counts);
    if (want.ids) assert.deepEqual([...b.tokenId], want.ids);
    if (want.texts)
      assert.deepEqual(
        b.token,
        want.texts.map((x) => x ?? ''),
      );
    assert.match(t.meta.source, /^import:routed-experts:(sglang|vllm)$/);
  });
}

test('SGLang: prompt tokens are marked, positions run over prompt + completion − 1, dense layer 0 is left out', async (ctx) => {
  const out = tempDir(ctx).path('sg.arrows');
  const r = await importRx([join(DIR, 'sglang-generate.json')], out, { topK: 2 });
  assert.ok(
    r.notes.some((n) => /1 of 4 layers hold no routing.*: 0$/.test(n)),
    r.notes.join('\n'),
  );
  const { b } = traceCounts(out);
  assert.deepEqual([...b.isPrompt], [1, 1, 1, 1, 1, 0, 0, 0]);
  assert.deepEqual([...b.pos], [0, 1, 2, 3, 4, 5, 6, 7]);
  const w = [...b.weights];
  assert.ok(
    w.every((h) => h === w[0]),
    'every weight is 1/K',
  );
});

test('SGLang flat payload without token counts: --layers or --top-k decides, nothing → one clear error', async (ctx) => {
  const tmp = tempDir(ctx);
  const sg = JSON.parse(readFileSync(join(DIR, 'sglang-generate.json'), 'utf8'));
  delete sg.meta_info.prompt_tokens;
  delete sg.meta_info.completion_tokens;
  delete sg.meta_info.input_token_logprobs;
  delete sg.meta_info.output_token_logprobs;
  delete sg.output_ids;
  const src = tmp.path('nocounts.json');
  writeFileSync(src, JSON.stringify(sg));
  await assert.rejects(
    () => importRx([src], tmp.path('a.arrows'), {}),
    (e: unknown) => e instanceof UserError && /give both --layers and --top-k/.test(e.message),
  );
  await assert.rejects(() => importRx([src], tmp.path('a.arrows'), { layers: 4 }), /give both --layers and --top-k/);
  const r = await importRx([src], tmp.path('b.arrows'), { layers: 4, topK: 2 });
  assert.equal(r.tokens, EXPECTED['sglang-generate.json']!.tokens);
  assert.deepEqual(traceCounts(tmp.path('b.arrows')).counts, EXPECTED['sglang-generate.json']!.counts);
  // Counts known, shape not: 8 ids per token is 4 × 2 or 2 × 4 or 8 × 1 — ambiguous without a flag.
  const withCounts = JSON.parse(readFileSync(join(DIR, 'sglang-generate.json'), 'utf8'));
  writeFileSync(src, JSON.stringify(withCounts));
  const r2 = await importRx([src], tmp.path('c.arrows'), { topK: 2 });
  assert.equal(r2.tokens, 8);
  await assert.rejects(
    () => importRx([src], tmp.path('d.arrows'), { layers: 3 }),
    /8 ids per token is not a multiple of 3 layers/,
  );
});

test('the CLI: ambiguous SGLang payload, hostile and foreign input → one line, exit 2, no output left behind', (ctx) => {
  const tmp = tempDir(ctx);
  const out = tmp.path('x.arrows');
  const cases: [string, string, RegExp][] = [
    [
      'ambiguous.json',
      readFileSync(join(DIR, 'sglang-generate.json'), 'utf8'),
      /ids per token is layers × top-k.*--layers or --top-k/,
    ],
    [
      'notb64.json',
      JSON.stringify({ meta_info: { prompt_tokens: 2, completion_tokens: 2, routed_experts: '\u001b[31m!!' } }),
      /is not base64/,
    ],
    [
      'short.json',
      JSON.stringify({
        meta_info: {
          prompt_tokens: 2,
          completion_tokens: 2,
          routed_experts: Buffer.from([1, 2, 3]).toString('base64'),
        },
      }),
      /not a whole number of int32/,
    ],
    [
      'rows.json',
      JSON.stringify({
        meta_info: { prompt_tokens: 2, completion_tokens: 2, routed_experts: Buffer.alloc(4 * 7).toString('base64') },
      }),
      /not a whole number per token over 3 tokens/,
    ],
    [
      'dtype.json',
      JSON.stringify({
        meta_info: { prompt_tokens: 1, completion_tokens: 2, routed_experts: 'AAAA', routed_experts_dtype: 'float32' },
      }),
      /not an integer dtype/,
    ],
    ['nomoe.json', JSON.stringify({ text: 'hi', meta_info: { prompt_tokens: 1 } }), /--enable-return-routed-experts/],
    ['foreign.json', JSON.stringify({ hello: 'world' }), /not an SGLang or vLLM response with routed experts/],
    [
      'npy.json',
      JSON.stringify({
        choices: [
          {
            routed_experts: Buffer.from(
              '\x93NUMPY\x01\x00\x46\x00' + "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1), }".padEnd(70),
              'latin1',
            ).toString('base64'),
          },
        ],
      }),
      /not a little-endian integer type/,
    ],
    [
      'huge.json',
      JSON.stringify({
        choices: [
          {
            routed_experts: {
              encoding: 'base64',
              dtype: 'int32',
              shape: [1e6, 1e6, 8],
              data: Buffer.alloc(8).toString('base64'),
            },
          },
        ],
      }),
      /do not fill shape/,
    ],
    [
      'lists.json',
      JSON.stringify({ choices: [{ routed_experts: [[[1, 2]], [[3]]] }] }),
      /token 1 layer 0 has 1 ids, expected 2/,
    ],
    ['broken.jsonl', '{"choices": [{"routed_experts": [[[1, 2]]]}]}\n{"choices": [', /broken\.jsonl:2: not valid JSON/],
  ];
  for (const [name, body, want] of cases) {
    const src = tmp.path(name);
    writeFileSync(src, body);
    const r = moescope('import', 'routed-experts', src, '-o', out);
    assert.equal(r.code, 2, `${name}: ${r.stderr}`);
    assert.match(r.stderr, want, name);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${name}: one line`);
    assert.doesNotMatch(r.stderr, /\u001b/, `${name}: no escape reaches the terminal`);
    assert.equal(moescope('stats', out).code, 2, `${name}: no trace written`);
  }
});
