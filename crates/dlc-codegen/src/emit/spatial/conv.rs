//! Direct convolution and transposed convolution (gather form, see the parent
//! module).
//!
//! Each parallel index computes one block of `oc_block` output channels of one
//! image. For every output row and run of columns, the block's outputs are
//! accumulated in registers — `oc_block × wide` f32x4 vectors along the output
//! width — over the input channels of the group (outer loop), the valid kernel
//! rows and the (unrolled) kernel columns; the input vector of a tap is loaded
//! once and reused by every output channel of the block.

use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::{
    Columns, Dim, Phase, TapRange, barrier, dims, for_n_or_once, for_taps, in_bounds, load_x4,
    store_x4, tap_range,
};
use crate::emit::builder::KernelBuilder;
use crate::emit::math::Lanes;
use crate::emit::matmul::activate;
use crate::kernel::{Activation, SpatialOp};

/// Most multiply-adds emitted for one unrolled run of kernel rows.
const MAX_UNROLLED_FMAS: usize = 640;

/// The accumulators of a block: at most this many f32x4 vectors.
const MAX_ACCUMULATORS: usize = 12;

/// A convolution kernel's constants.
struct Conv {
    c_in: usize,
    c_out: usize,
    /// Input and output channels per group.
    cg: usize,
    og: usize,
    /// Output channels per block, and f32x4 vectors per block row.
    ob: usize,
    wide: usize,
    h: Dim,
    w: Dim,
    bias: bool,
    act: Activation,
    /// Weight strides between output channels and between input channels.
    w_oc: usize,
    w_c: usize,
}

/// Per-block base indices.
struct Block {
    x: Value,
    w: Value,
    out: Value,
    bias: Vec<Value>,
}

/// Per-output-row values: the valid kernel rows, and the input and weight
/// indices of kernel row 0 of the phase with their steps per kernel row.
struct Row {
    taps: TapRange,
    x: Value,
    x_step: isize,
    w: Value,
    w_step: usize,
    out: Value,
}

/// Adds one kernel row to the accumulators: `(kb, x index, weight index, acc) -> acc`.
type TapsFn<'t> = &'t dyn Fn(&mut KernelBuilder, Value, Value, &[Value]) -> Vec<Value>;

/// `base + j·k` for a signed constant `k`.
fn lin(kb: &mut KernelBuilder, base: Value, j: Value, k: isize) -> Value {
    match k {
        0 => base,
        1 => kb.b.ins().iadd(base, j),
        _ => {
            let m = kb.b.ins().imul_imm_s(j, k as i64);
            kb.b.ins().iadd(base, m)
        }
    }
}

fn add(kb: &mut KernelBuilder, v: Value, k: isize) -> Value {
    if k == 0 {
        v
    } else {
        kb.b.ins().iadd_imm_s(v, k as i64)
    }
}

/// Emits a convolution kernel; the parallel loop runs over `n · c_out / oc_block` blocks.
pub(super) fn emit(kb: &mut KernelBuilder, op: &SpatialOp) {
    let SpatialOp::Conv {
        c_in,
        c_out,
        groups,
        oc_block,
        input,
        output,
        kernel,
        stride,
        pad,
        dilation,
        transposed,
        bias,
        activation,
        ..
    } = *op
    else {
        unreachable!("conv::emit takes a convolution")
    };
    let [h, w] = dims(input, output, kernel, stride, pad, dilation);
    let (cg, og) = (c_in / groups, c_out / groups);
    let taps = kernel[0] * kernel[1];
    let (w_oc, w_c) = if transposed {
        (taps, og * taps)
    } else {
        (cg * taps, taps)
    };
    let c = Conv {
        c_in,
        c_out,
        cg,
        og,
        ob: oc_block,
        wide: (MAX_ACCUMULATORS / oc_block).clamp(1, 4),
        h,
        w,
        bias,
        act: activation,
        w_oc,
        w_c,
    };
    let rows = h.phases(transposed);
    let cols = w.phases(transposed);
    let per_image = c_out / oc_block;
    let (start, end) = (kb.start, kb.end);
    kb.for_range(start, end, 1, &[], |kb, p, _| {
        let img = kb.b.ins().udiv_imm_u(p, per_image as i64);
        let blk = kb.b.ins().urem_imm_u(p, per_image as i64);
        let oc0 = kb.b.ins().imul_imm_s(blk, oc_block as i64);
        let g = kb.b.ins().udiv_imm_u(oc0, og as i64);
        let ocl0 = kb.b.ins().urem_imm_u(oc0, og as i64);
        let block = c.block(kb, img, g, ocl0, oc0);
        for rp in &rows {
            c.row_phase(kb, &block, rp, &cols);
        }
        vec![]
    });
}

impl Conv {
    fn out_arg(&self) -> usize {
        if self.bias { 3 } else { 2 }
    }

    fn block(
        &self,
        kb: &mut KernelBuilder,
        img: Value,
        g: Value,
        ocl0: Value,
        oc0: Value,
    ) -> Block {
        let hw = self.h.input * self.w.input;
        let ohw = self.h.output * self.w.output;
        let x = kb.affine(img, self.c_in * hw, 0);
        let x = kb.add_scaled(x, g, self.cg * hw);
        let w = kb.affine(g, self.og * self.cg * self.h.kernel * self.w.kernel, 0);
        let w = kb.add_scaled(w, ocl0, self.w_oc);
        let out = kb.affine(img, self.c_out * ohw, 0);
        let out = kb.add_scaled(out, oc0, ohw);
        let bias = (0..self.ob)
            .map(|i| {
                if self.bias {
                    let idx = kb.b.ins().iadd_imm_s(oc0, i as i64);
                    kb.load(types::F32, 2, idx, 4)
                } else {
                    kb.f32c(0.0, false)
                }
            })
            .collect();
        Block { x, w, out, bias }
    }

    /// Every output row of a row phase.
    fn row_phase(&self, kb: &mut KernelBuilder, block: &Block, rp: &Phase, cols: &[Phase]) {
        let (lo, hi) = (kb.int(0), kb.int(rp.count as i64));
        kb.for_range(lo, hi, 1, &[], |kb, qy, _| {
            let taps = tap_range(kb, rp, self.h.input, qy);
            let (k0, off0) = rp.first_tap();
            let (dk, doff) = rp.tap_step();
            let iy0 = kb.affine(qy, rp.in_step, 0);
            let iy0 = add(kb, iy0, off0);
            let x = kb.add_scaled(block.x, iy0, self.w.input);
            let w = kb.b.ins().iadd_imm_s(block.w, (k0 * self.w.kernel) as i64);
            let oy = kb.affine(qy, rp.step, rp.first);
            let out = kb.add_scaled(block.out, oy, self.w.output);
            let row = Row {
                taps,
                x,
                x_step: doff * self.w.input as isize,
                w,
                w_step: dk * self.w.kernel,
                out,
            };
            for cp in cols {
                let columns = Columns::new(cp, self.w.input, self.wide);
                columns.emit(
                    kb,
                    self.wide,
                    |kb, q, n| self.vectors(kb, block, &row, cp, q, n),
                    |kb, q| self.scalar(kb, block, &row, cp, q),
                );
            }
            vec![]
        });
    }

    /// Accumulates `init` over the input channels (outer loop) and valid kernel
    /// rows; `taps(kb, x, w, acc)` adds one kernel row at input index `x` and
    /// weight index `w` (both for output channel 0 of the block).
    fn accumulate(
        &self,
        kb: &mut KernelBuilder,
        row: &Row,
        x: Value,
        fmas_per_row: usize,
        init: Vec<Value>,
        taps: TapsFn,
    ) -> Vec<Value> {
        let hw = self.h.input * self.w.input;
        let unroll = MAX_UNROLLED_FMAS / fmas_per_row.max(1);
        let mut carried = vec![x, row.w];
        carried.extend(init);
        let out = for_n_or_once(kb, self.cg, &carried, |kb, _c, vals| {
            let (xc, wc) = (vals[0], vals[1]);
            let acc = for_taps(kb, row.taps, unroll, &vals[2..], |kb, j, acc| {
                let xj = lin(kb, xc, j, row.x_step);
                let wj = lin(kb, wc, j, row.w_step as isize);
                taps(kb, xj, wj, acc)
            });
            let xn = kb.b.ins().iadd_imm_s(xc, hw as i64);
            let wn = kb.b.ins().iadd_imm_s(wc, self.w_c as i64);
            [vec![xn, wn], acc].concat()
        });
        out[2..].to_vec()
    }

    /// `n` f32x4 vectors of outputs from column `q` of phase `cp`, for every
    /// channel of the block (interior columns: every tap in bounds).
    fn vectors(
        &self,
        kb: &mut KernelBuilder,
        block: &Block,
        row: &Row,
        cp: &Phase,
        q: Value,
        n: usize,
    ) {
        let ob = self.ob;
        let is = cp.in_step;
        let init: Vec<Value> = (0..ob * n)
            .map(|a| kb.b.ins().splat(types::F32X4, block.bias[a / n]))
            .collect();
        let x = kb.b.ins().imul_imm_s(q, is as i64);
        let x = kb.b.ins().iadd(row.x, x);
        let taps = |kb: &mut KernelBuilder, xj: Value, wj: Value, acc: &[Value]| {
            let mut acc = acc.to_vec();
            for &(kx, off) in &cp.taps {
                let xs: Vec<Value> = (0..n)
                    .map(|v| {
                        let i = add(kb, xj, off + (4 * v * is) as isize);
                        load_x4(kb, 0, i, is)
                    })
                    .collect();
                for i in 0..ob {
                    let wi = add(kb, wj, (i * self.w_oc + kx) as isize);
                    let wv = kb.load(types::F32, 1, wi, 4);
                    let wv = kb.b.ins().splat(types::F32X4, wv);
                    for v in 0..n {
                        acc[i * n + v] = kb.b.ins().fma(xs[v], wv, acc[i * n + v]);
                    }
                    acc = barrier(kb, &acc);
                }
            }
            acc
        };
        let fmas = cp.taps.len() * ob * n;
        let acc = self.accumulate(kb, row, x, fmas, init, &taps);
        let out = kb.affine(q, cp.step, cp.first);
        let out = kb.b.ins().iadd(row.out, out);
        let ohw = self.h.output * self.w.output;
        for (a, &v) in acc.iter().enumerate() {
            let (i, l) = (a / n, a % n);
            let r = activate(kb, Lanes { vector: true }, self.act, v);
            let idx = add(kb, out, (i * ohw + 4 * l * cp.step) as isize);
            store_x4(kb, r, self.out_arg(), idx, cp.step);
        }
    }

    /// Output column `q` of phase `cp` for every channel of the block, testing
    /// each tap's input column.
    fn scalar(&self, kb: &mut KernelBuilder, block: &Block, row: &Row, cp: &Phase, q: Value) {
        let qx = kb.affine(q, cp.in_step, 0);
        let bounds: Vec<(Value, Value)> = cp
            .taps
            .iter()
            .map(|&(_, off)| {
                let pos = add(kb, qx, off);
                in_bounds(kb, pos, self.w.input)
            })
            .collect();
        let taps = |kb: &mut KernelBuilder, xj: Value, wj: Value, acc: &[Value]| {
            let mut acc = acc.to_vec();
            for (&(kx, _), &(ok, safe)) in cp.taps.iter().zip(&bounds) {
                let xi = kb.b.ins().iadd(xj, safe);
                let xv = kb.load(types::F32, 0, xi, 4);
                for (i, a) in acc.iter_mut().enumerate() {
                    let wi = add(kb, wj, (i * self.w_oc + kx) as isize);
                    let wv = kb.load(types::F32, 1, wi, 4);
                    let sum = kb.b.ins().fma(xv, wv, *a);
                    *a = kb.b.ins().select(ok, sum, *a);
                }
                acc = barrier(kb, &acc);
            }
            acc
        };
        let fmas = cp.taps.len() * self.ob;
        let acc = self.accumulate(kb, row, row.x, fmas, block.bias.clone(), &taps);
        let out = kb.affine(q, cp.step, cp.first);
        let out = kb.b.ins().iadd(row.out, out);
        let ohw = self.h.output * self.w.output;
        for (i, &v) in acc.iter().enumerate() {
            let r = activate(kb, Lanes { vector: false }, self.act, v);
            let idx = add(kb, out, (i * ohw) as isize);
            kb.store(r, self.out_arg(), idx, 4);
        }
    }
}
