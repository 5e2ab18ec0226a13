//! The native row kernel's calls for a convolution's interior columns.

use cranelift_codegen::ir::InstBuilder;

use super::super::native::{self, RowKernel};
use super::super::{Phase, TapRange};
use super::{Block, Conv, Row, add, lin};
use crate::emit::builder::KernelBuilder;
use crate::kernel::Activation;

impl Conv {
    /// The interior columns `lo..hi` of phase `cp` (unit strides, a multiple
    /// of 8 wide) for every channel of the block, by one call of the native
    /// row kernel `f`.
    pub(super) fn native_run(
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
}
