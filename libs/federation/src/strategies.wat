;; Merge arithmetic over blocks of float32 values, several coordinates at a
;; time with 128-bit SIMD. Compiled by scripts/build-wasm.cjs; loaded by
;; strategies.ts, which lays out the memory:
;;   $ptrs     n i32 addresses, one per source block
;;   $weights  n f64 weights (weightedMean)
;;   $scratch  n v128 (trimmedMean)
;;   $pairs    its sorting network, two i32 addresses per compare-exchange
;; Both functions work on whole groups of lanes (eight for weightedMean, four
;; for trimmedMean): the caller sizes every block to a multiple of eight
;; values, and the lanes past `count` are ignored.
;; Sums are float64, in the same order as a plain per-coordinate loop, so the
;; results are those of that loop bit for bit. Everything in the loops is
;; written out in place: V8 does not inline calls between wasm functions.
(module
  (memory (export "memory") 1)

  ;; out[i] = sum over k of weights[k] * source_k[i], for i < count, eight
  ;; coordinates at a time: four float64 sums in flight hide the latency of
  ;; each addition (the caller sizes blocks to a multiple of eight values).
  (func (export "weightedMean")
    (param $ptrs i32) (param $weights i32) (param $n i32)
    (param $out i32) (param $count i32)
    (local $at i32) (local $end i32) (local $k i32) (local $from i32)
    (local $w v128) (local $v v128) (local $u v128)
    (local $a v128) (local $b v128) (local $c v128) (local $d v128)
    ;; $at: byte offset of the group in every block.
    (local.set $end (i32.shl (local.get $count) (i32.const 2)))
    (block $done
      (loop $groups
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (local.set $a (f64x2.splat (f64.const 0)))
        (local.set $b (f64x2.splat (f64.const 0)))
        (local.set $c (f64x2.splat (f64.const 0)))
        (local.set $d (f64x2.splat (f64.const 0)))
        (local.set $k (i32.const 0))
        (loop $sources
          (local.set $w
            (f64x2.splat
              (f64.load
                (i32.add (local.get $weights)
                  (i32.shl (local.get $k) (i32.const 3))))))
          (local.set $from
            (i32.add (local.get $at)
              (i32.load
                (i32.add (local.get $ptrs)
                  (i32.shl (local.get $k) (i32.const 2))))))
          (local.set $v (v128.load (local.get $from)))
          (local.set $u (v128.load offset=16 (local.get $from)))
          ;; Lanes 0-1 and 2-3 of each vector, as float64.
          (local.set $a
            (f64x2.add (local.get $a)
              (f64x2.mul (local.get $w)
                (f64x2.promote_low_f32x4 (local.get $v)))))
          (local.set $b
            (f64x2.add (local.get $b)
              (f64x2.mul (local.get $w)
                (f64x2.promote_low_f32x4
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7
                    (local.get $v) (local.get $v))))))
          (local.set $c
            (f64x2.add (local.get $c)
              (f64x2.mul (local.get $w)
                (f64x2.promote_low_f32x4 (local.get $u)))))
          (local.set $d
            (f64x2.add (local.get $d)
              (f64x2.mul (local.get $w)
                (f64x2.promote_low_f32x4
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7
                    (local.get $u) (local.get $u))))))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br_if $sources (i32.lt_u (local.get $k) (local.get $n))))
        (local.set $from (i32.add (local.get $out) (local.get $at)))
        (v128.store (local.get $from)
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero (local.get $a))
            (f32x4.demote_f64x2_zero (local.get $b))))
        (v128.store offset=16 (local.get $from)
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero (local.get $c))
            (f32x4.demote_f64x2_zero (local.get $d))))
        (local.set $at (i32.add (local.get $at) (i32.const 32)))
        (br $groups))))

  ;; out[i] = mean of source_k[i] over k after dropping the $trim smallest
  ;; and the $trim largest values, for i < count: each group of four is
  ;; gathered across sources into $scratch and put in order by the sorting
  ;; network at $pairs ($pairCount compare-exchanges, each two i32 scratch
  ;; addresses, the smaller value going to the first), then the kept ranks
  ;; are summed in rank order.
  (func (export "trimmedMean")
    (param $ptrs i32) (param $scratch i32) (param $n i32) (param $trim i32)
    (param $pairs i32) (param $pairCount i32)
    (param $out i32) (param $count i32)
    (local $at i32) (local $end i32) (local $k i32) (local $pair i32)
    (local $pairsEnd i32) (local $a i32) (local $b i32) (local $last i32)
    (local $x v128) (local $y v128)
    (local $v v128) (local $lo v128) (local $hi v128) (local $keep v128)
    (local.set $end (i32.shl (local.get $count) (i32.const 2)))
    (local.set $pairsEnd
      (i32.add (local.get $pairs)
        (i32.shl (local.get $pairCount) (i32.const 3))))
    ;; Scratch address of the last rank kept, plus 16.
    (local.set $last
      (i32.add (local.get $scratch)
        (i32.shl (i32.sub (local.get $n) (local.get $trim)) (i32.const 4))))
    (local.set $keep
      (f64x2.splat
        (f64.convert_i32_u
          (i32.sub (local.get $n) (i32.shl (local.get $trim) (i32.const 1))))))
    (block $done
      (loop $groups
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (local.set $k (i32.const 0))
        (loop $gather
          (v128.store
            (i32.add (local.get $scratch)
              (i32.shl (local.get $k) (i32.const 4)))
            (v128.load
              (i32.add (local.get $at)
                (i32.load
                  (i32.add (local.get $ptrs)
                    (i32.shl (local.get $k) (i32.const 2)))))))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br_if $gather (i32.lt_u (local.get $k) (local.get $n))))
        (local.set $pair (local.get $pairs))
        (block $sorted
          (loop $exchanges
            (br_if $sorted (i32.ge_u (local.get $pair) (local.get $pairsEnd)))
            (local.set $a (i32.load (local.get $pair)))
            (local.set $b (i32.load offset=4 (local.get $pair)))
            (local.set $x (v128.load (local.get $a)))
            (local.set $y (v128.load (local.get $b)))
            (v128.store (local.get $a)
              (f32x4.min (local.get $x) (local.get $y)))
            (v128.store (local.get $b)
              (f32x4.max (local.get $x) (local.get $y)))
            (local.set $pair (i32.add (local.get $pair) (i32.const 8)))
            (br $exchanges)))
        (local.set $lo (f64x2.splat (f64.const 0)))
        (local.set $hi (f64x2.splat (f64.const 0)))
        (local.set $pair
          (i32.add (local.get $scratch)
            (i32.shl (local.get $trim) (i32.const 4))))
        (block $summed
          (loop $ranks
            (br_if $summed (i32.ge_u (local.get $pair) (local.get $last)))
            (local.set $v (v128.load (local.get $pair)))
            (local.set $lo
              (f64x2.add (local.get $lo)
                (f64x2.promote_low_f32x4 (local.get $v))))
            (local.set $hi
              (f64x2.add (local.get $hi)
                (f64x2.promote_low_f32x4
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7
                    (local.get $v) (local.get $v)))))
            (local.set $pair (i32.add (local.get $pair) (i32.const 16)))
            (br $ranks)))
        (v128.store (i32.add (local.get $out) (local.get $at))
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero
              (f64x2.div (local.get $lo) (local.get $keep)))
            (f32x4.demote_f64x2_zero
              (f64x2.div (local.get $hi) (local.get $keep)))))
        (local.set $at (i32.add (local.get $at) (i32.const 16)))
        (br $groups)))))
