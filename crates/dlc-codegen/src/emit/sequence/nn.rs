//! A natively compiled `C = A · B`, or `C = diag(α) · C + A · B`, with `B` and
//! `C` row-major and `A` read through arbitrary row and column strides (so it
//! may be a transposed scratch), for the blocked attention: the scores
//! `Sᵀ = K · (scale·Q)ᵀ` of a key block against a packed query block, and the
//! output update `O = diag(α) · O + P · V` of the online softmax.
//!
//! Register blocking: tiles of 6 rows of A by 16 columns of B (12 ymm
//! accumulators, 2 B vectors and one broadcast A element: 15 of 16 registers);
//! edge tiles take fewer rows, 8 columns, or a masked vector of fewer than 8
//! columns. Each accumulator sums its products in depth order from zero, then
//! `α·C_old` is added with one FMA, so the arithmetic of one output does not
//! depend on the tile it falls in.
//!
//! Contract of `f(m, n, k, a, rsa, csa, b, ldb, c, ldc, alpha)`: reads
//! `a[i*rsa + p*csa]`, `b[p*ldb + j]`, and (when `alpha` is not null)
//! `alpha[i]` and `c[i*ldc + j]`, for `i < m`, `j < n`, `p < k`, and writes
//! `c[i*ldc + j] = α_i·c[i*ldc + j] + Σ_p a[i*rsa + p*csa]·b[p*ldb + j]` (no
//! `α` term when `alpha` is null); it touches nothing else.

use cranelift_codegen::ir::{InstBuilder, Value};

use super::nt::{Extent, Operand, byte_ptr, call_native};
use crate::emit::builder::KernelBuilder;

/// Signature of the native NN kernel.
pub type NnKernel = unsafe extern "C" fn(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    rsa: usize,
    csa: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    alpha: *const f32,
);

/// The native NN kernel, when this CPU has AVX2 and FMA.
pub fn detect() -> Option<NnKernel> {
    #[cfg(target_arch = "x86_64")]
    if super::nt::has_avx2_fma() {
        return Some(x86::gemm_nn_avx2);
    }
    None
}

/// The `A` operand: argument, first element, row and column strides (elements).
#[derive(Clone, Copy)]
pub struct Strided {
    /// Kernel argument index.
    pub arg: usize,
    /// Element index of row 0, column 0.
    pub first: Value,
    /// Elements between rows.
    pub row: usize,
    /// Elements between columns.
    pub col: usize,
}

/// Emits a call of `f`: `C[m × n] = A[m × k] · B[k × n]`, plus `diag(α)·C`
/// when `alpha = Some((arg, first, used))` and the i8 truth value `used` is
/// non-zero (`α` is then `m` elements from `first` of argument `arg`). The
/// sizes are run-time values, each at least 1. In checked mode the call runs
/// only when everything it may touch lies inside its buffers.
pub fn emit_call(
    kb: &mut KernelBuilder,
    f: NnKernel,
    [m, n, k]: [Value; 3],
    a: Strided,
    b: Operand,
    c: Operand,
    alpha: Option<(usize, Value, Value)>,
) {
    let mut args = vec![m, n, k, byte_ptr(kb, a.arg, a.first)];
    args.push(kb.int(a.row as i64));
    args.push(kb.int(a.col as i64));
    for op in [b, c] {
        args.push(byte_ptr(kb, op.arg, op.first));
        args.push(kb.int(op.ld as i64));
    }
    let one = kb.int(1);
    let mut extents = vec![
        Extent {
            arg: a.arg,
            first: a.first,
            dims: [(m, a.row), (k, a.col)],
        },
        Extent::rows(b, k, n),
        Extent::rows(c, m, n),
    ];
    let alpha_ptr = match alpha {
        Some((arg, first, used)) => {
            extents.push(Extent {
                arg,
                first,
                dims: [(m, 1), (one, 0)],
            });
            let p = byte_ptr(kb, arg, first);
            let null = kb.int(0);
            kb.b.ins().select(used, p, null)
        }
        None => kb.int(0),
    };
    args.push(alpha_ptr);
    call_native(kb, f as usize, &args, &extents);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Rows of A per tile (6 × 2 accumulators + 2 B vectors + 1 A broadcast = 15 ymm).
    const MR: usize = 6;

    /// Operands of one call.
    #[derive(Clone, Copy)]
    struct Ops {
        k: usize,
        a: *const f32,
        rsa: usize,
        csa: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        alpha: *const f32,
    }

    /// See the module contract.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; the pointers must be valid for the
    /// accesses the module docs describe.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe extern "C" fn gemm_nn_avx2(
        m: usize,
        n: usize,
        k: usize,
        a: *const f32,
        rsa: usize,
        csa: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        alpha: *const f32,
    ) {
        let o = Ops {
            k,
            a,
            rsa,
            csa,
            b,
            ldb,
            c,
            ldc,
            alpha,
        };
        let mut j = 0;
        while j < n {
            let cols = (n - j).min(16);
            let mut i = 0;
            while i < m {
                let rows = MR.min(m - i);
                // SAFETY: rows i..i+rows and columns j..j+cols are inside the
                // caller's m × n (module contract).
                unsafe { tile(o, i, j, rows, cols) };
                i += rows;
            }
            j += if cols >= 8 { cols / 8 * 8 } else { cols };
        }
    }

    /// Rows `i..i + rows` (≤ MR) of C by columns `j..`: 16 columns when
    /// `cols` is 16, 8 when it is 8 to 15, else `cols` (masked).
    ///
    /// # Safety
    /// As [`gemm_nn_avx2`], for this part of C.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile(o: Ops, i: usize, j: usize, rows: usize, cols: usize) {
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols as i32), lanes);
        macro_rules! rows {
            ($nv:literal, $masked:literal) => {
                match rows {
                    6 => block::<6, $nv, $masked>(o, i, j, mask),
                    5 => block::<5, $nv, $masked>(o, i, j, mask),
                    4 => block::<4, $nv, $masked>(o, i, j, mask),
                    3 => block::<3, $nv, $masked>(o, i, j, mask),
                    2 => block::<2, $nv, $masked>(o, i, j, mask),
                    _ => block::<1, $nv, $masked>(o, i, j, mask),
                }
            };
        }
        // SAFETY: forwarded; each block stays inside the tile.
        unsafe {
            match cols {
                16 => rows!(2, false),
                8..=15 => rows!(1, false),
                _ => rows!(1, true),
            }
        }
    }

    /// The `RR × 8·NV` block of C at row `i`, column `j` (only the lanes of
    /// `mask` when `MASKED`).
    ///
    /// # Safety
    /// As [`gemm_nn_avx2`], for this block.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block<const RR: usize, const NV: usize, const MASKED: bool>(
        o: Ops,
        i: usize,
        j: usize,
        mask: __m256i,
    ) {
        // SAFETY: every access is at row < i + RR of A/C/alpha, column
        // < j + 8·NV (or masked off) of B/C and depth < k, inside the operands.
        unsafe {
            let a = o.a.add(i * o.rsa);
            let b = o.b.add(j);
            let mut acc = [[_mm256_setzero_ps(); NV]; RR];
            for p in 0..o.k {
                let mut bv = [_mm256_setzero_ps(); NV];
                for (v, x) in bv.iter_mut().enumerate() {
                    let at = b.add(p * o.ldb + 8 * v);
                    *x = if MASKED {
                        _mm256_maskload_ps(at, mask)
                    } else {
                        _mm256_loadu_ps(at)
                    };
                }
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = _mm256_broadcast_ss(&*a.add(r * o.rsa + p * o.csa));
                    for (x, &bb) in row.iter_mut().zip(&bv) {
                        *x = _mm256_fmadd_ps(av, bb, *x);
                    }
                }
            }
            for (r, row) in acc.iter().enumerate() {
                let scale = (!o.alpha.is_null()).then(|| _mm256_set1_ps(*o.alpha.add(i + r)));
                for (v, &x) in row.iter().enumerate() {
                    let at = o.c.add((i + r) * o.ldc + j + 8 * v);
                    let y = match scale {
                        Some(s) if MASKED => _mm256_fmadd_ps(_mm256_maskload_ps(at, mask), s, x),
                        Some(s) => _mm256_fmadd_ps(_mm256_loadu_ps(at), s, x),
                        None => x,
                    };
                    if MASKED {
                        _mm256_maskstore_ps(at, mask, y);
                    } else {
                        _mm256_storeu_ps(at, y);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every tile class (6-row, edge rows, 16, 8 and masked columns) against a
    /// naive product, with and without `α`, with a transposed A and padded
    /// strides; the padding of C must stay untouched.
    #[test]
    fn matches_a_naive_product() {
        let Some(f) = detect() else { return };
        for (m, n, k) in [
            (1, 1, 1),
            (7, 13, 5),
            (6, 16, 64),
            (13, 37, 9),
            (64, 32, 64),
        ] {
            // A is stored transposed (element (i, p) at p·(m + 1) + i).
            let (rsa, csa, ldb, ldc) = (1, m + 1, n + 3, n + 2);
            let a: Vec<f32> = (0..k * csa)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
                .collect();
            let b: Vec<f32> = (0..k * ldb)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0)
                .collect();
            let alpha: Vec<f32> = (0..m).map(|i| 0.25 * i as f32 - 0.5).collect();
            for with_alpha in [false, true] {
                let c0: Vec<f32> = (0..m * ldc).map(|i| (i % 5) as f32).collect();
                let mut c = c0.clone();
                let al = if with_alpha {
                    alpha.as_ptr()
                } else {
                    std::ptr::null()
                };
                // SAFETY: the buffers have the sizes the contract requires; the CPU was detected.
                unsafe {
                    f(
                        m,
                        n,
                        k,
                        a.as_ptr(),
                        rsa,
                        csa,
                        b.as_ptr(),
                        ldb,
                        c.as_mut_ptr(),
                        ldc,
                        al,
                    )
                };
                for i in 0..m {
                    for j in 0..n {
                        let mut want: f32 =
                            (0..k).map(|p| a[i * rsa + p * csa] * b[p * ldb + j]).sum();
                        if with_alpha {
                            want += alpha[i] * c0[i * ldc + j];
                        }
                        let got = c[i * ldc + j];
                        // Sums of k ≤ 64 products of magnitude ≤ 2.4 (plus α·c ≤ 4):
                        // f32 rounding in another order stays far below 1e-4 relative.
                        assert!(
                            (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                            "{m}x{n}x{k} ({i},{j}) alpha={with_alpha}: {got} vs {want}"
                        );
                    }
                    assert_eq!(
                        c[i * ldc + n..(i + 1) * ldc],
                        c0[i * ldc + n..(i + 1) * ldc]
                    );
                }
            }
        }
    }
}
