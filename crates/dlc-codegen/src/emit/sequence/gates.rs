//! The gate math of one batch row of a recurrence step, natively compiled for
//! AVX2 (eight units per instruction, against the four of the Cranelift tier).
//!
//! The arithmetic is that of the Cranelift tier operation for operation: the
//! same Cephes `exp`, `tanh` and `sigmoid` of `emit/math.rs` (the same
//! polynomials, the same fused multiply-adds, the same clamps and selects) and
//! the same cell formulas of `recurrent::cell_math`, so both tiers give the same
//! gate values for the same pre-activations. A row whose length is not a
//! multiple of eight ends with one masked chunk (masked loads and stores touch
//! no element outside the row).
//!
//! Contract of `f(h, gx, gh, bias, prev, out, state, c_out)`, the gate blocks
//! of `gx`, `gh` and `bias` being `g·h .. (g+1)·h`: reads `gx`, `gh`, `bias`
//! (`gates·h` elements each) and `prev` (`h` elements: the previous cell state
//! of an LSTM, the previous hidden state of a GRU, unused and null for an RNN);
//! writes `h` elements of `out`, of `state` unless it is null, and of `c_out`
//! (LSTM; null otherwise). `prev` may be `state` or `c_out` (each element is
//! read before it is written); it touches nothing else.

use cranelift_codegen::ir::InstBuilder;
use dlc_ir::CellKind;

use super::Row;
use super::nt::{self, Extent, Operand};
use crate::emit::builder::KernelBuilder;

/// Signature of a native gate kernel (see the module contract).
pub type GateKernel = unsafe extern "C" fn(
    h: usize,
    gx: *const f32,
    gh: *const f32,
    bias: *const f32,
    prev: *const f32,
    out: *mut f32,
    state: *mut f32,
    c_out: *mut f32,
);

/// The native gate kernel of `cell`, when this CPU has AVX2 and FMA.
pub fn detect(cell: CellKind) -> Option<GateKernel> {
    #[cfg(target_arch = "x86_64")]
    if nt::has_avx2_fma() {
        return Some(match cell {
            CellKind::Rnn => x86::rnn_avx2,
            CellKind::Lstm => x86::lstm_avx2,
            CellKind::Gru => x86::gru_avx2,
        });
    }
    let _ = cell;
    None
}

/// The rows one call reads and writes (see the module contract).
pub(super) struct GateRows {
    pub gx: Row,
    pub gh: Row,
    pub bias: Row,
    pub prev: Option<Row>,
    pub out: Row,
    pub state: Option<Row>,
    pub c_out: Option<Row>,
}

/// Emits a call of the gate kernel `f` for one row of `h` units and `gates`
/// gates. In checked mode the call runs only when every row lies inside its
/// buffer (else the status word is flagged).
pub(super) fn emit_call(
    kb: &mut KernelBuilder,
    f: GateKernel,
    (h, gates): (usize, usize),
    r: &GateRows,
) {
    let hv = kb.int(h as i64);
    let gv = kb.int((gates * h) as i64);
    let one = kb.int(1);
    let mut args = vec![hv];
    let mut extents = vec![];
    let rows = [
        (Some(r.gx), gv),
        (Some(r.gh), gv),
        (Some(r.bias), gv),
        (r.prev, hv),
        (Some(r.out), hv),
        (r.state, hv),
        (r.c_out, hv),
    ];
    for (row, len) in rows {
        match row {
            Some(row) => {
                args.push(nt::byte_ptr(kb, row.arg, row.base));
                let op = Operand {
                    arg: row.arg,
                    first: row.base,
                    ld: 0,
                };
                extents.push(Extent::rows(op, one, len));
            }
            None => args.push(kb.b.ins().iconst(crate::emit::builder::PTR, 0)),
        }
    }
    nt::call_native(kb, f as usize, &args, &extents);
}

#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use std::arch::x86_64::*;

    use crate::emit::avx2::{Chunk, exp, poly};

    /// The arguments of a gate kernel (see the module contract).
    #[derive(Clone, Copy)]
    struct Args {
        h: usize,
        gx: *const f32,
        gh: *const f32,
        bias: *const f32,
        prev: *const f32,
        out: *mut f32,
        state: *mut f32,
        c_out: *mut f32,
    }

    impl Args {
        /// `gx + (gh + bias)` of gate `g` at unit `j`.
        ///
        /// # Safety
        /// Unit `j`'s chunk of gate `g` must lie inside the rows.
        #[target_feature(enable = "avx2,fma")]
        unsafe fn pre(self, ch: Chunk, g: usize, j: usize) -> __m256 {
            let o = g * self.h + j;
            // SAFETY: forwarded.
            unsafe {
                let d = _mm256_add_ps(ch.load(self.gh.add(o)), ch.load(self.bias.add(o)));
                _mm256_add_ps(ch.load(self.gx.add(o)), d)
            }
        }

        /// Stores the new hidden state (and cell state) of unit `j`'s chunk.
        ///
        /// # Safety
        /// As [`Args::pre`]; `c_out` must be non-null when `c` is given.
        #[target_feature(enable = "avx2,fma")]
        unsafe fn store(self, ch: Chunk, j: usize, h: __m256, c: Option<__m256>) {
            // SAFETY: forwarded.
            unsafe {
                ch.store(self.out.add(j), h);
                if !self.state.is_null() {
                    ch.store(self.state.add(j), h);
                }
                if let Some(c) = c {
                    ch.store(self.c_out.add(j), c);
                }
            }
        }
    }

    /// Generates one exported gate kernel from its body for one chunk of units:
    /// full chunks of eight, then a masked one.
    macro_rules! gate_kernel {
        ($(#[$doc:meta])* $name:ident, |$a:ident, $ch:ident, $j:ident| $body:block) => {
            $(#[$doc])*
            ///
            /// # Safety
            /// The CPU must support AVX2 and FMA; the pointers must be valid for
            /// the accesses of the module contract.
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            pub unsafe extern "C" fn $name(
                h: usize,
                gx: *const f32,
                gh: *const f32,
                bias: *const f32,
                prev: *const f32,
                out: *mut f32,
                state: *mut f32,
                c_out: *mut f32,
            ) {
                /// The units `j..j + 8` (those of `ch`).
                ///
                /// # Safety
                /// As the kernel, for this chunk.
                #[target_feature(enable = "avx2,fma")]
                #[inline]
                unsafe fn chunk($a: Args, $ch: Chunk, $j: usize) {
                    // SAFETY: forwarded.
                    unsafe { $body }
                }
                let a = Args { h, gx, gh, bias, prev, out, state, c_out };
                let mut j = 0;
                // SAFETY: every chunk lies inside the rows of the contract.
                unsafe {
                    while j + 8 <= h {
                        chunk(a, Chunk::new(8), j);
                        j += 8;
                    }
                    if j < h {
                        chunk(a, Chunk::new(h - j), j);
                    }
                }
            }
        };
    }

    gate_kernel!(
        /// RNN: `h' = tanh(gx + gh + b)`.
        rnn_avx2,
        |a, ch, j| {
            let h = tanh(a.pre(ch, 0, j));
            a.store(ch, j, h, None);
        }
    );

    gate_kernel!(
        /// LSTM: gates i, f, g, o; `c' = f·c + i·g`, `h' = o·tanh(c')`.
        lstm_avx2,
        |a, ch, j| {
            let i = sigmoid(a.pre(ch, 0, j));
            let f = sigmoid(a.pre(ch, 1, j));
            let g = tanh(a.pre(ch, 2, j));
            let o = sigmoid(a.pre(ch, 3, j));
            let c = ch.load(a.prev.add(j));
            let c_new = _mm256_add_ps(_mm256_mul_ps(f, c), _mm256_mul_ps(i, g));
            let h = _mm256_mul_ps(o, tanh(c_new));
            a.store(ch, j, h, Some(c_new));
        }
    );

    gate_kernel!(
        /// GRU: gates r, z, n; `n = tanh(gx_n + r·(gh_n + b_n))`, `h' = (1−z)·n + z·h`.
        gru_avx2,
        |a, ch, j| {
            let r = sigmoid(a.pre(ch, 0, j));
            let z = sigmoid(a.pre(ch, 1, j));
            let o = 2 * a.h + j;
            let ghn = _mm256_add_ps(ch.load(a.gh.add(o)), ch.load(a.bias.add(o)));
            let n = tanh(_mm256_add_ps(ch.load(a.gx.add(o)), _mm256_mul_ps(r, ghn)));
            let hp = ch.load(a.prev.add(j));
            let omz = _mm256_sub_ps(_mm256_set1_ps(1.0), z);
            let h = _mm256_add_ps(_mm256_mul_ps(omz, n), _mm256_mul_ps(z, hp));
            a.store(ch, j, h, None);
        }
    );

    /// `KernelBuilder::tanh`: polynomial below 0.625, `1 − 2/(e^{2|x|} + 1)` beyond.
    #[target_feature(enable = "avx2,fma")]
    fn tanh(x: __m256) -> __m256 {
        let z = _mm256_mul_ps(x, x);
        let p = poly(
            z,
            &[
                -5.704_988_7e-3,
                2.063_909e-2,
                -5.373_971_6e-2,
                1.333_144_2e-1,
                -3.333_328e-1,
            ],
        );
        let small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
        let sign = _mm256_set1_ps(-0.0);
        let a = _mm256_andnot_ps(sign, x);
        let two = _mm256_set1_ps(2.0);
        let e = exp(_mm256_mul_ps(a, two));
        let q = _mm256_div_ps(two, _mm256_add_ps(e, _mm256_set1_ps(1.0)));
        let big = _mm256_sub_ps(_mm256_set1_ps(1.0), q);
        let big = _mm256_or_ps(_mm256_andnot_ps(sign, big), _mm256_and_ps(sign, x));
        let is_small = _mm256_cmp_ps::<_CMP_LT_OQ>(a, _mm256_set1_ps(0.625));
        _mm256_blendv_ps(big, small, is_small)
    }

    /// `KernelBuilder::sigmoid`: `1 / (1 + e^-|x|)`, mirrored for negative `x`.
    #[target_feature(enable = "avx2,fma")]
    fn sigmoid(x: __m256) -> __m256 {
        let sign = _mm256_set1_ps(-0.0);
        let na = _mm256_or_ps(x, sign);
        let e = exp(na);
        let one = _mm256_set1_ps(1.0);
        let r = _mm256_div_ps(one, _mm256_add_ps(one, e));
        let er = _mm256_mul_ps(e, r);
        let neg = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_setzero_ps());
        _mm256_blendv_ps(r, er, neg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// Every cell against the formulas in f64, for row lengths with and
    /// without a masked last chunk, with and without the separate state row,
    /// the previous state aliased with the row it is overwritten in (as in the
    /// sequence form); the padding after every row must stay untouched.
    #[test]
    fn match_the_formulas_in_f64() {
        for cell in [CellKind::Rnn, CellKind::Lstm, CellKind::Gru] {
            let Some(f) = detect(cell) else { return };
            let g = cell.gates();
            for h in [1, 7, 8, 13, 16, 29] {
                let pad = 3;
                // Pre-activations up to ±12 reach both branches of tanh and the
                // saturated tails of the sigmoid.
                let val = |i: usize, s: usize| ((i * s % 97) as f32 - 48.0) / 4.0;
                let gx: Vec<f32> = (0..g * h).map(|i| val(i, 7)).collect();
                let gh: Vec<f32> = (0..g * h).map(|i| val(i, 11) / 2.0).collect();
                let bias: Vec<f32> = (0..g * h).map(|i| val(i, 5) / 8.0).collect();
                let prev: Vec<f32> = (0..h).map(|i| val(i, 13) / 12.0).collect();
                for separate_state in [false, true] {
                    let mut out = vec![7.0f32; h + pad];
                    // The state row starts as the previous state (h of a GRU, c of an LSTM).
                    let mut state = prev.clone();
                    state.resize(h + pad, 7.0);
                    let mut c_out = state.clone();
                    let prev_ptr = match cell {
                        CellKind::Rnn => std::ptr::null(),
                        CellKind::Lstm => c_out.as_ptr(),
                        CellKind::Gru => state.as_ptr(),
                    };
                    let state_ptr = if separate_state || cell == CellKind::Gru {
                        state.as_mut_ptr()
                    } else {
                        std::ptr::null_mut()
                    };
                    let c_ptr = if cell == CellKind::Lstm {
                        c_out.as_mut_ptr()
                    } else {
                        std::ptr::null_mut()
                    };
                    // SAFETY: the rows have the lengths of the contract; the CPU was detected.
                    unsafe {
                        f(
                            h,
                            gx.as_ptr(),
                            gh.as_ptr(),
                            bias.as_ptr(),
                            prev_ptr,
                            out.as_mut_ptr(),
                            state_ptr,
                            c_ptr,
                        )
                    };
                    for j in 0..h {
                        // Pre-activations rounded as the kernel rounds them (f32, same order).
                        let pre =
                            |k: usize| (gx[k * h + j] + (gh[k * h + j] + bias[k * h + j])) as f64;
                        let (want_h, want_c) = match cell {
                            CellKind::Rnn => (pre(0).tanh(), None),
                            CellKind::Lstm => {
                                let c = sigmoid(pre(1)) * prev[j] as f64
                                    + sigmoid(pre(0)) * pre(2).tanh();
                                (sigmoid(pre(3)) * c.tanh(), Some(c))
                            }
                            CellKind::Gru => {
                                let (r, z) = (sigmoid(pre(0)), sigmoid(pre(1)));
                                let k = 2 * h + j;
                                let n = (gx[k] as f64 + r * (gh[k] + bias[k]) as f64).tanh();
                                ((1.0 - z) * n + z * prev[j] as f64, None)
                            }
                        };
                        // What remains are ~1-ulp functions and a few f32 roundings
                        // of values of magnitude ≤ 8 (the GRU's r·(gh + b)), each
                        // ≤ 8·2⁻²⁴ ≈ 5e-7, passed through tanh (slope ≤ 1): 2e-6.
                        let close = |got: f32, want: f64| (got as f64 - want).abs() <= 2e-6;
                        assert!(
                            close(out[j], want_h),
                            "{cell:?} h={h} j={j}: {} vs {want_h}",
                            out[j]
                        );
                        if !state_ptr.is_null() {
                            assert_eq!(state[j], out[j]);
                        }
                        if let Some(c) = want_c {
                            assert!(
                                close(c_out[j], c),
                                "{cell:?} h={h} j={j}: c {} vs {c}",
                                c_out[j]
                            );
                        }
                    }
                    for row in [&out, &state, &c_out] {
                        assert!(
                            row[h..].iter().all(|&x| x == 7.0),
                            "{cell:?} h={h}: padding written"
                        );
                    }
                }
            }
        }
    }
}
