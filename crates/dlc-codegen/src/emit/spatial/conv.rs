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
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::native::{self, RowKernel};
use super::{Columns, Dim, Phase, RunFn, TapRange, dims, row_run, tap_range};
use crate::emit::builder::KernelBuilder;
use crate::emit::gemm::Tier;
use crate::kernel::{Activation, SpatialOp};

mod direct;
mod native_call;
mod pooled;

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
/// group) and first weight, and where the conv rows go: the element index of
/// the block's first output (row 0) in argument `out_arg`, with `oc_stride`
/// elements between channels (the output, or a pooled convolution's scratch).
#[derive(Clone, Copy)]
struct Block {
    x4: Value,
    w4: Value,
    out: Value,
    out_arg: usize,
    oc_stride: usize,
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
        pool,
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
            Tier::Native(_) => op
                .packed_weights()
                .and(native::row_kernel(oc_block, window.output[1])),
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
        if pool > 1 {
            let (lo, hi) = row_run(kb, h.output / pool, row_chunks, chunk);
            c.pooled_rows(kb, &block, (&rows[0], &cols), (pool, op, img), (lo, hi));
            return vec![];
        }
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
            out_arg: self.out_arg(),
            oc_stride: ohw,
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

    /// The values of output row `qy` (an index into row phase `rp`) whose
    /// valid kernel rows are `taps`.
    fn row(
        &self,
        kb: &mut KernelBuilder,
        block: &Block,
        rp: &Phase,
        qy: Value,
        taps: TapRange,
    ) -> Row {
        let (k0, off0) = rp.first_tap();
        let (dk, doff) = rp.tap_step();
        let iy0 = kb.affine(qy, rp.in_step, 0);
        let iy0 = add(kb, iy0, off0);
        let x4 = kb.add_scaled(block.x4, iy0, 4 * self.w.input);
        let w4 = add(kb, block.w4, (4 * k0 * self.w.kernel) as isize);
        let oy = kb.affine(qy, rp.step, rp.first);
        let out = kb.add_scaled(block.out, oy, self.w.output);
        Row {
            taps,
            k_row: (k0, dk),
            x4,
            x_step4: 4 * doff * self.w.input as isize,
            w4,
            w_step4: (4 * dk * self.w.kernel) as isize,
            out,
        }
    }

    /// The output rows `lo..hi` (indices into the phase) of a row phase. On the
    /// native tier the rows of the run with every kernel row valid go first,
    /// one native call per column phase for all of them
    /// ([`Conv::native_rows`]); the per-row loop then skips their interior.
    fn row_phase(
        &self,
        kb: &mut KernelBuilder,
        block: &Block,
        rp: &Phase,
        (lo, hi): (Value, Value),
        cols: &[Phase],
    ) {
        let full = self.native_rows(kb, block, rp, (lo, hi), cols);
        kb.for_range(lo, hi, 1, &[], |kb, qy, _| {
            let taps = tap_range(kb, rp, self.h.input, qy);
            let row = self.row(kb, block, rp, qy, taps);
            for cp in cols {
                let native = self.native_kernel(cp);
                let wide = if native.is_some() {
                    native::LANES / 4
                } else {
                    self.wide
                };
                let mut run = |kb: &mut KernelBuilder, lo, hi| {
                    let Some(f) = native else { return };
                    let one = kb.int(1);
                    let call = |kb: &mut KernelBuilder| {
                        self.native_run(kb, f, block, &row, (rp, one), cp, (lo, hi));
                    };
                    match full {
                        Some((a, b)) => {
                            let before = kb.b.ins().icmp(IntCC::SignedLessThan, qy, a);
                            let after = kb.b.ins().icmp(IntCC::SignedGreaterThanOrEqual, qy, b);
                            let outside = kb.b.ins().bor(before, after);
                            kb.if_then(outside, call);
                        }
                        None => call(kb),
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
}
