//! Direct convolution and transposed convolution (gather form, see the parent
//! module).
//!
//! Each parallel index computes one block of `oc_block` output channels of one
//! image. For every output row and run of columns, the block's outputs are
//! accumulated in registers — `oc_block × wide` f32x4 vectors along the output
//! width — over the input channels of the group (outer loop), the valid kernel
//! rows and the (unrolled) kernel columns; the input vector of a tap is loaded
//! once and reused by every output channel of the block.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{ConstantData, InstBuilder, Value, types};

use super::native::{self, RowKernel};
use super::{
    Columns, Dim, Phase, RunFn, TapRange, dims, for_taps, in_bounds, load_pure, load_x4, row_run,
    store_x4, tap_range,
};
use crate::emit::builder::KernelBuilder;
use crate::emit::gemm::Tier;
use crate::emit::math::Lanes;
use crate::emit::matmul::activate;
use crate::kernel::{Activation, SpatialOp};

/// Vector registers a block may occupy: `oc_block × wide` accumulators, `wide`
/// input vectors, and a weight plus a copy of it (x64 has 16).
const REGISTERS: usize = 16;

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
    /// The native row kernel for the block's interior columns (native tier,
    /// weights small enough to pack into the scratch).
    native: Option<RowKernel>,
}

/// Per-block values: byte offsets of the block's first input channel (of its
/// group) and first weight, and the element index of its first output.
struct Block {
    x4: Value,
    w4: Value,
    out: Value,
    oc0: Value,
    /// Scratch element index of the block's packed weights (native tier).
    packed: Value,
}

/// Per-output-row values: the valid kernel rows, the byte offsets of the
/// phase's first tap in the input (channel 0) and the weights with their steps
/// per kernel row, and the element index of the output row.
struct Row {
    taps: TapRange,
    /// The row phase's first kernel row and step between kernel rows.
    k_row: (usize, usize),
    x4: Value,
    x_step4: isize,
    w4: Value,
    w_step4: isize,
    out: Value,
}

/// Adds one kernel tap to the accumulators: `(kb, input row byte offset,
/// column value, weight byte offset, acc) -> acc`.
type TapFn<'t> = &'t dyn Fn(&mut KernelBuilder, Value, Value, Value, &[Value]) -> Vec<Value>;

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

/// Emits a convolution kernel; the parallel loop runs over `n · c_out / oc_block`
/// blocks. On the native `tier`, interior columns of unit stride run through
/// the AVX2 row kernel (see [`native`]).
pub(super) fn emit(kb: &mut KernelBuilder, op: &SpatialOp, tier: Tier) {
    let SpatialOp::Conv {
        c_in,
        c_out,
        groups,
        oc_block,
        row_chunks,
        window,
        transposed,
        bias,
        activation,
        ..
    } = *op
    else {
        unreachable!("conv::emit takes a convolution")
    };
    let [h, w] = dims(&window);
    let (cg, og) = (c_in / groups, c_out / groups);
    let taps = window.kernel[0] * window.kernel[1];
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
        wide: ((REGISTERS - 2) / (oc_block + 1)).clamp(1, 6),
        h,
        w,
        bias,
        act: activation,
        w_oc,
        w_c,
        native: match tier {
            Tier::Native(_) => op.packed_weights().and(native::row_kernel(oc_block)),
            Tier::Portable => None,
        },
    };
    if c.native.is_some() {
        let pack = native::Pack {
            src: 1,
            dst: c.out_arg() + 1,
            blocks: c_out / oc_block,
            ob: oc_block,
            og: c.og,
            cg: c.cg,
            taps,
            w_oc,
            w_c,
        };
        native::emit_pack(kb, &pack);
    }
    let rows = h.phases(transposed);
    let cols = w.phases(transposed);
    let per_image = c_out / oc_block;
    let (start, end) = (kb.start, kb.end);
    kb.for_range(start, end, 1, &[], |kb, p, _| {
        let chunk = kb.b.ins().urem_imm_u(p, row_chunks as i64);
        let p = kb.b.ins().udiv_imm_u(p, row_chunks as i64);
        let img = kb.b.ins().udiv_imm_u(p, per_image as i64);
        let blk = kb.b.ins().urem_imm_u(p, per_image as i64);
        let oc0 = kb.b.ins().imul_imm_s(blk, oc_block as i64);
        let g = kb.b.ins().udiv_imm_u(oc0, og as i64);
        let ocl0 = kb.b.ins().urem_imm_u(oc0, og as i64);
        let block = c.block(kb, img, g, ocl0, oc0);
        for rp in &rows {
            let (lo, hi) = row_run(kb, rp.count, row_chunks, chunk);
            c.row_phase(kb, &block, rp, (lo, hi), &cols);
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
        let x4 = kb.affine(img, 4 * self.c_in * hw, 0);
        let x4 = kb.add_scaled(x4, g, 4 * self.cg * hw);
        let w4 = kb.affine(g, 4 * self.og * self.cg * self.h.kernel * self.w.kernel, 0);
        let w4 = kb.add_scaled(w4, ocl0, 4 * self.w_oc);
        let out = kb.affine(img, self.c_out * ohw, 0);
        let out = kb.add_scaled(out, oc0, ohw);
        let blk = kb.b.ins().udiv_imm_u(oc0, self.ob as i64);
        let packed = kb.affine(blk, self.ob * self.cg * self.h.kernel * self.w.kernel, 0);
        Block {
            x4,
            w4,
            out,
            oc0,
            packed,
        }
    }

    /// The bias of each channel of the block (loaded where it is needed, so that
    /// it is not hoisted to occupy registers across the loops).
    fn bias(&self, kb: &mut KernelBuilder, block: &Block) -> Vec<Value> {
        (0..self.ob)
            .map(|i| {
                if self.bias {
                    let idx = kb.b.ins().iadd_imm_s(block.oc0, i as i64);
                    kb.load(types::F32, 2, idx, 4)
                } else {
                    kb.f32c(0.0, false)
                }
            })
            .collect()
    }

    /// The output rows `lo..hi` (indices into the phase) of a row phase.
    fn row_phase(
        &self,
        kb: &mut KernelBuilder,
        block: &Block,
        rp: &Phase,
        (lo, hi): (Value, Value),
        cols: &[Phase],
    ) {
        kb.for_range(lo, hi, 1, &[], |kb, qy, _| {
            let taps = tap_range(kb, rp, self.h.input, qy);
            let (k0, off0) = rp.first_tap();
            let (dk, doff) = rp.tap_step();
            let iy0 = kb.affine(qy, rp.in_step, 0);
            let iy0 = add(kb, iy0, off0);
            let x4 = kb.add_scaled(block.x4, iy0, 4 * self.w.input);
            let w4 = add(kb, block.w4, (4 * k0 * self.w.kernel) as isize);
            let oy = kb.affine(qy, rp.step, rp.first);
            let out = kb.add_scaled(block.out, oy, self.w.output);
            let row = Row {
                taps,
                k_row: (k0, dk),
                x4,
                x_step4: 4 * doff * self.w.input as isize,
                w4,
                w_step4: (4 * dk * self.w.kernel) as isize,
                out,
            };
            for cp in cols {
                // The native kernel takes blocks of 8 unit-stride columns.
                let native = self.native.filter(|_| cp.in_step == 1 && cp.step == 1);
                let wide = if native.is_some() {
                    native::LANES / 4
                } else {
                    self.wide
                };
                let mut run = |kb: &mut KernelBuilder, lo, hi| {
                    if let Some(f) = native {
                        self.native_run(kb, f, block, &row, cp, (lo, hi));
                    }
                };
                Columns::new(cp, self.w.input, wide).emit(
                    kb,
                    wide,
                    native.map(|_| &mut run as RunFn),
                    &mut |kb, q, n| self.vectors(kb, block, &row, cp, q, n),
                    Some(&mut |kb, q| self.masked(kb, block, &row, cp, q)),
                    &mut |kb, q| self.scalar(kb, block, &row, cp, q),
                );
            }
            vec![]
        });
    }

    /// The interior columns `lo..hi` of phase `cp` (unit strides, a multiple
    /// of 8 wide) for every channel of the block, by one call of the native
    /// row kernel `f`.
    fn native_run(
        &self,
        kb: &mut KernelBuilder,
        f: RowKernel,
        block: &Block,
        row: &Row,
        cp: &Phase,
        (lo, hi): (usize, usize),
    ) {
        let (r0, r1) = match row.taps {
            TapRange::Const(a, b) => (kb.int(a as i64), kb.int(b as i64)),
            TapRange::Dynamic(a, b) => (a, b),
        };
        let rows = kb.b.ins().isub(r1, r0);
        let (k0, off0) = cp.first_tap();
        let (dk, doff) = cp.tap_step();
        let x4 = lin(kb, row.x4, r0, row.x_step4);
        let x4 = add(kb, x4, 4 * (lo as isize + off0));
        let (kh0, dkh) = row.k_row;
        let kw = self.w.kernel;
        // The packed weights: tap-major, the block's channels adjacent.
        let ob = self.ob;
        let w = add(kb, block.packed, ((kh0 * kw + k0) * ob) as isize);
        let w = lin(kb, w, r0, (dkh * kw * ob) as isize);
        let w4 = kb.b.ins().imul_imm_s(w, 4);
        let out = add(kb, row.out, (cp.first + lo) as isize);
        let call = native::Call {
            x4,
            w4,
            out,
            bias: self.bias.then_some(block.oc0),
            rows,
            cols: hi - lo,
            ob: self.ob,
            channels: self.cg,
            taps: cp.taps.len(),
            x_col: doff,
            w_col: (dk * ob) as isize,
            x_row: row.x_step4 / 4,
            w_row: (dkh * kw * ob) as isize,
            x_chan: (self.h.input * self.w.input) as isize,
            w_chan: (self.h.kernel * kw * ob) as isize,
            out_oc: (self.h.output * self.w.output) as isize,
            relu: self.act == Activation::Relu,
        };
        let args = native::Args {
            x: 0,
            w: self.out_arg() + 1,
            bias: 2,
            out: self.out_arg(),
        };
        native::emit_call(kb, f, &args, &call);
    }

    /// Accumulates `init` over the input channels of the group (outer loop), the
    /// valid kernel rows and the taps of `cp`, one tap per loop iteration so that
    /// each iteration's loads feed its own multiply-adds. The tap loop carries a
    /// column value from `col0` in steps of `col_step` for `tap`.
    fn accumulate(
        &self,
        kb: &mut KernelBuilder,
        row: &Row,
        cp: &Phase,
        (col0, col_step): (Value, isize),
        init: Vec<Value>,
        tap: TapFn,
    ) -> Vec<Value> {
        let hw4 = 4 * self.h.input * self.w.input;
        let (k0, _) = cp.first_tap();
        let (dk, _) = cp.tap_step();
        let n = cp.taps.len();
        let channel = |kb: &mut KernelBuilder, xc4: Value, vals: &[Value]| {
            let wc4 = vals[0];
            let acc = for_taps(kb, row.taps, 1, &vals[1..], |kb, j, acc| {
                let xj4 = lin(kb, xc4, j, row.x_step4);
                let wj4 = lin(kb, wc4, j, row.w_step4);
                let w4 = add(kb, wj4, 4 * k0 as isize);
                // Taps in pairs per iteration (halving the loop overhead and the
                // accumulator moves at the back edge), then the odd one.
                let pairs = n / 2;
                let step4 = (4 * dk) as isize;
                let mut vals = [&[col0], acc].concat();
                if pairs > 0 {
                    let end = add(kb, w4, 2 * pairs as isize * step4);
                    vals = kb.for_range(w4, end, 2 * step4 as i64, &vals, |kb, w4, vals| {
                        let acc = tap(kb, xj4, vals[0], w4, &vals[1..]);
                        let (col, w4) = (add(kb, vals[0], col_step), add(kb, w4, step4));
                        let acc = tap(kb, xj4, col, w4, &acc);
                        [vec![add(kb, col, col_step)], acc].concat()
                    });
                }
                if n % 2 == 1 {
                    let w4 = add(kb, w4, 2 * pairs as isize * step4);
                    let acc = tap(kb, xj4, vals[0], w4, &vals[1..]);
                    vals = [vec![vals[0]], acc].concat();
                }
                vals[1..].to_vec()
            });
            let wn = add(kb, wc4, (4 * self.w_c) as isize);
            [vec![wn], acc].concat()
        };
        let carried = [vec![row.w4], init].concat();
        let out = if self.cg == 1 {
            channel(kb, row.x4, &carried)
        } else {
            let end = add(kb, row.x4, (self.cg * hw4) as isize);
            kb.for_range(row.x4, end, hw4 as i64, &carried, channel)
        };
        out[1..].to_vec()
    }

    /// `acc + x·w` for one block tap; the multiplicand with fewer uses goes
    /// first, as the x64 `fma` overwrites its first operand.
    fn fma(&self, kb: &mut KernelBuilder, x: Value, w: Value, acc: Value) -> Value {
        if self.ob >= self.wide {
            kb.b.ins().fma(w, x, acc)
        } else {
            kb.b.ins().fma(x, w, acc)
        }
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
        let bias = self.bias(kb, block);
        let init: Vec<Value> = (0..ob * n)
            .map(|a| kb.b.ins().splat(types::F32X4, bias[a / n]))
            .collect();
        // The column value is the tap's byte offset within the input row.
        let col0 = kb.affine(q, 4 * is, 0);
        let col0 = add(kb, col0, 4 * cp.first_tap().1);
        let col_step = 4 * cp.tap_step().1;
        let tap = |kb: &mut KernelBuilder, xj4: Value, col: Value, w4: Value, acc: &[Value]| {
            let x4 = kb.b.ins().iadd(xj4, col);
            let xs: Vec<Value> = (0..n)
                .map(|v| {
                    let i = add(kb, x4, (16 * v * is) as isize);
                    load_x4(kb, 0, i, is)
                })
                .collect();
            let mut acc = acc.to_vec();
            for i in 0..ob {
                let wi = add(kb, w4, (4 * i * self.w_oc) as isize);
                let wv = load_pure(kb, types::F32, 1, wi);
                let wv = kb.b.ins().splat(types::F32X4, wv);
                for v in 0..n {
                    acc[i * n + v] = self.fma(kb, xs[v], wv, acc[i * n + v]);
                }
            }
            acc
        };
        let acc = self.accumulate(kb, row, cp, (col0, col_step), init, &tap);
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

    /// The 4 outputs from column `q` of phase `cp` for every channel of the
    /// block, testing each lane's input column for every tap (edge columns).
    fn masked(&self, kb: &mut KernelBuilder, block: &Block, row: &Row, cp: &Phase, q: Value) {
        let is = cp.in_step;
        let bias = self.bias(kb, block);
        let init: Vec<Value> = bias
            .iter()
            .map(|&b| kb.b.ins().splat(types::F32X4, b))
            .collect();
        // The column value is lane 0's input column for the tap.
        let col0 = kb.affine(q, is, 0);
        let col0 = add(kb, col0, cp.first_tap().1);
        let lanes: Vec<u8> = (0..4u32)
            .flat_map(|l| (l * is as u32).to_le_bytes())
            .collect();
        let lanes = kb.b.func.dfg.constants.insert(ConstantData::from(lanes));
        let tap = |kb: &mut KernelBuilder, xj4: Value, col: Value, w4: Value, acc: &[Value]| {
            let mut x = None;
            for l in 0..4u8 {
                let pos = add(kb, col, (l as usize * is) as isize);
                let (_, safe) = in_bounds(kb, pos, self.w.input);
                let xi = kb.add_scaled(xj4, safe, 4);
                let s = load_pure(kb, types::F32, 0, xi);
                x = Some(match x {
                    None => kb.b.ins().scalar_to_vector(types::F32X4, s),
                    Some(v) => kb.b.ins().insertlane(v, s, l),
                });
            }
            let x = x.expect("four lanes");
            let col32 = kb.b.ins().ireduce(types::I32, col);
            let pos = kb.b.ins().splat(types::I32X4, col32);
            let offsets = kb.b.ins().vconst(types::I32X4, lanes);
            let pos = kb.b.ins().iadd(pos, offsets);
            let len = kb.b.ins().iconst(types::I32, self.w.input as i64);
            let len = kb.b.ins().splat(types::I32X4, len);
            let ok = kb.b.ins().icmp(IntCC::UnsignedLessThan, pos, len);
            acc.iter()
                .enumerate()
                .map(|(i, &a)| {
                    let wi = add(kb, w4, (4 * i * self.w_oc) as isize);
                    let wv = load_pure(kb, types::F32, 1, wi);
                    let wv = kb.b.ins().splat(types::F32X4, wv);
                    let sum = kb.b.ins().fma(x, wv, a);
                    kb.select_mask(Lanes { vector: true }, ok, sum, a)
                })
                .collect()
        };
        let col = (col0, cp.tap_step().1);
        let acc = self.accumulate(kb, row, cp, col, init, &tap);
        let out = kb.affine(q, cp.step, cp.first);
        let out = kb.b.ins().iadd(row.out, out);
        let ohw = self.h.output * self.w.output;
        for (i, &v) in acc.iter().enumerate() {
            let r = activate(kb, Lanes { vector: true }, self.act, v);
            let idx = add(kb, out, (i * ohw) as isize);
            store_x4(kb, r, self.out_arg(), idx, cp.step);
        }
    }

    /// Output column `q` of phase `cp` for every channel of the block, testing
    /// each tap's input column.
    fn scalar(&self, kb: &mut KernelBuilder, block: &Block, row: &Row, cp: &Phase, q: Value) {
        // The column value is the tap's input column (possibly out of bounds).
        let col0 = kb.affine(q, cp.in_step, 0);
        let col0 = add(kb, col0, cp.first_tap().1);
        let tap = |kb: &mut KernelBuilder, xj4: Value, col: Value, w4: Value, acc: &[Value]| {
            let (ok, safe) = in_bounds(kb, col, self.w.input);
            let xi = kb.add_scaled(xj4, safe, 4);
            let xv = load_pure(kb, types::F32, 0, xi);
            acc.iter()
                .enumerate()
                .map(|(i, &a)| {
                    let wi = add(kb, w4, (4 * i * self.w_oc) as isize);
                    let wv = load_pure(kb, types::F32, 1, wi);
                    let sum = kb.b.ins().fma(xv, wv, a);
                    kb.b.ins().select(ok, sum, a)
                })
                .collect()
        };
        let bias = self.bias(kb, block);
        let col = (col0, cp.tap_step().1);
        let acc = self.accumulate(kb, row, cp, col, bias, &tap);
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
