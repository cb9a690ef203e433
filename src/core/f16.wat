;; encodeF16's float32 → float16 rounding (src/core/f16.ts) for long arrays, in WebAssembly with 128-bit SIMD:
;; assembled by `npm run build` (tools/wasm.mjs, wabt) into dist/src/core/f16.wasm.
;;
;; Eight values per step, by the very integer steps of f16.ts' fast path for float32 exponents 113…142 (float16's
;; normal numbers): bits r = |x|, h = ((r + 0xfff + ((r >> 13) & 1)) >> 13) − (112 << 10), sign | h — round half
;; to even, carries into the exponent and overflow to Inf included (see there). A step whose eight values are not
;; all in that range (zeros, tiny numbers, overflow, Inf, NaN) is listed for the caller, which encodes those eight
;; with f32ToF16: the result is f32ToF16's, bit for bit, for every input.
(module
  (memory (export "memory") 1)

  ;; The n/8 steps of float32s at byte address $src into uint16s at $dst; the indices (int32) of the steps with a
  ;; value out of range go to $odd. Returns how many there are.
  (func (export "encode") (param $src i32) (param $dst i32) (param $steps i32) (param $odd i32) (result i32)
    (local $i i32) (local $n i32) (local $a v128) (local $b v128) (local $ra v128) (local $rb v128)
    (local $ok v128)
    (block $done
      (br_if $done (i32.eqz (local.get $steps)))
      (loop $next
        (local.set $a (v128.load (local.get $src)))
        (local.set $b (v128.load offset=16 (local.get $src)))
        (local.set $ra (v128.and (local.get $a) (i32x4.splat (i32.const 0x7fffffff))))
        (local.set $rb (v128.and (local.get $b) (i32x4.splat (i32.const 0x7fffffff))))
        ;; In range: 0x38800000 ≤ r < 0x47800000, all eight.
        (local.set $ok (v128.and
          (v128.and
            (i32x4.ge_u (local.get $ra) (i32x4.splat (i32.const 0x38800000)))
            (i32x4.lt_u (local.get $ra) (i32x4.splat (i32.const 0x47800000))))
          (v128.and
            (i32x4.ge_u (local.get $rb) (i32x4.splat (i32.const 0x38800000)))
            (i32x4.lt_u (local.get $rb) (i32x4.splat (i32.const 0x47800000))))))
        (if (i32.eqz (i32x4.all_true (local.get $ok)))
          (then
            (i32.store (i32.add (local.get $odd) (i32.shl (local.get $n) (i32.const 2))) (local.get $i))
            (local.set $n (i32.add (local.get $n) (i32.const 1)))))
        ;; sign | (((r + 0xfff + ((r >> 13) & 1)) >> 13) − (112 << 10)), both halves, narrowed to uint16 (every
        ;; value fits; out-of-range steps are overwritten by the caller).
        (v128.store (local.get $dst)
          (i16x8.narrow_i32x4_u
            (v128.or
              (v128.and (i32x4.shr_u (local.get $a) (i32.const 16)) (i32x4.splat (i32.const 0x8000)))
              (i32x4.sub
                (i32x4.shr_u
                  (i32x4.add
                    (i32x4.add (local.get $ra) (i32x4.splat (i32.const 0xfff)))
                    (v128.and (i32x4.shr_u (local.get $ra) (i32.const 13)) (i32x4.splat (i32.const 1))))
                  (i32.const 13))
                (i32x4.splat (i32.const 0x1c000))))
            (v128.or
              (v128.and (i32x4.shr_u (local.get $b) (i32.const 16)) (i32x4.splat (i32.const 0x8000)))
              (i32x4.sub
                (i32x4.shr_u
                  (i32x4.add
                    (i32x4.add (local.get $rb) (i32x4.splat (i32.const 0xfff)))
                    (v128.and (i32x4.shr_u (local.get $rb) (i32.const 13)) (i32x4.splat (i32.const 1))))
                  (i32.const 13))
                (i32x4.splat (i32.const 0x1c000))))))
        (local.set $src (i32.add (local.get $src) (i32.const 32)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $next (i32.lt_u (local.get $i) (local.get $steps)))))
    (local.get $n)))
