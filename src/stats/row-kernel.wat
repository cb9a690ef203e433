;; The per-logit passes of RowSumsKernel (row-kernel.ts), in WebAssembly: assembled by `npm run build`
;; (tools/wasm.mjs, wabt) into dist/src/stats/row-kernel.wasm.
;;
;; Why WebAssembly: the same float64 operations as the JavaScript passes they replace, in the same order — the sums
;; are bit for bit those of RowScorer (scores.ts) — but without a bounds check per array access, reading the rows
;; where one copy of the batch put them and adding straight into accumulators in this memory (the JavaScript loops
;; that copied each row in and each row's terms out cost more than the passes). One logit's two table pairs are
;; loaded and summed as f64x2 vectors, each lane its own running sum: SIMD across sums, never across logits, so
;; every sum keeps its order. Nothing here rounds differently from the JavaScript it replaced.
;;
;; Memory (row-kernel.ts fills the table, places rows and accumulators, and reads the outputs through views):
;;   LUT   at 0x000000: per float16 bit pattern h, at h·32: [eˣ, σ(x), σ(x)·ln σ(x), x] (float64)
;;   SUMS  at 0x200000: pass 1's sums: Σeˣ, then Σσ and Σσ·ln σ (sigmoid) or Σx·eˣ (softmax)
;;   CAND  at 0x210000: pass 1's candidates, indices (int32) in index order
;;   CX    at 0x250000: their logits (float64)
;;   RI    at 0x2d0000: rankTop's indices (int32), largest logit first
;;   RV    at 0x310000: their logits (float64)
;;   from 0x390000: the accumulators and rows the caller places there (addresses passed in, in bytes)
(module
  (memory (export "memory") 57)

  ;; Pass 1, sigmoid router: Σeˣ, Σσ, Σσ·ln σ over the E float16 logits at byte address $row, and the candidates
  ;; above t. Returns their count.
  (func (export "pass1Sigmoid") (param $row i32) (param $E i32) (param $t f64) (result i32)
    (local $i i32) (local $c i32) (local $k i32) (local $zs v128) (local $lx v128) (local $x f64)
    (local.set $zs (v128.const f64x2 0 0))
    (local.set $lx (v128.const f64x2 0 0))
    (loop $next
      (local.set $k (i32.shl (i32.load16_u (i32.add (local.get $row) (i32.shl (local.get $i) (i32.const 1))))
        (i32.const 5)))
      ;; (Σeˣ, Σσ) += (eˣ, σ); (Σσ·ln σ, ·) += (σ·ln σ, x) — the second lane is never read
      (local.set $zs (f64x2.add (local.get $zs) (v128.load (local.get $k))))
      (local.set $lx (f64x2.add (local.get $lx) (v128.load offset=16 (local.get $k))))
      (local.set $x (f64.load offset=24 (local.get $k)))
      ;; Every index is stored; the count advances by the comparison: no branch to mispredict.
      (i32.store offset=0x210000 (i32.shl (local.get $c) (i32.const 2)) (local.get $i))
      (f64.store offset=0x250000 (i32.shl (local.get $c) (i32.const 3)) (local.get $x))
      (local.set $c (i32.add (local.get $c) (f64.gt (local.get $x) (local.get $t))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (local.get $E))))
    (f64.store offset=0x200000 (i32.const 0) (f64x2.extract_lane 0 (local.get $zs)))
    (f64.store offset=0x200008 (i32.const 0) (f64x2.extract_lane 1 (local.get $zs)))
    (f64.store offset=0x200010 (i32.const 0) (f64x2.extract_lane 0 (local.get $lx)))
    (local.get $c))

  ;; Pass 1, softmax router: Σeˣ, Σx·eˣ, and the candidates above t.
  (func (export "pass1Softmax") (param $row i32) (param $E i32) (param $t f64) (result i32)
    (local $i i32) (local $c i32) (local $k i32) (local $z f64) (local $xz f64) (local $x f64) (local $ex f64)
    (loop $next
      (local.set $k (i32.shl (i32.load16_u (i32.add (local.get $row) (i32.shl (local.get $i) (i32.const 1))))
        (i32.const 5)))
      (local.set $ex (f64.load (local.get $k)))
      (local.set $x (f64.load offset=24 (local.get $k)))
      (local.set $z (f64.add (local.get $z) (local.get $ex)))
      (local.set $xz (f64.add (local.get $xz) (f64.mul (local.get $x) (local.get $ex))))
      (i32.store offset=0x210000 (i32.shl (local.get $c) (i32.const 2)) (local.get $i))
      (f64.store offset=0x250000 (i32.shl (local.get $c) (i32.const 3)) (local.get $x))
      (local.set $c (i32.add (local.get $c) (f64.gt (local.get $x) (local.get $t))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (local.get $E))))
    (f64.store offset=0x200000 (i32.const 0) (local.get $z))
    (f64.store offset=0x200008 (i32.const 0) (local.get $xz))
    (local.get $c))

  ;; Pass 2, sigmoid router: prob[i] += σ·invS at byte address $p, softmax[i] += eˣ·invZ at $s — the two products
  ;; as one f64x2 product.
  (func (export "pass2Sigmoid") (param $row i32) (param $E i32) (param $invS f64) (param $invZ f64) (param $p i32)
    (param $s i32)
    (local $i i32) (local $inv v128) (local $v v128)
    (local.set $inv (f64x2.replace_lane 1 (f64x2.splat (local.get $invZ)) (local.get $invS)))
    (loop $next
      (local.set $v (f64x2.mul
        (v128.load (i32.shl (i32.load16_u (i32.add (local.get $row) (i32.shl (local.get $i) (i32.const 1))))
          (i32.const 5)))
        (local.get $inv)))
      (f64.store (local.get $s) (f64.add (f64.load (local.get $s)) (f64x2.extract_lane 0 (local.get $v))))
      (f64.store (local.get $p) (f64.add (f64.load (local.get $p)) (f64x2.extract_lane 1 (local.get $v))))
      (local.set $p (i32.add (local.get $p) (i32.const 8)))
      (local.set $s (i32.add (local.get $s) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (local.get $E)))))

  ;; Pass 2, softmax router: prob[i] += eˣ·invZ at byte address $p.
  (func (export "pass2Softmax") (param $row i32) (param $E i32) (param $invZ f64) (param $p i32)
    (local $i i32)
    (loop $next
      (f64.store (local.get $p) (f64.add (f64.load (local.get $p))
        (f64.mul
          (f64.load (i32.shl (i32.load16_u (i32.add (local.get $row) (i32.shl (local.get $i) (i32.const 1))))
            (i32.const 5)))
          (local.get $invZ))))
      (local.set $p (i32.add (local.get $p) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (local.get $E)))))

  ;; The R largest of the c candidates CX/CAND into RV/RI, largest first, ties to the lower index — the algorithm
  ;; of rankTopInto (src/core/topk.ts): insertion into a short sorted list, most values failing the first test.
  ;; The candidates are in index order, so its ties rule carries over. Their logits are finite (pass 1 said so).
  (func (export "rankTop") (param $c i32) (param $R i32)
    (local $e i32) (local $filled i32) (local $j i32) (local $x f64) (local $y f64)
    (block $done
      (br_if $done (i32.eqz (local.get $c)))
      (loop $next
        (local.set $x (f64.load offset=0x250000 (i32.shl (local.get $e) (i32.const 3))))
        (block $skip
          (if (i32.eq (local.get $filled) (local.get $R))
            (then
              (br_if $skip (i32.eqz (f64.gt (local.get $x)
                (f64.load offset=0x310000 (i32.shl (i32.sub (local.get $R) (i32.const 1)) (i32.const 3))))))
              (local.set $j (i32.sub (local.get $R) (i32.const 1))))
            (else
              (local.set $j (local.get $filled))
              (local.set $filled (i32.add (local.get $filled) (i32.const 1)))))
          ;; Strict > keeps the lower index first among ties.
          (block $placed
            (loop $shift
              (br_if $placed (i32.eqz (local.get $j)))
              (local.set $y (f64.load offset=0x310000 (i32.shl (i32.sub (local.get $j) (i32.const 1)) (i32.const 3))))
              (br_if $placed (i32.eqz (f64.gt (local.get $x) (local.get $y))))
              (f64.store offset=0x310000 (i32.shl (local.get $j) (i32.const 3)) (local.get $y))
              (i32.store offset=0x2d0000 (i32.shl (local.get $j) (i32.const 2))
                (i32.load offset=0x2d0000 (i32.shl (i32.sub (local.get $j) (i32.const 1)) (i32.const 2))))
              (local.set $j (i32.sub (local.get $j) (i32.const 1)))
              (br $shift)))
          (f64.store offset=0x310000 (i32.shl (local.get $j) (i32.const 3)) (local.get $x))
          (i32.store offset=0x2d0000 (i32.shl (local.get $j) (i32.const 2))
            (i32.load offset=0x210000 (i32.shl (local.get $e) (i32.const 2)))))
        (local.set $e (i32.add (local.get $e) (i32.const 1)))
        (br_if $next (i32.lt_u (local.get $e) (local.get $c))))))
)
