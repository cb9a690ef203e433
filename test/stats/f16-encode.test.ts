/**
 * encodeF16's fast paths (float32 bits read through a Uint32Array view, normal numbers rounded in one step; arrays
 * of ≥ 1,024 values in WebAssembly, src/core/f16.wat, eight at a time) give the same bits as the scalar reference
 * f32ToF16 (src/core/f16.ts) — on the boundaries where rounding code goes wrong and on random bit patterns. (In test/stats because the stats engineer owns f16.ts' encoder.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeF16, f32ToF16, F16_TO_F32 } from '../../src/core/f16.js';
import { seededRandom } from '../../src/engine/generation-loop.js';

/** Float32 values from raw bit patterns. */
function fromBits(bits: ArrayLike<number>): Float32Array {
  const u = Uint32Array.from(bits, (b) => b >>> 0);
  return new Float32Array(u.buffer);
}

function assertSameAsScalar(src: Float32Array, what: string): void {
  const fast = encodeF16(src);
  for (let i = 0; i < src.length; i++) {
    const want = f32ToF16(src[i]!);
    if (fast[i] !== want) {
      const bits = new Uint32Array(src.buffer, src.byteOffset, src.length)[i]!;
      assert.fail(
        `${what}: float32 0x${bits.toString(16)} (${src[i]}) → 0x${fast[i]!.toString(16)}, f32ToF16 gives 0x${want.toString(16)}`,
      );
    }
  }
}

test('every float32 exponent × every kept float16 mantissa × the rounding-critical dropped bits', () => {
  // Dropped 13 bits: 0, just above 0, just below half, half (a tie: to even), just above half, all ones
  // (rounds up, carrying into the exponent when the kept mantissa is all ones).
  const dropped = [0, 1, 0xfff, 0x1000, 0x1001, 0x1fff];
  const bits: number[] = [];
  for (const sign of [0, 0x80000000])
    for (let exp = 0; exp < 256; exp++)
      for (let m = 0; m < 1024; m++) for (const d of dropped) bits.push(sign | (exp << 23) | (m << 13) | d);
  assertSameAsScalar(fromBits(bits), 'grid');
});

test('named boundaries: zeros, subnormals, the largest half, overflow, Inf and NaN', () => {
  const values = [
    0,
    -0,
    2 ** -24,
    -(2 ** -24),
    2 ** -25 /* tie to 0 */,
    3 * 2 ** -26,
    2 ** -14 /* smallest normal */,
    2 ** -14 - 2 ** -25,
    65504 /* largest half */,
    65519 /* rounds to 65504 */,
    65520 /* rounds to Inf */,
    -65520,
    1e6,
    -1e30,
    Infinity,
    -Infinity,
    NaN,
    1,
    -1,
    1 + 2 ** -11 /* tie: stays 1 */,
    1 + 3 * 2 ** -11 /* tie: up */,
  ];
  const src = Float32Array.from(values);
  assertSameAsScalar(src, 'named');
  const h = encodeF16(src);
  assert.equal(h[0], 0x0000);
  assert.equal(h[1], 0x8000);
  assert.equal(h[8], 0x7bff);
  assert.equal(h[9], 0x7bff);
  assert.equal(h[10], 0x7c00);
  assert.equal(h[11], 0xfc00);
  assert.ok(Number.isNaN(F16_TO_F32[h[16]!]!));
  assert.equal(h[19], 0x3c00);
  assert.equal(h[20], 0x3c02);
  // NaN payloads and signs (signalling ones included) stay NaN.
  const nans = fromBits([0x7f800001, 0x7fc00000, 0xffc00000, 0xff800123, 0x7fffffff]);
  for (const x of encodeF16(nans)) assert.ok(Number.isNaN(F16_TO_F32[x]!), `0x${x.toString(16)} is NaN`);
});

test('random bit patterns and random logits-like values, into an offset of a larger array', () => {
  const rand = seededRandom(17);
  const n = 1 << 20;
  assertSameAsScalar(fromBits(Array.from({ length: n }, () => Math.floor(rand() * 2 ** 32))), 'random bits');
  const logits = Float32Array.from({ length: n }, () => (rand() - 0.5) * 40 * (rand() < 0.01 ? 1e-4 : 1));
  assertSameAsScalar(logits, 'random logits');
  // A view into the middle of a buffer, written at an offset: the bits view must follow byteOffset.
  const view = logits.subarray(1001, 5001);
  const dst = new Uint16Array(4100).fill(0xffff);
  encodeF16(view, dst, 50);
  for (let i = 0; i < view.length; i++) assert.equal(dst[50 + i], f32ToF16(view[i]!));
  assert.equal(dst[49], 0xffff);
  assert.equal(dst[50 + view.length], 0xffff);
});

test('long arrays (the WebAssembly path, in chunks): any length, odd values in any lane, views and offsets', () => {
  const rand = seededRandom(23);
  const odd = [0, -0, 1e-8, -3e-7, 65520, -1e9, Infinity, -Infinity, NaN, 2 ** -24];
  // 14,848: one token of DeepSeek-V3 logits; 131,085: across two of the 65,536-value chunks and a tail.
  for (const n of [1024, 1031, 4095, 14848, 14848 * 3 + 5, 131085]) {
    const src = Float32Array.from({ length: n }, () => (rand() - 0.5) * 16);
    // A value out of float16's normal range every so often, in every lane position and in the tail.
    for (let i = 0; i < n; i += 1 + Math.floor(rand() * 97)) src[i] = odd[Math.floor(rand() * odd.length)]!;
    src[n - 1] = NaN;
    assertSameAsScalar(src, `n = ${n}`);
    const view = src.subarray(3, n);
    const dst = new Uint16Array(n + 10).fill(0xabcd);
    encodeF16(view, dst, 7);
    for (let i = 0; i < view.length; i++) {
      const want = f32ToF16(view[i]!);
      if (dst[7 + i] !== want) assert.fail(`n = ${n}, view at 3 into offset 7: value ${i} (${view[i]})`);
    }
    assert.equal(dst[6], 0xabcd);
    assert.equal(dst[7 + view.length], 0xabcd);
  }
});

test('inputs that are not Float32Array take the scalar path', () => {
  const xs = [0.1, -2.5, 65520, 1e-8, NaN];
  assert.deepEqual(Array.from(encodeF16(xs)), xs.map(f32ToF16));
  assert.deepEqual(Array.from(encodeF16(Float64Array.from(xs))), xs.map(f32ToF16));
});
