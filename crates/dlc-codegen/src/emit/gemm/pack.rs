//! Packing of the A and B blocks into scratch: panels of `mr` rows of A and
//! `nr` columns of B, k-major, zero-padded at the matrix edges so the
//! micro-kernel always computes full tiles. Whole panels inside the matrix are
//! copied with plain (or f32x4) loads at constant displacements; edge panels
//! use clamped, masked loads. Image sources (implicit im2col) pack their
//! panels in [`super::conv`].

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::{BSource, Gemm, Tier};
use crate::emit::builder::KernelBuilder;
use crate::emit::sequence::nt::{Extent, byte_ptr, call_native};
use crate::kernel::MatView;

impl Gemm<'_> {
    /// Packs `B[pc.., jc..]` (kc × nc) into panels of `nr` columns, k-major,
    /// zero beyond column `col_hi`, reading from the B source.
    ///
    /// When all rows of A fit one row block, each packed B block serves a
    /// single row block, so its packing is a large share of the time: a whole
    /// block of a unit-stride B is then copied row by row
    /// ([`Gemm::pack_b_rows`]), reading contiguous rows rather than one
    /// 64-byte piece of every row per panel (W1e, 32 × 1024 · 1024 × 4096:
    /// ~15% less CPU time). Elsewhere packing B is a small share and the
    /// panel order is kept.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn pack_b(
        &self,
        kb: &mut KernelBuilder,
        b_off: Value,
        jc: Value,
        nc: Value,
        col_hi: Value,
        pc: Value,
        kc: Value,
    ) {
        let nr = self.nr as i64;
        if let BSource::Matrix(v) = self.b
            && v.col_stride == 1
            && self.m <= self.bl.mc
        {
            let end = kb.b.ins().iadd(jc, nc);
            let inside = kb.b.ins().icmp(IntCC::SignedLessThanOrEqual, end, col_hi);
            let rem = kb.b.ins().band_imm_s(nc, nr - 1);
            let whole = kb.b.ins().icmp_imm_s(IntCC::Equal, rem, 0);
            let full = kb.b.ins().band(inside, whole);
            kb.if_else(
                full,
                |kb| self.pack_b_rows(kb, v, b_off, jc, nc, pc, kc),
                |kb| self.pack_b_panels(kb, b_off, jc, nc, col_hi, pc, kc),
            );
            return;
        }
        self.pack_b_panels(kb, b_off, jc, nc, col_hi, pc, kc);
    }

    /// Packs a whole block (every panel inside B) of a unit-stride B row by
    /// row: row `p` of the block is read contiguously, its `nr`-column pieces
    /// go to row `p` of each panel (`kc · nr` floats apart in scratch). On the
    /// native tier one call of the tier's packing routine does it (256-bit
    /// copies, software prefetch across the rows' pages); in checked mode the
    /// call runs only when both regions are proven in bounds.
    #[allow(clippy::too_many_arguments)]
    fn pack_b_rows(
        &self,
        kb: &mut KernelBuilder,
        v: &MatView,
        b_off: Value,
        jc: Value,
        nc: Value,
        pc: Value,
        kc: Value,
    ) {
        let nr = self.nr as i64;
        if let Tier::Native(k) = self.tier {
            let row = kb.add_scaled(b_off, pc, v.row_stride);
            let first = kb.b.ins().iadd(row, jc);
            let panels = kb.b.ins().udiv_imm_s(nc, nr);
            let dst = kb.int(self.bp_base as i64);
            let len = kb.b.ins().imul(kc, nc);
            let one = kb.int(1);
            let extents = [
                Extent {
                    arg: 1,
                    first,
                    dims: [(kc, v.row_stride), (nc, 1)],
                },
                Extent {
                    arg: self.s,
                    first: dst,
                    dims: [(len, 1), (one, 0)],
                },
            ];
            let src = byte_ptr(kb, 1, first);
            let dst_ptr = byte_ptr(kb, self.s, dst);
            let ld = kb.int(v.row_stride as i64);
            let args = [kc, panels, src, ld, dst_ptr];
            call_native(kb, k.pack_b_rows as usize, &args, &extents);
            return;
        }
        let zero = kb.int(0);
        let panel_step = kb.b.ins().imul_imm_s(kc, nr);
        kb.for_range(zero, kc, 1, &[], |kb, p, _| {
            let row = kb.b.ins().iadd(pc, p);
            let src = kb.add_scaled(b_off, row, v.row_stride);
            let src = kb.b.ins().iadd(src, jc);
            let dst = kb.b.ins().imul_imm_s(p, nr);
            let dst = kb.b.ins().iadd_imm_s(dst, self.bp_base as i64);
            let zero = kb.int(0);
            kb.for_range(zero, nc, nr, &[dst], |kb, jp, c| {
                let s = kb.b.ins().iadd(src, jp);
                for q in 0..nr as usize / 4 {
                    let x = kb.load_at(types::F32X4, 1, s, 4, 16 * q as i32);
                    kb.store_at(x, self.s, c[0], 4, 16 * q as i32);
                }
                vec![kb.b.ins().iadd(c[0], panel_step)]
            });
            vec![]
        });
    }

    /// Packs a block panel by panel (any source, edges zero-padded).
    #[allow(clippy::too_many_arguments)]
    fn pack_b_panels(
        &self,
        kb: &mut KernelBuilder,
        b_off: Value,
        jc: Value,
        nc: Value,
        col_hi: Value,
        pc: Value,
        kc: Value,
    ) {
        let nr = self.nr as i64;
        let zero = kb.int(0);
        kb.for_range(zero, nc, nr, &[], |kb, jp, _| {
            // jp = jr (column offset of the panel in the block).
            let col0 = kb.b.ins().iadd(jc, jp);
            let dst0 = kb.b.ins().imul(jp, kc);
            let dst0 = kb.b.ins().iadd_imm_s(dst0, self.bp_base as i64);
            let panel = Panel {
                b_off,
                col0,
                col_hi,
                pc,
                kc,
                dst0,
            };
            match self.b {
                BSource::Matrix(v) => self.pack_matrix_panel(kb, v, &panel),
                BSource::Image(im) => im.pack_panel(kb, self, &panel),
            }
            vec![]
        });
    }

    /// Packs one panel of B from a strided matrix.
    fn pack_matrix_panel(&self, kb: &mut KernelBuilder, v: &MatView, panel: &Panel) {
        let nr = self.nr;
        let row = |base: Value| {
            move |kb: &mut KernelBuilder, p: Value| {
                let row = kb.b.ins().iadd(panel.pc, p);
                kb.add_scaled(base, row, v.row_stride)
            }
        };
        let masked = |kb: &mut KernelBuilder| {
            let load = |kb: &mut KernelBuilder, src: Value, j: Value| {
                let col = kb.b.ins().iadd(panel.col0, j);
                self.masked_load(kb, 1, src, col, v.col_stride, panel.col_hi, self.n)
            };
            self.pack_edge_groups(kb, (panel.kc, panel.dst0), nr, row(panel.b_off), load);
        };
        let Some(step) = displacement(nr, v.col_stride) else {
            masked(kb);
            return;
        };
        // A whole panel inside B: no masks; contiguous rows copy as f32x4.
        let full_panel = |kb: &mut KernelBuilder| {
            let src0 = kb.add_scaled(panel.b_off, panel.col0, v.col_stride);
            if v.col_stride == 1 {
                let load = |kb: &mut KernelBuilder, src: Value, q: usize| {
                    kb.load_at(types::F32X4, 1, src, 4, 16 * q as i32)
                };
                self.pack_groups(kb, (panel.kc, panel.dst0), (nr, 4), row(src0), load);
            } else {
                let load = |kb: &mut KernelBuilder, src: Value, j: usize| {
                    kb.load_at(types::F32, 1, src, 4, j as i32 * step)
                };
                self.pack_groups(kb, (panel.kc, panel.dst0), (nr, 1), row(src0), load);
            }
        };
        let end = kb.b.ins().iadd_imm_s(panel.col0, nr as i64);
        let full =
            kb.b.ins()
                .icmp(IntCC::SignedLessThanOrEqual, end, panel.col_hi);
        kb.if_else(full, full_panel, masked);
    }

    /// Packs `A[ic.., pc..]` (mc × kc) into panels of `mr` rows, k-major, zero
    /// beyond row `row_hi`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn pack_a(
        &self,
        kb: &mut KernelBuilder,
        a_off: Value,
        ic: Value,
        mc: Value,
        row_hi: Value,
        pc: Value,
        kc: Value,
    ) {
        let v = self.a;
        let mr = self.mr;
        let step = displacement(mr, v.row_stride);
        let col = |base: Value| {
            move |kb: &mut KernelBuilder, p: Value| {
                let col = kb.b.ins().iadd(pc, p);
                kb.add_scaled(base, col, v.col_stride)
            }
        };
        let zero = kb.int(0);
        kb.for_range(zero, mc, mr as i64, &[], |kb, ip, _| {
            let row0 = kb.b.ins().iadd(ic, ip);
            let dst0 = kb.b.ins().imul(ip, kc);
            let masked = |kb: &mut KernelBuilder| {
                let load = |kb: &mut KernelBuilder, src: Value, r: Value| {
                    let row = kb.b.ins().iadd(row0, r);
                    self.masked_load(kb, self.a_arg, src, row, v.row_stride, row_hi, self.m)
                };
                self.pack_edge_groups(kb, (kc, dst0), mr, col(a_off), load);
            };
            let Some(step) = step else {
                masked(kb);
                return vec![];
            };
            // A whole panel inside A: plain loads at constant displacements.
            let full_panel = |kb: &mut KernelBuilder| {
                let src0 = kb.add_scaled(a_off, row0, v.row_stride);
                let load = |kb: &mut KernelBuilder, src: Value, r: usize| {
                    kb.load_at(types::F32, self.a_arg, src, 4, r as i32 * step)
                };
                self.pack_groups(kb, (kc, dst0), (mr, 1), col(src0), load);
            };
            let end = kb.b.ins().iadd_imm_s(row0, mr as i64);
            let full = kb.b.ins().icmp(IntCC::SignedLessThanOrEqual, end, row_hi);
            kb.if_else(full, full_panel, masked);
            vec![]
        });
    }

    /// The packing skeleton shared by A and B panels: `kc` groups of `width`
    /// floats into scratch from `dst0` (group `p` at `dst0 + p·width`), group
    /// `p` read from source index `src(kb, p)` as `width / lanes` pieces,
    /// `load(kb, src, q)` giving piece `q` (`lanes` floats: f32 or f32x4).
    fn pack_groups<S, L>(
        &self,
        kb: &mut KernelBuilder,
        (kc, dst0): (Value, Value),
        (width, lanes): (usize, usize),
        src: S,
        load: L,
    ) where
        S: Fn(&mut KernelBuilder, Value) -> Value,
        L: Fn(&mut KernelBuilder, Value, usize) -> Value,
    {
        let zero = kb.int(0);
        kb.for_range(zero, kc, 1, &[], |kb, p, _| {
            let from = src(kb, p);
            let dst = kb.b.ins().imul_imm_s(p, width as i64);
            let dst = kb.b.ins().iadd(dst0, dst);
            for q in 0..width / lanes {
                let x = load(kb, from, q);
                kb.store_at(x, self.s, dst, 4, (4 * lanes * q) as i32);
            }
            vec![]
        });
    }

    /// The packing skeleton of edge panels: like [`Gemm::pack_groups`] with f32
    /// pieces, but the `width` pieces of a group are a loop rather than
    /// unrolled (`load(kb, src, q)` with `q` a value): edge panels are a small
    /// share of the packing, and rolled code is a fraction of the instructions
    /// for Cranelift to compile.
    fn pack_edge_groups<S, L>(
        &self,
        kb: &mut KernelBuilder,
        (kc, dst0): (Value, Value),
        width: usize,
        src: S,
        load: L,
    ) where
        S: Fn(&mut KernelBuilder, Value) -> Value,
        L: Fn(&mut KernelBuilder, Value, Value) -> Value,
    {
        let zero = kb.int(0);
        kb.for_range(zero, kc, 1, &[], |kb, p, _| {
            let from = src(kb, p);
            let dst = kb.affine(p, width, 0);
            let dst = kb.b.ins().iadd(dst0, dst);
            let (zero, w) = (kb.int(0), kb.int(width as i64));
            kb.for_range(zero, w, 1, &[], |kb, q, _| {
                let x = load(kb, from, q);
                let d = kb.b.ins().iadd(dst, q);
                kb.store(x, self.s, d, 4);
                vec![]
            });
            vec![]
        });
    }

    /// `arg[base + i * stride]` if `i < hi`, else 0; the load index is clamped to
    /// `len - 1` so the access stays in bounds either way (branch-free).
    #[allow(clippy::too_many_arguments)]
    fn masked_load(
        &self,
        kb: &mut KernelBuilder,
        arg: usize,
        base: Value,
        i: Value,
        stride: usize,
        hi: Value,
        len: usize,
    ) -> Value {
        let last = kb.int(len as i64 - 1);
        let ic = kb.b.ins().smin(i, last);
        let idx = kb.add_scaled(base, ic, stride);
        let x = kb.load(types::F32, arg, idx, 4);
        let inside = kb.b.ins().icmp(IntCC::SignedLessThan, i, hi);
        let zero = kb.f32c(0.0, false);
        kb.b.ins().select(inside, x, zero)
    }
}

/// One panel of B to pack: the product's B offset, the panel's first column,
/// the end of the valid columns, the depth range `pc..pc + kc`, and the scratch
/// index of the panel's first element.
pub(super) struct Panel {
    /// Element offset of this product's B.
    pub(super) b_off: Value,
    /// The panel's first column.
    pub(super) col0: Value,
    /// End of the valid columns.
    pub(super) col_hi: Value,
    /// First row (depth) of the panel.
    pub(super) pc: Value,
    /// Rows (depth) of the panel.
    pub(super) kc: Value,
    /// Scratch index of the panel's first element.
    pub(super) dst0: Value,
}

/// The byte step between `count` consecutive elements `stride` apart, when the
/// farthest fits an access displacement (else the packing keeps computing
/// addresses per element).
fn displacement(count: usize, stride: usize) -> Option<i32> {
    let farthest = 4 * stride.checked_mul(count)?;
    i32::try_from(farthest).ok()?;
    i32::try_from(4 * stride).ok()
}
