/**
 * `moescope listen` end to end: a real listener process, real producer processes replaying trace bytes over real
 * loopback sockets (TCP and unix). What users rely on: every token of every rank lands in ONE merged trace, tagged
 * with its rank, loads equal the sum of the ranks' own counts; a bad producer costs one clear line and nothing else.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TraceWriter, openTrace } from '../../src/trace/index.js';
import { synthesize, type SynthSpec } from '../../src/trace/synth.js';
import { countsOf, produce, startListener, until } from './helpers.js';
import { traceMessages } from './producer.js';

const SPEC: SynthSpec = {
  layers: 4,
  experts: 8,
  topK: 2,
  tokens: 3000,
  skew: { kind: 'zipf', s: 1 },
  collapse: null,
  logits: false,
  seed: 1,
};

function tmp(ctx: { after: (fn: () => void) => void }) {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-listen-'));
  ctx.after(() => rmSync(dir, { recursive: true, force: true }));
  return (name: string) => join(dir, name);
}

function rebatch(src: string, dst: string, batchTokens: number): void {
  const t = openTrace(src);
  const w = TraceWriter.create(dst, { schema: t.schema, meta: t.meta, batchTokens, columns: t.columns });
  for (const b of t.batches()) w.write(b);
  w.close();
  t.close();
}

function readAll(path: string) {
  const t = openTrace(path);
  const b = t.readRange(0, t.tokenCount);
  const r = { schema: t.schema, meta: t.meta, columns: t.columns, batch: b, complete: t.complete };
  t.close();
  return r;
}

test('two ranks over TCP → one merged trace: every token of both, tagged with its rank; loads = sum of each rank’s counts', async (ctx) => {
  const p = tmp(ctx);
  synthesize(p('r0.arrows'), { ...SPEC, seed: 1, stepTokens: 100 });
  synthesize(p('r1.arrows'), { ...SPEC, seed: 2, tokens: 2500, stepTokens: 100 });
  const l = await startListener([
    '--no-ui',
    '--port',
    '0',
    '--record',
    p('all.arrows'),
    '--exit-when-idle',
    '0.5',
    '--interval',
    '0.2',
  ]);
  const producers = [0, 1].map((rank) =>
    produce({ connect: `${l.address}`, rank, world: 2, trace: p(`r${rank}.arrows`), chunk: 7001 }),
  );
  for (const q of producers) assert.equal(await q.exited, 0, q.stderr());
  assert.equal(await l.exited, 0, l.stderr());
  const merged = readAll(p('all.arrows'));
  assert.ok(merged.complete);
  assert.deepEqual(merged.columns, ['step', 'rank', 'dropped']);
  assert.equal(merged.meta.source, 'listen');
  assert.equal(merged.meta.world, 2);
  const b = merged.batch;
  assert.equal(b.length, 5500);
  const ranks = [...b.rank!];
  assert.equal(ranks.filter((r) => r === 0).length, 3000);
  assert.equal(ranks.filter((r) => r === 1).length, 2500);
  // Each rank's rows, in order, are exactly that rank's trace.
  for (const rank of [0, 1]) {
    const src = readAll(p(`r${rank}.arrows`)).batch;
    const rows = ranks.flatMap((r, i) => (r === rank ? [i] : []));
    const lk = 4 * 2;
    assert.deepEqual(
      rows.map((i) => b.seq[i]),
      [...src.seq],
    );
    assert.deepEqual(
      rows.map((i) => b.step![i]),
      [...src.step!],
    );
    assert.deepEqual(
      rows.flatMap((i) => [...b.experts.subarray(i * lk, i * lk + lk)]),
      [...src.experts],
    );
  }
  const want = countsOf([readAll(p('r0.arrows')).batch, readAll(p('r1.arrows')).batch], 4, 8, 2);
  assert.deepEqual([...countsOf([b], 4, 8, 2)], [...want]);
  const out = l.stdout();
  assert.match(out, /5,500 tokens from 2 ranks/);
  assert.match(out, /^\s+0\s+\S+\s+\d+\s+3,000\s+0\s+29\s+1\s+cleanly$/m);
  assert.match(out, /^\s+1\s+\S+\s+\d+\s+2,500\s+0\s+24\s+1\s+cleanly$/m);
  assert.match(l.stderr(), /rank 0\/2 connected/);
  assert.match(l.stderr(), /rank 1 finished \(2,500 tokens\)/);
});

test('a wrong token, garbage, a disagreeing schema and a killed producer: one line each, the good rank goes on, nothing recorded is lost', async (ctx) => {
  const p = tmp(ctx);
  synthesize(p('good.arrows'), { ...SPEC, seed: 3 });
  synthesize(p('other.arrows'), { ...SPEC, experts: 16, seed: 4 });
  synthesize(p('deep.arrows'), { ...SPEC, layers: 2, seed: 6 });
  synthesize(p('killed-1.arrows'), { ...SPEC, tokens: 6000, seed: 7 });
  rebatch(p('killed-1.arrows'), p('killed.arrows'), 1000); // 6 record batches of 1000 tokens (~51 KB each)
  const l = await startListener([
    '--no-ui',
    '--port',
    '0',
    '--token',
    's3cret',
    '--record',
    p('all.arrows'),
    '--exit-when-idle',
    '0.5',
  ]);
  // The good rank connects first and holds its stream open while the bad ones come and go.
  const good = produce({
    connect: l.address,
    rank: 0,
    world: 6,
    token: 's3cret',
    trace: p('good.arrows'),
    holdMs: 4000,
  });
  await until(() => /rank 0\/6 connected/.test(l.stderr()), 10_000, 'rank 0');
  const wrong = produce({ connect: l.address, rank: 1, world: 6, token: 'guess', trace: p('good.arrows') });
  const garbage = produce({
    connect: l.address,
    rank: 2,
    world: 6,
    token: 's3cret',
    rawBase64: Buffer.from('hello world, this is not arrow at all '.repeat(50)).toString('base64'),
  });
  const experts = produce({ connect: l.address, rank: 3, world: 6, token: 's3cret', trace: p('other.arrows') });
  const layers = produce({ connect: l.address, rank: 4, world: 6, token: 's3cret', trace: p('deep.arrows') });
  // Killed inside its third record batch: the first two (2000 tokens) are complete.
  const m = traceMessages(p('killed.arrows'));
  const cut = m.schema.length + m.batches[0]!.length + m.batches[1]!.length + (m.batches[2]!.length >> 1);
  const killed = produce({
    connect: l.address,
    rank: 5,
    world: 6,
    token: 's3cret',
    trace: p('killed.arrows'),
    killAfterBytes: cut,
    chunk: 4096,
  });
  assert.equal(await wrong.exited, 3);
  assert.match(wrong.stdout(), /"ok":false,"error":"wrong token"/);
  assert.equal(await killed.exited, -1);
  for (const q of [garbage, experts, layers, good]) await q.exited;
  assert.equal(await good.exited, 0, good.stderr());
  const code = await l.exited;
  const err = l.stderr();
  assert.equal(code, 2, err);
  const lines = err.trim().split('\n');
  const about = (rank: number) =>
    lines.filter((x) => new RegExp(`rank ${rank}\\b`).test(x) && !/connected from/.test(x));
  assert.equal(about(1).length, 1, err);
  assert.match(about(1)[0]!, /^moescope listen: refused rank 1 \(.*\): wrong token$/);
  assert.equal(about(2).length, 1, err);
  assert.match(about(2)[0]!, /rank 2: not an Arrow IPC stream .*; connection closed$/);
  assert.equal(about(3).length, 1, err);
  assert.match(
    about(3)[0]!,
    /rank 3: its routing schema differs from rank 0's: 16 experts per layer, the others 8; connection closed$/,
  );
  assert.equal(about(4).length, 1, err);
  assert.match(
    about(4)[0]!,
    /rank 4: its routing schema differs from rank 0's: it routes MoE layers 0…1, the others 0…3 \(pipeline stages are not merged/,
  );
  assert.equal(about(5).length, 1, err);
  assert.match(
    about(5)[0]!,
    /rank 5 disconnected without end-of-stream \(\d[\d,]* tokens kept; the [\d,]+ bytes of its last, incomplete batch are lost\)/,
  );
  assert.ok(!/at .*\.js:\d+/.test(err), 'no stack trace');
  const merged = readAll(p('all.arrows'));
  const ranks = [...merged.batch.rank!];
  assert.equal(ranks.filter((r) => r === 0).length, 3000, 'every token of the good rank');
  assert.deepEqual([...new Set(ranks)].sort(), [0, 5]);
  const kept = Number(
    /rank 5 disconnected without end-of-stream \(([\d,]+) tokens kept/.exec(err)![1]!.replace(/,/g, ''),
  );
  assert.equal(kept, 2000, 'the killed rank’s complete batches are kept');
  assert.equal(ranks.filter((r) => r === 5).length, kept);
  // …and they are exactly its first `kept` tokens.
  const src = openTrace(p('killed.arrows')).readRange(0, kept);
  const rows = ranks.flatMap((r, i) => (r === 5 ? [i] : []));
  assert.deepEqual(
    rows.map((i) => merged.batch.tokenId[i]),
    [...src.tokenId],
  );
  assert.match(l.stdout(), /connection problems \(see the lines above\); exit status 2/);
});

test('the token is checked before any data is read; a hello over 4 KiB, a bad hello and a duplicate rank are refused', async (ctx) => {
  const p = tmp(ctx);
  synthesize(p('a.arrows'), { ...SPEC, tokens: 500 });
  const l = await startListener(['--no-ui', '--port', '0', '--record', p('all.arrows')], { MOESCOPE_TOKEN: 'tok' });
  ctx.after(() => l.child.kill('SIGKILL'));
  // Eager: hello with the wrong token and the whole stream right behind it, in one go.
  const eager = produce({ connect: l.address, rank: 0, world: 1, token: 'nope', trace: p('a.arrows'), eager: true });
  await eager.exited;
  await until(() => /refused rank 0 .*wrong token/.test(l.stderr()), 5000, 'refusal');
  const big = produce({
    connect: l.address,
    rank: 0,
    world: 1,
    helloLine: JSON.stringify({ moescope: 1, token: 'tok', rank: 0, pad: 'x'.repeat(5000) }),
  });
  assert.equal(await big.exited, 3);
  assert.match(big.stdout(), /hello line longer than 4096 bytes/);
  const notjson = produce({ connect: l.address, rank: 0, world: 1, helloLine: 'GET / HTTP/1.1' });
  assert.equal(await notjson.exited, 3);
  assert.match(notjson.stdout(), /not a moescope hello/);
  const first = produce({ connect: l.address, rank: 0, world: 1, token: 'tok', trace: p('a.arrows'), holdMs: 5000 });
  await until(() => /rank 0\/1 connected/.test(l.stderr()), 5000, 'rank 0');
  const dup = produce({ connect: l.address, rank: 0, world: 1, token: 'tok', trace: p('a.arrows') });
  assert.equal(await dup.exited, 3);
  assert.match(dup.stdout(), /rank 0 is already connected/);
  assert.equal(await first.exited, 0);
  l.child.kill('SIGTERM');
  assert.equal(await l.exited, 2); // the refusals count as problems
  const merged = readAll(p('all.arrows'));
  assert.equal(merged.batch.length, 500, 'only the accepted connection was recorded');
  assert.ok(merged.complete, 'SIGTERM finishes the trace cleanly');
});

test('unix socket: producers connect, a reconnecting rank continues; a stale socket is replaced, a regular file never', async (ctx) => {
  const p = tmp(ctx);
  synthesize(p('a.arrows'), { ...SPEC, tokens: 1200 });
  // What the rank sends when it comes back: new tokens (re-sending the same batch would be a duplicate, which
  // every reader of the recorded trace refuses).
  synthesize(p('a2.arrows'), { ...SPEC, tokens: 1200, seed: SPEC.seed + 1 });
  writeFileSync(p('file.sock'), 'not a socket');
  const bad = await startListener(['--no-ui', '--unix', p('file.sock')]).catch((e: Error) => e);
  assert.ok(bad instanceof Error);
  assert.match(bad.message, /moescope: --unix .*file\.sock exists and is not a socket; not replacing it/);
  const sock = p('l.sock');
  const l = await startListener(['--no-ui', '--unix', sock, '--record', p('all.arrows'), '--exit-when-idle', '3']);
  assert.equal(l.address, `unix:${sock}`);
  // Rank 0 dies without end-of-stream after its first batch… then comes back and sends everything.
  const a = produce({ connect: l.address, rank: 0, world: 1, trace: p('a.arrows'), eos: false });
  assert.equal(await a.exited, 0, a.stdout() + a.stderr());
  await until(() => /rank 0 disconnected without end-of-stream/.test(l.stderr()), 5000, 'disconnect');
  const b = produce({ connect: l.address, rank: 0, world: 1, trace: p('a2.arrows') });
  assert.equal(await b.exited, 0, b.stdout() + b.stderr());
  assert.equal(await l.exited, 2);
  assert.match(l.stderr(), /rank 0\/1 connected from .* again/);
  assert.equal(readAll(p('all.arrows')).batch.length, 2400);
  assert.ok(!existsSync(sock), 'the socket is removed on exit');
});

test('a non-loopback address needs a token: one line, exit 2', async () => {
  const l = await startListener(['--no-ui', '--host', '0.0.0.0', '--port', '0']).catch((e: Error) => e);
  assert.ok(l instanceof Error);
  assert.match(
    l.message,
    /exited 2 .*moescope: --host 0\.0\.0\.0 is not a loopback address: anyone who can reach it could send data, so give --token T \(or MOESCOPE_TOKEN\)\n$/s,
  );
});
