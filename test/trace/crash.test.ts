import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sliceBatch, type RoutingSchema } from '../../src/core/batch.js';
import { TraceWriter, openTrace, type TraceReader } from '../../src/trace/index.js';
import { META, SCHEMA, makeBatch, plain, tempDir } from './helpers.js';

const CHILD = fileURLToPath(new URL('./record-child.js', import.meta.url));
const CHILD_SCHEMA: RoutingSchema = { ...SCHEMA, hasLogits: true };

/** Every row of the trace equals the deterministic tokens the recorder wrote, from token 0 on. */
function assertPrefixIntact(t: TraceReader, schema: RoutingSchema, tags: boolean) {
  const expected = makeBatch(schema, t.tokenCount, 0, { tags });
  let at = 0;
  for (const b of t.batches()) {
    assert.deepEqual(plain(b), plain(sliceBatch(expected, schema, at, at + b.length)));
    at += b.length;
  }
  assert.equal(at, t.tokenCount);
}

test('a trace cut anywhere reads every complete batch and says what was cut', (ctx) => {
  const tmp = tempDir(ctx);
  const path = tmp.path('full.arrows');
  const w = TraceWriter.create(path, { schema: SCHEMA, meta: META, batchTokens: 40 });
  const ends: number[] = [w.bytesWritten]; // byte offset after the schema, then after each batch
  for (let i = 0; i < 5; i++) {
    w.write(makeBatch(SCHEMA, 40, i * 40));
    ends.push(w.bytesWritten);
  }
  w.close();
  const size = w.bytesWritten;
  const lastStart = ends[4]!;
  const lastEnd = ends[5]!;
  const cases: [number, number, boolean, { rowsLost: number | null; bytesMissing: number | null } | null][] = [
    // [cut at byte, tokens readable, complete, truncation]
    [size, 200, true, null],
    [size - 8, 200, false, null], // end-of-stream marker missing: interrupted between batches
    [size - 3, 200, false, { rowsLost: null, bytesMissing: null }], // inside the marker
    [lastStart, 160, false, null],
    [lastStart + 5, 160, false, { rowsLost: null, bytesMissing: null }], // inside the framing
    [lastStart + 40, 160, false, { rowsLost: null, bytesMissing: null }], // inside the flatbuffer header
    [lastEnd - 1, 160, false, { rowsLost: 40, bytesMissing: 1 }], // inside the body
    [
      Math.floor((lastStart + lastEnd) / 2) + 50,
      160,
      false,
      { rowsLost: 40, bytesMissing: lastEnd - (Math.floor((lastStart + lastEnd) / 2) + 50) },
    ],
    [ends[1]! + 1500, 40, false, { rowsLost: 40, bytesMissing: ends[2]! - ends[1]! - 1500 }],
  ];
  for (const [cut, tokens, complete, trunc] of cases) {
    const p = tmp.path(`cut-${cut}.arrows`);
    copyFileSync(path, p);
    truncateSync(p, cut);
    const t = openTrace(p);
    assert.equal(t.tokenCount, tokens, `cut at ${cut}`);
    assert.equal(t.complete, complete, `cut at ${cut}`);
    if (trunc === null) assert.equal(t.truncated, null, `cut at ${cut}`);
    else {
      assert.ok(t.truncated, `cut at ${cut} reported`);
      assert.equal(t.truncated.rowsLost, trunc.rowsLost, `rows lost, cut at ${cut}`);
      assert.equal(t.truncated.bytesMissing, trunc.bytesMissing, `bytes missing, cut at ${cut}`);
      assert.equal(t.truncated.atByte + t.truncated.bytesPresent, cut);
    }
    assertPrefixIntact(t, SCHEMA, false);
    t.close();
  }
});

/** Starts the recorder child; resolves with it and a getter of the last token count it reported. */
function startRecorder(path: string, flag?: string) {
  const child = spawn(process.execPath, [CHILD, path, ...(flag ? [flag] : [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let reported = 0;
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    if (lines.length) reported = Number(lines[lines.length - 1]);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
    (resolve) => child.on('close', (code, signal) => resolve({ code, signal })), // after stdout drained
  );
  return { child, exited, reported: () => reported };
}

async function waitFor(cond: () => boolean, ms: number) {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('SIGKILL mid-recording: every complete batch reads back, and the reader says the trace was cut', async (ctx) => {
  const tmp = tempDir(ctx);
  const path = tmp.path('killed.arrows');
  const rec = startRecorder(path);
  // Let it record for a while: several full (64-token) and timer (100 ms) flushes.
  await waitFor(() => rec.reported() >= 700, 20_000);
  rec.child.kill('SIGKILL');
  const { signal } = await rec.exited;
  assert.equal(signal, 'SIGKILL');
  const reported = rec.reported();
  const t = openTrace(path);
  assert.equal(t.complete, false, 'no end-of-stream marker after SIGKILL');
  assert.ok(t.batchCount >= 10, `batches ${t.batchCount}`);
  // At most the last flush interval's tokens (and whatever was written after the last report) are missing.
  assert.ok(t.tokenCount <= reported + 7 && t.tokenCount >= 500, `tokens ${t.tokenCount} of ${reported}`);
  assertPrefixIntact(t, CHILD_SCHEMA, true);
  assert.ok(t.memorySamples().length > 5);
  // Each batch goes out in one writev, so a kill leaves whole batches; a file cut inside the last batch
  // (a copy taken mid-write, a full disk) is reported with what was lost.
  const cutPath = tmp.path('killed-cut.arrows');
  const bytes = readFileSync(path);
  writeFileSync(cutPath, bytes.subarray(0, bytes.byteLength - 100));
  const c = openTrace(cutPath);
  assert.ok(c.truncated && c.truncated.rowsLost! > 0 && c.truncated.bytesMissing === 100);
  assert.equal(c.tokenCount, t.tokenCount - c.truncated.rowsLost!);
  assertPrefixIntact(c, CHILD_SCHEMA, true);
  t.close();
  c.close();
});

test('SIGTERM with closeOnExit finishes the file: complete, nothing lost', async (ctx) => {
  const tmp = tempDir(ctx);
  const path = tmp.path('term.arrows');
  const rec = startRecorder(path, '--handlers');
  await waitFor(() => rec.reported() >= 100, 20_000);
  rec.child.kill('SIGTERM');
  const { signal } = await rec.exited;
  assert.equal(signal, 'SIGTERM', 'the signal is re-raised after closing, so the process still dies of it');
  const t = openTrace(path);
  assert.equal(t.complete, true);
  assert.equal(t.truncated, null);
  assert.ok(t.tokenCount >= rec.reported(), `${t.tokenCount} ≥ ${rec.reported()}`);
  assertPrefixIntact(t, CHILD_SCHEMA, true);
  t.close();
  assert.ok(existsSync(path));
});
