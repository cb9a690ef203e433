/**
 * `import npy`: router logits saved with np.save, shape [tokens, layers, experts] (or [tokens, experts]),
 * float16/32/64 little-endian, C order. The selection is selectTopK of each token's logits at the file's
 * precision. Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 */
import { closeSync, fstatSync } from 'node:fs';
import type { RoutingSchema, Scoring } from '../../core/batch.js';
import { F16_TO_F32, f32ToF16 } from '../../core/f16.js';
import { UserError } from '../../core/errors.js';
import { allocBatch } from '../../core/batch.js';
import { preadFully } from '../ipc.js';
import { selectTopKInto } from '../../core/topk.js';
import { defaultBatchTokens } from '../writer.js';
import { validateSchema } from '../arrow-schema.js';
import { openInput } from './lines.js';
import { importStream, type ImportEvent, type ImportedStream } from './import-stream.js';

export interface NpyOptions {
  topK: number;
  scoring: Scoring;
  /** Store the logits in the trace (default true). */
  logits: boolean;
  /** Model layer id of each layer (default 0…L-1). */
  layerIds?: number[];
}

interface NpyHeader {
  dtype: 'f2' | 'f4' | 'f8';
  shape: number[];
  dataOffset: number;
}

const MAGIC = '\x93NUMPY';

export function parseNpyHeader(bytes: Buffer, file: string): NpyHeader {
  const fail = (why: string): never => {
    throw new UserError(`${file}: ${why}`);
  };
  if (bytes.length < 10 || bytes.toString('latin1', 0, 6) !== MAGIC) fail('not a NumPy .npy file (bad magic)');
  const major = bytes[6]!;
  const lenBytes = major === 1 ? 2 : major === 2 || major === 3 ? 4 : fail(`unsupported .npy version ${major}`);
  const hlen = lenBytes === 2 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = 8 + lenBytes;
  if (bytes.length < start + hlen) fail('header cut short');
  const h = bytes.toString(major === 3 ? 'utf8' : 'latin1', start, start + hlen);
  const descr = /'descr':\s*'([^']*)'/.exec(h)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(h)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(h)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    fail(`unreadable header ${JSON.stringify(h.trim())}`);
  const m = /^([<|=])f([248])$/.exec(descr!);
  if (!m) fail(`dtype ${descr} is not supported: need little-endian float16, float32 or float64 ('<f2', '<f4', '<f8')`);
  if (fortran === 'True') fail('Fortran-order arrays are not supported: save with np.ascontiguousarray(x)');
  const shape = shapeText!
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '')
    .map(Number);
  if (shape.length < 2 || shape.length > 3 || shape.some((d) => !Number.isInteger(d) || d < 0))
    fail(`shape (${shapeText}) must be [tokens, layers, experts] or [tokens, experts]`);
  return { dtype: `f${m![2]}` as NpyHeader['dtype'], shape, dataOffset: start + hlen };
}

export function npyStream(files: string[], opts: NpyOptions): ImportedStream {
  if (files.length !== 1) throw new UserError(`import npy takes one .npy file, got ${files.length}`);
  return importStream(files[0]!, npyEvents(files[0]!, opts), []);
}

function* npyEvents(file: string, opts: NpyOptions): Generator<ImportEvent, void, undefined> {
  const fd = openInput(file);
  try {
    const head = Buffer.alloc(65536);
    const got = preadFully(fd, head, 0);
    const h = parseNpyHeader(head.subarray(0, got), file);
    const [T, L, E] = h.shape.length === 3 ? (h.shape as [number, number, number]) : [h.shape[0]!, 1, h.shape[1]!];
    const item = Number(h.dtype.slice(1));
    const need = h.dataOffset + T * L * E * item;
    const size = fstatSync(fd).size;
    if (size < need)
      throw new UserError(
        `${file}: truncated: shape [${h.shape.join(', ')}] needs ${need} bytes, the file has ${size}`,
      );
    if (E < 1 || E > 65536) throw new UserError(`${file}: ${E} experts per layer is outside 1…65536`);
    if (!(opts.topK >= 1 && opts.topK <= E))
      throw new UserError(`--top-k must be within 1…${E} for this file, got ${opts.topK}`);
    const layers = opts.layerIds ?? Array.from({ length: L }, (_, i) => i);
    if (layers.length !== L) throw new UserError(`--layer-ids has ${layers.length} ids but ${file} has ${L} layers`);
    const schema: RoutingSchema = {
      layers,
      experts: E,
      topK: opts.topK,
      scoring: opts.scoring,
      hasLogits: opts.logits,
    };
    validateSchema(schema);
    if (T === 0) throw new UserError(`${file} holds no tokens (shape [0, …]): nothing to import`); // as import jsonl refuses an empty file
    yield { kind: 'open', schema, meta: { model: null, tokenizer: null, devices: [], source: 'import:npy' } };
    yield* convert(fd, file, h, T, L, E, schema);
  } finally {
    closeSync(fd);
  }
}

function* convert(
  fd: number,
  file: string,
  h: NpyHeader,
  T: number,
  L: number,
  E: number,
  schema: RoutingSchema,
): Generator<ImportEvent, void, undefined> {
  const K = schema.topK;
  const item = Number(h.dtype.slice(1));
  const perToken = L * E * item;
  const C = defaultBatchTokens(schema);
  const raw = Buffer.allocUnsafeSlow(C * perToken);
  const values = new Float64Array(E);
  const ids = new Uint16Array(K);
  const w = new Float32Array(K);
  for (let start = 0; start < T; start += C) {
    const n = Math.min(C, T - start);
    preadFully(fd, raw.subarray(0, n * perToken), h.dataOffset + start * perToken);
    // Offsets into a fresh slow buffer stay aligned for any item size.
    const src =
      h.dtype === 'f2'
        ? new Uint16Array(raw.buffer, raw.byteOffset, n * L * E)
        : h.dtype === 'f4'
          ? new Float32Array(raw.buffer, raw.byteOffset, n * L * E)
          : new Float64Array(raw.buffer, raw.byteOffset, n * L * E);
    const b = allocBatch(schema, n);
    b.tokenId.fill(-1);
    for (let i = 0; i < n; i++) {
      const t = start + i;
      b.pos[i] = t;
      for (let l = 0; l < L; l++) {
        const o = (i * L + l) * E;
        for (let e = 0; e < E; e++) {
          const v = h.dtype === 'f2' ? F16_TO_F32[src[o + e]!]! : src[o + e]!;
          if (!Number.isFinite(v)) throw new UserError(`${file}: token ${t}, layer ${l}, expert ${e}: logit is ${v}`);
          values[e] = v;
        }
        selectTopKInto(values, 0, E, K, schema.scoring, ids, w, 0);
        for (let k = 0; k < K; k++) {
          b.experts[(i * L + l) * K + k] = ids[k]!;
          b.weights[(i * L + l) * K + k] = f32ToF16(w[k]!);
        }
        if (b.logits) {
          if (h.dtype === 'f2') b.logits.set((src as Uint16Array).subarray(o, o + E), o);
          else for (let e = 0; e < E; e++) b.logits[o + e] = f32ToF16(values[e]!);
        }
      }
    }
    yield { kind: 'tokens', batch: b, firstToken: start, memory: [] };
  }
}
