/**
 * `moescope listen` with producers whose model's MoE layers differ in E and K (layer 0: 8 experts top-2, layer 1:
 * 4 experts top-1; docs/trace-format.md § Layers that differ in E or K): accepted and merged into one trace of that
 * schema, every rank's tokens kept, the no-UI summary over each layer's own experts; a rank whose layer has
 * another shape is refused in one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NO_EXPERT, type RoutingSchema } from '../../src/core/batch.js';
import { TraceWriter, openTrace } from '../../src/trace/index.js';
import { META, batches } from '../store/helpers.js';
import { produce, startListener, until } from './helpers.js';

const MIXED: RoutingSchema = {
  layers: [0, 1],
  experts: 8,
  topK: 2,
  layerExperts: [8, 4],
  layerTopK: [2, 1],
  scoring: 'softmax',
  hasLogits: false,
};
const UNIFORM: RoutingSchema = { layers: [0, 1], experts: 8, topK: 2, scoring: 'softmax', hasLogits: false };

function write(path: string, schema: RoutingSchema, n: number, seed: number): void {
  const w = TraceWriter.create(path, { schema, meta: META });
  const toks = Array.from({ length: n }, (_, t) => ({
    experts: [
      [(t * seed) % 8, (t * seed + 1) % 8],
      schema.layerExperts ? [(t + seed) % 4, NO_EXPERT] : [(t + seed) % 8, (t + seed + 1) % 8],
    ],
    weights: [[0.6, 0.4], schema.layerExperts ? [1, 0] : [0.6, 0.4]],
  }));
  for (const b of batches(schema, toks, 100)) w.write(b);
  w.close();
}

test('producers of a mixed-shape model are merged; a rank of another layer shape is refused in one line', async (ctx) => {
  const dir = mkdtempSync(join(tmpdir(), 'moescope-listen-mixed-'));
  ctx.after(() => rmSync(dir, { recursive: true, force: true }));
  const p = (n: string) => join(dir, n);
  write(p('r0.arrows'), MIXED, 300, 1);
  write(p('r1.arrows'), MIXED, 200, 3);
  write(p('r2.arrows'), UNIFORM, 100, 5);
  const l = await startListener(['--no-ui', '--port', '0', '--record', p('all.arrows'), '--exit-when-idle', '0.5']);
  // Rank 0 sets the stream's schema and stays connected while the others come.
  const r0 = produce({ connect: l.address, rank: 0, world: 3, trace: p('r0.arrows'), holdMs: 4000 });
  await until(() => /stream: /.test(l.stderr()), 10_000, 'rank 0 schema');
  const bad = produce({ connect: l.address, rank: 2, world: 3, trace: p('r2.arrows') });
  const r1 = produce({ connect: l.address, rank: 1, world: 3, trace: p('r1.arrows') });
  await bad.exited;
  for (const q of [r0, r1]) assert.equal(await q.exited, 0, `${q.stderr()} ${l.stderr()}`);
  await l.exited;
  assert.match(
    l.stderr(),
    /rank 2: its routing schema differs from rank 0's: its layer 1 routes over 8 experts top-2, the others' over 4 experts top-1; connection closed/,
  );
  const t = openTrace(p('all.arrows'));
  assert.deepEqual(
    [t.schema.layerExperts, t.schema.layerTopK],
    [
      [8, 4],
      [2, 1],
    ],
  );
  const b = t.readRange(0, t.tokenCount);
  t.close();
  assert.equal(b.length, 500);
  // Layer 1's own slot holds one of its 4 experts, its padding slot NO_EXPERT, in every merged row.
  for (let i = 0; i < b.length; i++) {
    assert.ok(b.experts[i * 4 + 2]! < 4);
    assert.equal(b.experts[i * 4 + 3], NO_EXPERT);
  }
  // The summary's layer 1 row lists only its own experts (4 of them, each a quarter of the load).
  const row = /^\s+1\s+(e\d .*?)\s{2,}\d/m.exec(l.stdout());
  assert.ok(row, l.stdout());
  const shown = [...row[1]!.matchAll(/e(\d+) ([\d.]+)%/g)].map((m) => Number(m[1]));
  assert.deepEqual(
    shown.sort((a, b) => a - b),
    [0, 1, 2, 3],
  );
});
