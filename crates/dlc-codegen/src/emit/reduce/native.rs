//! Softmax rows natively compiled for AVX2: eight lanes per instruction and
//! the `exp` of `emit/math.rs` operation for operation (see `emit/avx2.rs`),
//! against the four lanes of the Cranelift tier, whose vector `exp` also runs
//! short of registers (its constants are spilled and reloaded every vector).
//!
//! Contract of `f(rows, len, x, y)`: for each of `rows` contiguous rows of
//! `len` elements, `y = exp(x − max x) / Σ exp(x − max x)`, computed as in
//! `reduce::softmax`: the maximum propagates NaN, `exp(x − max)` is written
//! to `y` and summed, then `y` is multiplied by `1 / sum`. Reads `x`, writes
//! `y` (`rows·len` elements each); `y` may be `x` (each element is read
//! before it is written); touches nothing else.

use cranelift_codegen::ir::InstBuilder;
use cranelift_codegen::ir::condcodes::IntCC;

use crate::emit::builder::KernelBuilder;
use crate::emit::sequence::nt::{self, Extent, Operand};

/// Signature of the native softmax (see the module contract).
pub type SoftmaxKernel = unsafe extern "C" fn(rows: usize, len: usize, x: *const f32, y: *mut f32);

/// The native softmax, when this CPU has AVX2 and FMA.
pub fn detect() -> Option<SoftmaxKernel> {
    #[cfg(target_arch = "x86_64")]
    if nt::has_avx2_fma() {
        return Some(x86::softmax_rows_avx2);
    }
    None
}

/// Emits a call of `f` over the kernel's rows `start..end` of `len` elements
/// (argument 0 in, argument 1 out). In checked mode the call runs only when
/// both row ranges lie inside their buffers.
pub fn emit_call(kb: &mut KernelBuilder, f: SoftmaxKernel, len: usize) {
    let (start, end) = (kb.start, kb.end);
    let rows = kb.b.ins().isub(end, start);
    let any = kb.b.ins().icmp_imm_s(IntCC::SignedGreaterThan, rows, 0);
    kb.if_then(any, |kb| {
        let first = kb.b.ins().imul_imm_s(start, len as i64);
        let lenv = kb.int(len as i64);
        let x = nt::byte_ptr(kb, 0, first);
        let y = nt::byte_ptr(kb, 1, first);
        let extents = [0, 1].map(|arg| {
            let op = Operand {
                arg,
                first,
                ld: len,
            };
            Extent::rows(op, rows, lenv)
        });
        nt::call_native(kb, f as usize, &[rows, lenv, x, y], &extents);
    });
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use crate::emit::avx2::{Chunk, exp};

    /// Softmax of `rows` rows of `len` (see the module contract).
    ///
    /// # Safety
    /// `x` and `y` must be valid for `rows·len` elements; the CPU must have
    /// AVX2 and FMA.
    pub unsafe extern "C" fn softmax_rows_avx2(
        rows: usize,
        len: usize,
        x: *const f32,
        y: *mut f32,
    ) {
        for r in 0..rows {
            // SAFETY: row r lies inside both regions (the caller's contract).
            unsafe { row(len, x.add(r * len), y.add(r * len)) }
        }
    }

    /// # Safety
    /// As [`softmax_rows_avx2`], for one row.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn row(len: usize, x: *const f32, y: *mut f32) {
        let (full, rest) = (len / 8, len % 8);
        let tail = Chunk::new(rest.max(1));
        // SAFETY: every access below is to chunk c < full, or to the masked
        // lanes of the last chunk, of a row of `len` elements.
        unsafe {
            // Pass 1: the maximum, NaN if any element is NaN.
            let ninf = _mm256_set1_ps(f32::NEG_INFINITY);
            let (mut m, mut nan) = (ninf, _mm256_setzero_ps());
            let mut take = |v: __m256| {
                m = _mm256_max_ps(m, v);
                nan = _mm256_or_ps(nan, _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
            };
            for c in 0..full {
                take(_mm256_loadu_ps(x.add(8 * c)));
            }
            if rest > 0 {
                take(tail.or_fill(tail.load(x.add(8 * full)), ninf));
            }
            let max = if _mm256_movemask_ps(nan) != 0 {
                f32::NAN
            } else {
                let mut lanes = [0f32; 8];
                _mm256_storeu_ps(lanes.as_mut_ptr(), m);
                lanes.into_iter().fold(f32::NEG_INFINITY, f32::max)
            };
            // Pass 2: e = exp(x - max), stored and summed.
            let mv = _mm256_set1_ps(max);
            let zero = _mm256_setzero_ps();
            let (mut s0, mut s1) = (zero, zero);
            for c in 0..full {
                let e = exp(_mm256_sub_ps(_mm256_loadu_ps(x.add(8 * c)), mv));
                _mm256_storeu_ps(y.add(8 * c), e);
                if c % 2 == 0 {
                    s0 = _mm256_add_ps(s0, e);
                } else {
                    s1 = _mm256_add_ps(s1, e);
                }
            }
            if rest > 0 {
                let e = exp(_mm256_sub_ps(tail.load(x.add(8 * full)), mv));
                tail.store(y.add(8 * full), e);
                s0 = _mm256_add_ps(s0, tail.or_fill(e, zero));
            }
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), _mm256_add_ps(s0, s1));
            let sum: f32 = lanes.iter().sum();
            // Pass 3: normalise.
            let inv = _mm256_set1_ps(1.0 / sum);
            for c in 0..full {
                let p = y.add(8 * c);
                _mm256_storeu_ps(p, _mm256_mul_ps(_mm256_loadu_ps(p), inv));
            }
            if rest > 0 {
                let p = y.add(8 * full);
                tail.store(p, _mm256_mul_ps(tail.load(p), inv));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every row length around the 8-lane chunks against a scalar softmax in f64.
    #[test]
    fn rows_match_a_scalar_softmax() {
        let Some(f) = super::detect() else { return };
        for len in 1..=40 {
            let rows = 3;
            let x: Vec<f32> = (0..rows * len)
                .map(|i| ((i * 29 % 23) as f32 - 11.0) * 0.4)
                .collect();
            let mut y = vec![0f32; rows * len];
            // SAFETY: x and y hold rows·len elements; the CPU has AVX2 and FMA.
            unsafe { f(rows, len, x.as_ptr(), y.as_mut_ptr()) };
            for r in 0..rows {
                let row = &x[r * len..(r + 1) * len];
                let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
                let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
                for (j, &v) in row.iter().enumerate() {
                    let want = (v as f64 - max).exp() / sum;
                    let got = y[r * len + j] as f64;
                    assert!(
                        (got - want).abs() <= 1e-6,
                        "len {len} row {r} col {j}: {got} vs {want}"
                    );
                }
            }
        }
    }
}
