//! One `mr × nr` tile of C: the micro-kernel call (straight into C for a full
//! tile, into a scratch tile copied out for an edge tile) and, after the last
//! depth block, the fused epilogue (bias and activation) while the tile is hot.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::micro::Micro;
use super::nest::TileAt;
use super::small::activate;
use super::{BiasAxis, Gemm};
use crate::emit::builder::KernelBuilder;
use crate::emit::math::Lanes;
use crate::kernel::Activation;

impl Gemm<'_> {
    /// One `mr × nr` tile of C: micro-kernel, edge copy, epilogue.
    pub(super) fn tile(&self, kb: &mut KernelBuilder, at: &TileAt) {
        let (mr, nr) = (self.mr as i64, self.nr as i64);
        let n = self.n;
        let rows_left = kb.b.ins().isub(at.mc, at.ir);
        let cols_left = kb.b.ins().isub(at.nc, at.jr);
        let full_rows =
            kb.b.ins()
                .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, rows_left, mr);
        let full_cols =
            kb.b.ins()
                .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, cols_left, nr);
        let full = kb.b.ins().band(full_rows, full_cols);
        let accumulate = kb.b.ins().icmp_imm_s(IntCC::SignedGreaterThan, at.pc, 0);
        let ap = kb.b.ins().imul(at.ir, at.kc);
        let bp = kb.b.ins().imul(at.jr, at.kc);
        let bp = kb.b.ins().iadd_imm_s(bp, self.bp_base as i64);
        let row = kb.b.ins().iadd(at.ic, at.ir);
        let col = kb.b.ins().iadd(at.jc, at.jr);
        let c_idx = kb.add_scaled(at.c_off, row, n);
        let c_idx = kb.b.ins().iadd(c_idx, col);
        let tile_idx = kb.int(self.tile_base as i64);
        let no = kb.b.ins().iconst(types::I8, 0);
        let mrv = kb.int(mr);
        let rv = kb.b.ins().smin(rows_left, mrv);
        let nrv = kb.int(nr);
        let cv = kb.b.ins().smin(cols_left, nrv);
        let into_c = Micro {
            kc: at.kc,
            ap,
            bp,
            dst: self.c,
            idx: c_idx,
            ld: n,
            accumulate,
        };
        let into_tile = Micro {
            dst: self.s,
            idx: tile_idx,
            ld: self.nr,
            accumulate: no,
            ..into_c
        };
        kb.if_else(
            full,
            |kb| self.micro(kb, &into_c),
            |kb| {
                self.micro(kb, &into_tile);
                self.copy_out(kb, tile_idx, c_idx, rv, cv, accumulate);
            },
        );
        if self.bias.is_some() || self.activation != Activation::Identity {
            let sum = kb.b.ins().iadd(at.pc, at.kc);
            let last = kb.b.ins().icmp_imm_s(IntCC::Equal, sum, self.k as i64);
            let first = Tile { row, col, rv, cv };
            kb.if_then(last, |kb| self.epilogue(kb, c_idx, at.bias_off, &first));
        }
    }

    /// Copies the valid `rv × cv` part of the edge tile to C (adding when accumulating).
    fn copy_out(
        &self,
        kb: &mut KernelBuilder,
        tile: Value,
        c_idx: Value,
        rv: Value,
        cv: Value,
        accumulate: Value,
    ) {
        let n = self.n;
        let nr = self.nr;
        let zero = kb.int(0);
        kb.for_range(zero, rv, 1, &[], |kb, r, _| {
            let src = kb.add_scaled(tile, r, nr);
            let dst = kb.add_scaled(c_idx, r, n);
            let zero = kb.int(0);
            kb.for_range(zero, cv, 1, &[], |kb, j, _| {
                let s = kb.b.ins().iadd(src, j);
                let d = kb.b.ins().iadd(dst, j);
                let t = kb.load(types::F32, self.s, s, 4);
                let old = kb.load(types::F32, self.c, d, 4);
                let z = kb.f32c(0.0, false);
                let add = kb.b.ins().select(accumulate, old, z);
                let v = kb.b.ins().fadd(t, add);
                kb.store(v, self.c, d, 4);
                vec![]
            });
            vec![]
        });
    }

    /// Adds the bias (element `bias_off + column` or `bias_off + row` of
    /// argument 2) and applies the activation to the valid part of a tile.
    fn epilogue(&self, kb: &mut KernelBuilder, c_idx: Value, bias_off: Value, t: &Tile) {
        let n = self.n;
        let l = Lanes { vector: false };
        let zero = kb.int(0);
        kb.for_range(zero, t.rv, 1, &[], |kb, r, _| {
            let row = kb.add_scaled(c_idx, r, n);
            let row_bias = match self.bias {
                Some(BiasAxis::Rows) => {
                    let i = kb.b.ins().iadd(bias_off, t.row);
                    let i = kb.b.ins().iadd(i, r);
                    Some(kb.load(types::F32, 2, i, 4))
                }
                _ => None,
            };
            let zero = kb.int(0);
            kb.for_range(zero, t.cv, 1, &[], |kb, j, _| {
                let d = kb.b.ins().iadd(row, j);
                let mut v = kb.load(types::F32, self.c, d, 4);
                if self.bias == Some(BiasAxis::Columns) {
                    let bj = kb.b.ins().iadd(t.col, j);
                    let bj = kb.b.ins().iadd(bj, bias_off);
                    let bias = kb.load(types::F32, 2, bj, 4);
                    v = kb.b.ins().fadd(v, bias);
                }
                if let Some(bias) = row_bias {
                    v = kb.b.ins().fadd(v, bias);
                }
                let v = activate(kb, l, self.activation, v);
                kb.store(v, self.c, d, 4);
                vec![]
            });
            vec![]
        });
    }
}

/// The valid part of a tile: its first row and column in C and their counts.
struct Tile {
    row: Value,
    col: Value,
    rv: Value,
    cv: Value,
}
