//! The native row kernel's calls for a convolution's interior columns.

use cranelift_codegen::ir::{InstBuilder, Value};

use super::super::native::{self, RowKernel};
use super::super::{Columns, Phase, TapRange};
use super::{Block, Conv, Row, add, lin};
use crate::emit::builder::KernelBuilder;
use crate::kernel::Activation;

impl Conv {
    /// The native row kernel for column phase `cp`, if it runs its interior
    /// (native tier, unit input and output strides: blocks of 8 columns).
    pub(super) fn native_kernel(&self, cp: &Phase) -> Option<RowKernel> {
        self.native.filter(|_| cp.in_step == 1 && cp.step == 1)
    }

    /// The rows of the run `lo..hi` of row phase `rp` that have every kernel
    /// row valid (`a..b`, run-time bounds, possibly empty): their interior
    /// columns of every native column phase by one call each. `None` when
    /// nothing runs natively or no row of the phase has every kernel row.
    pub(super) fn native_rows(
        &self,
        kb: &mut KernelBuilder,
        block: &Block,
        rp: &Phase,
        (lo, hi): (Value, Value),
        cols: &[Phase],
    ) -> Option<(Value, Value)> {
        let (fa, fb) = rp.interior(self.h.input);
        let natives: Vec<_> = cols
            .iter()
            .filter_map(|cp| Some((cp, self.native_kernel(cp)?)))
            .collect();
        if fa >= fb || natives.is_empty() {
            return None;
        }
        let (fa, fb) = (kb.int(fa as i64), kb.int(fb as i64));
        let a = kb.b.ins().smax(lo, fa);
        let b = kb.b.ins().smin(hi, fb);
        let count = kb.b.ins().isub(b, a);
        let row = self.row(kb, block, rp, a, TapRange::Const(0, rp.taps.len()));
        for (cp, f) in natives {
            let (lo, hi) = Columns::new(cp, self.w.input, native::LANES / 4).blocks;
            if lo < hi {
                self.native_run(kb, f, block, &row, (rp, count), cp, (lo, hi));
            }
        }
        Some((a, b))
    }

    /// The interior columns `lo..hi` of phase `cp` (unit strides, a multiple
    /// of 8 wide) for every channel of the block, by one call of the native
    /// row kernel `f`, for `count` consecutive output rows of row phase `rp`
    /// from `row` (which share its valid kernel rows).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn native_run(
        &self,
        kb: &mut KernelBuilder,
        f: RowKernel,
        block: &Block,
        row: &Row,
        (rp, count): (&Phase, Value),
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
            out_oc: block.oc_stride as isize,
            out_rows: count,
            x_orow: (rp.in_step * self.w.input) as isize,
            out_orow: (rp.step * self.w.output) as isize,
            relu: self.act == Activation::Relu,
        };
        let args = native::Args {
            x: 0,
            w: self.out_arg() + 1,
            bias: 2,
            out: block.out_arg,
        };
        native::emit_call(kb, f, &args, &call);
    }
}
