/**
 * IEEE-754 half precision, stored as raw bits in Uint16Array — the in-memory form of the trace's
 * `weights` and `logits` columns, so batches map 1:1 onto Arrow Float16 buffers without copies.
 */
import { readFileSync } from 'node:fs';

const table = new Float32Array(65536);
(() => {
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    let v: number;
    if (e === 0) v = m * 2 ** -24;
    else if (e === 31) v = m === 0 ? Infinity : NaN;
    else v = (1 + m / 1024) * 2 ** (e - 15);
    table[h] = s * v;
  }
})();

/** Decode table: F16_TO_F32[bits] is the float value. Hot loops index it directly. */
export const F16_TO_F32: Float32Array = table;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Round-to-nearest-even conversion of a number to float16 bits. */
export function f32ToF16(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00; // overflow → Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → ±0
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && m & 1)) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

export function f16ToF32(bits: number): number {
  return table[bits & 0xffff]!;
}

/** f16.wat's export: what it does there. */
interface Encoder {
  memory: WebAssembly.Memory;
  encode(src: number, dst: number, steps: number, odd: number): number;
}

/** Arrays at least this long go through f16.wat (below, copying in and out costs more than it saves). */
const WASM_MIN = 1024;
/** Values per call into f16.wat (a multiple of 8): 64 Ki, 256 KiB of float32s. */
const WASM_CHUNK = 65536;
/** The module, loaded on the first long array. */
let wasm: Encoder | null = null;

function encoder(): Encoder {
  if (wasm === null) {
    const bytes = readFileSync(new URL('./f16.wasm', import.meta.url));
    wasm = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as unknown as Encoder;
  }
  return wasm;
}

/**
 * Encodes src into dst[offset…] as float16 bits, rounding as f32ToF16 does. The engine hands out Float32Arrays
 * (14,848 logits per token at DeepSeek-V3 scale): long ones go to f16.wat, eight values per SIMD step, and the
 * steps holding a value outside float16's normal range are redone here with f32ToF16; shorter ones, and the last
 * values, are read as raw bits through a Uint32Array view (no float → bits round trip per value) and the values
 * whose float16 is normal — all but zeros, tiny numbers, overflow, Inf and NaN — are rounded in one step (see
 * below); the rest, and other inputs, go through f32ToF16. Every path gives f32ToF16's bits.
 */
export function encodeF16(
  src: ArrayLike<number>,
  dst: Uint16Array = new Uint16Array(src.length),
  offset = 0,
): Uint16Array {
  const n = src.length;
  if (!(src instanceof Float32Array)) {
    for (let i = 0; i < n; i++) dst[offset + i] = f32ToF16(src[i]!);
    return dst;
  }
  let from = 0;
  const w = n >= WASM_MIN ? encoder() : null;
  if (w) {
    // In chunks of WASM_CHUNK values (a prompt pass's logits can be hundreds of MB; the module's memory stays
    // ~0.9 MiB): the float32s at 0, their float16s after them, then the list of odd steps.
    const chunkSteps = WASM_CHUNK >>> 3;
    const need = chunkSteps * (32 + 16 + 4);
    const have = w.memory.buffer.byteLength;
    if (need > have) w.memory.grow(Math.ceil((need - have) / 65536));
    const buf = w.memory.buffer;
    const f32 = new Float32Array(buf, 0, WASM_CHUNK);
    const u16 = new Uint16Array(buf, chunkSteps * 32, WASM_CHUNK);
    const list = new Int32Array(buf, chunkSteps * 48, chunkSteps);
    const stepsAll = n >>> 3;
    for (let s0 = 0; s0 < stepsAll; s0 += chunkSteps) {
      const steps = Math.min(chunkSteps, stepsAll - s0);
      const at = s0 * 8;
      f32.set(steps === chunkSteps ? src.subarray(at, at + WASM_CHUNK) : src.subarray(at, at + steps * 8));
      const odd = w.encode(0, chunkSteps * 32, steps, chunkSteps * 48);
      dst.set(steps === chunkSteps ? u16 : u16.subarray(0, steps * 8), offset + at);
      for (let j = 0; j < odd; j++)
        for (let i = at + list[j]! * 8, end = i + 8; i < end; i++) dst[offset + i] = f32ToF16(src[i]!);
    }
    from = stepsAll * 8;
  }
  const bits = new Uint32Array(src.buffer, src.byteOffset, n);
  for (let i = from; i < n; i++) {
    const x = bits[i]!;
    const r = x & 0x7fffffff; // exponent | mantissa
    // float32 exponents 113…142 are float16's 1…30 (normal numbers; 142 may still round up to Inf).
    if (r >= 0x38800000 && r < 0x47800000) {
      // Adding 0xfff plus the kept part's lowest bit carries into bit 13 exactly when the 13 dropped mantissa
      // bits are above half, or at half with an odd kept part: round half to even. A carry out of the mantissa
      // increments the exponent, which is the correctly rounded value (1.11…1 × 2^e rounds to 2^(e+1)), and
      // subtracting 112 << 10 rebiases the exponent (127 → 15). Values that round past the largest half (65504)
      // land exactly on 0x7c00: Inf, as f32ToF16 overflows.
      const h = ((r + 0xfff + ((r >>> 13) & 1)) >>> 13) - (112 << 10);
      dst[offset + i] = ((x >>> 16) & 0x8000) | h;
    } else dst[offset + i] = f32ToF16(src[i]!);
  }
  return dst;
}

export function decodeF16(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]!]!;
  return dst;
}
