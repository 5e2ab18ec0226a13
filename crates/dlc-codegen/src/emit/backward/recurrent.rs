//! Backpropagation through time of rnn/lstm/gru for one batch row per parallel
//! index (see `BackwardOp::RecurrentBackward`): an elementwise scan recomputing
//! the LSTM's cell states, then the steps in reverse, each a pass over the
//! hidden units (the gate gradients from the recomputed activations, formulas
//! as in the interpreter) and the state gradient `dh ← dgh · W_hh` as one
//! vector axpy per gate row.

use cranelift_codegen::ir::{InstBuilder, Value};
use dlc_ir::CellKind;

use crate::emit::builder::KernelBuilder;
use crate::emit::math::Lanes;
use crate::emit::norm::rows::{At, each, for_parallel, splat};

/// Argument indices of the kernel (see `BackwardOp::RecurrentBackward`).
struct Args {
    gx: usize,
    gh: usize,
    h_prev: usize,
    c0: Option<usize>,
    w_hh: usize,
    dy: Option<usize>,
    dh_n: usize,
    dc_n: Option<usize>,
    dgi: usize,
    dgh: usize,
    dh: usize,
    dc: Option<usize>,
    c: Option<usize>,
}

impl Args {
    fn new(cell: CellKind, sequence: bool) -> Args {
        let (lstm, gru) = (cell == CellKind::Lstm, cell == CellKind::Gru);
        let mut next = 3;
        let mut take = |on: bool| {
            on.then(|| {
                next += 1;
                next - 1
            })
        };
        let c0 = take(lstm);
        let w_hh = take(true).unwrap_or_default();
        let dy = take(sequence);
        let dh_n = take(true).unwrap_or_default();
        let dc_n = take(lstm);
        let dgi = take(true).unwrap_or_default();
        let dgh = take(gru).unwrap_or(dgi);
        let dh = take(true).unwrap_or_default();
        let dc = take(lstm);
        let c = take(lstm);
        Args {
            gx: 0,
            gh: 1,
            h_prev: 2,
            c0,
            w_hh,
            dy,
            dh_n,
            dc_n,
            dgi,
            dgh,
            dh,
            dc,
            c,
        }
    }
}

/// `y (1 − y)`, the sigmoid's derivative from its value.
pub(super) fn d_sigmoid(kb: &mut KernelBuilder, l: Lanes, y: Value) -> Value {
    let one = kb.fconst(l, 1.0);
    let m = kb.b.ins().fsub(one, y);
    kb.b.ins().fmul(y, m)
}

/// `1 − y²`, tanh's derivative from its value.
pub(super) fn d_tanh(kb: &mut KernelBuilder, l: Lanes, y: Value) -> Value {
    let one = kb.fconst(l, 1.0);
    let y2 = kb.b.ins().fmul(y, y);
    kb.b.ins().fsub(one, y2)
}

/// Copies `len` elements from `src[s..]` to `dst[d..]`.
pub(super) fn copy(
    kb: &mut KernelBuilder,
    (src, s): (usize, Value),
    (dst, d): (usize, Value),
    len: usize,
) {
    each(kb, len, 2, &|kb, l, at| {
        let v = at.load(kb, l, src, s);
        at.store(kb, v, dst, d);
    });
}

/// The pre-activation of gate `k`: `gx + gh` at `row + k·H + at`.
fn pre(
    kb: &mut KernelBuilder,
    a: &Args,
    l: Lanes,
    at: At,
    row: Value,
    k: usize,
    h: usize,
) -> Value {
    let base = kb.b.ins().iadd_imm_s(row, (k * h) as i64);
    let x = at.load(kb, l, a.gx, base);
    let y = at.load(kb, l, a.gh, base);
    kb.b.ins().fadd(x, y)
}

/// Emits the kernel; `[steps, batch, hidden]` are its extents.
pub fn bptt(kb: &mut KernelBuilder, cell: CellKind, sequence: bool, [t_len, batch, h]: [usize; 3]) {
    let a = Args::new(cell, sequence);
    let g_len = cell.gates() * h;
    for_parallel(kb, |kb, b| {
        let hrow = kb.b.ins().imul_imm_s(b, h as i64);
        copy(kb, (a.dh_n, hrow), (a.dh, hrow), h);
        if let (Some(dc_n), Some(dc), Some(c0), Some(c)) = (a.dc_n, a.dc, a.c0, a.c) {
            copy(kb, (dc_n, hrow), (dc, hrow), h);
            copy(kb, (c0, hrow), (c, hrow), h);
            // c[t + 1] = σ(f) c[t] + σ(i) tanh(g), from the recomputed pre-activations.
            kb.for_n(t_len, &[], |kb, t, _| {
                let tb = kb.b.ins().imul_imm_s(t, batch as i64);
                let tb = kb.b.ins().iadd(tb, b);
                let grow = kb.b.ins().imul_imm_s(tb, g_len as i64);
                let old = kb.b.ins().imul_imm_s(tb, h as i64);
                let new = kb.b.ins().iadd_imm_s(old, (batch * h) as i64);
                each(kb, h, 1, &|kb, l, at| {
                    let pi = pre(kb, &a, l, at, grow, 0, h);
                    let pf = pre(kb, &a, l, at, grow, 1, h);
                    let pg = pre(kb, &a, l, at, grow, 2, h);
                    let (i, f, g) = (kb.sigmoid(l, pi), kb.sigmoid(l, pf), kb.tanh(l, pg));
                    let c_old = at.load(kb, l, c, old);
                    let fc = kb.b.ins().fmul(f, c_old);
                    let ig = kb.b.ins().fmul(i, g);
                    let c_new = kb.b.ins().fadd(fc, ig);
                    at.store(kb, c_new, c, new);
                });
                vec![]
            });
        }
        let (last, stop) = (kb.int(t_len as i64 - 1), kb.int(-1));
        kb.for_range(last, stop, -1, &[], |kb, t, _| {
            let tb = kb.b.ins().imul_imm_s(t, batch as i64);
            let tb = kb.b.ins().iadd(tb, b);
            let grow = kb.b.ins().imul_imm_s(tb, g_len as i64);
            let srow = kb.b.ins().imul_imm_s(tb, h as i64);
            let cnew = kb.b.ins().iadd_imm_s(srow, (batch * h) as i64);
            each(kb, h, 1, &|kb, l, at| {
                let mut dh = at.load(kb, l, a.dh, hrow);
                if let Some(dy) = a.dy {
                    let d = at.load(kb, l, dy, srow);
                    dh = kb.b.ins().fadd(dh, d);
                }
                let rows = (grow, srow, hrow, cnew);
                let gates = gate_grads(kb, &a, cell, l, at, rows, dh, h);
                for (k, (dgi, dgh)) in gates.iter().enumerate() {
                    let base = kb.b.ins().iadd_imm_s(grow, (k * h) as i64);
                    at.store(kb, *dgi, a.dgi, base);
                    if a.dgh != a.dgi {
                        at.store(kb, *dgh, a.dgh, base);
                    }
                }
            });
            // dh += dgh[k] · W_hh[k, :] for every gate row k.
            kb.for_n(g_len, &[], |kb, k, _| {
                let gk = kb.b.ins().iadd(grow, k);
                let s = kb.load(cranelift_codegen::ir::types::F32, a.dgh, gk, 4);
                let wrow = kb.b.ins().imul_imm_s(k, h as i64);
                each(kb, h, 2, &|kb, l, at| {
                    let sv = splat(kb, l, s);
                    let w = at.load(kb, l, a.w_hh, wrow);
                    let d = at.load(kb, l, a.dh, hrow);
                    let d = kb.b.ins().fma(sv, w, d);
                    at.store(kb, d, a.dh, hrow);
                });
                vec![]
            });
            vec![]
        });
    });
}

/// The gradients `(dgi, dgh)` of each gate's input- and hidden-side
/// pre-activations at one position of step `t`, from the state gradient `dh`;
/// also stores the direct part of the old state's gradient (`dh · z` for the
/// GRU, else zero) into `dh` and the LSTM's old cell-state gradient into `dc`.
/// `rows` are the element offsets of the step's gate row, its state row (the
/// state entering the step; the LSTM's cell state after it is `cnew`) and the
/// batch row's state gradient.
#[allow(clippy::too_many_arguments)]
fn gate_grads(
    kb: &mut KernelBuilder,
    a: &Args,
    cell: CellKind,
    l: Lanes,
    at: At,
    (grow, srow, hrow, cnew): (Value, Value, Value, Value),
    dh: Value,
    h: usize,
) -> Vec<(Value, Value)> {
    let zero = kb.fconst(l, 0.0);
    match cell {
        CellKind::Rnn => {
            let p = pre(kb, a, l, at, grow, 0, h);
            let y = kb.tanh(l, p);
            let d = d_tanh(kb, l, y);
            let da = kb.b.ins().fmul(dh, d);
            at.store(kb, zero, a.dh, hrow);
            vec![(da, da)]
        }
        CellKind::Lstm => {
            let (c, dc) = (a.c.expect("lstm"), a.dc.expect("lstm"));
            let p: Vec<Value> = (0..4).map(|k| pre(kb, a, l, at, grow, k, h)).collect();
            let (i, f) = (kb.sigmoid(l, p[0]), kb.sigmoid(l, p[1]));
            let (g, o) = (kb.tanh(l, p[2]), kb.sigmoid(l, p[3]));
            let c_old = at.load(kb, l, c, srow);
            let c_new = at.load(kb, l, c, cnew);
            let tc = kb.tanh(l, c_new);
            let dc_in = at.load(kb, l, dc, hrow);
            let ([di, df, dg, dop], dc_old) =
                lstm_cell_grads(kb, l, [i, f, g, o], c_old, tc, dh, dc_in);
            at.store(kb, dc_old, dc, hrow);
            at.store(kb, zero, a.dh, hrow);
            vec![(di, di), (df, df), (dg, dg), (dop, dop)]
        }
        CellKind::Gru => {
            let pr = pre(kb, a, l, at, grow, 0, h);
            let pz = pre(kb, a, l, at, grow, 1, h);
            let (r, z) = (kb.sigmoid(l, pr), kb.sigmoid(l, pz));
            let ghn_at = kb.b.ins().iadd_imm_s(grow, (2 * h) as i64);
            let ghn = at.load(kb, l, a.gh, ghn_at);
            let gxn = at.load(kb, l, a.gx, ghn_at);
            let rn = kb.b.ins().fmul(r, ghn);
            let pn = kb.b.ins().fadd(gxn, rn);
            let n = kb.tanh(l, pn);
            let h_old = at.load(kb, l, a.h_prev, srow);
            let one = kb.fconst(l, 1.0);
            let omz = kb.b.ins().fsub(one, z);
            let dn = kb.b.ins().fmul(dh, omz);
            let dtn = d_tanh(kb, l, n);
            let dn = kb.b.ins().fmul(dn, dtn);
            let hn = kb.b.ins().fsub(h_old, n);
            let dz = kb.b.ins().fmul(dh, hn);
            let dsz = d_sigmoid(kb, l, z);
            let dz = kb.b.ins().fmul(dz, dsz);
            let dr = kb.b.ins().fmul(dn, ghn);
            let dsr = d_sigmoid(kb, l, r);
            let dr = kb.b.ins().fmul(dr, dsr);
            let dnr = kb.b.ins().fmul(dn, r);
            let direct = kb.b.ins().fmul(dh, z);
            at.store(kb, direct, a.dh, hrow);
            vec![(dr, dr), (dz, dz), (dn, dnr)]
        }
    }
}

/// One LSTM cell's backward step at one position (formulas as in the
/// interpreter): from the gate activations `[i, f, g, o]`, the old cell state
/// `c`, `tanh` of the new one and the new state's gradients `dh`, `dc`, the
/// gradients of the gate pre-activations and of the old cell state.
pub(super) fn lstm_cell_grads(
    kb: &mut KernelBuilder,
    l: Lanes,
    [i, f, g, o]: [Value; 4],
    c: Value,
    tc: Value,
    dh: Value,
    dc: Value,
) -> ([Value; 4], Value) {
    // dcn = dc + dh·o·(1 − tanh²(c_new))
    let dtc = d_tanh(kb, l, tc);
    let dho = kb.b.ins().fmul(dh, o);
    let dho = kb.b.ins().fmul(dho, dtc);
    let dcn = kb.b.ins().fadd(dc, dho);
    let (dsi, dsf, dtg, dso) = (
        d_sigmoid(kb, l, i),
        d_sigmoid(kb, l, f),
        d_tanh(kb, l, g),
        d_sigmoid(kb, l, o),
    );
    // dcn · x · y
    let mut grad = |x: Value, y: Value| {
        let v = kb.b.ins().fmul(dcn, x);
        kb.b.ins().fmul(v, y)
    };
    let (di, df, dg) = (grad(g, dsi), grad(c, dsf), grad(i, dtg));
    let d_o = kb.b.ins().fmul(dh, tc);
    let dop = kb.b.ins().fmul(d_o, dso);
    let dc_old = kb.b.ins().fmul(dcn, f);
    ([di, df, dg, dop], dc_old)
}
