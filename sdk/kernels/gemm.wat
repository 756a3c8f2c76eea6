;; The float64 matrix product behind Matrix.multiply: C += A · B, in WebAssembly SIMD128 (f64x2).
;;
;; Compiled to bytes by infra/build-wasm.mjs (wabt's wat2wasm) during `npm run build`; the bytes
;; are embedded in sdk/kernels/gemm-wasm.generated.ts, so no file is read at run time. Loaded and
;; driven by sdk/kernels/gemm.ts, which copies the operands into this module's memory.
;;
;; Layout (all offsets in bytes, all values float64):
;;   A   rows x m, row-major, rows past `rows` are not read (treated as zero);
;;   PB  B packed by the caller into panels of 4 columns: panel j holds B[k][j..j+3] for k = 0..m-1
;;       as m consecutive groups of 4 values (columns past B's width are zero);
;;   C   rows_padded x ldc, row-major (ldc = the packed width, a multiple of 4), zeroed by the caller;
;;   WA  scratch for one packed block of A: mc x kc values.
;;
;; Blocking (as in GotoBLAS): for each block of kc values of k, for each block of mc rows of A, pack
;; that block of A into panels of 4 rows (k-major: A[i..i+3][k] adjacent), then for each 4-column
;; panel of B and each 4-row panel of A, the micro-kernel updates a 4x4 tile of C held in eight
;; f64x2 registers. The packed A block stays in L2, a kc x 4 panel of B in L1.
;;
;; Rounding: every C[i][j] is accumulated in the order k = 0, 1, ..., m-1, with a separate multiply
;; and add per term (WebAssembly never fuses them), starting from +0: exactly the arithmetic of the
;; JavaScript i-k-j loop, so for finite inputs the results are identical bit for bit.
(module
  (import "env" "memory" (memory 1))

  ;; C[4 x 4] (row stride $ldc bytes) += Apanel[kc][4] · Bpanel[kc][4].
  (func $micro (param $a i32) (param $b i32) (param $c i32) (param $kc i32) (param $ldc i32)
    (local $b0 v128) (local $b1 v128) (local $av v128) (local $cp i32)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local.set $cp (local.get $c))
    (local.set $c00 (v128.load offset=0 (local.get $cp)))
    (local.set $c01 (v128.load offset=16 (local.get $cp)))
    (local.set $cp (i32.add (local.get $cp) (local.get $ldc)))
    (local.set $c10 (v128.load offset=0 (local.get $cp)))
    (local.set $c11 (v128.load offset=16 (local.get $cp)))
    (local.set $cp (i32.add (local.get $cp) (local.get $ldc)))
    (local.set $c20 (v128.load offset=0 (local.get $cp)))
    (local.set $c21 (v128.load offset=16 (local.get $cp)))
    (local.set $cp (i32.add (local.get $cp) (local.get $ldc)))
    (local.set $c30 (v128.load offset=0 (local.get $cp)))
    (local.set $c31 (v128.load offset=16 (local.get $cp)))
    (block $done
      (loop $k
        (br_if $done (i32.eqz (local.get $kc)))
        ;; B[k][j..j+1] and B[k][j+2..j+3]
        (local.set $b0 (v128.load offset=0 (local.get $b)))
        (local.set $b1 (v128.load offset=16 (local.get $b)))
        ;; row r: broadcast A[i+r][k], then C[r][..] += A[i+r][k] · B[k][..]
        (local.set $av (v128.load64_splat offset=0 (local.get $a)))
        (local.set $c00 (f64x2.add (local.get $c00) (f64x2.mul (local.get $av) (local.get $b0))))
        (local.set $c01 (f64x2.add (local.get $c01) (f64x2.mul (local.get $av) (local.get $b1))))
        (local.set $av (v128.load64_splat offset=8 (local.get $a)))
        (local.set $c10 (f64x2.add (local.get $c10) (f64x2.mul (local.get $av) (local.get $b0))))
        (local.set $c11 (f64x2.add (local.get $c11) (f64x2.mul (local.get $av) (local.get $b1))))
        (local.set $av (v128.load64_splat offset=16 (local.get $a)))
        (local.set $c20 (f64x2.add (local.get $c20) (f64x2.mul (local.get $av) (local.get $b0))))
        (local.set $c21 (f64x2.add (local.get $c21) (f64x2.mul (local.get $av) (local.get $b1))))
        (local.set $av (v128.load64_splat offset=24 (local.get $a)))
        (local.set $c30 (f64x2.add (local.get $c30) (f64x2.mul (local.get $av) (local.get $b0))))
        (local.set $c31 (f64x2.add (local.get $c31) (f64x2.mul (local.get $av) (local.get $b1))))
        (local.set $a (i32.add (local.get $a) (i32.const 32)))
        (local.set $b (i32.add (local.get $b) (i32.const 32)))
        (local.set $kc (i32.sub (local.get $kc) (i32.const 1)))
        (br $k)))
    (local.set $cp (local.get $c))
    (v128.store offset=0 (local.get $cp) (local.get $c00))
    (v128.store offset=16 (local.get $cp) (local.get $c01))
    (local.set $cp (i32.add (local.get $cp) (local.get $ldc)))
    (v128.store offset=0 (local.get $cp) (local.get $c10))
    (v128.store offset=16 (local.get $cp) (local.get $c11))
    (local.set $cp (i32.add (local.get $cp) (local.get $ldc)))
    (v128.store offset=0 (local.get $cp) (local.get $c20))
    (v128.store offset=16 (local.get $cp) (local.get $c21))
    (local.set $cp (i32.add (local.get $cp) (local.get $ldc)))
    (v128.store offset=0 (local.get $cp) (local.get $c30))
    (v128.store offset=16 (local.get $cp) (local.get $c31)))

  ;; Packs A[i0 .. i0+mb-1][k0 .. k0+kb-1] into $wa as panels of 4 rows, each panel kb groups of
  ;; 4 values (A[i][k], A[i+1][k], A[i+2][k], A[i+3][k]); rows at or past $rows are zero.
  (func $packA (param $a i32) (param $wa i32) (param $rows i32) (param $m i32)
               (param $i0 i32) (param $mb i32) (param $k0 i32) (param $kb i32)
    (local $ir i32) (local $k i32) (local $r i32) (local $row i32)
    (block $done_i
      (loop $each_i
        (br_if $done_i (i32.ge_u (local.get $ir) (local.get $mb)))
        (local.set $k (i32.const 0))
        (block $done_k
          (loop $each_k
            (br_if $done_k (i32.ge_u (local.get $k) (local.get $kb)))
            (local.set $r (i32.const 0))
            (block $done_r
              (loop $each_r
                (br_if $done_r (i32.ge_u (local.get $r) (i32.const 4)))
                (local.set $row (i32.add (i32.add (local.get $i0) (local.get $ir)) (local.get $r)))
                (f64.store (local.get $wa)
                  (if (result f64) (i32.lt_u (local.get $row) (local.get $rows))
                    (then
                      (f64.load (i32.add (local.get $a)
                        (i32.shl (i32.add (i32.mul (local.get $row) (local.get $m))
                                          (i32.add (local.get $k0) (local.get $k)))
                                 (i32.const 3)))))
                    (else (f64.const 0))))
                (local.set $wa (i32.add (local.get $wa) (i32.const 8)))
                (local.set $r (i32.add (local.get $r) (i32.const 1)))
                (br $each_r)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $each_k)))
        (local.set $ir (i32.add (local.get $ir) (i32.const 4)))
        (br $each_i))))

  ;; C[rows x ldc] += A[rows x m] · PB[m x ldc], with blocks of $mc rows (a multiple of 4) and $kc
  ;; values of k; $wa must hold mc x kc values.
  (func (export "gemm") (param $a i32) (param $pb i32) (param $c i32) (param $wa i32)
                        (param $rows i32) (param $m i32) (param $ldc i32) (param $mc i32) (param $kc i32)
    (local $k0 i32) (local $kb i32) (local $i0 i32) (local $mb i32) (local $ir i32) (local $jr i32)
    (local $ldc_bytes i32)
    (local.set $ldc_bytes (i32.shl (local.get $ldc) (i32.const 3)))
    (block $done_k
      (loop $each_k
        (br_if $done_k (i32.ge_u (local.get $k0) (local.get $m)))
        ;; kb = min(kc, m - k0)
        (local.set $kb (select (i32.sub (local.get $m) (local.get $k0)) (local.get $kc)
                               (i32.lt_u (i32.sub (local.get $m) (local.get $k0)) (local.get $kc))))
        (local.set $i0 (i32.const 0))
        (block $done_i
          (loop $each_i
            (br_if $done_i (i32.ge_u (local.get $i0) (local.get $rows)))
            ;; mb = min(mc, rows - i0), rounded up to a multiple of 4 by the panel loop below
            (local.set $mb (select (i32.sub (local.get $rows) (local.get $i0)) (local.get $mc)
                                   (i32.lt_u (i32.sub (local.get $rows) (local.get $i0)) (local.get $mc))))
            (call $packA (local.get $a) (local.get $wa) (local.get $rows) (local.get $m)
                         (local.get $i0) (local.get $mb) (local.get $k0) (local.get $kb))
            (local.set $jr (i32.const 0))
            (block $done_j
              (loop $each_j
                (br_if $done_j (i32.ge_u (local.get $jr) (local.get $ldc)))
                (local.set $ir (i32.const 0))
                (block $done_r
                  (loop $each_r
                    (br_if $done_r (i32.ge_u (local.get $ir) (local.get $mb)))
                    (call $micro
                      ;; packed A panel ir: wa + ir * kb * 8
                      (i32.add (local.get $wa) (i32.shl (i32.mul (local.get $ir) (local.get $kb)) (i32.const 3)))
                      ;; B panel jr at k0: pb + (jr * m + k0 * 4) * 8
                      (i32.add (local.get $pb)
                        (i32.shl (i32.add (i32.mul (local.get $jr) (local.get $m)) (i32.shl (local.get $k0) (i32.const 2)))
                                 (i32.const 3)))
                      ;; C tile: c + ((i0 + ir) * ldc + jr) * 8
                      (i32.add (local.get $c)
                        (i32.shl (i32.add (i32.mul (i32.add (local.get $i0) (local.get $ir)) (local.get $ldc)) (local.get $jr))
                                 (i32.const 3)))
                      (local.get $kb) (local.get $ldc_bytes))
                    (local.set $ir (i32.add (local.get $ir) (i32.const 4)))
                    (br $each_r)))
                (local.set $jr (i32.add (local.get $jr) (i32.const 4)))
                (br $each_j)))
            (local.set $i0 (i32.add (local.get $i0) (local.get $mc)))
            (br $each_i)))
        (local.set $k0 (i32.add (local.get $k0) (local.get $kc)))
        (br $each_k)))))
