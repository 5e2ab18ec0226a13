//! The rnn/lstm/gru recurrence: per batch row, a loop over time steps. Each
//! step makes two passes over the hidden units: the recurrent dot products
//! `gh = h · W_hh[row] + b_hh` (four units of two gates at a time) into a small
//! per-row scratch, then the fused gate math writing the new state (and `y`).
//! Keeping the math (and its many vector constants, which Cranelift hoists to
//! the enclosing loop) out of the dot-product loop nest keeps the accumulators
//! in registers.

use cranelift_codegen::ir::{InstBuilder, Value};
use dlc_ir::CellKind;

use super::{Row, copy_row, dot1, dot4, for_lanes};
use crate::emit::builder::KernelBuilder;
use crate::emit::math::Lanes;

/// The kernel's constants (see `SequenceOp::Recurrent`).
pub(super) struct Shape {
    pub cell: CellKind,
    pub sequence: bool,
    pub steps: usize,
    pub batch: usize,
    pub hidden: usize,
}

/// Where one step reads and writes, for one batch row.
struct Step {
    /// This step's input projections `gx[t, b, ..]`.
    gx: Row,
    /// Scratch for this row's `gh` (`G*H` elements).
    gh: Row,
    /// The previous hidden state (read only).
    h: Row,
    /// The previous cell state (LSTM).
    c: Option<Row>,
    /// The new hidden state.
    h_out: Row,
    /// The new cell state (LSTM; may be `c` itself).
    c_out: Option<Row>,
}

/// Emits the kernel; `n_in` is the number of inputs (outputs follow them).
pub(super) fn emit(kb: &mut KernelBuilder, s: &Shape, n_in: usize) {
    let lstm = s.cell.has_cell_state();
    let (h, gh) = (s.hidden, s.cell.gates() * s.hidden);
    let weights = 2 + lstm as usize;
    // The scratch is the last output: y?, h_n, c_n?, gh.
    let scratch = n_in + s.sequence as usize + 1 + lstm as usize;
    let (start, end) = (kb.start, kb.end);
    kb.for_range(start, end, 1, &[], |kb, b, _| {
        let row = kb.b.ins().imul_imm_s(b, h as i64);
        let gh_row = Row::new(scratch, kb.b.ins().imul_imm_s(b, gh as i64));
        if !s.sequence {
            let gx = kb.b.ins().imul_imm_s(b, gh as i64);
            let st = Step {
                gx: Row::new(0, gx),
                gh: gh_row,
                h: Row::new(1, row),
                c: lstm.then(|| Row::new(2, row)),
                h_out: Row::new(n_in, row),
                c_out: lstm.then(|| Row::new(n_in + 1, row)),
            };
            step(kb, s, &st, weights);
            return vec![];
        }
        // The state lives in h_n / c_n; each step writes y[t] and copies it to h_n.
        let h_n = Row::new(n_in + 1, row);
        let c_n = lstm.then(|| Row::new(n_in + 2, row));
        copy_row(kb, Row::new(1, row), h_n, h);
        if let Some(c_n) = c_n {
            copy_row(kb, Row::new(2, row), c_n, h);
        }
        kb.for_n(s.steps, &[], |kb, t, _| {
            let tb = kb.b.ins().imul_imm_s(t, s.batch as i64);
            let tb = kb.b.ins().iadd(tb, b);
            let y_row = kb.b.ins().imul_imm_s(tb, h as i64);
            let gx = kb.b.ins().imul_imm_s(tb, gh as i64);
            let y = Row::new(n_in, y_row);
            let st = Step {
                gx: Row::new(0, gx),
                gh: gh_row,
                h: h_n,
                c: c_n,
                h_out: y,
                c_out: c_n,
            };
            step(kb, s, &st, weights);
            copy_row(kb, y, h_n, h);
            vec![]
        });
        vec![]
    });
}

/// One time step of one batch row; `w` is the argument index of `w_hh` (`b_hh` follows).
fn step(kb: &mut KernelBuilder, s: &Shape, st: &Step, w: usize) {
    let (h, gates) = (s.hidden, s.cell.gates());
    let zero = kb.int(0);
    // Pass 1: gh = h · W_hhᵀ + b_hh, two gates at a time, each pair stored before
    // the next is computed (so its accumulators are dead by then).
    let bias = Row::new(w + 1, zero);
    for_lanes(kb, h, |kb, l, j| {
        // Row `gate*H + j` of w_hh starts at element (gate*H + j)*H.
        let jh = kb.b.ins().imul_imm_s(j, h as i64);
        let w_row = Row::new(w, jh);
        for pair in (0..gates).collect::<Vec<_>>().chunks(2) {
            let dots = if l.vector {
                let rows: Vec<usize> = pair
                    .iter()
                    .flat_map(|&g| (0..4).map(move |r| (g * h + r) * h))
                    .collect();
                dot4(kb, st.h, w_row, &rows, h)
            } else {
                pair.iter()
                    .map(|&g| {
                        let r = w_row.offset(kb, g * h * h);
                        dot1(kb, st.h, r, h)
                    })
                    .collect()
            };
            for (&g, &d) in pair.iter().zip(&dots) {
                let bg = bias.offset(kb, g * h).load(kb, l, j);
                let v = kb.b.ins().fadd(d, bg);
                st.gh.offset(kb, g * h).store(kb, j, v);
            }
        }
    });
    // Pass 2: the gate math.
    for_lanes(kb, h, |kb, l, j| {
        let mut gx = Vec::with_capacity(gates);
        let mut gh = Vec::with_capacity(gates);
        for g in 0..gates {
            gx.push(st.gx.offset(kb, g * h).load(kb, l, j));
            gh.push(st.gh.offset(kb, g * h).load(kb, l, j));
        }
        let (h_new, c_new) = cell_math(kb, l, s.cell, &gx, &gh, st, j);
        st.h_out.store(kb, j, h_new);
        if let (Some(c_out), Some(c_new)) = (st.c_out, c_new) {
            c_out.store(kb, j, c_new);
        }
    });
}

/// The gate math of one cell (PyTorch formulas, as the interpreter computes them).
fn cell_math(
    kb: &mut KernelBuilder,
    l: Lanes,
    cell: CellKind,
    gx: &[Value],
    gh: &[Value],
    st: &Step,
    j: Value,
) -> (Value, Option<Value>) {
    match cell {
        CellKind::Rnn => {
            let pre = kb.b.ins().fadd(gx[0], gh[0]);
            (kb.tanh(l, pre), None)
        }
        CellKind::Lstm => {
            let pre: Vec<Value> = (0..4).map(|g| kb.b.ins().fadd(gx[g], gh[g])).collect();
            let i = kb.sigmoid(l, pre[0]);
            let f = kb.sigmoid(l, pre[1]);
            let g = kb.tanh(l, pre[2]);
            let o = kb.sigmoid(l, pre[3]);
            let c = st.c.expect("the LSTM has a cell state").load(kb, l, j);
            let fc = kb.b.ins().fmul(f, c);
            let ig = kb.b.ins().fmul(i, g);
            let c_new = kb.b.ins().fadd(fc, ig);
            let tc = kb.tanh(l, c_new);
            (kb.b.ins().fmul(o, tc), Some(c_new))
        }
        CellKind::Gru => {
            let pr = kb.b.ins().fadd(gx[0], gh[0]);
            let r = kb.sigmoid(l, pr);
            let pz = kb.b.ins().fadd(gx[1], gh[1]);
            let z = kb.sigmoid(l, pz);
            let rn = kb.b.ins().fmul(r, gh[2]);
            let pn = kb.b.ins().fadd(gx[2], rn);
            let n = kb.tanh(l, pn);
            let h = st.h.load(kb, l, j);
            let one = kb.fconst(l, 1.0);
            let omz = kb.b.ins().fsub(one, z);
            let a = kb.b.ins().fmul(omz, n);
            let zh = kb.b.ins().fmul(z, h);
            (kb.b.ins().fadd(a, zh), None)
        }
    }
}
