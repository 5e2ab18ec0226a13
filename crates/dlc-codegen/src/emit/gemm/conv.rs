//! Convolution as implicit GEMM: per image and group, `C[og, oh·ow] =
//! W[og, cg·kh·kw] · im2col(x)[cg·kh·kw, oh·ow]`, run by the packed GEMM of the
//! parent module with a B source that reads the image in place (no im2col
//! buffer is materialised) and a bias indexed by the row (output channel).
//!
//! Row `(c, kh, kw)`, column `(oh, ow)` of the im2col matrix is
//! `x[c, oh·sh − ph + kh·dh, ow·sw − pw + kw·dw]`, zero in the padding. The
//! depth blocks hold whole input channels (`kc` is a multiple of the taps), so
//! a panel is packed column by column and tap by tap: the column's position and
//! the tap's validity are computed once, then the tap is copied (or zeroed)
//! for every channel of the block.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, types};

use super::{BSource, BiasAxis, Gemm, Offsets, Panel, Tier};
use crate::emit::builder::KernelBuilder;
use crate::kernel::{GEMM_NR_MAX, MatView, SpatialOp};

/// The im2col matrix of one image and group, read from argument 0.
pub struct Im2col {
    /// Input height and width.
    input: [usize; 2],
    /// Output width.
    out_w: usize,
    /// Kernel height and width.
    kernel: [usize; 2],
    /// Strides, padding before the first row/column, dilations.
    stride: [usize; 2],
    pad: [usize; 2],
    dilation: [usize; 2],
}

impl Im2col {
    /// Packs one panel (`nr` columns from `p.col0`, rows `p.pc..p.pc + p.kc`)
    /// into the scratch block at `p.dst0`, k-major.
    pub(super) fn pack_panel(&self, kb: &mut KernelBuilder, g: &Gemm, p: &Panel) {
        let [h, w] = self.input;
        let [kh_n, kw_n] = self.kernel;
        let taps = kh_n * kw_n;
        let hw = h * w;
        let nr = g.nr;
        let c0 = kb.b.ins().udiv_imm_u(p.pc, taps as i64);
        let chans = kb.b.ins().udiv_imm_u(p.kc, taps as i64);
        let x0 = kb.add_scaled(p.b_off, c0, hw);
        let last = kb.int(g.n as i64 - 1);
        kb.for_n(nr, &[], |kb, j, _| {
            let col = kb.b.ins().iadd(p.col0, j);
            let inside = kb.b.ins().icmp(IntCC::SignedLessThan, col, p.col_hi);
            let col = kb.b.ins().smin(col, last);
            let oh = kb.b.ins().udiv_imm_u(col, self.out_w as i64);
            let ow = kb.b.ins().urem_imm_u(col, self.out_w as i64);
            let ih0 = kb.affine(oh, self.stride[0], 0);
            let ih0 = kb.b.ins().iadd_imm_s(ih0, -(self.pad[0] as i64));
            let iw0 = kb.affine(ow, self.stride[1], 0);
            let iw0 = kb.b.ins().iadd_imm_s(iw0, -(self.pad[1] as i64));
            let dst_j = kb.b.ins().iadd(p.dst0, j);
            kb.for_n(taps, &[], |kb, t, _| {
                let kh = kb.b.ins().udiv_imm_u(t, kw_n as i64);
                let kw = kb.b.ins().urem_imm_u(t, kw_n as i64);
                let ih = kb.add_scaled(ih0, kh, self.dilation[0]);
                let iw = kb.add_scaled(iw0, kw, self.dilation[1]);
                let ok_h = kb.b.ins().icmp_imm_u(IntCC::UnsignedLessThan, ih, h as i64);
                let ok_w = kb.b.ins().icmp_imm_u(IntCC::UnsignedLessThan, iw, w as i64);
                let ok = kb.b.ins().band(ok_h, ok_w);
                let ok = kb.b.ins().band(ok, inside);
                let dst = kb.add_scaled(dst_j, t, nr);
                let dst_step = (taps * nr) as i64;
                kb.if_else(
                    ok,
                    |kb| {
                        let src = kb.add_scaled(x0, ih, w);
                        let src = kb.b.ins().iadd(src, iw);
                        let zero = kb.int(0);
                        kb.for_range(zero, chans, 1, &[src, dst], |kb, _, v| {
                            let x = kb.load(types::F32, 0, v[0], 4);
                            kb.store(x, g.s, v[1], 4);
                            let src = kb.b.ins().iadd_imm_s(v[0], hw as i64);
                            let dst = kb.b.ins().iadd_imm_s(v[1], dst_step);
                            vec![src, dst]
                        });
                    },
                    |kb| {
                        let zero = kb.int(0);
                        kb.for_range(zero, chans, 1, &[dst], |kb, _, v| {
                            let z = kb.f32c(0.0, false);
                            kb.store(z, g.s, v[0], 4);
                            vec![kb.b.ins().iadd_imm_s(v[0], dst_step)]
                        });
                    },
                );
                vec![]
            });
            vec![]
        });
    }
}

/// Emits a convolution lowered to implicit GEMMs (`SpatialOp::Conv` with
/// `gemm: Some(..)`): inputs `x, w[, bias]`. The parallel loop runs over
/// (image, group, column panel of `GEMM_NR_MAX`) triples, so a share of it
/// is a run of whole products with a partial one at either end.
pub fn emit(kb: &mut KernelBuilder, op: &SpatialOp, tier: Tier) {
    let SpatialOp::Conv {
        c_in,
        c_out,
        groups,
        input,
        output,
        kernel,
        stride,
        pad,
        dilation,
        bias,
        activation,
        gemm: Some(bl),
        ..
    } = *op
    else {
        unreachable!("gemm::conv::emit takes a convolution lowered to GEMM")
    };
    let (cg, og) = (c_in / groups, c_out / groups);
    let (hw, ohw) = (input[0] * input[1], output[0] * output[1]);
    let k = cg * kernel[0] * kernel[1];
    let a = MatView {
        offset: 0,
        row_stride: k,
        col_stride: 1,
        batch_strides: vec![],
    };
    let im = Im2col {
        input,
        out_w: output[1],
        kernel,
        stride,
        pad,
        dilation,
    };
    let bias = bias.then_some(BiasAxis::Rows);
    let g = Gemm::new(
        (og, ohw, k),
        bl,
        (&a, 1),
        BSource::Image(&im),
        bias,
        activation,
        tier,
    );
    let panels = ohw.div_ceil(GEMM_NR_MAX) as i64;
    let (start, end) = (kb.start, kb.end);
    let lo = kb.b.ins().udiv_imm_u(start, panels);
    let hi = kb.b.ins().iadd_imm_s(end, panels - 1);
    let hi = kb.b.ins().udiv_imm_u(hi, panels);
    kb.for_range(lo, hi, 1, &[], |kb, bg, _| {
        // This product's share of the range, in panels, then in columns.
        let first = kb.b.ins().imul_imm_s(bg, panels);
        let s = kb.b.ins().smax(start, first);
        let s = kb.b.ins().isub(s, first);
        let e = kb.b.ins().iadd_imm_s(first, panels);
        let e = kb.b.ins().smin(end, e);
        let e = kb.b.ins().isub(e, first);
        let col_lo = kb.b.ins().imul_imm_s(s, GEMM_NR_MAX as i64);
        let col_hi = kb.b.ins().imul_imm_s(e, GEMM_NR_MAX as i64);
        let n = kb.int(ohw as i64);
        let col_hi = kb.b.ins().smin(col_hi, n);
        let img = kb.b.ins().udiv_imm_u(bg, groups as i64);
        let grp = kb.b.ins().urem_imm_u(bg, groups as i64);
        let b = kb.affine(img, c_in * hw, 0);
        let offs = Offsets {
            a: kb.affine(grp, og * k, 0),
            b: kb.add_scaled(b, grp, cg * hw),
            c: kb.affine(bg, og * ohw, 0),
            bias: kb.affine(grp, og, 0),
        };
        let rows = (kb.int(0), kb.int(og as i64));
        g.batch(kb, rows, (col_lo, col_hi), &offs);
        vec![]
    });
}
