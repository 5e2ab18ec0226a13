//! The generated (Cranelift f32x4) paths of the direct convolution: interior
//! vectors, masked edge vectors and scalar edge columns.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{ConstantData, InstBuilder, Value, types};

use super::super::{Phase, for_taps, in_bounds, load_pure, load_x4, store_x4};
use super::{Block, Conv, Row, add, lin};
use crate::emit::builder::KernelBuilder;
use crate::emit::math::Lanes;
use crate::emit::matmul::activate;

/// Adds one kernel tap to the accumulators: `(kb, input row byte offset,
/// column value, weight byte offset, acc) -> acc`.
type TapFn<'t> = &'t dyn Fn(&mut KernelBuilder, Value, Value, Value, &[Value]) -> Vec<Value>;

impl Conv {
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
    pub(super) fn vectors(
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
        let ohw = block.oc_stride;
        for (a, &v) in acc.iter().enumerate() {
            let (i, l) = (a / n, a % n);
            let r = activate(kb, Lanes { vector: true }, self.act, v);
            let idx = add(kb, out, (i * ohw + 4 * l * cp.step) as isize);
            store_x4(kb, r, block.out_arg, idx, cp.step);
        }
    }

    /// The 4 outputs from column `q` of phase `cp` for every channel of the
    /// block, testing each lane's input column for every tap (edge columns).
    pub(super) fn masked(
        &self,
        kb: &mut KernelBuilder,
        block: &Block,
        row: &Row,
        cp: &Phase,
        q: Value,
    ) {
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
        let ohw = block.oc_stride;
        for (i, &v) in acc.iter().enumerate() {
            let r = activate(kb, Lanes { vector: true }, self.act, v);
            let idx = add(kb, out, (i * ohw) as isize);
            store_x4(kb, r, block.out_arg, idx, cp.step);
        }
    }

    /// Output column `q` of phase `cp` for every channel of the block, testing
    /// each tap's input column.
    pub(super) fn scalar(
        &self,
        kb: &mut KernelBuilder,
        block: &Block,
        row: &Row,
        cp: &Phase,
        q: Value,
    ) {
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
        let ohw = block.oc_stride;
        for (i, &v) in acc.iter().enumerate() {
            let r = activate(kb, Lanes { vector: false }, self.act, v);
            let idx = add(kb, out, (i * ohw) as isize);
            kb.store(r, block.out_arg, idx, 4);
        }
    }
}
