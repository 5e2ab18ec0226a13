//! The native tier of the direct convolution: an AVX2/FMA kernel for the
//! interior columns of one output row, called from the JIT-generated loops.
//!
//! Cranelift emits 128-bit vectors only, so the generated direct kernel runs
//! at most at half the AVX2 FMA rate. Convolutions with few output channels
//! (LeNet's first layer: 6 channels, depth 25) do not pay for an implicit
//! GEMM's packing; this kernel keeps the direct gather but computes `OB`
//! output channels × `NV` ymm vectors of 8 output columns in registers, each
//! input vector loaded once per tap and reused by every channel, each weight
//! broadcast once per tap and reused by every vector. Everything else (the
//! loops over images, channel blocks and rows, the valid kernel rows, edge
//! columns, padding) stays generated.
//!
//! Contract of a row kernel `f(x, w, out, bias, rows, cols, geometry…)`, all
//! strides in elements:
//! `out[y·out_orow + o·out_oc + j] = act(bias[o] + Σ_{c, r, t} x[y·x_orow +
//! c·x_chan + r·x_row + t·x_col + j] · w[c·w_chan + r·w_row + t·w_col + o])`
//! for output row `y` in `0..out_rows`, `o` in `0..OB`, `j` in `0..cols` (a
//! multiple of 8), `c` in `0..channels`, `r` in `0..rows`, `t` in `0..taps`;
//! `bias` may be null (zero), `relu` non-zero applies ReLU (NaN kept). It reads
//! and writes nothing else. The output rows of one call share their valid
//! kernel rows; the kernel computes tiles of `NR` of them at once, sharing
//! every weight broadcast ([`SpatialOp::native_conv_tile`]). The weights of
//! one tap for the `OB` channels are adjacent: the kernel's weights are copied
//! block-interleaved into its scratch first ([`emit_pack`]), so every
//! broadcast addresses one pointer plus a constant.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{AbiParam, InstBuilder, Value, types};

use crate::emit::builder::{KernelBuilder, PTR};
use crate::kernel::SpatialOp;

/// Signature of a native row kernel (see the module docs).
pub type RowKernel = unsafe extern "C" fn(
    x: *const f32,
    w: *const f32,
    out: *mut f32,
    bias: *const f32,
    rows: isize,
    cols: isize,
    channels: isize,
    taps: isize,
    x_col: isize,
    w_col: isize,
    x_row: isize,
    w_row: isize,
    x_chan: isize,
    w_chan: isize,
    out_oc: isize,
    out_rows: isize,
    x_orow: isize,
    out_orow: isize,
    relu: isize,
);

/// Output columns per ymm vector.
pub const LANES: usize = 8;

/// The row kernel for `ob` output channels (1–12) over output rows `width`
/// columns wide, if this CPU has AVX2 and FMA.
pub fn row_kernel(ob: usize, width: usize) -> Option<RowKernel> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            let (nv, nr) = SpatialOp::native_conv_tile(ob, width);
            return x86::pick(ob, nv, nr);
        }
    }
    let _ = (ob, width);
    None
}

/// The geometry of one call, in elements (constants of the kernel except
/// where noted).
pub struct Call {
    /// Byte offsets of the first input and weight element read (values).
    pub x4: Value,
    /// See `x4`.
    pub w4: Value,
    /// Element index of the first output (a value).
    pub out: Value,
    /// Element index of the block's first bias (a value), when there is a bias.
    pub bias: Option<Value>,
    /// Valid kernel rows (a value).
    pub rows: Value,
    /// Output rows (a value; none when not positive), and the input and
    /// output steps between them.
    pub out_rows: Value,
    /// See `out_rows`.
    pub x_orow: isize,
    /// See `out_rows`.
    pub out_orow: isize,
    /// Output columns, a multiple of [`LANES`].
    pub cols: usize,
    /// Output channels of the block.
    pub ob: usize,
    /// Input channels.
    pub channels: usize,
    /// Kernel columns.
    pub taps: usize,
    /// Input and weight steps per kernel column, kernel row and input channel,
    /// and the output step per output channel.
    pub x_col: isize,
    /// See `x_col`.
    pub w_col: isize,
    /// See `x_col`.
    pub x_row: isize,
    /// See `x_col`.
    pub w_row: isize,
    /// See `x_col`.
    pub x_chan: isize,
    /// See `x_col`.
    pub w_chan: isize,
    /// See `x_col`.
    pub out_oc: isize,
    /// Apply ReLU.
    pub relu: bool,
}

/// Argument indices of a convolution kernel's buffers.
pub struct Args {
    /// Input, weights, bias (if any) and output.
    pub x: usize,
    /// See `x`.
    pub w: usize,
    /// See `x`.
    pub bias: usize,
    /// See `x`.
    pub out: usize,
}

/// Emits a call of row kernel `f`; in checked mode the call runs only when
/// the regions it touches are proven in bounds.
pub fn emit_call(kb: &mut KernelBuilder, f: RowKernel, args: &Args, c: &Call) {
    let call = |kb: &mut KernelBuilder| {
        let mut sig = kb.b.func.signature.clone();
        sig.params = vec![AbiParam::new(PTR); 4];
        sig.params.extend([AbiParam::new(types::I64); 15]);
        sig.returns.clear();
        let sig = kb.b.import_signature(sig);
        let fp = kb.b.ins().iconst(PTR, f as usize as i64);
        let x = ptr(kb, args.x, c.x4, 1);
        let w = ptr(kb, args.w, c.w4, 1);
        let out = ptr(kb, args.out, c.out, 4);
        let bias = match c.bias {
            Some(b) => ptr(kb, args.bias, b, 4),
            None => kb.b.ins().iconst(PTR, 0),
        };
        let consts = [
            c.cols as isize,
            c.channels as isize,
            c.taps as isize,
            c.x_col,
            c.w_col,
            c.x_row,
            c.w_row,
            c.x_chan,
            c.w_chan,
            c.out_oc,
        ];
        let mut vals = vec![x, w, out, bias, c.rows];
        vals.extend(consts.iter().map(|&k| kb.int(k as i64)));
        vals.push(c.out_rows);
        vals.extend([c.x_orow, c.out_orow, c.relu as isize].map(|k| kb.int(k as i64)));
        kb.b.ins().call_indirect(sig, fp, &vals);
    };
    if !kb.checked() {
        call(kb);
        return;
    }
    // Checked mode: the input, weight and output regions span the extreme
    // offsets over the output rows, channels, kernel rows, taps (and output
    // channels or columns); steps may be negative (transposed convolutions).
    // Without kernel or output rows nothing is accessed, and the empty region
    // at 0 is checked instead.
    let no_rows =
        kb.b.ins()
            .icmp_imm_s(IntCC::SignedLessThanOrEqual, c.rows, 0);
    let no_out =
        kb.b.ins()
            .icmp_imm_s(IntCC::SignedLessThanOrEqual, c.out_rows, 0);
    let empty = kb.b.ins().bor(no_rows, no_out);
    let (ch, taps) = ((c.channels - 1) as isize, (c.taps - 1) as isize);
    let cols = c.cols as isize - 1;
    let x_fixed = [(ch, c.x_chan), (taps, c.x_col), (cols, 1)];
    let x_runs = [(c.rows, c.x_row), (c.out_rows, c.x_orow)];
    let x = kb.b.ins().sshr_imm_s(c.x4, 2);
    let ok_x = region(kb, args.x, x, &x_runs, &x_fixed, empty);
    let w_fixed = [(ch, c.w_chan), (taps, c.w_col), (c.ob as isize - 1, 1)];
    let w = kb.b.ins().sshr_imm_s(c.w4, 2);
    let ok_w = region(kb, args.w, w, &[(c.rows, c.w_row)], &w_fixed, empty);
    let out_fixed = [(c.ob as isize - 1, c.out_oc), (cols, 1)];
    let out_runs = [(c.out_rows, c.out_orow)];
    let mut ok = region(kb, args.out, c.out, &out_runs, &out_fixed, empty);
    let reads_ok = kb.b.ins().band(ok_x, ok_w);
    ok = kb.b.ins().band(ok, reads_ok);
    if let Some(b) = c.bias {
        let n = kb.int(c.ob as i64);
        let ok_b = kb.in_bounds(args.bias, b, n, 4);
        ok = kb.b.ins().band(ok, ok_b);
    }
    kb.if_then(ok, call);
}

/// Where a convolution's weights come from and go when packed: argument
/// `src` holds them with strides `w_oc` and `w_c` per output and input channel
/// (`taps` contiguous taps each), groups of `og` output channels with `cg`
/// input channels; `dst` receives `blocks` blocks of `ob` output channels.
pub struct Pack {
    /// Argument indices of the weights and of the scratch.
    pub src: usize,
    /// See `src`.
    pub dst: usize,
    /// Blocks, output channels per block and per group, input channels per group, taps.
    pub blocks: usize,
    /// See `blocks`.
    pub ob: usize,
    /// See `blocks`.
    pub og: usize,
    /// See `blocks`.
    pub cg: usize,
    /// See `blocks`.
    pub taps: usize,
    /// Weight strides per output and input channel.
    pub w_oc: usize,
    /// See `w_oc`.
    pub w_c: usize,
}

/// Copies the weights block-interleaved: block `b` starts at element
/// `b·ob·cg·taps` of `dst`, and its element `(c·taps + k)·ob + o` is tap `k`
/// of input channel `c` for output channel `b·ob + o`, so the weights of one
/// tap for the whole block are adjacent.
pub fn emit_pack(kb: &mut KernelBuilder, p: &Pack) {
    let (lo, blocks) = (kb.int(0), kb.int(p.blocks as i64));
    let depth = p.cg * p.taps;
    kb.for_range(lo, blocks, 1, &[], |kb, b, _| {
        let oc0 = kb.b.ins().imul_imm_s(b, p.ob as i64);
        let g = kb.b.ins().udiv_imm_u(oc0, p.og as i64);
        let ocl0 = kb.b.ins().urem_imm_u(oc0, p.og as i64);
        let src = kb.affine(g, p.og * depth, 0);
        let src = kb.add_scaled(src, ocl0, p.w_oc);
        let dst = kb.affine(b, p.ob * depth, 0);
        let (lo, cg) = (kb.int(0), kb.int(p.cg as i64));
        kb.for_range(lo, cg, 1, &[], |kb, c, _| {
            let src = kb.add_scaled(src, c, p.w_c);
            let dst = kb.add_scaled(dst, c, p.taps * p.ob);
            let (lo, taps) = (kb.int(0), kb.int(p.taps as i64));
            kb.for_range(lo, taps, 1, &[], |kb, k, _| {
                let src = kb.b.ins().iadd(src, k);
                let dst = kb.add_scaled(dst, k, p.ob);
                for o in 0..p.ob {
                    let i = kb.b.ins().iadd_imm_s(src, (o * p.w_oc) as i64);
                    let v = kb.load(types::F32, p.src, i, 4);
                    let j = kb.b.ins().iadd_imm_s(dst, o as i64);
                    kb.store(v, p.dst, j, 4);
                }
                vec![]
            });
            vec![]
        });
        vec![]
    });
}

/// Whether the elements accessed in argument `arg` lie in bounds: from
/// element `first`, every sum of `i·step` for `i` in `0..=n` over the `fixed`
/// `(n, step)` pairs and of `i·step` for `i` in `0..count` over the run-time
/// `(count, step)` pairs of `runs`; the empty region at 0 when `empty`.
fn region(
    kb: &mut KernelBuilder,
    arg: usize,
    first: Value,
    runs: &[(Value, isize)],
    fixed: &[(isize, isize)],
    empty: Value,
) -> Value {
    let (mut lo, mut hi) = (0i64, 0i64);
    for &(n, step) in fixed {
        let d = (n * step) as i64;
        (lo, hi) = (lo + d.min(0), hi + d.max(0));
    }
    let mut first = kb.b.ins().iadd_imm_s(first, lo);
    let mut len = kb.int(hi - lo + 1);
    for &(count, step) in runs {
        let span = kb.b.ins().iadd_imm_s(count, -1);
        let span = kb.b.ins().imul_imm_s(span, step.abs() as i64);
        if step < 0 {
            first = kb.b.ins().isub(first, span);
        }
        len = kb.b.ins().iadd(len, span);
    }
    let zero = kb.int(0);
    let first = kb.b.ins().select(empty, zero, first);
    let len = kb.b.ins().select(empty, zero, len);
    kb.in_bounds(arg, first, len, 4)
}

/// The address of `idx` units of `unit` bytes into argument `arg`.
fn ptr(kb: &mut KernelBuilder, arg: usize, idx: Value, unit: usize) -> Value {
    let base = kb.arg_base(arg);
    let off = if unit == 1 {
        idx
    } else {
        kb.b.ins().imul_imm_s(idx, unit as i64)
    };
    kb.b.ins().iadd(base, off)
}

#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3-channel, 2-row, 3-tap row kernel call over several output rows
    /// against a naive sum, with and without bias and ReLU, for every block
    /// size and the tile of each row width.
    #[test]
    fn row_kernels_match_a_naive_sum() {
        let (channels, rows, taps, cols) = (3usize, 2usize, 3usize, 40usize);
        let (x_col, x_row, x_chan, x_orow) = (2usize, 50usize, 400usize, 90usize);
        // Weights with the 12 channels of a tap adjacent, and a gap per row.
        let (w_col, w_row) = (12usize, 12 * taps + 1);
        let w_chan = rows * w_row;
        let (out_oc, out_orow) = (cols + 5, 12 * (cols + 5) + 3);
        let x: Vec<f32> = (0..channels * x_chan)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
            .collect();
        let w: Vec<f32> = (0..channels * w_chan)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0)
            .collect();
        let bias: Vec<f32> = (0..12).map(|o| o as f32 - 5.5).collect();
        for (ob, width) in (1..=12).flat_map(|ob| [8, 16, 24].map(|wd| (ob, wd))) {
            let Some(f) = row_kernel(ob, width) else {
                // Every block size lowering picks has a kernel where AVX2 exists.
                assert!(crate::emit::gemm::native::detect().is_none(), "ob {ob}");
                return;
            };
            for (with_bias, relu, out_rows) in
                [(false, false, 1), (true, true, 4), (true, false, 3)]
            {
                let mut out = vec![7.0f32; out_rows * out_orow];
                let b = if with_bias {
                    bias.as_ptr()
                } else {
                    std::ptr::null()
                };
                let s = |v: usize| v as isize;
                // SAFETY: the buffers cover the contract's regions; the CPU was detected.
                unsafe {
                    f(
                        x.as_ptr(),
                        w.as_ptr(),
                        out.as_mut_ptr(),
                        b,
                        s(rows),
                        s(cols),
                        s(channels),
                        s(taps),
                        s(x_col),
                        s(w_col),
                        s(x_row),
                        s(w_row),
                        s(x_chan),
                        s(w_chan),
                        s(out_oc),
                        s(out_rows),
                        s(x_orow),
                        s(out_orow),
                        relu as isize,
                    )
                };
                let written = |i: usize| {
                    let (y, r) = (i / out_orow, i % out_orow);
                    y < out_rows && r % out_oc < cols && r / out_oc < ob
                };
                for y in 0..out_rows {
                    for o in 0..ob {
                        for j in 0..cols {
                            let mut want = if with_bias { bias[o] } else { 0.0 };
                            for c in 0..channels {
                                for r in 0..rows {
                                    for t in 0..taps {
                                        want += x
                                            [y * x_orow + c * x_chan + r * x_row + t * x_col + j]
                                            * w[c * w_chan + r * w_row + t * w_col + o];
                                    }
                                }
                            }
                            if relu {
                                want = want.max(0.0);
                            }
                            let got = out[y * out_orow + o * out_oc + j];
                            // 18 products of magnitude ≤ 2: f32 rounding stays far below 1e-4.
                            assert!(
                                (got - want).abs() < 1e-4,
                                "ob {ob} width {width} y {y} o {o} j {j}: {got} vs {want}"
                            );
                        }
                    }
                }
                assert!(
                    (0..out.len()).all(|i| written(i) || out[i] == 7.0),
                    "ob {ob} width {width}: a write outside the outputs"
                );
            }
        }
    }
}
