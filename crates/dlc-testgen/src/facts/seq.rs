//! Facts of recurrent layers, the grid LSTM and attention.
//!
//! Recurrences are followed step by step: each step's pre-activations are
//! [`lin`] sums over the input and the previous state, so an error in the state
//! is carried to the next state with a gain capped at 1 (see [`carried`]), so the
//! error after `T` steps is about `T` times a step's own error; the LSTM cell
//! state's range grows with its forget gate.

use dlc_ir::{CellKind, Op, TensorType, UnaryOp};

use super::layers::softmax_round;
use super::layers::{lin, neg};
use super::{EPS, Fact, add, mul, unary};

fn sigmoid(x: &Fact) -> Fact {
    unary(UnaryOp::Sigmoid, x)
}

fn tanh(x: &Fact) -> Fact {
    unary(UnaryOp::Tanh, x)
}

/// One LSTM update from pre-activations `pre` (all four gates share one range):
/// `c' = σ·c + σ·tanh`, `h' = σ·tanh(c')`.
fn lstm_update(pre: &Fact, c: &Fact) -> (Fact, Fact) {
    let (s, g) = (sigmoid(pre), tanh(pre));
    let c2 = add(&mul(&s, c), &mul(&s, &g));
    (mul(&s, &tanh(&c2)), c2)
}

/// A state with its error cleared: the error a step adds by itself.
fn clean(f: &Fact) -> Fact {
    Fact { err: 0.0, ..*f }
}

/// The error of a new state: the step's own error plus the incoming state error
/// carried with gain at most 1 (the recurrences here are contractive on average:
/// saturating gates, forget gates below 1, `U(±1/sqrt(H))` recurrent weights with
/// spectral radius about 0.6), so errors grow linearly in the number of steps
/// instead of compounding the per-op worst cases.
fn carried(full: &Fact, fresh: &Fact, incoming: f64) -> Fact {
    Fact {
        err: full.err.min(fresh.err + incoming),
        ..*full
    }
}

/// One step of a recurrent cell from `(h, c)`; `c` is ignored unless LSTM.
fn cell_step(
    cell: CellKind,
    gx: &Fact,
    h: &Fact,
    c: &Fact,
    w_hh: &Fact,
    b_hh: &Fact,
    hidden: usize,
) -> (Fact, Fact) {
    let gh = add(&lin(hidden, h, w_hh), b_hh);
    match cell {
        CellKind::Rnn => (tanh(&add(gx, &gh)), *c),
        CellKind::Lstm => lstm_update(&add(gx, &gh), c),
        CellKind::Gru => {
            let rz = sigmoid(&add(gx, &gh));
            let n = tanh(&add(gx, &mul(&rz, &gh)));
            // h' = (1 - z)·n + z·h = n + z·(h - n)
            (add(&n, &mul(&rz, &add(h, &neg(&n)))), *c)
        }
    }
}

fn recurrent(cell: CellKind, sequence: bool, a: &[Fact], tys: &[&TensorType]) -> Vec<Fact> {
    let states = if cell.has_cell_state() { 2 } else { 1 };
    let (x, mut h) = (a[0], a[1]);
    let mut c = if states == 2 {
        a[2]
    } else {
        Fact::exact(0.0, 0.0)
    };
    let [w_ih, w_hh, b_ih, b_hh] = [0, 1, 2, 3].map(|i| a[1 + states + i]);
    let input = tys[0].shape[tys[0].rank() - 1];
    let hidden = tys[2 + states].shape[1];
    let steps = if sequence { tys[0].shape[0] } else { 1 };
    let gx = add(&lin(input, &x, &w_ih), &b_ih);
    let mut y: Option<Fact> = None;
    for _ in 0..steps {
        let (h1, c1) = cell_step(cell, &gx, &h, &c, &w_hh, &b_hh, hidden);
        let (h0, c0) = cell_step(cell, &gx, &clean(&h), &clean(&c), &w_hh, &b_hh, hidden);
        let incoming = h.err.max(c.err);
        (h, c) = (carried(&h1, &h0, incoming), carried(&c1, &c0, incoming));
        y = Some(y.map_or(h, |y| y.union(&h)));
    }
    let mut out = Vec::new();
    if sequence {
        out.push(y.unwrap_or(h));
    }
    out.push(h);
    if states == 2 {
        out.push(c);
    }
    out
}

fn grid_lstm(a: &[Fact], tys: &[&TensorType]) -> Vec<Fact> {
    let (x, w1, b1, w2, b2) = (a[0], a[1], a[2], a[3], a[4]);
    let [gh, gw] = [tys[0].shape[0], tys[0].shape[1]];
    let k = tys[1].shape[0];
    let zero = Fact::exact(0.0, 0.0);
    let mut dir1 = vec![(zero, zero); gw];
    let (mut y, mut h_hor, mut m_hor) = (None::<Fact>, None::<Fact>, None::<Fact>);
    let join = |acc: Option<Fact>, f: &Fact| Some(acc.map_or(*f, |a| a.union(f)));
    for _ in 0..gh {
        let mut dir2 = (zero, zero);
        for d1 in dir1.iter_mut() {
            let z = x.union(&d1.0).union(&dir2.0);
            let z0 = x.union(&clean(&d1.0)).union(&clean(&dir2.0));
            let incoming = [d1.0.err, d1.1.err, dir2.0.err, dir2.1.err]
                .into_iter()
                .fold(0.0, f64::max);
            let step =
                |z: &Fact, w: &Fact, b: &Fact, m: &Fact| lstm_update(&add(&lin(k, z, w), b), m);
            let (f1, f2) = (step(&z, &w1, &b1, &d1.1), step(&z, &w2, &b2, &dir2.1));
            let (c1, c2) = (
                step(&z0, &w1, &b1, &clean(&d1.1)),
                step(&z0, &w2, &b2, &clean(&dir2.1)),
            );
            let new1 = (
                carried(&f1.0, &c1.0, incoming),
                carried(&f1.1, &c1.1, incoming),
            );
            let new2 = (
                carried(&f2.0, &c2.0, incoming),
                carried(&f2.1, &c2.1, incoming),
            );
            y = join(join(y, &new1.0), &new2.0);
            (*d1, dir2) = (new1, new2);
        }
        h_hor = join(h_hor, &dir2.0);
        m_hor = join(m_hor, &dir2.1);
    }
    let fold = |f: &dyn Fn(&(Fact, Fact)) -> Fact| {
        dir1.iter()
            .map(f)
            .reduce(|a, b| a.union(&b))
            .unwrap_or(zero)
    };
    vec![
        y.unwrap_or(zero),
        fold(&|s| s.0),
        fold(&|s| s.1),
        h_hor.unwrap_or(zero),
        m_hor.unwrap_or(zero),
    ]
}

/// Attention of queries over `s` keys with head size `e`: `softmax(q·kᵀ·scale)·v`.
///
/// The output is a convex combination of `v`, so its range is `v`'s. Score errors
/// `δs` move it by `Cov_p(δs, v) <= e_s·(v.hi - v.lo)/2` (Cauchy–Schwarz and
/// Popoviciu); the probabilities' rounding ([`softmax_round`], twice: the terms and
/// their sum) and the weighted sum (`sqrt(s)` ulp) add `eps·(...)·|v|`.
fn attend(q: &Fact, k: &Fact, v: &Fact, e: usize, s: usize, scale: f64) -> Fact {
    let scores = mul(&lin(e, q, k), &Fact::exact(scale, scale));
    let round = (2.0 * softmax_round(s) + EPS * (s as f64).sqrt()) * v.m();
    let err = v.err + scores.err * 0.5 * (v.hi - v.lo) + round;
    Fact::approx(v.lo, v.hi, err)
}

/// Facts of the ops in this module's scope, `None` for others.
pub(super) fn op_facts(
    op: &Op,
    a: &[Fact],
    tys: &[&TensorType],
    _out: &[TensorType],
) -> Option<Vec<Fact>> {
    Some(match op {
        Op::Recurrent { cell, sequence } => recurrent(*cell, *sequence, a, tys),
        Op::GridLstm => grid_lstm(a, tys),
        Op::Attention { scale, .. } => {
            let (q, k) = (&tys[0].shape, &tys[1].shape);
            let (e, s) = (q[q.len() - 1], k[k.len() - 2]);
            vec![attend(&a[0], &a[1], &a[2], e, s, *scale)]
        }
        Op::MultiHeadAttention { heads, .. } => {
            let e = tys[0].shape[2];
            let s = tys[1].shape[0];
            let proj = |x: &Fact| add(&lin(e, x, &a[3]), &a[4]);
            let d = e / (*heads).max(1);
            let o = attend(
                &proj(&a[0]),
                &proj(&a[1]),
                &proj(&a[2]),
                d,
                s,
                1.0 / (d as f64).sqrt(),
            );
            vec![add(&lin(e, &o, &a[5]), &a[6])]
        }
        _ => return None,
    })
}
