/**
 * `import megatron` with the logits sidecar that router_trace.py writes with --moe-routing-trace-capture-logits:
 * logits_rank{r}.bin holds bfloat16 [num_tokens, experts] per record at logit_offset / logit_bytes. The logits are
 * chosen exactly representable in bfloat16 and float16 (k/8), so the stored values must equal them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { F16_TO_F32 } from '../../src/core/f16.js';
import { UserError } from '../../src/core/errors.js';
import { openTrace } from '../../src/trace/index.js';
import { importTrace } from '../../src/trace/import/index.js';
import { tempDir } from './helpers.js';

/** bfloat16 bytes of exactly representable values: the top half of each float32. */
function bf16(values: number[]): Buffer {
  const f = Float32Array.from(values);
  const u = new Uint32Array(f.buffer);
  const out = Buffer.alloc(values.length * 2);
  u.forEach((bits, i) => out.writeUInt16LE(bits >>> 16, i * 2));
  return out;
}

/** A rank's trace directory: JSONL records with logit fields and the sidecar, as router_trace.py lays them out. */
function writeRank(
  dir: string,
  rank: number,
  steps: { layer: number; rows: number[][]; logits: number[][] | null }[][],
) {
  mkdirSync(dir, { recursive: true });
  const jsonl = join(dir, `router_trace_rank${rank}.jsonl`);
  const side = join(dir, `logits_rank${rank}.bin`);
  writeFileSync(jsonl, '');
  writeFileSync(side, Buffer.alloc(0));
  let offset = 0;
  steps.forEach((records, step) => {
    for (const r of records) {
      const rec: Record<string, unknown> = {
        step,
        stage: 'pre_dispatch',
        block: 'decoder',
        layer: r.layer,
        rank,
        num_tokens: r.rows.length,
        topk: 2,
        top_indices: r.rows,
      };
      if (r.logits) {
        const bytes = bf16(r.logits.flat());
        appendFileSync(side, bytes);
        Object.assign(rec, {
          logit_offset: offset,
          logit_bytes: bytes.length,
          logit_shape: [r.logits.length, r.logits[0]!.length],
        });
        offset += bytes.length;
      }
      appendFileSync(jsonl, JSON.stringify(rec) + '\n');
    }
  });
  return jsonl;
}

const L8 = (t: number, l: number) => Array.from({ length: 4 }, (_, e) => ((t * 7 + l * 3 + e * 5) % 33) / 8 - 2);

test('megatron logits sidecar: bfloat16 logits stored per token and layer; E from their width; a record without them is NaN', async (ctx) => {
  const tmp = tempDir(ctx);
  const r0 = writeRank(tmp.path('r0'), 0, [
    [
      {
        layer: 1,
        rows: [
          [0, 1],
          [2, 3],
        ],
        logits: [L8(0, 1), L8(1, 1)],
      },
      {
        layer: 3,
        rows: [
          [1, 0],
          [3, 2],
        ],
        logits: [L8(0, 3), L8(1, 3)],
      },
    ],
    [
      { layer: 1, rows: [[3, 0]], logits: [L8(2, 1)] },
      { layer: 3, rows: [[0, 2]], logits: null }, // the gating call failed: no logit fields
    ],
  ]);
  const r1 = writeRank(tmp.path('r1'), 1, [
    [
      { layer: 1, rows: [[1, 2]], logits: [L8(3, 1)] },
      { layer: 3, rows: [[2, 1]], logits: [L8(3, 3)] },
    ],
  ]);
  const out = tmp.path('m.arrows');
  const r = await importTrace('megatron', [r0, r1], out, {});
  assert.ok(
    r.notes.some((n) => /1 of 6 records have no logits/.test(n)),
    r.notes.join('\n'),
  );
  const t = openTrace(out);
  assert.deepEqual(t.schema, { layers: [1, 3], experts: 4, topK: 2, scoring: 'softmax', hasLogits: true });
  const b = t.readRange(0, t.tokenCount);
  t.close();
  // Token order: step 0 rank 0 (2 tokens), step 0 rank 1, step 1 rank 0.
  const want = [
    [L8(0, 1), L8(0, 3)],
    [L8(1, 1), L8(1, 3)],
    [L8(3, 1), L8(3, 3)],
    [L8(2, 1), null],
  ];
  want.forEach((layers, i) =>
    layers.forEach((row, l) => {
      const got = [...b.logits!.subarray((i * 2 + l) * 4, (i * 2 + l + 1) * 4)].map((h) => F16_TO_F32[h]!);
      if (row === null) assert.ok(got.every(Number.isNaN), `token ${i} layer ${l}: NaN`);
      else assert.deepEqual(got, row, `token ${i} layer ${l}`);
    }),
  );
  // --no-logits keeps the selection only.
  await importTrace('megatron', [r0, r1], out, { logits: false });
  const t2 = openTrace(out);
  assert.equal(t2.schema.hasLogits, false);
  assert.equal(t2.schema.experts, 4);
  t2.close();
});

test('megatron logits sidecar: missing, short or inconsistent → one error naming file and line, no trace', async (ctx) => {
  const tmp = tempDir(ctx);
  const good = writeRank(tmp.path('g'), 0, [[{ layer: 1, rows: [[0, 1]], logits: [L8(0, 1)] }]]);
  const line = (o: object) =>
    JSON.stringify({
      step: 0,
      stage: 'pre_dispatch',
      block: 'decoder',
      layer: 1,
      rank: 0,
      num_tokens: 1,
      topk: 2,
      top_indices: [[0, 1]],
      ...o,
    }) + '\n';
  const cases: [string, string, RegExp, (dir: string) => void][] = [
    [
      'nosidecar',
      line({ logit_offset: 0, logit_bytes: 8, logit_shape: [1, 4] }),
      /logits_rank0\.bin: no such file/,
      () => {},
    ],
    [
      'short',
      line({ logit_offset: 4, logit_bytes: 8, logit_shape: [1, 4] }),
      /router_trace_rank0\.jsonl:1: logits at bytes 4…12 are beyond the 8 bytes/,
      (d) => writeFileSync(join(d, 'logits_rank0.bin'), Buffer.alloc(8)),
    ],
    [
      'bytes',
      line({ logit_offset: 0, logit_bytes: 6, logit_shape: [1, 4] }),
      /"logit_bytes" 6 is not 1 × 4 bfloat16 values/,
      () => {},
    ],
    [
      'shape',
      line({ logit_offset: 0, logit_bytes: 8, logit_shape: [2, 2] }),
      /"logit_shape" must be \[num_tokens = 1, experts\]/,
      () => {},
    ],
    [
      'width',
      line({ logit_offset: 0, logit_bytes: 8, logit_shape: [1, 4] }) +
        line({ layer: 2, logit_offset: 8, logit_bytes: 12, logit_shape: [1, 6] }),
      /:2: logits of 6 experts, earlier records have 4/,
      (d) => writeFileSync(join(d, 'logits_rank0.bin'), Buffer.alloc(20)),
    ],
  ];
  for (const [name, body, re, setup] of cases) {
    const dir = tmp.path(name);
    mkdirSync(dir);
    const f = join(dir, 'router_trace_rank0.jsonl');
    writeFileSync(f, body);
    setup(dir);
    const out = tmp.path(`${name}.arrows`);
    await assert.rejects(
      () => importTrace('megatron', [f], out, {}),
      (e: unknown) => e instanceof UserError && re.test(e.message),
      name,
    );
    assert.equal(existsSync(out), false);
  }
  await assert.rejects(
    () => importTrace('megatron', [good], tmp.path('x.arrows'), { experts: 8 }),
    /--experts 8 differs from the 4 experts of the records' logits/,
  );
});
