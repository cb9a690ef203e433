/** The incremental Arrow IPC stream parser: any split of the bytes gives the same batches; bad bytes are one error. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { IpcStreamParser, ProtocolError, type StreamEvent } from '../../src/listen/stream-parser.js';
import { RankLoads } from '../../src/stats/rank-loads.js';
import { TraceWriter, openTrace } from '../../src/trace/index.js';
import { META, SCHEMA, makeBatch, plain, tempDir, withColumns } from '../trace/helpers.js';
import { countsOf } from './helpers.js';

function sample(ctx: { after: (fn: () => void) => void }): { bytes: Buffer; path: string } {
  const tmp = tempDir(ctx);
  const path = tmp.path('s.arrows');
  const w = TraceWriter.create(path, {
    schema: { ...SCHEMA, hasLogits: true },
    meta: META,
    batchTokens: 7,
    columns: ['step', 'dropped'],
  });
  w.write(withColumns(makeBatch({ ...SCHEMA, hasLogits: true }, 30, 0, { tags: true }), 0, 0));
  w.writeMemory({ tNs: 5n, gpus: null, hostRssBytes: 1, ortBytes: null });
  w.write(makeBatch({ ...SCHEMA, hasLogits: true }, 5, 30));
  w.close();
  return { bytes: readFileSync(path), path };
}

function feed(bytes: Buffer, sizes: (i: number) => number): StreamEvent[] {
  const p = new IpcStreamParser('test');
  const out: StreamEvent[] = [];
  let i = 0;
  for (let at = 0; at < bytes.length; i++) {
    const n = Math.max(1, sizes(i));
    out.push(...p.push(bytes.subarray(at, at + n)));
    at += n;
  }
  assert.ok(p.complete);
  assert.equal(p.pendingBytes, 0);
  return out;
}

test('parser: byte by byte, in odd chunks or all at once, the same schema, batches, memory samples and EOS', (ctx) => {
  const { bytes, path } = sample(ctx);
  const t = openTrace(path);
  const want = [...t.batches()].map(plain);
  for (const sizes of [() => 1, (i: number) => (i * 7919) % 613, () => bytes.length]) {
    const ev = feed(bytes, sizes);
    assert.equal(ev[0]!.kind, 'schema');
    assert.equal(ev[ev.length - 1]!.kind, 'eos');
    const batches = ev.flatMap((e) => (e.kind === 'batch' ? [e] : []));
    assert.deepEqual(
      batches.map((b) => plain(b.batch)),
      want,
    );
    assert.deepEqual(
      batches.flatMap((b, i) => b.memory.map((m) => [i, m.row, m.sample.tNs])),
      [[4, 2, 5n]],
    ); // token 30 = batch 4 (7 rows each), row 2
  }
  t.close();
});

test('parser: garbage, oversized messages, a second schema and bytes after EOS are ProtocolErrors', (ctx) => {
  const { bytes } = sample(ctx);
  const bad = (b: Buffer, re: RegExp, max?: number) =>
    assert.throws(
      () => new IpcStreamParser('rank 9', max).push(b),
      (e: unknown) => e instanceof ProtocolError && re.test(e.message),
    );
  bad(Buffer.from('GET / HTTP/1.1\r\n\r\n'), /rank 9: not an Arrow IPC stream \(message header of \d+ bytes\)/);
  bad(
    Buffer.from([0xff, 0xff, 0xff, 0xff, 16, 0, 0, 0, ...new Array(16).fill(0x41)]),
    /unreadable message header|not an Arrow|does not start with a schema message/,
  );
  const schemaEnd = 8 + bytes.readInt32LE(4);
  bad(Buffer.concat([bytes.subarray(0, schemaEnd), bytes.subarray(0, schemaEnd)]), /a second schema message/);
  bad(bytes, /exceeds the limit of 64/, 64);
  bad(Buffer.concat([bytes, Buffer.from([1, 2, 3])]), /data after the end-of-stream marker/);
  // Expert ids ≥ E in an otherwise well-formed batch never reach a consumer: a 16-expert batch under an 8-expert schema.
  const tmp = tempDir(ctx);
  const wide = { ...SCHEMA, experts: 16 };
  const w = TraceWriter.create(tmp.path('w.arrows'), { schema: wide, meta: META });
  w.write(makeBatch(wide, 20, 0));
  w.close();
  const w8 = TraceWriter.create(tmp.path('n.arrows'), { schema: SCHEMA, meta: META });
  w8.close();
  const narrow = readFileSync(tmp.path('n.arrows'));
  const wideBytes = readFileSync(tmp.path('w.arrows'));
  const mixed = Buffer.concat([
    narrow.subarray(0, 8 + narrow.readInt32LE(4)),
    wideBytes.subarray(8 + wideBytes.readInt32LE(4)),
  ]);
  bad(mixed, /rank 9: RoutingBatch has expert id 15 ≥ 8 experts|expert id/);
});

test('RankLoads: per-rank counts of a merged stream sum to the stream’s counts', () => {
  const a = withColumns(makeBatch(SCHEMA, 40, 0), 0, 2);
  const b = withColumns(makeBatch(SCHEMA, 25, 40), 40, 0);
  const r = new RankLoads(3, 8, 2);
  r.add(a);
  r.add(b);
  assert.deepEqual(
    r.ranks().map((x) => [x.rank, x.tokens]),
    [
      [0, 25],
      [2, 40],
    ],
  );
  assert.deepEqual([...r.total()], [...countsOf([a, b], 3, 8, 2)]);
  assert.deepEqual([...r.ranks()[1]!.counts], [...countsOf([a], 3, 8, 2)]);
  const s = r.shares(2, 1);
  assert.ok(Math.abs(s.reduce((x, y) => x + y, 0) - 1) < 1e-12);
});
