//! A natively compiled `C = A · Wᵀ` with both operands row-major (the "NT"
//! product), for the per-step products of the recurrences: `h · W_hhᵀ` over a
//! block of batch rows. Nothing is packed: each output is a dot product of a row of `A`
//! and a row of `W`, both contiguous, so the kernel reads the weights in their
//! PyTorch layout (a recurrence would otherwise repack `W_hh` on every run).
//!
//! Register blocking: a tile of `R` rows of A by `N` rows of W keeps `R·N`
//! 256-bit accumulators (lane `l` of accumulator `(r, n)` sums the products at
//! depths `≡ l mod 8`); each depth step loads `N` W vectors and `R` A vectors for
//! `R·N` FMAs, so a W tile loaded once serves every row of A while it is in L1.
//! The lanes are summed at the end of the tile, then the depth tail (`k mod 8`)
//! is added in scalar order. The arithmetic of one output therefore does not
//! depend on the tile it falls in, so results are identical however the rows are
//! split over threads.
//!
//! Contract of `f(m, n, k, a, lda, w, ldw, c, ldc, reverse)`: reads `a[i*lda +
//! p]` and `w[j*ldw + p]` for `i < m`, `j < n`, `p < k` and writes
//! `c[i*ldc + j] = Σ_p a[i*lda + p]·w[j*ldw + p]`; it touches nothing else. With
//! `reverse` non-zero it walks the W tiles from the last to the first (same
//! results): alternating the direction between the steps of a recurrence keeps
//! the most recently read part of a W larger than L2 in L2 for the next step.

use cranelift_codegen::ir::{AbiParam, InstBuilder, Value, types};

use crate::emit::builder::{KernelBuilder, PTR};

/// Signature of the native NT kernel.
pub type NtKernel = unsafe extern "C" fn(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    w: *const f32,
    ldw: usize,
    c: *mut f32,
    ldc: usize,
    reverse: u64,
);

/// Whether this CPU has AVX2 and FMA, which the native sequence kernels need.
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The native NT kernel, when this CPU has AVX2 and FMA.
pub fn detect() -> Option<NtKernel> {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        return Some(x86::gemm_nt_avx2);
    }
    None
}

/// One operand of a call: argument index, first element, row stride (elements).
#[derive(Clone, Copy)]
pub struct Operand {
    /// Kernel argument index.
    pub arg: usize,
    /// Element index of row 0, column 0.
    pub first: Value,
    /// Elements between rows.
    pub ld: usize,
}

/// Emits a call of the native NT kernel `f`: `C[m × n] = A[m × k] · W[n × k]ᵀ`
/// (`m` and `reverse` run-time values). In checked mode the call runs only when
/// every row it touches lies inside its buffer (else the status word is flagged).
#[allow(clippy::too_many_arguments)]
pub fn emit_call(
    kb: &mut KernelBuilder,
    f: NtKernel,
    m: Value,
    (n, k): (usize, usize),
    a: Operand,
    w: Operand,
    c: Operand,
    reverse: Value,
) {
    let (nv, kv) = (kb.int(n as i64), kb.int(k as i64));
    let mut args = vec![m, nv, kv];
    for op in [a, w, c] {
        args.push(byte_ptr(kb, op.arg, op.first));
        args.push(kb.int(op.ld as i64));
    }
    args.push(reverse);
    let extents = [
        Extent::rows(a, m, kv),
        Extent::rows(w, nv, kv),
        Extent::rows(c, m, nv),
    ];
    call_native(kb, f as usize, &args, &extents);
}

/// The elements a native call touches in one argument: `first + Σ_d i_d·stride_d`
/// for `i_d < count_d` (every count at least 1, strides non-negative).
pub struct Extent {
    /// Kernel argument index.
    pub arg: usize,
    /// Element index of the first element.
    pub first: Value,
    /// `(count, stride)` per dimension.
    pub dims: [(Value, usize); 2],
}

impl Extent {
    /// Rows `0..rows` of `len` contiguous elements of `op`.
    pub fn rows(op: Operand, rows: Value, len: Value) -> Extent {
        Extent {
            arg: op.arg,
            first: op.first,
            dims: [(rows, op.ld), (len, 1)],
        }
    }
}

/// Emits `call_indirect` of the native function at address `f` with integer or
/// pointer arguments `args`. In checked mode the call runs only when every
/// extent lies inside its buffer (else the status word is flagged).
pub fn call_native(kb: &mut KernelBuilder, f: usize, args: &[Value], extents: &[Extent]) {
    let call = |kb: &mut KernelBuilder| {
        let mut sig = kb.b.func.signature.clone();
        // PTR is I64: every argument is one 64-bit integer register.
        sig.params = vec![AbiParam::new(types::I64); args.len()];
        sig.returns.clear();
        let sig = kb.b.import_signature(sig);
        let fp = kb.b.ins().iconst(PTR, f as i64);
        kb.b.ins().call_indirect(sig, fp, args);
    };
    if !kb.checked() {
        call(kb);
        return;
    }
    let mut ok = kb.b.ins().iconst(types::I8, 1);
    for e in extents {
        // The last element is first + Σ (count_d - 1)·stride_d.
        let mut last = e.first;
        for &(count, stride) in &e.dims {
            let c = kb.b.ins().iadd_imm_s(count, -1);
            last = kb.add_scaled(last, c, stride);
        }
        let span = kb.b.ins().isub(last, e.first);
        let span = kb.b.ins().iadd_imm_s(span, 1);
        let inside = kb.in_bounds(e.arg, e.first, span, 4);
        ok = kb.b.ins().band(ok, inside);
    }
    kb.if_then(ok, call);
}

/// The address of element `idx` (f32) of argument `arg`.
pub fn byte_ptr(kb: &mut KernelBuilder, arg: usize, idx: Value) -> Value {
    let base = kb.arg_base(arg);
    let off = kb.b.ins().imul_imm_s(idx, 4);
    kb.b.ins().iadd(base, off)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Rows of A per tile (4 × 3 accumulators + 3 W vectors + 1 A vector = 16 ymm).
    const R: usize = 4;
    /// Rows of W per tile when A has several rows.
    const N: usize = 3;
    /// Rows of W per tile when A is one row (a GEMV: eight independent sums).
    const N_GEMV: usize = 8;

    /// Operands of one call: the matrices and their row strides.
    #[derive(Clone, Copy)]
    struct Ops {
        k: usize,
        a: *const f32,
        lda: usize,
        w: *const f32,
        ldw: usize,
        c: *mut f32,
        ldc: usize,
    }

    /// See the module contract.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; the pointers must be valid for the
    /// accesses the module docs describe.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe extern "C" fn gemm_nt_avx2(
        m: usize,
        n: usize,
        k: usize,
        a: *const f32,
        lda: usize,
        w: *const f32,
        ldw: usize,
        c: *mut f32,
        ldc: usize,
        reverse: u64,
    ) {
        let o = Ops {
            k,
            a,
            lda,
            w,
            ldw,
            c,
            ldc,
        };
        let width = if m == 1 { N_GEMV } else { N };
        let tiles = n.div_ceil(width);
        for t in 0..tiles {
            let t = if reverse != 0 { tiles - 1 - t } else { t };
            let j = t * width;
            let cols = width.min(n - j);
            let mut i = 0;
            while i < m {
                let rows = R.min(m - i);
                // SAFETY: rows i..i+rows and columns j..j+cols are inside the
                // caller's m × n (module contract).
                unsafe { tile(o, i, j, rows, cols) };
                i += rows;
            }
        }
    }

    /// Rows `i..i + rows` (≤ R) of C by columns `j..j + cols` (≤ the tile width).
    ///
    /// # Safety
    /// As [`gemm_nt_avx2`], for this part of C.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile(o: Ops, i: usize, j: usize, rows: usize, cols: usize) {
        // SAFETY: forwarded; each block stays inside the tile.
        unsafe {
            match (rows, cols) {
                (1, N_GEMV) => block::<1, N_GEMV>(o, i, j),
                (4, N) => block::<4, N>(o, i, j),
                (3, N) => block::<3, N>(o, i, j),
                (2, N) => block::<2, N>(o, i, j),
                (1, N) => block::<1, N>(o, i, j),
                // Edge tiles: one column at a time.
                (rows, cols) => {
                    for jj in j..j + cols {
                        match rows {
                            4 => block::<4, 1>(o, i, jj),
                            3 => block::<3, 1>(o, i, jj),
                            2 => block::<2, 1>(o, i, jj),
                            _ => block::<1, 1>(o, i, jj),
                        }
                    }
                }
            }
        }
    }

    /// The `RR × NN` block of C at row `i`, column `j`.
    ///
    /// # Safety
    /// As [`gemm_nt_avx2`], for this block.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block<const RR: usize, const NN: usize>(o: Ops, i: usize, j: usize) {
        // SAFETY: every access is at row < i + RR of A/C, row < j + NN of W and
        // depth < k, inside the caller's operands.
        unsafe {
            let a = o.a.add(i * o.lda);
            let w = o.w.add(j * o.ldw);
            let mut acc = [[_mm256_setzero_ps(); NN]; RR];
            let k8 = o.k / 8 * 8;
            let mut p = 0;
            while p < k8 {
                let mut wv = [_mm256_setzero_ps(); NN];
                for (n, x) in wv.iter_mut().enumerate() {
                    *x = _mm256_loadu_ps(w.add(n * o.ldw + p));
                }
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = _mm256_loadu_ps(a.add(r * o.lda + p));
                    for (x, &wn) in row.iter_mut().zip(&wv) {
                        *x = _mm256_fmadd_ps(av, wn, *x);
                    }
                }
                p += 8;
            }
            for (r, row) in acc.iter().enumerate() {
                for (n, &x) in row.iter().enumerate() {
                    let mut s = hsum(x);
                    for q in k8..o.k {
                        s += *a.add(r * o.lda + q) * *w.add(n * o.ldw + q);
                    }
                    *o.c.add((i + r) * o.ldc + j + n) = s;
                }
            }
        }
    }

    /// The sum of the eight lanes: `((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7))`.
    #[target_feature(enable = "avx2,fma")]
    fn hsum(x: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape class (one row, full and edge tiles, depth tails) against a
    /// naive product, in both walking directions, with padded row strides; the
    /// padding must stay untouched.
    #[test]
    fn matches_a_naive_product() {
        let Some(f) = detect() else { return };
        for (m, n, k) in [(1, 1, 1), (1, 19, 13), (5, 7, 8), (4, 6, 37), (9, 28, 64)] {
            let (lda, ldw, ldc) = (k + 3, k + 1, n + 2);
            let a: Vec<f32> = (0..m * lda)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
                .collect();
            let w: Vec<f32> = (0..n * ldw)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0)
                .collect();
            for reverse in [0, 1] {
                let mut c = vec![7.0f32; m * ldc];
                // SAFETY: the buffers have the sizes the contract requires; the CPU was detected.
                unsafe {
                    f(
                        m,
                        n,
                        k,
                        a.as_ptr(),
                        lda,
                        w.as_ptr(),
                        ldw,
                        c.as_mut_ptr(),
                        ldc,
                        reverse,
                    )
                };
                for i in 0..m {
                    for j in 0..n {
                        let want: f32 = (0..k).map(|p| a[i * lda + p] * w[j * ldw + p]).sum();
                        let got = c[i * ldc + j];
                        // Sums of k ≤ 64 products of magnitude ≤ 2.4: f32 rounding
                        // in a different order stays far below 1e-4 relative.
                        assert!(
                            (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                            "{m}x{n}x{k} ({i},{j}): {got} vs {want}"
                        );
                    }
                    assert!(c[i * ldc + n..(i + 1) * ldc].iter().all(|&x| x == 7.0));
                }
            }
        }
    }
}
