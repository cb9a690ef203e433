/** `run --server` against loopback servers that answer as SGLang and vLLM do, replaying recorded responses. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { openTrace } from '../../src/trace/index.js';
import { tempDir } from '../trace/helpers.js';
import { SGLANG_MODEL_INFO, VLLM_MODELS, fixture, json, moescopeAsync, serve } from './fake-servers.js';

interface Expected {
  tokens: number;
  counts: number[][];
  ids: number[];
  texts: (string | null)[];
}
const EXPECTED = fixture('expected.json') as Record<string, Expected>;

function counts(path: string) {
  const t = openTrace(path);
  try {
    const b = t.readRange(0, t.tokenCount);
    const { layers, experts, topK } = t.schema;
    const L = layers.length;
    const c = layers.map(() => new Array<number>(experts).fill(0));
    for (let i = 0; i < b.length; i++)
      for (let l = 0; l < L; l++) for (let k = 0; k < topK; k++) c[l]![b.experts[(i * L + l) * topK + k]!]!++;
    return { t, b, c };
  } finally {
    t.close();
  }
}

test('run --server on SGLang: /generate asked for routing and logprobs per prompt; text, tokens and loads arrive', async (ctx) => {
  const tmp = tempDir(ctx);
  const srv = await serve({
    'GET /get_model_info': json(SGLANG_MODEL_INFO),
    'POST /generate': json(fixture('sglang-generate.json')),
  });
  ctx.after(() => srv.close());
  const prompts = tmp.path('p.jsonl');
  writeFileSync(prompts, '{"text": "The expert router", "domain": "prose"}\n{"text": "2+2=", "domain": "math"}\n');
  const out = tmp.path('live.arrows');
  const r = await moescopeAsync([
    'run',
    '--server',
    srv.url,
    '--prompts',
    prompts,
    '--top-k',
    '2',
    '--max-tokens',
    '4',
    '--no-ui',
    '--record',
    out,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(srv.bodies.length, 2);
  assert.deepEqual(srv.bodies[0], {
    path: '/generate',
    body: {
      text: 'The expert router',
      sampling_params: { max_new_tokens: 4, temperature: 0 },
      return_routed_experts: true,
      return_logprob: true,
      logprob_start_len: 0,
      return_text_in_logprobs: true,
    },
  });
  assert.match(
    r.stdout,
    /\[0 prose\] The expert router\n→ {2}two of eight\.\n {2}\(5 prompt \+ 4 generated tokens, 8 routed/,
  );
  assert.match(
    r.stdout,
    /moescope run --server http:\/\/127\.0\.0\.1:\d+\/?\n {2}3 MoE layers × 8 experts, top-2 softmax · model tiny\/moe-4l · source server:sglang/,
  );
  assert.match(r.stdout, /16 tokens in 2 sequences/);
  assert.match(r.stderr, /1 of 4 layers hold no routing/);
  const want = EXPECTED['sglang-generate.json']!;
  const { t, b, c } = counts(out);
  assert.equal(t.tokenCount, 2 * want.tokens);
  assert.deepEqual(
    c,
    want.counts.map((row) => row.map((x) => 2 * x)),
  );
  assert.deepEqual(b.token.slice(0, 8), want.texts);
  assert.deepEqual([...b.tokenId.slice(0, 8)], want.ids);
  assert.deepEqual([...b.seq], [...new Array(8).fill(0), ...new Array(8).fill(1)]);
  assert.deepEqual(b.tag, [...new Array(8).fill('prose'), ...new Array(8).fill('math')]);
  assert.equal(t.meta.source, 'server:sglang');
  assert.ok(b.tNs[0]! > 1_700_000_000_000_000_000n, 'arrival time recorded');
});

test('run --server on vLLM: /v1/completions with the model, token ids and logprobs; the .npy routing decodes', async (ctx) => {
  const tmp = tempDir(ctx);
  const srv = await serve({
    'GET /v1/models': json(VLLM_MODELS),
    'POST /v1/completions': json(fixture('vllm-completion.json')),
  });
  ctx.after(() => srv.close());
  const out = tmp.path('v.arrows');
  const r = await moescopeAsync([
    'run',
    '--server',
    srv.url + '/',
    '--prompt',
    'Each token goes',
    '--temperature',
    '0.7',
    '--max-tokens',
    '5',
    '--no-ui',
    '--record',
    out,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(srv.bodies[0]!.body, {
    model: 'tiny-moe',
    prompt: 'Each token goes',
    max_tokens: 5,
    temperature: 0.7,
    return_token_ids: true,
    logprobs: 0,
    prompt_logprobs: 0,
  });
  assert.match(r.stdout, /\(4 prompt \+ 5 generated tokens, 8 routed/);
  const want = EXPECTED['vllm-completion.json']!;
  const { t, b, c } = counts(out);
  assert.deepEqual(c, want.counts);
  assert.deepEqual([...b.tokenId], want.ids);
  assert.deepEqual(
    b.token,
    want.texts.map((x) => x ?? ''),
  );
  assert.deepEqual([...b.isPrompt], [1, 1, 1, 1, 0, 0, 0, 0]);
  assert.equal(t.meta.model, 'tiny-moe');
});

test('run --server: a server that is not there, errors, no routing, ambiguity, a wrong model → one line, exit 2', async (ctx) => {
  const closed = await serve({});
  const deadUrl = closed.url;
  await closed.close();
  const sg = await serve({
    'GET /get_model_info': json(SGLANG_MODEL_INFO),
    'POST /generate': json({ text: 'x', meta_info: { prompt_tokens: 2, completion_tokens: 1, id: 'a' } }),
  });
  const sgOk = await serve({
    'GET /get_model_info': json(SGLANG_MODEL_INFO),
    'POST /generate': json(fixture('sglang-generate.json')),
  });
  const err = await serve({
    'GET /get_model_info': json(SGLANG_MODEL_INFO),
    'POST /generate': json({ error: { message: 'boom\u001b[2J' } }, 500),
  });
  const vl = await serve({
    'GET /v1/models': json(VLLM_MODELS),
    'POST /v1/completions': json(fixture('vllm-completion.json')),
  });
  const other = await serve({ 'GET /': json({ hello: 1 }) });
  ctx.after(() => Promise.all([sg, sgOk, err, vl, other].map((s) => s.close())));
  const cases: [string[], RegExp][] = [
    [['--server', deadUrl], /ECONNREFUSED|connect/],
    [['--server', 'ftp://x'], /only http and https/],
    [['--server', sg.url, '--top-k', '2'], /without meta_info\.routed_experts.*--enable-return-routed-experts/],
    [['--server', sgOk.url], /ids per token is layers × top-k.*--layers or --top-k/], // SGLang's /get_model_info has no layers or k
    [['--server', err.url, '--top-k', '2'], /generate: HTTP 500: .*boom/],
    [['--server', vl.url, '--model', 'other'], /serves tiny-moe, not --model other/],
    [['--server', other.url], /neither an SGLang .* nor a vLLM .* server answered/],
    [['--server', vl.url, '--logits'], /--logits does not go with --server/],
    [['model.onnx', '--server', vl.url], /either a MODEL or --server/],
    [[], /run needs a MODEL/],
  ];
  for (const [args, want] of cases) {
    const r = await moescopeAsync(['run', ...args, '--prompt', 'hi', '--no-ui']);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, want, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\u001b/);
  }
});

test('run --server: layers and k from the server model info when it carries the HF config (no flag needed)', async (ctx) => {
  const srv = await serve({
    'GET /get_model_info': json({ ...SGLANG_MODEL_INFO, hf_config: { num_hidden_layers: 4, num_experts_per_tok: 2 } }),
    'POST /generate': json(fixture('sglang-generate.json')),
  });
  ctx.after(() => srv.close());
  const r = await moescopeAsync(['run', '--server', srv.url, '--prompt', 'hi', '--no-ui']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /3 MoE layers × 8 experts, top-2/);
});
