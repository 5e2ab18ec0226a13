//! Natively compiled GEMM micro-kernels, called from the JIT-generated loop nest.
//!
//! Cranelift emits 128-bit vectors only on x86-64, which caps its FMA throughput
//! at a quarter of an AVX-512 core and half of an AVX2 one. The micro-kernel is
//! the only place where that matters, so it is written once in Rust with
//! `std::arch` and `#[target_feature]`; everything around it (blocking, packing,
//! edges, the fused epilogue) stays generated.
//!
//! Contract of every micro-kernel `f(kc, a, b, c, ldc, accumulate)`:
//! `a` holds `kc` groups of `MR` floats (a packed row panel, k-major), `b` holds
//! `kc` groups of `NR` floats (a packed column panel); the kernel computes the
//! `MR × NR` product and stores it at `c` (row stride `ldc` floats), adding to
//! what is there when `accumulate` is non-zero. It reads and writes nothing else.

/// Signature of a native micro-kernel.
pub type MicroKernel = unsafe extern "C" fn(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: u64,
);

/// Signature of a native B packing routine (see [`NativeKernel::pack_b_rows`]).
pub type PackRows =
    unsafe extern "C" fn(kc: usize, panels: usize, src: *const f32, ld: usize, dst: *mut f32);

/// A natively compiled micro-kernel, its tile shape and its packing routine.
#[derive(Clone, Copy, Debug)]
pub struct NativeKernel {
    /// Name for reports (`avx2-6x16`).
    pub name: &'static str,
    /// Rows of the tile.
    pub mr: usize,
    /// Columns of the tile.
    pub nr: usize,
    /// The function.
    pub f: MicroKernel,
    /// `f(kc, panels, src, ld, dst)` packs `kc` rows (`ld` floats apart) of
    /// `panels · nr` contiguous floats from `src` into `panels` k-major panels
    /// at `dst` (panel `j`, row `p` at `dst + (j·kc + p)·nr`). It reads and
    /// writes nothing else (prefetch hints aside, which cannot fault).
    pub pack_b_rows: PackRows,
}

/// The best native micro-kernel this CPU supports, if any.
pub fn detect() -> Option<NativeKernel> {
    available().into_iter().next()
}

/// Every native micro-kernel this CPU supports, best first (AVX-512, then AVX2).
pub fn available() -> Vec<NativeKernel> {
    let mut out = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            out.push(NativeKernel {
                name: "avx512-6x32",
                mr: 6,
                nr: 32,
                f: x86::kernel_6x32_avx512,
                pack_b_rows: x86::pack_b_rows_32_avx512,
            });
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            out.push(NativeKernel {
                name: "avx2-6x16",
                mr: 6,
                nr: 16,
                f: x86::kernel_6x16_avx2,
                pack_b_rows: x86::pack_b_rows_16_avx,
            });
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Defines a 6-row micro-kernel of two vectors per row (`nr = 2 · lanes`),
    /// its depth step and its B packing, for one vector width: the AVX2 and
    /// AVX-512 tiers are the same code over different intrinsics.
    macro_rules! micro_kernel {
        (
            $(#[$doc:meta])*
            kernel $kernel:ident, pack $pack:ident, step $step:ident,
            feature $feature:literal, vector $v:ty, lanes $w:literal,
            zero $zero:ident, load $load:ident, store $store:ident,
            add $add:ident, fma $fma:ident, set1 $set1:ident $(,)?
        ) => {
            $(#[$doc])*
            ///
            /// The depth loop is unrolled by 4; the C tile is prefetched on
            /// entry and all of it is loaded before any of it is stored.
            ///
            /// # Safety
            #[doc = concat!("The CPU must support `", $feature, "`; the pointers must be")]
            /// valid for the accesses described in the module docs.
            #[target_feature(enable = $feature)]
            pub unsafe extern "C" fn $kernel(
                kc: usize,
                a: *const f32,
                b: *const f32,
                c: *mut f32,
                ldc: usize,
                accumulate: u64,
            ) {
                const NR: usize = 2 * $w;
                // SAFETY: the caller guarantees the accesses (see the module contract).
                unsafe {
                    // Fetch the C tile while the depth loop runs: its rows are
                    // `ldc` apart (often a multiple of 4 KiB) and usually
                    // outside L1/L2.
                    for r in 0..6 {
                        let p = c.add(r * ldc);
                        _mm_prefetch::<_MM_HINT_T0>(p.cast());
                        _mm_prefetch::<_MM_HINT_T0>(p.add(NR - 1).cast());
                    }
                    let mut acc = [[$zero(); 2]; 6];
                    let (mut a, mut b) = (a, b);
                    for _ in 0..kc / 4 {
                        for u in 0..4 {
                            $step(&mut acc, a.add(6 * u), b.add(NR * u));
                        }
                        a = a.add(24);
                        b = b.add(4 * NR);
                    }
                    for _ in 0..kc % 4 {
                        $step(&mut acc, a, b);
                        a = a.add(6);
                        b = b.add(NR);
                    }
                    // Every load of C before any store: a store to row `r`
                    // followed by a load of row `r + 1`, 4 KiB apart, would
                    // look like a dependency to the CPU (4K aliasing) and
                    // stall the load.
                    if accumulate != 0 {
                        for (r, row) in acc.iter_mut().enumerate() {
                            let p = c.add(r * ldc);
                            row[0] = $add($load(p), row[0]);
                            row[1] = $add($load(p.add($w)), row[1]);
                        }
                    }
                    for (r, row) in acc.iter().enumerate() {
                        let p = c.add(r * ldc);
                        $store(p, row[0]);
                        $store(p.add($w), row[1]);
                    }
                }
            }

            /// Packs rows of B into panels of two vectors (the contract of
            /// [`NativeKernel::pack_b_rows`](super::NativeKernel)), reading
            /// each row contiguously and prefetching the row after the next:
            /// every row of a large B block is a page of its own, where the
            /// hardware prefetcher stops.
            ///
            /// # Safety
            #[doc = concat!("`", $feature, "`; `src` valid for reads of `kc` rows of `nr·panels`")]
            /// floats `ld` apart, `dst` for writes of `nr·panels·kc` floats.
            #[target_feature(enable = $feature)]
            pub unsafe extern "C" fn $pack(
                kc: usize,
                panels: usize,
                src: *const f32,
                ld: usize,
                dst: *mut f32,
            ) {
                const NR: usize = 2 * $w;
                // SAFETY: the caller guarantees the accesses; prefetches never
                // fault and their addresses are formed with wrapping arithmetic.
                unsafe {
                    for p in 0..kc {
                        let row = src.add(p * ld);
                        let ahead = row.wrapping_add(2 * ld);
                        let mut d = dst.add(NR * p);
                        for j in 0..panels {
                            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(NR * j).cast());
                            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(NR * j + NR - 1).cast());
                            let x0 = $load(row.add(NR * j));
                            let x1 = $load(row.add(NR * j + $w));
                            $store(d, x0);
                            $store(d.add($w), x1);
                            d = d.add(NR * kc);
                        }
                    }
                }
            }

            /// One depth step: two B vectors, six broadcasts of A (folded into
            /// the multiply-adds as memory operands), twelve multiply-adds.
            ///
            /// # Safety
            /// As the kernel; `a` valid for 6 reads, `b` for two vectors.
            #[inline(always)]
            unsafe fn $step(acc: &mut [[$v; 2]; 6], a: *const f32, b: *const f32) {
                // SAFETY: see the function's contract.
                unsafe {
                    let b0 = $load(b);
                    let b1 = $load(b.add($w));
                    for (r, row) in acc.iter_mut().enumerate() {
                        let ar = $set1(*a.add(r));
                        row[0] = $fma(ar, b0, row[0]);
                        row[1] = $fma(ar, b1, row[1]);
                    }
                }
            }
        };
    }

    micro_kernel! {
        /// 6×16 AVX2/FMA micro-kernel: 12 ymm accumulators, 2 ymm for B, 1 broadcast.
        kernel kernel_6x16_avx2, pack pack_b_rows_16_avx, step step_avx2,
        feature "avx2,fma", vector __m256, lanes 8,
        zero _mm256_setzero_ps, load _mm256_loadu_ps, store _mm256_storeu_ps,
        add _mm256_add_ps, fma _mm256_fmadd_ps, set1 _mm256_set1_ps,
    }

    micro_kernel! {
        /// 6×32 AVX-512 micro-kernel: 12 zmm accumulators, 2 zmm for B, the
        /// six A elements broadcast from memory into the multiply-adds.
        kernel kernel_6x32_avx512, pack pack_b_rows_32_avx512, step step_avx512,
        feature "avx512f", vector __m512, lanes 16,
        zero _mm512_setzero_ps, load _mm512_loadu_ps, store _mm512_storeu_ps,
        add _mm512_add_ps, fma _mm512_fmadd_ps, set1 _mm512_set1_ps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_kernels_match_a_naive_product() {
        for k in available() {
            kernel_matches_a_naive_product(k);
        }
    }

    fn kernel_matches_a_naive_product(k: NativeKernel) {
        let kc = 37;
        let a: Vec<f32> = (0..kc * k.mr)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
            .collect();
        let b: Vec<f32> = (0..kc * k.nr)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0)
            .collect();
        let ldc = k.nr + 3;
        let mut c = vec![1.0f32; k.mr * ldc];
        // SAFETY: the buffers have exactly the sizes the contract requires; the CPU was detected.
        unsafe { (k.f)(kc, a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), ldc, 1) };
        for r in 0..k.mr {
            for j in 0..k.nr {
                let want: f32 = 1.0
                    + (0..kc)
                        .map(|p| a[p * k.mr + r] * b[p * k.nr + j])
                        .sum::<f32>();
                assert!(
                    (c[r * ldc + j] - want).abs() < 1e-4 * want.abs().max(1.0),
                    "{}: {r},{j}",
                    k.name
                );
            }
            assert!(
                c[r * ldc + k.nr..(r + 1) * ldc].iter().all(|&x| x == 1.0),
                "padding untouched"
            );
        }
    }

    #[test]
    fn native_packings_place_every_row_piece_in_its_panel() {
        for k in available() {
            packing_places_every_row_piece_in_its_panel(k);
        }
    }

    fn packing_places_every_row_piece_in_its_panel(k: NativeKernel) {
        let (kc, panels, ld) = (5, 3, 3 * k.nr + 7);
        let src: Vec<f32> = (0..kc * ld).map(|i| i as f32).collect();
        let mut dst = vec![-1.0f32; panels * kc * k.nr + 1];
        // SAFETY: `src` holds kc rows of ld ≥ panels·nr floats; `dst` the packed block and one more.
        unsafe { (k.pack_b_rows)(kc, panels, src.as_ptr(), ld, dst.as_mut_ptr()) };
        for j in 0..panels {
            for p in 0..kc {
                for q in 0..k.nr {
                    assert_eq!(dst[(j * kc + p) * k.nr + q], src[p * ld + j * k.nr + q]);
                }
            }
        }
        assert_eq!(
            dst[panels * kc * k.nr],
            -1.0,
            "nothing written past the block"
        );
    }
}
