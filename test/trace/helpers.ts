/** Shared by the trace tests: deterministic batches, temp dirs. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RoutingBatch, RoutingSchema } from '../../src/core/batch.js';
import type { StreamMeta } from '../../src/core/stream.js';
import { f32ToF16 } from '../../src/core/f16.js';

export const SCHEMA: RoutingSchema = { layers: [1, 3, 5], experts: 8, topK: 2, scoring: 'softmax', hasLogits: false };
export const META: StreamMeta = { model: 'test-model', routers: [], tokenizer: null, devices: ['cpu'], source: 'test' };

/** A batch of `n` tokens whose every value derives from (seed, token index): regenerable for comparison. */
export function makeBatch(
  schema: RoutingSchema,
  n: number,
  first: number,
  opts: { tags?: boolean } = {},
): RoutingBatch {
  const L = schema.layers.length;
  const lk = L * schema.topK;
  const le = L * schema.experts;
  const b: RoutingBatch = {
    length: n,
    seq: new Uint32Array(n),
    pos: new Uint32Array(n),
    tokenId: new Int32Array(n),
    token: [],
    isPrompt: new Uint8Array(n),
    tNs: new BigInt64Array(n),
    experts: new Uint16Array(n * lk),
    weights: new Uint16Array(n * lk),
    logits: schema.hasLogits ? new Uint16Array(n * le) : null,
    tag: opts.tags ? [] : null,
  };
  for (let i = 0; i < n; i++) {
    const t = first + i;
    b.seq[i] = Math.floor(t / 50);
    b.pos[i] = t % 50;
    b.tokenId[i] = ((t * 7919) % 50000) - 3;
    b.token.push(t % 5 === 0 ? `é${t}✓` : ` tok${t}`);
    b.isPrompt[i] = t % 50 < 10 ? 1 : 0;
    b.tNs[i] = 1_700_000_000_000_000_000n + BigInt(t) * 1_000_003n;
    for (let j = 0; j < lk; j++) {
      b.experts[i * lk + j] = (t * 31 + j * 17) % schema.experts;
      b.weights[i * lk + j] = f32ToF16(((t + j) % 97) / 97);
    }
    if (b.logits) for (let j = 0; j < le; j++) b.logits[i * le + j] = f32ToF16(Math.sin(t + j) * 4);
    if (b.tag) b.tag.push(t % 3 === 0 ? null : t % 3 === 1 ? 'code' : 'prose');
  }
  return b;
}

/** A fresh temp directory, removed when the test `t` ends. */
export function tempDir(t: { after: (fn: () => void) => void }): { dir: string; path: (name: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-trace-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, path: (name) => join(dir, name) };
}

/** Plain arrays of a batch, for deepEqual. */
export function plain(b: RoutingBatch) {
  return {
    length: b.length,
    seq: [...b.seq],
    pos: [...b.pos],
    tokenId: [...b.tokenId],
    token: [...b.token],
    isPrompt: [...b.isPrompt],
    tNs: [...b.tNs],
    experts: [...b.experts],
    weights: [...b.weights],
    logits: b.logits ? [...b.logits] : null,
    // A batch whose tags are all null reads back with no tag column (null): the same data, so compare it so.
    tag: b.tag?.some((x) => x !== null) ? [...b.tag] : null,
    ...(b.step ? { step: [...b.step] } : {}),
    ...(b.rank ? { rank: [...b.rank] } : {}),
    ...(b.dropped ? { dropped: [...b.dropped] } : {}),
  };
}

/** Adds step / rank / dropped to a batch: steps of 7 tokens (NO_STEP on token 3), rank `rank`, drops every 10th. */
export function withColumns(b: RoutingBatch, first: number, rank: number, noStepAt = 3): RoutingBatch {
  const n = b.length;
  b.step = new Uint32Array(n);
  b.rank = new Uint16Array(n).fill(rank);
  b.dropped = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const t = first + i;
    b.step[i] = t === noStepAt ? 0xffffffff : Math.floor(t / 7);
    b.dropped[i] = t % 10 === 9 ? (t % 4) + 1 : 0;
  }
  return b;
}

/** A .npy file as np.save writes it (v1.0 header padded so the data starts 64-aligned). */
export function npy(
  dtype: '<f2' | '<f4' | '<f8' | '<i4',
  shape: number[],
  data: ArrayBufferView,
  fortran = false,
): Buffer {
  let header = `{'descr': '${dtype}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([
    pre,
    Buffer.from(header, 'latin1'),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  ]);
}
