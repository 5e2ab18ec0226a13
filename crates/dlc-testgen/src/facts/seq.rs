//! Facts of recurrent layers, the grid LSTM and attention.
//!
//! Recurrences are followed step by step: each step's pre-activations are
//! [`lin`] sums over the input and the previous state, so an error in the state
//! is carried with gain `sqrt(H)·|W_hh|` (about 1 for PyTorch-style weights) and
//! accumulates over the `T` steps; the LSTM cell state's range grows with its
//! forget gate.

use dlc_ir::{CellKind, Op, TensorType, UnaryOp};

use super::layers::{lin, neg};
use super::{EPS, Fact, ULP_EXP, add, mul, unary};

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
        let gh = add(&lin(hidden, &h, &w_hh), &b_hh);
        match cell {
            CellKind::Rnn => h = tanh(&add(&gx, &gh)),
            CellKind::Lstm => (h, c) = lstm_update(&add(&gx, &gh), &c),
            CellKind::Gru => {
                let rz = sigmoid(&add(&gx, &gh));
                let n = tanh(&add(&gx, &mul(&rz, &gh)));
                // h' = (1 - z)·n + z·h = n + z·(h - n)
                h = add(&n, &mul(&rz, &add(&h, &neg(&n))));
            }
        }
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
            let new1 = lstm_update(&add(&lin(k, &z, &w1), &b1), &d1.1);
            let new2 = lstm_update(&add(&lin(k, &z, &w2), &b2), &dir2.1);
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
/// The output is a convex combination of `v`: its range is `v`'s; score errors move
/// it by at most `e_s·(v.hi - v.lo)`, and the softmax and weighted-sum roundings
/// add `eps·(...)·|v|`.
fn attend(q: &Fact, k: &Fact, v: &Fact, e: usize, s: usize, scale: f64) -> Fact {
    let scores = mul(&lin(e, q, k), &Fact::exact(scale, scale));
    let sf = s as f64;
    let round = EPS * (ULP_EXP + 3.0 + 2.0 * sf.sqrt() + 2.0 * (scores.hi - scores.lo)) * v.m();
    let err = v.err + scores.err * (v.hi - v.lo) + round;
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
