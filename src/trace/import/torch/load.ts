/**
 * `torch.load(path, weights_only=True)` for plain data, in TypeScript: the zip archive torch.save writes
 * (`<name>/data.pkl`, `<name>/data/<key>` storages, `<name>/byteorder`), unpickled by the safe unpickler, with
 * tensors read on demand. A tensor's bytes are read only after its shape, strides and dtype are checked against
 * the zip entry that holds its storage, so a hostile shape cannot make moescope allocate what the file does not
 * hold (views that would repeat elements, e.g. stride 0, are refused too).
 */
import { UserError } from '../../../core/errors.js';
import { f16ToF32 } from '../../../core/f16.js';
import { ZipReader } from './zip.js';
import { unpickle, type PyValue, type TensorRef } from './unpickle.js';

/** Largest data.pkl read (the pickle is held in memory while it is decoded). */
const MAX_PICKLE_BYTES = 1 << 30;
/** Largest tensor read, in elements. */
const MAX_TENSOR_ELEMENTS = 1 << 30;

export type DType =
  | 'float64'
  | 'float32'
  | 'float16'
  | 'bfloat16'
  | 'int64'
  | 'int32'
  | 'int16'
  | 'int8'
  | 'uint8'
  | 'bool';

const STORAGE_DTYPE: Record<string, { dtype: DType; size: number }> = {
  DoubleStorage: { dtype: 'float64', size: 8 },
  FloatStorage: { dtype: 'float32', size: 4 },
  HalfStorage: { dtype: 'float16', size: 2 },
  BFloat16Storage: { dtype: 'bfloat16', size: 2 },
  LongStorage: { dtype: 'int64', size: 8 },
  IntStorage: { dtype: 'int32', size: 4 },
  ShortStorage: { dtype: 'int16', size: 2 },
  CharStorage: { dtype: 'int8', size: 1 },
  ByteStorage: { dtype: 'uint8', size: 1 },
  BoolStorage: { dtype: 'bool', size: 1 },
};

/** A tensor's values as float64 numbers (exact for every integer these files hold: counts and expert ids). */
export interface TensorData {
  dtype: DType;
  shape: number[];
  values: Float64Array;
}

export class TorchFile {
  readonly path: string;
  readonly root: PyValue;
  private readonly zip: ZipReader;
  private readonly prefix: string;

  constructor(path: string) {
    this.path = path;
    this.zip = new ZipReader(path);
    try {
      const pkl = [...this.zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
      if (pkl.length !== 1)
        throw new UserError(
          `${path}: not a torch.save archive (${pkl.length === 0 ? 'no' : 'several'} <name>/data.pkl entries)`,
        );
      this.prefix = pkl[0]!.slice(0, -'data.pkl'.length);
      const order = this.zip.entries.has(`${this.prefix}byteorder`)
        ? this.zip.readEntry(`${this.prefix}byteorder`, 16).toString('latin1').trim()
        : 'little';
      if (order !== 'little')
        throw new UserError(`${path}: refused: storages are ${order}-endian (only little-endian files are read)`);
      this.root = unpickle(this.zip.readEntry(pkl[0]!, MAX_PICKLE_BYTES), path);
    } catch (e) {
      this.zip.close();
      throw e;
    }
  }

  /** Reads a tensor, checked against its storage entry first. `what` names it in errors. */
  tensor(t: TensorRef, what: string): TensorData {
    const bad = (why: string): never => {
      throw new UserError(`${this.path}: refused: ${what}: ${why}`);
    };
    const st = STORAGE_DTYPE[t.storage.type];
    if (!st) bad(`storage type ${t.storage.type} is not read`);
    const { dtype, size } = st!;
    const { shape, stride, offset } = t;
    if (shape.length !== stride.length) bad('shape and stride differ in rank');
    if (shape.length > 8) bad(`${shape.length} dimensions`);
    let numel = 1;
    for (const d of shape) {
      if (!Number.isSafeInteger(d) || d < 0) bad(`bad shape [${shape.join(', ')}]`);
      numel *= d;
    }
    if (numel > MAX_TENSOR_ELEMENTS)
      bad(`shape [${shape.join(', ')}] has ${numel} elements (at most ${MAX_TENSOR_ELEMENTS} are read)`);
    const entryName = `${this.prefix}data/${t.storage.key}`;
    const entry = this.zip.entries.get(entryName);
    if (!entry) bad(`its storage ${t.storage.key} is not in the archive (truncated?)`);
    const storageNumel = Math.floor(entry!.size / size);
    if (t.storage.numel > storageNumel)
      bad(`its storage claims ${t.storage.numel} elements, the archive holds ${storageNumel}`);
    if (numel > storageNumel) bad(`shape [${shape.join(', ')}] views more elements than its storage holds`);
    // Largest element index the view touches must lie inside the storage.
    let last = offset;
    for (let i = 0; i < shape.length; i++) {
      if (!Number.isSafeInteger(stride[i]!) || stride[i]! < 0) bad('negative or bad strides');
      if (shape[i]! > 0) last += (shape[i]! - 1) * stride[i]!;
    }
    if (offset < 0 || (numel > 0 && last >= storageNumel)) bad('the view reaches outside its storage');
    const raw = numel === 0 ? Buffer.alloc(0) : this.zip.readEntry(entryName, entry!.size);
    const values = new Float64Array(numel);
    const read = reader(dtype, raw);
    let contiguous = true;
    for (let d = shape.length - 1, want = 1; d >= 0; d--) {
      if (shape[d]! > 1 && stride[d] !== want) contiguous = false;
      want *= shape[d]!;
    }
    if (contiguous) {
      for (let i = 0; i < numel; i++) values[i] = read(offset + i);
      return { dtype, shape: [...shape], values };
    }
    // Row-major walk over the view (any strides).
    const idx = new Array<number>(shape.length).fill(0);
    for (let i = 0; i < numel; i++) {
      let at = offset;
      for (let d = 0; d < shape.length; d++) at += idx[d]! * stride[d]!;
      values[i] = read(at);
      for (let d = shape.length - 1; d >= 0; d--) {
        if (++idx[d]! < shape[d]!) break;
        idx[d] = 0;
      }
    }
    return { dtype, shape: [...shape], values };
  }

  close(): void {
    this.zip.close();
  }
}

function reader(dtype: DType, b: Buffer): (i: number) => number {
  switch (dtype) {
    case 'float64':
      return (i) => b.readDoubleLE(i * 8);
    case 'float32':
      return (i) => b.readFloatLE(i * 4);
    case 'float16':
      return (i) => f16ToF32(b.readUInt16LE(i * 2));
    case 'bfloat16': {
      const f = new Float32Array(1);
      const u = new Uint32Array(f.buffer);
      return (i) => {
        u[0] = b.readUInt16LE(i * 2) << 16;
        return f[0]!;
      };
    }
    case 'int64':
      return (i) => {
        const v = b.readBigInt64LE(i * 8);
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER))
          throw new UserError('refused: an int64 beyond 2^53');
        return Number(v);
      };
    case 'int32':
      return (i) => b.readInt32LE(i * 4);
    case 'int16':
      return (i) => b.readInt16LE(i * 2);
    case 'int8':
      return (i) => b.readInt8(i);
    case 'uint8':
    case 'bool':
      return (i) => b[i]!;
  }
}
