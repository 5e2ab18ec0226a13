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
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::pack::Panel;
use super::{BSource, BiasAxis, Gemm, Offsets, Tier};
use crate::emit::builder::KernelBuilder;
use crate::emit::spatial::shuffle_lanes;
use crate::kernel::{GEMM_NR_MAX, MatView, SpatialOp, Window};

/// The im2col matrix of one image and group, read from argument 0.
pub struct Im2col {
    /// The convolution's geometry.
    win: Window,
}

/// Kernel widths up to which a kernel row whose taps are all inside the image
/// is copied with its taps unrolled (wider rows go tap by tap).
const MAX_ROW_TAPS: usize = 16;

/// Values shared by the packing of one panel: the block's first input
/// channel (element index in argument 0) and the channels in the block.
struct Block<'p> {
    x0: Value,
    chans: Value,
    p: &'p Panel,
}

impl Im2col {
    /// Packs one panel (`nr` columns from `p.col0`, rows `p.pc..p.pc + p.kc`)
    /// into the scratch block at `p.dst0`, k-major.
    ///
    /// The panel is walked in quads of four columns and, within a quad, tap by
    /// tap. When the quad lies in one output row inside the valid columns and
    /// the tap reads four in-bounds input columns, the tap is copied as one
    /// f32x4 per channel (one vector load for unit stride, four loads at
    /// constant displacements otherwise); the other quads and taps (padding
    /// borders, quads across a row end, the matrix edge) go column by column.
    pub(super) fn pack_panel(&self, kb: &mut KernelBuilder, g: &Gemm, p: &Panel) {
        let [h, w] = self.win.input;
        let taps = self.win.kernel[0] * self.win.kernel[1];
        let c0 = kb.b.ins().udiv_imm_u(p.pc, taps as i64);
        let chans = kb.b.ins().udiv_imm_u(p.kc, taps as i64);
        let x0 = kb.add_scaled(p.b_off, c0, h * w);
        let blk = Block { x0, chans, p };
        if self.win.output[1] < 4 {
            kb.for_n(g.nr, &[], |kb, j, _| {
                self.for_taps(kb, g, p.dst0, |kb, tap, dst| {
                    let dst = kb.b.ins().iadd(dst, j);
                    self.column_tap(kb, g, &blk, j, tap, dst);
                });
                vec![]
            });
            return;
        }
        let zero = kb.int(0);
        let nr = kb.int(g.nr as i64);
        kb.for_range(zero, nr, 4, &[], |kb, j0, _| {
            let col = kb.b.ins().iadd(p.col0, j0);
            let end = kb.b.ins().iadd_imm_s(col, 4);
            let inside = kb.b.ins().icmp(IntCC::SignedLessThanOrEqual, end, p.col_hi);
            let ow = kb.b.ins().urem_imm_u(col, self.win.output[1] as i64);
            let limit = self.win.output[1] as i64 - 3;
            let one_row = kb.b.ins().icmp_imm_u(IntCC::UnsignedLessThan, ow, limit);
            let quad = kb.b.ins().band(inside, one_row);
            let origin = self.origin(kb, col);
            let dst_q = kb.b.ins().iadd(p.dst0, j0);
            // One tap, checked alone: four columns in one vector or one by one.
            let tap = |kb: &mut KernelBuilder, tap: (Value, Value), dst: Value| {
                let (ih, iw) = self.position(kb, origin, tap);
                let ok = self.quad_inside(kb, quad, ih, iw, 0);
                kb.if_else(
                    ok,
                    |kb| {
                        let src = kb.add_scaled(x0, ih, w);
                        let src = kb.b.ins().iadd(src, iw);
                        self.copy_quads(kb, g, &blk, src, dst, 1);
                    },
                    |kb| {
                        kb.for_n(4, &[], |kb, l, _| {
                            let j = kb.b.ins().iadd(j0, l);
                            let dst = kb.b.ins().iadd(dst, l);
                            self.column_tap(kb, g, &blk, j, tap, dst);
                            vec![]
                        });
                    },
                );
            };
            let [kh_n, kw_n] = self.win.kernel;
            kb.for_n(kh_n, &[], |kb, kh, _| {
                let dst = kb.add_scaled(dst_q, kh, kw_n * g.nr);
                let per_tap = |kb: &mut KernelBuilder| {
                    kb.for_n(kw_n, &[], |kb, kw, _| {
                        let dst = kb.add_scaled(dst, kw, g.nr);
                        tap(kb, (kh, kw), dst);
                        vec![]
                    });
                };
                if kw_n > MAX_ROW_TAPS {
                    per_tap(kb);
                    return vec![];
                }
                // The whole kernel row at once when all its taps are inside.
                let (ih, iw) = self.position(kb, origin, (kh, zero));
                let span = (kw_n - 1) * self.win.dilation[1];
                let ok = self.quad_inside(kb, quad, ih, iw, span);
                let whole = |kb: &mut KernelBuilder| {
                    let src = kb.add_scaled(x0, ih, w);
                    let src = kb.b.ins().iadd(src, iw);
                    self.copy_quads(kb, g, &blk, src, dst, kw_n);
                };
                kb.if_else(ok, whole, per_tap);
                vec![]
            });
            vec![]
        });
    }

    /// Whether the quad's columns `iw + d + l·sw` (`l < 4`, `d ≤ span`) of
    /// input row `ih` all lie in the image, and the quad is whole (`quad`).
    fn quad_inside(
        &self,
        kb: &mut KernelBuilder,
        quad: Value,
        ih: Value,
        iw: Value,
        span: usize,
    ) -> Value {
        let [h, w] = self.win.input;
        let ok_h = kb.b.ins().icmp_imm_u(IntCC::UnsignedLessThan, ih, h as i64);
        let last =
            kb.b.ins()
                .iadd_imm_s(iw, (span + 3 * self.win.stride[1]) as i64);
        let ok_w =
            kb.b.ins()
                .icmp_imm_u(IntCC::UnsignedLessThan, last, w as i64);
        let ok_0 =
            kb.b.ins()
                .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, iw, 0);
        let ok = kb.b.ins().band(ok_h, ok_w);
        let ok = kb.b.ins().band(ok, ok_0);
        kb.b.ins().band(ok, quad)
    }

    /// Runs `body(kb, (kh, kw), dst)` for every tap, with `dst` the scratch
    /// index of the tap's row for channel 0 (`dst0 + (kh·kw_n + kw)·nr`).
    fn for_taps(
        &self,
        kb: &mut KernelBuilder,
        g: &Gemm,
        dst0: Value,
        body: impl Fn(&mut KernelBuilder, (Value, Value), Value),
    ) {
        let [kh_n, kw_n] = self.win.kernel;
        kb.for_n(kh_n, &[], |kb, kh, _| {
            let row = kb.add_scaled(dst0, kh, kw_n * g.nr);
            kb.for_n(kw_n, &[], |kb, kw, _| {
                let dst = kb.add_scaled(row, kw, g.nr);
                body(kb, (kh, kw), dst);
                vec![]
            });
            vec![]
        });
    }

    /// The input position of tap (0, 0) for im2col column `col`, `(oh·sh −
    /// ph, ow·sw − pw)` (possibly outside the image).
    fn origin(&self, kb: &mut KernelBuilder, col: Value) -> (Value, Value) {
        let oh = kb.b.ins().udiv_imm_u(col, self.win.output[1] as i64);
        let ow = kb.b.ins().urem_imm_u(col, self.win.output[1] as i64);
        let ih = kb.affine(oh, self.win.stride[0], 0);
        let ih = kb.b.ins().iadd_imm_s(ih, -(self.win.pad[0] as i64));
        let iw = kb.affine(ow, self.win.stride[1], 0);
        let iw = kb.b.ins().iadd_imm_s(iw, -(self.win.pad[1] as i64));
        (ih, iw)
    }

    /// The input position of tap `(kh, kw)` from a column's origin.
    fn position(
        &self,
        kb: &mut KernelBuilder,
        (ih0, iw0): (Value, Value),
        (kh, kw): (Value, Value),
    ) -> (Value, Value) {
        let ih = kb.add_scaled(ih0, kh, self.win.dilation[0]);
        let iw = kb.add_scaled(iw0, kw, self.win.dilation[1]);
        (ih, iw)
    }

    /// Copies `taps` consecutive taps of one kernel row, four input columns
    /// `sw` apart each, from element `src` (channel 0, first tap) to the
    /// scratch rows from `dst`, for every channel of the block.
    fn copy_quads(
        &self,
        kb: &mut KernelBuilder,
        g: &Gemm,
        blk: &Block,
        src: Value,
        dst: Value,
        taps: usize,
    ) {
        let hw = (self.win.input[0] * self.win.input[1]) as i64;
        let dst_step = (self.win.kernel[0] * self.win.kernel[1] * g.nr) as i64;
        let (sw, dw) = (self.win.stride[1] as i32, self.win.dilation[1] as i32);
        let zero = kb.int(0);
        kb.for_range(zero, blk.chans, 1, &[src, dst], |kb, _, v| {
            for t in 0..taps as i32 {
                let (from, to) = (4 * t * dw, 4 * t * g.nr as i32);
                if sw == 1 {
                    let x = kb.load_at(types::F32X4, 0, v[0], 4, from);
                    kb.store_at(x, g.s, v[1], 4, to);
                } else if sw == 2 {
                    // Columns [0, 3] and [3, 6]: lanes 0, 2 and 1, 3 (one `shufps`).
                    let x = kb.load_at(types::F32X4, 0, v[0], 4, from);
                    let y = kb.load_at(types::F32X4, 0, v[0], 4, from + 12);
                    let x = shuffle_lanes(kb, x, y, [0, 2, 5, 7]);
                    kb.store_at(x, g.s, v[1], 4, to);
                } else {
                    for l in 0..4 {
                        let x = kb.load_at(types::F32, 0, v[0], 4, from + 4 * sw * l);
                        kb.store_at(x, g.s, v[1], 4, to + 4 * l);
                    }
                }
            }
            let src = kb.b.ins().iadd_imm_s(v[0], hw);
            let dst = kb.b.ins().iadd_imm_s(v[1], dst_step);
            vec![src, dst]
        });
    }

    /// Packs tap `(kh, kw)` of panel column `j` into the scratch rows from
    /// `dst` for every channel of the block: the input element where the
    /// column is valid and the tap inside the image, else zero.
    fn column_tap(
        &self,
        kb: &mut KernelBuilder,
        g: &Gemm,
        blk: &Block,
        j: Value,
        tap: (Value, Value),
        dst: Value,
    ) {
        let [h, w] = self.win.input;
        let hw = (h * w) as i64;
        let dst_step = (self.win.kernel[0] * self.win.kernel[1] * g.nr) as i64;
        let col = kb.b.ins().iadd(blk.p.col0, j);
        let inside = kb.b.ins().icmp(IntCC::SignedLessThan, col, blk.p.col_hi);
        let last = kb.int(g.n as i64 - 1);
        let col = kb.b.ins().smin(col, last);
        let origin = self.origin(kb, col);
        let (ih, iw) = self.position(kb, origin, tap);
        let ok_h = kb.b.ins().icmp_imm_u(IntCC::UnsignedLessThan, ih, h as i64);
        let ok_w = kb.b.ins().icmp_imm_u(IntCC::UnsignedLessThan, iw, w as i64);
        let ok = kb.b.ins().band(ok_h, ok_w);
        let ok = kb.b.ins().band(ok, inside);
        kb.if_else(
            ok,
            |kb| {
                let src = kb.add_scaled(blk.x0, ih, w);
                let src = kb.b.ins().iadd(src, iw);
                let zero = kb.int(0);
                kb.for_range(zero, blk.chans, 1, &[src, dst], |kb, _, v| {
                    let x = kb.load(types::F32, 0, v[0], 4);
                    kb.store(x, g.s, v[1], 4);
                    let src = kb.b.ins().iadd_imm_s(v[0], hw);
                    let dst = kb.b.ins().iadd_imm_s(v[1], dst_step);
                    vec![src, dst]
                });
            },
            |kb| {
                let zero = kb.int(0);
                kb.for_range(zero, blk.chans, 1, &[dst], |kb, _, v| {
                    let z = kb.f32c(0.0, false);
                    kb.store(z, g.s, v[0], 4);
                    vec![kb.b.ins().iadd_imm_s(v[0], dst_step)]
                });
            },
        );
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
        window,
        bias,
        activation,
        gemm: Some(bl),
        ..
    } = *op
    else {
        unreachable!("gemm::conv::emit takes a convolution lowered to GEMM")
    };
    let (cg, og) = (c_in / groups, c_out / groups);
    let Window {
        input,
        output,
        kernel,
        ..
    } = window;
    let (hw, ohw) = (input[0] * input[1], output[0] * output[1]);
    let k = cg * kernel[0] * kernel[1];
    let a = MatView {
        offset: 0,
        row_stride: k,
        col_stride: 1,
        batch_strides: vec![],
    };
    let im = Im2col { win: window };
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
