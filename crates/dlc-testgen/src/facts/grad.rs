//! Facts of the backward ops autodiff emits.
//!
//! Sums keep the [`lin`] model. Backpropagation through a recurrence is modelled
//! like the forward pass ([`super::seq`]): the gradient flowing back through one
//! step is carried with gain at most 1, so its magnitude and error grow linearly
//! with the number of steps; the error of the recomputed forward activations
//! enters every gate gradient in proportion to the incoming gradient.

use dlc_ir::{CellKind, Op, PoolKind, TensorType};

use super::layers::{lin, neg, softmax};
use super::{EPS, Fact, add, mul};

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

fn scalar(v: f64) -> Fact {
    Fact::exact(v, v)
}

/// A symmetric range `±m` with error `err`.
fn sym(m: f64, err: f64) -> Fact {
    Fact::approx(-m, m, err)
}

/// Sums of up to `c` values of `dy` scaled by `w` each, with zero (a pooling or
/// scatter gradient).
fn scatter(c: usize, dy: &Fact, w: f64) -> Fact {
    let c = c.max(1) as f64;
    let (lo, hi) = ((c * w * dy.lo).min(0.0), (c * w * dy.hi).max(0.0));
    Fact::approx(lo, hi, c * w * dy.err + c * EPS * w * dy.m())
}

/// Backpropagation through `steps` steps of a gated recurrence: the gradients of
/// the gate pre-activations (over all steps) and of the initial state.
///
/// The state gradient (`dh` and `dc` together) is carried back through a step
/// with gain at most 1 and gains `dy` at every step, so it grows linearly. Gate
/// gradients are the state gradient times at most `k` (the cell state's
/// magnitude multiplies them); the error of the recomputed forward values
/// (`fwd_err`) enters in proportion to the gradient; `gain_k` weight rows are
/// summed per step for the state gradient.
fn bptt(
    steps: usize,
    gain_k: usize,
    dy: &Fact,
    dstate: &Fact,
    w: &Fact,
    k: f64,
    fwd_err: f64,
) -> (Fact, Fact) {
    let k = k.max(1.0);
    let mut s = *dstate;
    let mut gates: Option<Fact> = None;
    for _ in 0..steps {
        let (m, e) = (s.m() + dy.m(), s.err + dy.err);
        let g = sym(k * m, k * e + 2.0 * m * fwd_err + 4.0 * EPS * k * m);
        let round = lin(gain_k, &Fact { err: 0.0, ..g }, w).err;
        s = sym(m, e + m * fwd_err + round);
        gates = Some(gates.map_or(g, |a| a.union(&g)));
    }
    (gates.unwrap_or(sym(0.0, 0.0)), s)
}

/// Facts of the ops in this module's scope, `None` for others.
pub(super) fn op_facts(
    op: &Op,
    a: &[Fact],
    tys: &[&TensorType],
    _out: &[TensorType],
) -> Option<Vec<Fact>> {
    Some(match op {
        Op::ConvWeightGrad { .. } => {
            let dy = &tys[1].shape;
            let n = dy[0] * numel(&dy[2..]);
            vec![lin(n, &a[0].with_zero(), &a[1])]
        }
        Op::PoolGrad(p) => {
            let overlap: usize = p
                .kernel
                .iter()
                .zip(&p.stride)
                .map(|(&k, &s)| k.div_ceil(s.max(1)))
                .product();
            let w = match p.kind {
                PoolKind::Max => 1.0,
                PoolKind::Avg { count_include_pad } => {
                    let full = numel(&p.kernel) as f64;
                    if count_include_pad { 1.0 / full } else { 1.0 }
                }
            };
            vec![scatter(overlap, &a[1], w)]
        }
        Op::GatherGrad { .. } => {
            let count = numel(&tys[1].shape);
            vec![lin(count, &a[0], &Fact::exact(0.0, 1.0))]
        }
        Op::AttentionGrad { scale, .. } => {
            let (q, k, v) = (&tys[0].shape, &tys[1].shape, &tys[2].shape);
            let r = q.len();
            let (l, e, s, ev) = (q[r - 2], q[r - 1], k[r - 2], v[r - 1]);
            let sc = Fact::exact(scale.abs(), scale.abs());
            let scores = mul(&lin(e, &a[0], &a[1]), &sc);
            let p = softmax(s, &scores);
            let dp = lin(ev, &a[3], &a[2]);
            let ds = mul(&p, &add(&dp, &neg(&dp)));
            vec![
                mul(&lin(s, &ds, &a[1]), &sc),
                mul(&lin(l, &ds, &a[0]), &sc),
                lin(l, &p, &a[3]),
            ]
        }
        Op::RecurrentGrad { cell, sequence } => recurrent_grad(*cell, *sequence, a, tys),
        Op::GridLstmGrad => grid_lstm_grad(a, tys),
        _ => return None,
    })
}

fn recurrent_grad(cell: CellKind, sequence: bool, a: &[Fact], tys: &[&TensorType]) -> Vec<Fact> {
    let states = 1 + cell.has_cell_state() as usize;
    let fwd = 5 + states;
    let fwd_op = Op::Recurrent { cell, sequence };
    let f = super::seq::op_facts(&fwd_op, &a[..fwd], &tys[..fwd], &[]).unwrap_or_default();
    let fwd_err = f.iter().map(|x| x.err).fold(0.0, f64::max);
    let state = f.iter().map(|x| x.m()).fold(1.0, f64::max);
    let xs = &tys[0].shape;
    let steps = if sequence { xs[0] } else { 1 };
    let rows = numel(&xs[..xs.len() - 1]);
    let hidden = tys[1].shape[1];
    let gh = cell.gates() * hidden;
    let g = &a[fwd..];
    let dy = if sequence { g[0] } else { scalar(0.0) };
    let ds = g[sequence as usize..]
        .iter()
        .fold(scalar(0.0), |acc, x| sym(acc.m() + x.m(), acc.err + x.err));
    let [w_ih, w_hh] = [a[1 + states], a[2 + states]];
    let (gates, d0) = bptt(steps, gh, &dy, &ds, &w_hh, state, fwd_err);
    let h = f.first().copied().unwrap_or(scalar(0.0)).union(&a[1]);
    let mut res = vec![lin(gh, &gates, &w_ih)];
    res.extend(std::iter::repeat_n(d0, states));
    res.push(lin(rows, &gates, &a[0]));
    res.push(lin(rows, &gates, &h));
    res.push(lin(rows, &gates, &scalar(1.0)));
    res.push(lin(rows, &gates, &scalar(1.0)));
    res
}

fn grid_lstm_grad(a: &[Fact], tys: &[&TensorType]) -> Vec<Fact> {
    let f = super::seq::op_facts(&Op::GridLstm, &a[..5], &tys[..5], &[]).unwrap_or_default();
    let fwd_err = f.iter().map(|x| x.err).fold(0.0, f64::max);
    let state = f.iter().map(|x| x.m()).fold(1.0, f64::max);
    let xs = &tys[0].shape;
    let rows = xs[0] * xs[1] * xs[2];
    let hidden = tys[2].shape[0] / 4;
    let g = &a[5..];
    let ds = g[1..]
        .iter()
        .fold(scalar(0.0), |acc, x| sym(acc.m() + x.m(), acc.err + x.err));
    let w = a[1].union(&a[3]);
    let steps = xs[0] + xs[1];
    let (gates, _) = bptt(steps, 8 * hidden, &g[0], &ds, &w, state, fwd_err);
    let z = a[0].union(&f.first().copied().unwrap_or(scalar(0.0)));
    let dw = lin(rows, &gates, &z);
    let db = lin(rows, &gates, &scalar(1.0));
    vec![lin(8 * hidden, &gates, &w), dw, db, dw, db]
}
