/**
 * `import megatron --follow`: two rank files grow as router_trace.py appends each finished step; a step reaches
 * the trace once every rank is past it, and stopping (SIGINT) records the rest and closes the trace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openTrace } from '../../src/trace/index.js';
import { tempDir } from './helpers.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const rec = (step: number, layer: number, rank: number, rows: number[][]) =>
  JSON.stringify({
    step,
    stage: 'pre_dispatch',
    block: 'decoder',
    layer,
    rank,
    num_tokens: rows.length,
    topk: 2,
    top_indices: rows,
  }) + '\n';

/** Tokens the (growing) trace holds now; 0 while it does not exist yet. */
function tokensIn(path: string): number {
  try {
    const t = openTrace(path);
    const n = t.tokenCount;
    t.close();
    return n;
  } catch {
    return 0;
  }
}

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('import megatron --follow: steps appear once every rank is past them; SIGINT records the rest', async (ctx) => {
  const tmp = tempDir(ctx);
  const r0 = tmp.path('router_trace_rank0.jsonl');
  const r1 = tmp.path('router_trace_rank1.jsonl');
  writeFileSync(r0, '');
  writeFileSync(r1, '');
  const out = tmp.path('live.arrows');
  const child = spawn(process.execPath, [CLI, 'import', 'megatron', r0, r1, '-o', out, '--follow', '--experts', '8'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  ctx.after(() => child.kill('SIGKILL'));
  await until('the follower to start', () => stderr.includes('Ctrl-C stops'));

  appendFileSync(
    r0,
    rec(0, 1, 0, [
      [0, 1],
      [2, 3],
    ]) +
      rec(0, 4, 0, [
        [4, 5],
        [6, 7],
      ]),
  );
  appendFileSync(r1, rec(0, 1, 1, [[1, 2]]) + rec(0, 4, 1, [[3, 4]]));
  appendFileSync(r0, rec(1, 1, 0, [[7, 6]]) + rec(1, 4, 0, [[5, 4]]));
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(tokensIn(out), 0, 'step 0 waits: rank 1 may still be writing it');
  appendFileSync(r1, rec(1, 1, 1, [[0, 7]]) + rec(1, 4, 1, [[1, 6]]));
  await until('step 0 in the trace', () => tokensIn(out) === 3);

  appendFileSync(r0, rec(2, 1, 0, [[2, 5]]) + rec(2, 4, 0, [[3, 0]]).trimEnd()); // the last line without its newline yet
  await new Promise((r) => setTimeout(r, 600));
  child.kill('SIGINT');
  assert.equal(await exited, 0, stderr);
  assert.match(stdout, /wrote .*live\.arrows: 6 tokens in 3 steps, 2 MoE layers × 8 experts, top-2/);
  const t = openTrace(out);
  assert.equal(t.complete, true, 'closed with its end-of-stream marker');
  const b = t.readRange(0, t.tokenCount);
  t.close();
  assert.deepEqual([...b.step!], [0, 0, 0, 1, 1, 2]);
  assert.deepEqual([...b.rank!], [0, 0, 1, 0, 1, 0]);
  assert.deepEqual([...b.experts], [0, 1, 4, 5, 2, 3, 6, 7, 1, 2, 3, 4, 7, 6, 5, 4, 0, 7, 1, 6, 2, 5, 3, 0]);
});

test('import megatron --follow: without --experts, or with another format → one line, exit 2', async (ctx) => {
  const tmp = tempDir(ctx);
  const r0 = tmp.path('router_trace_rank0.jsonl');
  writeFileSync(r0, '');
  const { moescope } = await import('./cli.js');
  for (const [args, re] of [
    [['import', 'megatron', r0, '-o', tmp.path('x.arrows'), '--follow'], /--follow needs --experts/],
    [['import', 'npy', r0, '-o', tmp.path('x.arrows'), '--follow'], /--follow goes with import megatron/],
  ] as const) {
    const r = moescope(...args);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, re);
  }
});
