//! The grid-LSTM sweep: per batch row, cells in row-major order. Each cell
//! makes two passes over the hidden units: both directions' gate
//! pre-activations (`gx_d` plus the state rows of `w_d`, contiguous in the unit
//! index, so f32x4 over units with the state element broadcast) into a per-row
//! scratch, then the LSTM updates (kept apart so the math's vector constants
//! do not crowd the accumulators out of registers).

use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::{Row, copy_row, fill_row, for_lanes, load_plus, mul_add};
use crate::emit::builder::KernelBuilder;
use crate::emit::math::Lanes;

/// Argument indices: inputs `gx1, gx2, w1, w2`, outputs `y, h_vert, m_vert, h_hor, m_hor`.
const GX: usize = 0;
const W: usize = 2;
const Y: usize = 4;
const H_VERT: usize = 5;
const M_VERT: usize = 6;
const H_HOR: usize = 7;
const M_HOR: usize = 8;
const GATES: usize = 9;

/// Emits the kernel for `[rows, cols, batch, features, hidden]`; with
/// `keep_gates` each cell's gates get their own scratch row.
pub(super) fn emit(
    kb: &mut KernelBuilder,
    [rows, cols, batch, features, hidden]: [usize; 5],
    keep_gates: bool,
) {
    let h = hidden;
    // Element offset of state row `(i, b)` of a `[_, B, H]` state.
    let state_row = |kb: &mut KernelBuilder, i: Value, b: Value| {
        let ib = kb.b.ins().imul_imm_s(i, batch as i64);
        let ib = kb.b.ins().iadd(ib, b);
        kb.b.ins().imul_imm_s(ib, h as i64)
    };
    let (start, end) = (kb.start, kb.end);
    kb.for_range(start, end, 1, &[], |kb, b, _| {
        kb.for_n(cols, &[], |kb, j, _| {
            let r = state_row(kb, j, b);
            fill_row(kb, Row::new(H_VERT, r), h, 0.0);
            fill_row(kb, Row::new(M_VERT, r), h, 0.0);
            vec![]
        });
        kb.for_n(rows, &[], |kb, i, _| {
            let r2 = state_row(kb, i, b);
            let dir2 = [Row::new(H_HOR, r2), Row::new(M_HOR, r2)];
            fill_row(kb, dir2[0], h, 0.0);
            fill_row(kb, dir2[1], h, 0.0);
            kb.for_n(cols, &[], |kb, j, _| {
                let r1 = state_row(kb, j, b);
                let dir1 = [Row::new(H_VERT, r1), Row::new(M_VERT, r1)];
                let ij = kb.b.ins().imul_imm_s(i, cols as i64);
                let ij = kb.b.ins().iadd(ij, j);
                let c = state_row(kb, ij, b); // (ij*B + b)*H
                let gx = kb.b.ins().imul_imm_s(c, 4);
                let y = Row::new(Y, kb.b.ins().imul_imm_s(c, 2));
                let gates = if keep_gates {
                    kb.b.ins().imul_imm_s(c, 8)
                } else {
                    kb.b.ins().imul_imm_s(b, 8 * h as i64)
                };
                let gates = Row::new(GATES, gates);
                cell(kb, features, h, gx, gates, y, [dir1, dir2]);
                copy_row(kb, y, dir1[0], h);
                let y2 = y.offset(kb, h);
                copy_row(kb, y2, dir2[0], h);
                vec![]
            });
            vec![]
        });
        vec![]
    });
}

/// One grid cell: both directions' new states, `h'` into `y` and `m'` in place.
fn cell(
    kb: &mut KernelBuilder,
    features: usize,
    h: usize,
    gx: Value,
    gates: Row,
    y: Row,
    dirs: [[Row; 2]; 2],
) {
    let g4 = 4 * h;
    // Pass 1: gates[d, g, u] = gx_d + z · w_d for both directions.
    for_lanes(kb, h, |kb, l, u| {
        let mut acc = Vec::with_capacity(8);
        for d in 0..2 {
            for g in 0..4 {
                let at = Row::new(GX + d, gx).offset(kb, g * h);
                acc.push(at.load(kb, l, u));
            }
        }
        // z = [x, h1, h2]: state rows F.. (h1 from above) and F+H.. (h2 from the left).
        for (src, first) in [(dirs[0][0], features), (dirs[1][0], features + h)] {
            let base = kb.b.ins().iadd_imm_s(u, (first * g4) as i64);
            acc = kb.for_n(h, &acc, |kb, k, acc| {
                let s = src.load(kb, super::S, k);
                let s = if l.vector {
                    kb.b.ins().splat(types::F32X4, s)
                } else {
                    s
                };
                let row = kb.b.ins().imul_imm_s(k, g4 as i64);
                let row = kb.b.ins().iadd(row, base);
                (0..8)
                    .map(|dg| {
                        let w = load_plus(kb, l, W + dg / 4, row, (dg % 4) * h);
                        mul_add(kb, s, w, acc[dg])
                    })
                    .collect()
            });
        }
        for (dg, &a) in acc.iter().enumerate() {
            gates.offset(kb, dg * h).store(kb, u, a);
        }
    });
    // Pass 2: the LSTM updates.
    for_lanes(kb, h, |kb, l, u| {
        for (d, state) in dirs.into_iter().enumerate() {
            let pre: Vec<Value> = (0..4)
                .map(|g| gates.offset(kb, (4 * d + g) * h).load(kb, l, u))
                .collect();
            let (h_new, m_new) = lstm_update(kb, l, &pre, state[1], u);
            state[1].store(kb, u, m_new);
            let out = y.offset(kb, d * h);
            out.store(kb, u, h_new);
        }
    });
}

/// `m' = σ(f)·m + σ(i)·tanh(g)`, `h' = σ(o)·tanh(m')` from gate pre-activations i, f, g, o.
fn lstm_update(
    kb: &mut KernelBuilder,
    l: Lanes,
    pre: &[Value],
    m: Row,
    u: Value,
) -> (Value, Value) {
    let i = kb.sigmoid(l, pre[0]);
    let f = kb.sigmoid(l, pre[1]);
    let g = kb.tanh(l, pre[2]);
    let o = kb.sigmoid(l, pre[3]);
    let m = m.load(kb, l, u);
    let fm = kb.b.ins().fmul(f, m);
    let ig = kb.b.ins().fmul(i, g);
    let m_new = kb.b.ins().fadd(fm, ig);
    let t = kb.tanh(l, m_new);
    (kb.b.ins().fmul(o, t), m_new)
}
