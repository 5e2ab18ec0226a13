//! Backpropagation through the grid LSTM for one batch row per parallel index
//! (see `BackwardOp::GridLstmBackward`). Two sweeps over the cells, both
//! loops (code size does not depend on the grid):
//!
//! 1. row-major, forward: each cell's input `z = [x, h1, h2]` is assembled
//!    from `x` and the forward states `y`, its gate pre-activations become
//!    activations in place and its new memories are stored;
//! 2. reverse row-major: a pass over the hidden units turns the activations
//!    into gate gradients in place (formulas as in the interpreter) and updates
//!    the memory gradients, then the state part of `dz` accumulates
//!    `dG[k] · wt[k, :]` over both directions' 8H gate rows (one vector axpy
//!    each); its first half becomes the column's `dh1`, its second half is the
//!    next cell's `dh2` in place.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::recurrent::{copy, lstm_cell_grads};
use super::zero_run;
use crate::emit::builder::KernelBuilder;
use crate::emit::norm::rows::{each, for_parallel, splat};

/// Argument indices (see `BackwardOp::GridLstmBackward`).
const X: usize = 0;
const Y: usize = 1;
const WT: usize = 2;
const DY: usize = 3;
const DH_VERT: usize = 4;
const DM_VERT: usize = 5;
const DH_HOR: usize = 6;
const DM_HOR: usize = 7;
const GATES: usize = 8;
const Z: usize = 9;
const M1: usize = 10;
const M2: usize = 11;
const CARRY_V: usize = 12;
const CARRY_H: usize = 13;

/// The kernel's extents and the element offsets derived from them.
#[derive(Clone, Copy)]
struct Grid {
    rows: usize,
    cols: usize,
    batch: usize,
    features: usize,
    h: usize,
}

impl Grid {
    /// `((a·n + c)·B + b)·len`: row `(a, c)` of a `[_, n, B, len]` buffer for batch row `b`.
    fn row(
        self,
        kb: &mut KernelBuilder,
        (a, n, c): (Value, usize, Value),
        b: Value,
        len: usize,
    ) -> Value {
        let r = kb.b.ins().imul_imm_s(a, n as i64);
        let r = kb.b.ins().iadd(r, c);
        let r = kb.b.ins().imul_imm_s(r, self.batch as i64);
        let r = kb.b.ins().iadd(r, b);
        kb.b.ins().imul_imm_s(r, len as i64)
    }

    /// Row `(a, b)` of a `[_, B, len]` buffer.
    fn row2(self, kb: &mut KernelBuilder, a: Value, b: Value, len: usize) -> Value {
        let zero = kb.int(0);
        self.row(kb, (zero, 0, a), b, len)
    }
}

/// Emits the kernel for `[rows, cols, batch, features, hidden]`.
pub fn emit(kb: &mut KernelBuilder, [rows, cols, batch, features, h]: [usize; 5]) {
    let g = Grid {
        rows,
        cols,
        batch,
        features,
        h,
    };
    for_parallel(kb, |kb, b| {
        forward(kb, g, b);
        backward(kb, g, b);
    });
}

/// Sweep 1 for batch row `b`: inputs `z`, activations in place, memories.
fn forward(kb: &mut KernelBuilder, g: Grid, b: Value) {
    let (h, f, k) = (g.h, g.features, g.features + 2 * g.h);
    kb.for_n(g.cols, &[], |kb, j, _| {
        let at = g.row2(kb, j, b, h);
        zero_run(kb, M1, at, h);
        vec![]
    });
    kb.for_n(g.rows, &[], |kb, i, _| {
        let zero = kb.int(0);
        let at = g.row(kb, (i, g.cols + 1, zero), b, h);
        zero_run(kb, M2, at, h);
        let first_row = kb.b.ins().icmp_imm_s(IntCC::Equal, i, 0);
        kb.for_n(g.cols, &[], |kb, j, _| {
            let c = g.row(kb, (i, g.cols, j), b, 1);
            // z = [x, h1 from above (zero in the first row), h2 from the left (zero in the first column)].
            let zrow = kb.b.ins().imul_imm_s(c, k as i64);
            let xrow = kb.b.ins().imul_imm_s(c, f as i64);
            copy(kb, (X, xrow), (Z, zrow), f);
            let z1 = kb.b.ins().iadd_imm_s(zrow, f as i64);
            let above = kb.b.ins().iadd_imm_s(c, -((g.cols * g.batch) as i64));
            let above = kb.b.ins().imul_imm_s(above, 2 * h as i64);
            kb.if_else(
                first_row,
                |kb| zero_run(kb, Z, z1, h),
                |kb| copy(kb, (Y, above), (Z, z1), h),
            );
            let z2 = kb.b.ins().iadd_imm_s(z1, h as i64);
            let left = kb.b.ins().iadd_imm_s(c, -(g.batch as i64));
            let left = kb.b.ins().imul_imm_s(left, 2 * h as i64);
            let left = kb.b.ins().iadd_imm_s(left, h as i64);
            let first_col = kb.b.ins().icmp_imm_s(IntCC::Equal, j, 0);
            kb.if_else(
                first_col,
                |kb| zero_run(kb, Z, z2, h),
                |kb| copy(kb, (Y, left), (Z, z2), h),
            );
            // Activations in place and the new memories (m1 one grid row down, m2 one column right).
            let gates = kb.b.ins().imul_imm_s(c, 8 * h as i64);
            let m1 = g.row(kb, (i, g.cols, j), b, h);
            let m2 = g.row(kb, (i, g.cols + 1, j), b, h);
            let mems = [(M1, m1, g.cols * g.batch * h), (M2, m2, g.batch * h)];
            each(kb, h, 1, &|kb, l, at| {
                for (d, &(arg, m_in, next)) in mems.iter().enumerate() {
                    let mut act = [gates; 4];
                    for (q, a) in act.iter_mut().enumerate() {
                        let base = kb.b.ins().iadd_imm_s(gates, ((4 * d + q) * h) as i64);
                        let p = at.load(kb, l, GATES, base);
                        *a = if q == 2 {
                            kb.tanh(l, p)
                        } else {
                            kb.sigmoid(l, p)
                        };
                        at.store(kb, *a, GATES, base);
                    }
                    let m = at.load(kb, l, arg, m_in);
                    let fm = kb.b.ins().fmul(act[1], m);
                    let ig = kb.b.ins().fmul(act[0], act[2]);
                    let m_new = kb.b.ins().fadd(fm, ig);
                    let out = kb.b.ins().iadd_imm_s(m_in, next as i64);
                    at.store(kb, m_new, arg, out);
                }
            });
            vec![]
        });
        vec![]
    });
}

/// Sweep 2 for batch row `b`: gate gradients in place, state gradients carried.
fn backward(kb: &mut KernelBuilder, g: Grid, b: Value) {
    let h = g.h;
    kb.for_n(g.cols, &[], |kb, j, _| {
        let src = g.row2(kb, j, b, h);
        let cv = g.row2(kb, j, b, 2 * h);
        copy(kb, (DH_VERT, src), (CARRY_V, cv), h);
        let cv_m = kb.b.ins().iadd_imm_s(cv, h as i64);
        copy(kb, (DM_VERT, src), (CARRY_V, cv_m), h);
        vec![]
    });
    let ch = kb.b.ins().imul_imm_s(b, 3 * h as i64);
    let ch_h = kb.b.ins().iadd_imm_s(ch, h as i64);
    let ch_m = kb.b.ins().iadd_imm_s(ch, 2 * h as i64);
    let (last_row, stop) = (kb.int(g.rows as i64 - 1), kb.int(-1));
    kb.for_range(last_row, stop, -1, &[], |kb, i, _| {
        let src = g.row2(kb, i, b, h);
        copy(kb, (DH_HOR, src), (CARRY_H, ch_h), h);
        copy(kb, (DM_HOR, src), (CARRY_H, ch_m), h);
        let (last_col, stop) = (kb.int(g.cols as i64 - 1), kb.int(-1));
        kb.for_range(last_col, stop, -1, &[], |kb, j, _| {
            let c = g.row(kb, (i, g.cols, j), b, 1);
            let gates = kb.b.ins().imul_imm_s(c, 8 * h as i64);
            let dy = kb.b.ins().imul_imm_s(c, 2 * h as i64);
            let cv = g.row2(kb, j, b, 2 * h);
            let m1 = g.row(kb, (i, g.cols, j), b, h);
            let m2 = g.row(kb, (i, g.cols + 1, j), b, h);
            let off =
                |kb: &mut KernelBuilder, v: Value, n: usize| kb.b.ins().iadd_imm_s(v, n as i64);
            // Per direction: where its dh, dm (in and out), memories and gates are.
            let dirs = [
                (
                    CARRY_V,
                    cv,
                    off(kb, cv, h),
                    M1,
                    m1,
                    g.cols * g.batch * h,
                    gates,
                ),
                (
                    CARRY_H,
                    ch_h,
                    ch_m,
                    M2,
                    m2,
                    g.batch * h,
                    off(kb, gates, 4 * h),
                ),
            ];
            let dy_dirs = [dy, off(kb, dy, h)];
            each(kb, h, 1, &|kb, l, at| {
                for (d, &(carry, dh_at, dm_at, m_arg, m_in, next, grow)) in dirs.iter().enumerate()
                {
                    let dh = at.load(kb, l, carry, dh_at);
                    let dyv = at.load(kb, l, DY, dy_dirs[d]);
                    let dh = kb.b.ins().fadd(dh, dyv);
                    let dm = at.load(kb, l, carry, dm_at);
                    let mut act = [dh; 4];
                    for (q, a) in act.iter_mut().enumerate() {
                        let base = kb.b.ins().iadd_imm_s(grow, (q * h) as i64);
                        *a = at.load(kb, l, GATES, base);
                    }
                    let m = at.load(kb, l, m_arg, m_in);
                    let m_new_at = kb.b.ins().iadd_imm_s(m_in, next as i64);
                    let m_new = at.load(kb, l, m_arg, m_new_at);
                    let tm = kb.tanh(l, m_new);
                    let (dg, dm_old) = lstm_cell_grads(kb, l, act, m, tm, dh, dm);
                    for (q, v) in dg.into_iter().enumerate() {
                        let base = kb.b.ins().iadd_imm_s(grow, (q * h) as i64);
                        at.store(kb, v, GATES, base);
                    }
                    at.store(kb, dm_old, carry, dm_at);
                }
                let zero = kb.fconst(l, 0.0);
                at.store(kb, zero, CARRY_H, ch);
                at.store(kb, zero, CARRY_H, ch_h);
            });
            // dz[F..] = Σ_k dG[k] · wt[k, :] over both directions' gate rows.
            kb.for_n(8 * h, &[], |kb, q, _| {
                let gq = kb.b.ins().iadd(gates, q);
                let s = kb.load(types::F32, GATES, gq, 4);
                let wrow = kb.b.ins().imul_imm_s(q, 2 * h as i64);
                each(kb, 2 * h, 2, &|kb, l, at| {
                    let sv = splat(kb, l, s);
                    let w = at.load(kb, l, WT, wrow);
                    let acc = at.load(kb, l, CARRY_H, ch);
                    let acc = kb.b.ins().fma(sv, w, acc);
                    at.store(kb, acc, CARRY_H, ch);
                });
                vec![]
            });
            copy(kb, (CARRY_H, ch), (CARRY_V, cv), h);
            vec![]
        });
        vec![]
    });
}
