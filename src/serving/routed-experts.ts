/**
 * The per-request routing payloads SGLang and vLLM return (docs/serving.md#per-request-routing), decoded into one
 * shape: rows × layers × k expert ids (Int32Array, −1 where a slot holds nothing).
 *
 *  - SGLang `meta_info.routed_experts`: base64 of the raw little-endian bytes of an int32 C-order array
 *    [seqlen − 1 − routed_experts_start_len, num_hidden_layers, num_experts_per_tok]
 *    (layers/moe/routed_experts_capturer.py; tokenizer_manager.py encodes with pybase64). The payload is flat, so
 *    layers × k must come from somewhere else; `routed_experts_dtype` (when a build sends it) names a narrower dtype.
 *  - vLLM `choices[].routed_experts`: base64 of an .npy file (np.save bytes; uint8 / uint16 / int32 …) of shape
 *    [num_tokens − 1, layers, k] (entrypoints/openai/completion/protocol.py); older builds send nested JSON lists,
 *    or split the prompt's rows into a top-level `prompt_routed_experts`; some send {encoding, dtype, shape, data}.
 */
import { UserError } from '../core/errors.js';

export interface RoutedExperts {
  rows: number;
  layers: number;
  topK: number;
  /** rows·layers·topK ids, row-major (row, layer, slot). */
  ids: Int32Array;
}

/** Largest payload accepted: 2^28 ids (1 GiB as int32) — far beyond any one request's rows × layers × k. */
const MAX_IDS = 1 << 28;

type IntDtype = 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64';
const DTYPE_BYTES: Record<IntDtype, number> = { int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8 };
/** numpy descr (little-endian or byte-order-free) → dtype. */
const NPY_DESCR: Record<string, IntDtype> = {
  '|i1': 'int8',
  '|u1': 'uint8',
  '<i2': 'int16',
  '<u2': 'uint16',
  '<i4': 'int32',
  '<u4': 'uint32',
  '<i8': 'int64',
};

function isIntDtype(s: unknown): s is IntDtype {
  return typeof s === 'string' && Object.hasOwn(DTYPE_BYTES, s);
}

/** Strict base64 (standard alphabet, padded or not): a lenient decoder would turn garbage into ids. */
function decodeBase64(s: string, what: string): Buffer {
  const t = s.trim();
  if (t.length % 4 === 1 || !/^[A-Za-z0-9+/]*={0,2}$/.test(t)) throw new UserError(`${what} is not base64`);
  if ((t.length * 3) / 4 > MAX_IDS * 4) throw new UserError(`${what} is too large (${t.length} base64 characters)`);
  return Buffer.from(t, 'base64');
}

/** Little-endian integers of `dtype` in `bytes` → Int32Array (values beyond int32 are refused). */
function intsFromBytes(bytes: Uint8Array, dtype: IntDtype, what: string): Int32Array {
  const size = DTYPE_BYTES[dtype];
  if (bytes.length % size !== 0)
    throw new UserError(`${what}: ${bytes.length} bytes is not a whole number of ${dtype} values`);
  const n = bytes.length / size;
  if (n > MAX_IDS) throw new UserError(`${what}: ${n} ids is more than one request can hold`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * size;
    let v: number;
    switch (dtype) {
      case 'int8':
        v = dv.getInt8(o);
        break;
      case 'uint8':
        v = dv.getUint8(o);
        break;
      case 'int16':
        v = dv.getInt16(o, true);
        break;
      case 'uint16':
        v = dv.getUint16(o, true);
        break;
      case 'int32':
        v = dv.getInt32(o, true);
        break;
      case 'uint32':
        v = dv.getUint32(o, true);
        break;
      case 'int64':
        v = Number(dv.getBigInt64(o, true));
        break;
    }
    if (v > 0x7fffffff || v < -1) throw new UserError(`${what}: value ${v} is not an expert id`);
    out[i] = v;
  }
  return out;
}

/** The bytes of an .npy file holding an integer array: its shape and values. */
function parseNpyInts(bytes: Uint8Array, what: string): { shape: number[]; ids: Int32Array } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY')
    throw new UserError(`${what} is not an .npy array (bad magic)`);
  const major = buf[6]!;
  if (major < 1 || major > 3) throw new UserError(`${what}: unsupported .npy version ${major}`);
  const lenBytes = major === 1 ? 2 : 4;
  const hlen = lenBytes === 2 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = 8 + lenBytes;
  if (buf.length < start + hlen) throw new UserError(`${what}: .npy header cut short`);
  const h = buf.toString(major === 3 ? 'utf8' : 'latin1', start, start + hlen);
  const descr = /'descr':\s*'([^']*)'/.exec(h)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(h)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(h)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    throw new UserError(`${what}: unreadable .npy header`);
  const dtype = NPY_DESCR[descr.replace(/^=/, '<')];
  if (!dtype) throw new UserError(`${what}: .npy dtype ${descr} is not a little-endian integer type`);
  if (fortran === 'True') throw new UserError(`${what}: Fortran-order .npy arrays are not supported`);
  const shape = shapeText
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '')
    .map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0))
    throw new UserError(`${what}: bad .npy shape (${shapeText})`);
  const n = shape.reduce((a, b) => a * b, 1);
  if (n > MAX_IDS) throw new UserError(`${what}: .npy shape (${shapeText}) is too large`);
  const data = bytes.subarray(start + hlen);
  if (data.length !== n * DTYPE_BYTES[dtype])
    throw new UserError(
      `${what}: .npy data holds ${data.length} bytes, shape (${shapeText}) of ${dtype} needs ${n * DTYPE_BYTES[dtype]}`,
    );
  return { shape, ids: intsFromBytes(data, dtype, what) };
}

function shaped(shape: number[], ids: Int32Array, what: string): RoutedExperts {
  if (shape.length !== 3) throw new UserError(`${what} has shape [${shape.join(', ')}], expected [tokens, layers, k]`);
  const [rows, layers, topK] = shape as [number, number, number];
  if (rows > 0 && (layers === 0 || topK === 0))
    throw new UserError(`${what} has shape [${shape.join(', ')}]: no layers or no experts per token`);
  return { rows, layers, topK, ids };
}

/** Nested JSON lists [rows][layers][k] of integer ids. */
function fromLists(v: unknown[], what: string): RoutedExperts {
  const rows = v.length;
  const first = v[0];
  const layers = Array.isArray(first) ? first.length : 0;
  const topK = Array.isArray(first) && Array.isArray(first[0]) ? (first[0] as unknown[]).length : 0;
  if (rows > 0 && (layers === 0 || topK === 0))
    throw new UserError(`${what}: expected nested lists [tokens][layers][k] of expert ids`);
  if (rows * layers * topK > MAX_IDS) throw new UserError(`${what} is too large`);
  const ids = new Int32Array(rows * layers * topK);
  let o = 0;
  for (let r = 0; r < rows; r++) {
    const row = v[r];
    if (!Array.isArray(row) || row.length !== layers)
      throw new UserError(
        `${what}: token ${r} has ${Array.isArray(row) ? row.length : 'no'} layers, the first has ${layers}`,
      );
    for (let l = 0; l < layers; l++) {
      const sel = row[l] as unknown;
      if (!Array.isArray(sel) || sel.length !== topK)
        throw new UserError(
          `${what}: token ${r} layer ${l} has ${Array.isArray(sel) ? sel.length : 'no'} ids, expected ${topK}`,
        );
      for (const id of sel) {
        if (!Number.isInteger(id) || (id as number) < -1 || (id as number) > 0x7fffffff)
          throw new UserError(`${what}: token ${r} layer ${l} holds ${JSON.stringify(id)}, not an expert id`);
        ids[o++] = id as number;
      }
    }
  }
  return { rows, layers, topK, ids };
}

/** A vLLM routed-experts value in any of its encodings. */
export function decodeVllmRouted(v: unknown, what: string): RoutedExperts {
  if (typeof v === 'string') {
    const p = parseNpyInts(decodeBase64(v, what), what);
    return shaped(p.shape, p.ids, what);
  }
  if (Array.isArray(v)) return fromLists(v, what);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (o.encoding !== 'base64' || typeof o.data !== 'string' || !Array.isArray(o.shape) || !isIntDtype(o.dtype))
      throw new UserError(`${what}: expected {encoding: "base64", dtype, shape, data}`);
    const shape = o.shape.map(Number);
    if (shape.some((d) => !Number.isSafeInteger(d) || d < 0))
      throw new UserError(`${what}: bad shape ${JSON.stringify(o.shape)}`);
    const ids = intsFromBytes(decodeBase64(o.data, what), o.dtype, what);
    if (ids.length !== shape.reduce((a, b) => a * b, 1))
      throw new UserError(`${what}: ${ids.length} ids do not fill shape [${shape.join(', ')}]`);
    return shaped(shape, ids, what);
  }
  throw new UserError(
    `${what}: expected base64 .npy, nested lists or {encoding, dtype, shape, data}, got ${v === null ? 'null' : typeof v}`,
  );
}

export interface FlatShape {
  /** Rows the payload covers, when the response says (prompt + completion − 1 − start). */
  rows?: number;
  layers?: number;
  topK?: number;
}

/**
 * An SGLang flat payload: its ids and the shape that fits them. Rows × layers × k must equal the id count; the
 * missing factors come from `shape` (the response's token counts, the server's model info, the user's flags).
 */
export function decodeSglangRouted(b64: string, dtype: unknown, shape: FlatShape, what: string): RoutedExperts {
  if (dtype !== undefined && dtype !== null && !isIntDtype(dtype))
    throw new UserError(`${what}: routed_experts_dtype ${JSON.stringify(dtype)} is not an integer dtype`);
  const ids = intsFromBytes(decodeBase64(b64, what), (dtype as IntDtype | undefined) ?? 'int32', what);
  const n = ids.length;
  const { layers, topK } = shape;
  let rows = shape.rows;
  const lk = layers !== undefined && topK !== undefined ? layers * topK : undefined;
  if (rows === undefined && lk !== undefined) {
    if (n % lk !== 0)
      throw new UserError(`${what}: ${n} ids is not a whole number of tokens × ${layers} layers × top-${topK}`);
    rows = n / lk;
  }
  if (rows === undefined)
    throw new UserError(
      `${what}: ${n} ids and no token count in the response: give both --layers and --top-k (SGLang's payload is flat)`,
    );
  if (rows === 0) {
    if (n !== 0) throw new UserError(`${what}: ${n} ids for 0 tokens`);
    return { rows: 0, layers: layers ?? 0, topK: topK ?? 0, ids };
  }
  if (n % rows !== 0)
    throw new UserError(
      `${what}: ${n} ids is not a whole number per token over ${rows} tokens (prompt + completion − 1)`,
    );
  const perRow = n / rows;
  if (layers !== undefined && topK !== undefined) {
    if (layers * topK !== perRow)
      throw new UserError(
        `${what}: ${perRow} ids per token, but --layers ${layers} × --top-k ${topK} = ${layers * topK}`,
      );
    return { rows, layers, topK, ids };
  }
  if (layers !== undefined) {
    if (perRow % layers !== 0)
      throw new UserError(`${what}: ${perRow} ids per token is not a multiple of ${layers} layers`);
    return { rows, layers, topK: perRow / layers, ids };
  }
  if (topK !== undefined) {
    if (perRow % topK !== 0) throw new UserError(`${what}: ${perRow} ids per token is not a multiple of top-${topK}`);
    return { rows, layers: perRow / topK, topK, ids };
  }
  throw new UserError(
    `${what}: ${perRow} ids per token is layers × top-k, and nothing says which: give --layers or --top-k`,
  );
}

/** Concatenates payloads of the same layers × k along the rows (vLLM's split prompt / completion routing). */
export function concatRouted(parts: RoutedExperts[], what: string): RoutedExperts {
  const live = parts.filter((p) => p.rows > 0);
  if (live.length <= 1) return live[0] ?? parts[0]!;
  const { layers, topK } = live[0]!;
  for (const p of live)
    if (p.layers !== layers || p.topK !== topK)
      throw new UserError(
        `${what}: prompt and completion routing differ in shape ([${layers}, ${topK}] vs [${p.layers}, ${p.topK}])`,
      );
  const rows = live.reduce((a, p) => a + p.rows, 0);
  const ids = new Int32Array(rows * layers * topK);
  let o = 0;
  for (const p of live) {
    ids.set(p.ids, o);
    o += p.ids.length;
  }
  return { rows, layers, topK, ids };
}
