//! A convolution with its max pooling fused (`SpatialOp::Conv::pool`): the
//! block's conv rows of a run go to the thread's scratch (after the packed
//! weights, at most 32 KiB, so they stay in L1), then each channel's rows are
//! pooled into the output, so the conv output never reaches memory.

use cranelift_codegen::ir::{InstBuilder, Value};

use super::super::{Phase, pool};
use super::{Block, Conv};
use crate::emit::builder::KernelBuilder;
use crate::kernel::{SpatialOp, Window};

impl Conv {
    /// The pooled rows `lo..hi` of the block: conv rows `pool·lo ..
    /// pool·hi` of row phase `rp` (the only one: not transposed) into the
    /// scratch (a `[oc_block, oh, ow]` copy of the block's output), then a
    /// `pool × pool` max pooling of each channel into image `img` of the
    /// output.
    pub(super) fn pooled_rows(
        &self,
        kb: &mut KernelBuilder,
        block: &Block,
        (rp, cols): (&Phase, &[Phase]),
        (pool, op, img): (usize, &SpatialOp, Value),
        (lo, hi): (Value, Value),
    ) {
        let (oh, ow) = (self.h.output, self.w.output);
        let (ph, pw) = (oh / pool, ow / pool);
        let scratch_arg = self.out_arg() + 1;
        let base = op.packed_weights().unwrap_or(0);
        let window = Window {
            input: [oh, ow],
            output: [ph, pw],
            kernel: [pool; 2],
            stride: [pool; 2],
            pad: [0; 2],
            dilation: [1; 2],
        };
        let rows = Block {
            out: kb.int(base as i64),
            out_arg: scratch_arg,
            oc_stride: oh * ow,
            ..*block
        };
        let row0 = kb.b.ins().imul_imm_s(lo, pool as i64);
        let row_end = kb.b.ins().imul_imm_s(hi, pool as i64);
        self.row_phase(kb, &rows, rp, (row0, row_end), cols);
        // Pooled rows `lo..hi` of channel `oc0 + i`.
        let plane = kb.affine(block.oc0, ph * pw, 0);
        let plane = kb.add_scaled(plane, img, self.c_out * ph * pw);
        let (zero, ob) = (kb.int(0), kb.int(self.ob as i64));
        kb.for_range(zero, ob, 1, &[], |kb, i, _| {
            let x = kb.affine(i, oh * ow, base);
            let x4 = kb.b.ins().imul_imm_s(x, 4);
            let out = kb.add_scaled(plane, i, ph * pw);
            let out_arg = self.out_arg();
            pool::max_rows(kb, &window, (scratch_arg, x4), (out_arg, out), (lo, hi));
            vec![]
        });
    }
}
