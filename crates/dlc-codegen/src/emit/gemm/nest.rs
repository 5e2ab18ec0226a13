//! The blocked loop nest of a GEMM (BLIS order): column, depth and row blocks
//! of the sizes in [`Blocking`](crate::kernel::Blocking), the A and B blocks
//! packed at the right depth of the nest, then the `mr × nr` tiles of each
//! packed block; the fused epilogue runs on each row block as soon as it is
//! finished.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value};

use super::{Gemm, Offsets};
use crate::emit::builder::KernelBuilder;

impl Gemm<'_> {
    /// Rows `rows` × columns `cols` of one product of the batch.
    ///
    /// When every row fits one `mc` block (`m ≤ mc`) the depth loop goes
    /// outside the column loop, so the A block is packed once per depth block
    /// rather than once per column block too.
    pub(super) fn batch(
        &self,
        kb: &mut KernelBuilder,
        rows: (Value, Value),
        cols: (Value, Value),
        offs: &Offsets,
    ) {
        let bl = self.bl;
        let depth = (kb.int(0), kb.int(self.k as i64));
        if self.m <= bl.mc {
            let (ic, mc) = (rows.0, kb.b.ins().isub(rows.1, rows.0));
            for_blocks(kb, depth, bl.kc, |kb, pc, kc| {
                self.pack_a(kb, offs.a, ic, mc, rows.1, pc, kc);
                for_blocks(kb, cols, bl.nc, |kb, jc, nc| {
                    self.pack_b(kb, offs.b, jc, nc, cols.1, pc, kc);
                    self.tiles(kb, offs, [(ic, mc), (jc, nc), (pc, kc)]);
                });
            });
            self.finish_rows(kb, offs, rows, cols);
            return;
        }
        for_blocks(kb, cols, bl.nc, |kb, jc, nc| {
            for_blocks(kb, depth, bl.kc, |kb, pc, kc| {
                self.pack_b(kb, offs.b, jc, nc, cols.1, pc, kc);
                for_blocks(kb, rows, bl.mc, |kb, ic, mc| {
                    self.pack_a(kb, offs.a, ic, mc, rows.1, pc, kc);
                    self.tiles(kb, offs, [(ic, mc), (jc, nc), (pc, kc)]);
                    if self.epilogue.is_some() {
                        // The block's rows are finished after the last depth
                        // block of the last column block.
                        let k_end = kb.b.ins().iadd(pc, kc);
                        let n_end = kb.b.ins().iadd(jc, nc);
                        let last_k = kb.b.ins().icmp_imm_s(IntCC::Equal, k_end, self.k as i64);
                        let last_n = kb.b.ins().icmp(IntCC::Equal, n_end, cols.1);
                        let finished = kb.b.ins().band(last_k, last_n);
                        kb.if_then(finished, |kb| {
                            let end = kb.b.ins().iadd(ic, mc);
                            self.finish_rows(kb, offs, (ic, end), cols);
                        });
                    }
                });
            });
        });
    }

    /// The micro-kernel tiles of one packed block: `[(ic, mc), (jc, nc), (pc,
    /// kc)]`, the block's origin and extent in rows, columns and depth.
    fn tiles(&self, kb: &mut KernelBuilder, offs: &Offsets, block: [(Value, Value); 3]) {
        let [(ic, mc), (jc, nc), (pc, kc)] = block;
        let zero = kb.int(0);
        kb.for_range(zero, nc, self.nr as i64, &[], |kb, jr, _| {
            let zero = kb.int(0);
            kb.for_range(zero, mc, self.mr as i64, &[], |kb, ir, _| {
                let at = TileAt {
                    c_off: offs.c,
                    bias_off: offs.bias,
                    ic,
                    jc,
                    ir,
                    jr,
                    mc,
                    nc,
                    pc,
                    kc,
                };
                self.tile(kb, &at);
                vec![]
            });
            vec![]
        });
    }
}

/// Where a tile sits: block origins, offsets within the block, block extents.
pub(super) struct TileAt {
    /// Element offset of this product's C.
    pub(super) c_off: Value,
    /// Element offset of this product's bias.
    pub(super) bias_off: Value,
    /// Row origin of the block in C.
    pub(super) ic: Value,
    /// Column origin of the block in C.
    pub(super) jc: Value,
    /// Row of the tile within the block.
    pub(super) ir: Value,
    /// Column of the tile within the block.
    pub(super) jr: Value,
    /// Rows of the block.
    pub(super) mc: Value,
    /// Columns of the block.
    pub(super) nc: Value,
    /// Depth origin of the block.
    pub(super) pc: Value,
    /// Depth of the block.
    pub(super) kc: Value,
}

/// `body(kb, at, len)` for the blocks `at = lo, lo + block, ..` below `hi`,
/// `len = min(block, hi − at)`.
fn for_blocks(
    kb: &mut KernelBuilder,
    (lo, hi): (Value, Value),
    block: usize,
    body: impl FnOnce(&mut KernelBuilder, Value, Value),
) {
    kb.for_range(lo, hi, block as i64, &[], |kb, at, _| {
        let left = kb.b.ins().isub(hi, at);
        let bv = kb.int(block as i64);
        let len = kb.b.ins().smin(left, bv);
        body(kb, at, len);
        vec![]
    });
}
