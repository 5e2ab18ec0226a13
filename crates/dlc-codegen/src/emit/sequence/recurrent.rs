//! The rnn/lstm/gru recurrence over the kernel's block of batch rows: a loop
//! over time steps, each making two passes. First the recurrent product
//! `gh = h · W_hhᵀ` of every row of the block: with AVX2 one call of the native
//! NT kernel ([`super::nt`]), which loads each `W_hh` vector once for four batch
//! rows, so the block streams `W_hh` once per step instead of once per row;
//! otherwise Cranelift dot products per row (four units of two gates at a time).
//! Then, per row, the fused gate math (`+ b_hh`, sigmoid/tanh, cell update)
//! writing the new state and `y`: with AVX2 a call of the native gate kernel
//! ([`super::gates`], eight units per instruction, the same arithmetic),
//! otherwise Cranelift f32x4 code. Keeping the math (and its many vector
//! constants, which Cranelift hoists to the enclosing loop) out of the
//! dot-product loops keeps the accumulators in registers.

use cranelift_codegen::ir::{InstBuilder, Value};
use dlc_ir::CellKind;

use super::gates::{self, GateKernel, GateRows};
use super::nt::{self, NtKernel, Operand};
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

/// The native kernels of the AVX2 tier.
#[derive(Clone, Copy)]
pub(super) struct Native {
    /// The recurrent product.
    pub nt: NtKernel,
    /// The gate math of one row.
    pub gates: GateKernel,
}

/// Where a step reads and writes: argument indices (`gx`, `gh` and `y` are
/// indexed by batch row and, for `gx` and `y`, by step; the states by batch row).
struct Io {
    /// The input projections `gx [T, B, G*H]`.
    gx: usize,
    /// The scratch for `gh [B, G*H]`.
    gh: usize,
    /// The previous hidden state (read only).
    h: usize,
    /// The previous cell state (LSTM).
    c: Option<usize>,
    /// The new hidden state (the cell form's output, or `y` of the sequence form).
    h_out: usize,
    /// Also written with the new hidden state: `h_n`, which holds the state
    /// between steps of the sequence form (it is `h` then).
    h_state: Option<usize>,
    /// The new cell state (LSTM; may be `c` itself).
    c_out: Option<usize>,
    /// Argument index of `w_hh` (`b_hh` follows).
    w: usize,
}

/// Emits the kernel; `n_in` is the number of inputs (outputs follow them);
/// `native` are the native kernels, if the target has them.
pub(super) fn emit(kb: &mut KernelBuilder, s: &Shape, n_in: usize, native: Option<Native>) {
    let lstm = s.cell.has_cell_state();
    let h = s.hidden;
    let w = 2 + lstm as usize;
    // The scratch is the last output: y?, h_n, c_n?, gh.
    let gh = n_in + s.sequence as usize + 1 + lstm as usize;
    let (start, end) = (kb.start, kb.end);
    if !s.sequence {
        let io = Io {
            gx: 0,
            gh,
            h: 1,
            c: lstm.then_some(2),
            h_out: n_in,
            h_state: None,
            c_out: lstm.then_some(n_in + 1),
            w,
        };
        let t = kb.int(0);
        step(kb, s, &io, t, native);
        return;
    }
    // The state lives in h_n / c_n; each step writes y[t] and h_n.
    let (h_n, c_n) = (n_in + 1, lstm.then_some(n_in + 2));
    kb.for_range(start, end, 1, &[], |kb, b, _| {
        let row = kb.b.ins().imul_imm_s(b, h as i64);
        copy_row(kb, Row::new(1, row), Row::new(h_n, row), h);
        if let Some(c_n) = c_n {
            copy_row(kb, Row::new(2, row), Row::new(c_n, row), h);
        }
        vec![]
    });
    let io = Io {
        gx: 0,
        gh,
        h: h_n,
        c: c_n,
        h_out: n_in,
        h_state: Some(h_n),
        c_out: c_n,
        w,
    };
    kb.for_n(s.steps, &[], |kb, t, _| {
        step(kb, s, &io, t, native);
        vec![]
    });
}

/// Time step `t` for the kernel's batch rows `start..end`.
fn step(kb: &mut KernelBuilder, s: &Shape, io: &Io, t: Value, native: Option<Native>) {
    let (h, gh) = (s.hidden, s.cell.gates() * s.hidden);
    let (start, end) = (kb.start, kb.end);
    match native {
        Some(Native { nt: f, .. }) => {
            let rows = kb.b.ins().isub(end, start);
            let operand = |kb: &mut KernelBuilder, arg, ld: usize| Operand {
                arg,
                first: kb.b.ins().imul_imm_s(start, ld as i64),
                ld,
            };
            let a = operand(kb, io.h, h);
            let c = operand(kb, io.gh, gh);
            let w = Operand {
                arg: io.w,
                first: kb.int(0),
                ld: h,
            };
            // Alternate directions over W_hh between steps (see `nt`).
            let reverse = kb.b.ins().band_imm_s(t, 1);
            nt::emit_call(kb, f, rows, (gh, h), a, w, c, reverse);
        }
        None => {
            kb.for_range(start, end, 1, &[], |kb, b, _| {
                let hr = Row::new(io.h, kb.b.ins().imul_imm_s(b, h as i64));
                let ghr = Row::new(io.gh, kb.b.ins().imul_imm_s(b, gh as i64));
                product_row(kb, s, hr, ghr, io.w);
                vec![]
            });
        }
    }
    kb.for_range(start, end, 1, &[], |kb, b, _| {
        gates_row(kb, s, io, t, b, native.map(|n| n.gates));
        vec![]
    });
}

/// `gh = h · W_hhᵀ` for one batch row (the portable path), two gates at a time,
/// each pair stored before the next is computed (so its accumulators are dead by then).
fn product_row(kb: &mut KernelBuilder, s: &Shape, hr: Row, ghr: Row, w: usize) {
    let (h, gates) = (s.hidden, s.cell.gates());
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
                dot4(kb, hr, w_row, &rows, h)
            } else {
                pair.iter()
                    .map(|&g| {
                        let r = w_row.offset(kb, g * h * h);
                        dot1(kb, hr, r, h)
                    })
                    .collect()
            };
            for (&g, &d) in pair.iter().zip(&dots) {
                ghr.offset(kb, g * h).store(kb, j, d);
            }
        }
    });
}

/// The gate math of batch row `b` at step `t`: reads `gx`, `gh` (+ `b_hh`) and
/// the state, writes the new state; with `native`, in one call of that kernel.
fn gates_row(
    kb: &mut KernelBuilder,
    s: &Shape,
    io: &Io,
    t: Value,
    b: Value,
    native: Option<GateKernel>,
) {
    let (h, gates) = (s.hidden, s.cell.gates());
    let tb = kb.b.ins().imul_imm_s(t, s.batch as i64);
    let tb = kb.b.ins().iadd(tb, b);
    let gx = Row::new(io.gx, kb.b.ins().imul_imm_s(tb, (gates * h) as i64));
    let ghr = Row::new(io.gh, kb.b.ins().imul_imm_s(b, (gates * h) as i64));
    let row = kb.b.ins().imul_imm_s(b, h as i64);
    let state = |arg| Row::new(arg, row);
    // `y[t, b]` in the sequence form, the output row `b` in the cell form.
    let out = if io.h_state.is_some() {
        Row::new(io.h_out, kb.b.ins().imul_imm_s(tb, h as i64))
    } else {
        state(io.h_out)
    };
    let zero = kb.int(0);
    let bias = Row::new(io.w + 1, zero);
    let st = State {
        h: state(io.h),
        c: io.c.map(state),
    };
    if let Some(f) = native {
        let rows = GateRows {
            gx,
            gh: ghr,
            bias,
            prev: match s.cell {
                CellKind::Rnn => None,
                CellKind::Lstm => st.c,
                CellKind::Gru => Some(st.h),
            },
            out,
            state: io.h_state.map(state),
            c_out: io.c_out.map(state),
        };
        gates::emit_call(kb, f, (h, gates), &rows);
        return;
    }
    for_lanes(kb, h, |kb, l, j| {
        let mut gxv = Vec::with_capacity(gates);
        let mut ghv = Vec::with_capacity(gates);
        for g in 0..gates {
            gxv.push(gx.offset(kb, g * h).load(kb, l, j));
            let d = ghr.offset(kb, g * h).load(kb, l, j);
            let bg = bias.offset(kb, g * h).load(kb, l, j);
            ghv.push(kb.b.ins().fadd(d, bg));
        }
        let (h_new, c_new) = cell_math(kb, l, s.cell, &gxv, &ghv, &st, j);
        out.store(kb, j, h_new);
        if let Some(hs) = io.h_state {
            state(hs).store(kb, j, h_new);
        }
        if let (Some(c_out), Some(c_new)) = (io.c_out, c_new) {
            state(c_out).store(kb, j, c_new);
        }
    });
}

/// The previous state of one batch row.
struct State {
    h: Row,
    c: Option<Row>,
}

/// The gate math of one cell (PyTorch formulas, as the interpreter computes them).
fn cell_math(
    kb: &mut KernelBuilder,
    l: Lanes,
    cell: CellKind,
    gx: &[Value],
    gh: &[Value],
    st: &State,
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
