/**
 * `run --server` in a real terminal, against a loopback server answering as SGLang does: the heatmap of the served
 * routing, the Tokens pane with the server's token texts, the routing debugger on one of them, q to quit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SERVING, SGLANG_MODEL_INFO, fixture, json, serve } from '../serving/fake-servers.js';
import { KEY, PtySession } from './harness.js';

test('run --server: the served routing live — heatmap, Tokens pane with the prompt and the generated text, debugger', async (t) => {
  const srv = await serve({
    'GET /get_model_info': json(SGLANG_MODEL_INFO),
    'POST /generate': json(fixture('sglang-generate.json')),
  });
  t.after(() => srv.close());
  const s = PtySession.start(['run', '--server', srv.url, '--prompt', 'The expert router', '--top-k', '2'], {
    cols: 120,
    rows: 36,
  });
  t.after(() => s.kill());
  let screen = await s.waitFor(
    (x) => /sglang server · moe-4l ■ ended/.test(x) && /L3\s+[█◆]/.test(x) && /\? keys/.test(x),
    30_000,
  );
  assert.match(screen, /Load per expert · 3 layers × 8 experts/);
  assert.match(screen, /│ 8 tokens/);
  s.press('3');
  screen = await s.waitFor(
    (x) => /Tokens · coloured by first-choice expert/.test(x) && /router/.test(x) && /eight/.test(x),
  );
  assert.match(screen, /The.*expert.*router.*picks/s, 'the prompt tokens as the server tokenized them');
  s.press(KEY.left);
  await s.waitFor(/token \d “/);
  s.press(KEY.enter);
  screen = await s.waitFor((x) => /routing in every layer/.test(x) && /L3\s+e\d/.test(x));
  assert.match(screen, /L1\s+e\d+\s+0\.500/, 'servers return ids only: each of the top-2 weighs 1/2');
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
});

test('watch: layer × GPU heatmap and balancedness over time from a loopback SGLang /metrics; c switches scope; q quits', async (t) => {
  const pages = Array.from({ length: 5 }, (_, i) => readFileSync(join(SERVING, 'metrics', `page-${i}.txt`), 'utf8'));
  let next = 0;
  const srv = await serve({
    'GET /metrics': (_q, _b, res) => {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(pages[Math.min(next++, pages.length - 1)]);
    },
  });
  t.after(() => srv.close());
  const s = PtySession.start(['watch', srv.url, '--interval', '0.2', '--samples', '3'], { cols: 120, rows: 30 });
  t.after(() => s.kill());
  let screen = await s.waitFor((x) => /■ ended │ 3 intervals │ 3 layers × 4 GPUs/.test(x) && /q quit/.test(x), 30_000);
  assert.match(screen, /moescope watch http:\/\/127\.0\.0\.1:\d+\/metrics/);
  assert.match(screen, /Load per GPU ÷ even share · last interval · [\d,]+ assignments/);
  for (const l of ['L0', 'L1', 'L2']) assert.match(screen, new RegExp(`${l}\\s+█+.*\\s0\\.\\d{3}`));
  assert.match(screen, /Balancedness over time/);
  assert.match(screen, /[▁▂▃▄▅▆▇█]{3} now 0\.\d{3} · server 0\.\d{3}/);
  s.press('c');
  screen = await s.waitFor(/Load per GPU ÷ even share · whole watch · [\d,]+ assignments/);
  s.press('q');
  assert.equal((await s.exited).exitCode, 0);
});
