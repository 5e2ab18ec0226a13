use dlc_ir::init::dropout_keep;
use dlc_ir::{BinaryOp, DType, Op, UnaryOp};

use super::*;

fn unary(op: UnaryOp, xs: &[f64]) -> Vec<f64> {
    floats(&run1::<f64>(Op::Unary(op), &[fv(&[xs.len()], xs)]))
}

#[test]
fn unary_ops_follow_their_formulas() {
    let xs = [-2.5, -1.0, -0.25, 0.5, 1.0, 3.0];
    let each = |f: fn(f64) -> f64| xs.iter().map(|&x| f(x)).collect::<Vec<_>>();
    close(&unary(UnaryOp::Neg, &xs), &each(|x| -x), 0.0);
    close(&unary(UnaryOp::Abs, &xs), &each(f64::abs), 0.0);
    close(
        &unary(UnaryOp::Relu, &xs),
        &each(|x| if x > 0.0 { x } else { 0.0 }),
        0.0,
    );
    close(&unary(UnaryOp::Exp, &xs), &each(f64::exp), 1e-15);
    close(
        &unary(UnaryOp::Sigmoid, &xs),
        &each(|x| 1.0 / (1.0 + (-x).exp())),
        1e-15,
    );
    close(&unary(UnaryOp::Tanh, &xs), &each(f64::tanh), 1e-15);
    close(
        &unary(UnaryOp::Softplus, &xs),
        &each(|x| x.exp().ln_1p()),
        1e-15,
    );
    let gelu_tanh = |x: f64| {
        0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
    };
    close(&unary(UnaryOp::GeluTanh, &xs), &each(gelu_tanh), 1e-15);
    let pos = [0.25, 1.0, 4.0];
    close(
        &unary(UnaryOp::Log, &pos),
        &[0.25f64.ln(), 0.0, 4f64.ln()],
        1e-15,
    );
    close(&unary(UnaryOp::Sqrt, &pos), &[0.5, 1.0, 2.0], 0.0);
    close(&unary(UnaryOp::Rsqrt, &pos), &[2.0, 1.0, 0.5], 0.0);
}

#[test]
fn gelu_erf_matches_known_values() {
    // Φ(1) = 0.8413447460685429, Φ(-2) = 0.022750131948179195.
    let got = unary(UnaryOp::GeluErf, &[1.0, -2.0, 0.0]);
    close(
        &got,
        &[0.8413447460685429, -2.0 * 0.022750131948179195, 0.0],
        1e-14,
    );
    let got32 = floats(&run1::<f32>(
        Op::Unary(UnaryOp::GeluErf),
        &[fv(&[1], &[1.0])],
    ));
    close(&got32, &[0.8413447460685429], 1e-6);
}

#[test]
fn softplus_and_sigmoid_are_stable_at_extremes() {
    let got = floats(&run1::<f32>(
        Op::Unary(UnaryOp::Softplus),
        &[fv(&[3], &[1000.0, -1000.0, 30.0])],
    ));
    close(&got, &[1000.0, 0.0, 30.0], 1e-7);
    let s = floats(&run1::<f32>(
        Op::Unary(UnaryOp::Sigmoid),
        &[fv(&[2], &[-1000.0, 1000.0])],
    ));
    assert_eq!(s, vec![0.0, 1.0]);
}

#[test]
fn nan_and_inf_propagate() {
    let nan = f64::NAN;
    for op in [
        UnaryOp::Relu,
        UnaryOp::Exp,
        UnaryOp::Sigmoid,
        UnaryOp::Softplus,
        UnaryOp::GeluErf,
    ] {
        assert!(unary(op, &[nan])[0].is_nan(), "{}", op.name());
    }
    assert_eq!(unary(UnaryOp::Exp, &[f64::INFINITY]), vec![f64::INFINITY]);
    assert_eq!(unary(UnaryOp::Relu, &[f64::NEG_INFINITY]), vec![0.0]);
    let max = run1::<f64>(
        Op::Binary(BinaryOp::Maximum),
        &[fv(&[2], &[nan, 1.0]), fv(&[2], &[0.0, nan])],
    );
    assert!(floats(&max).iter().all(|x| x.is_nan()));
    let clamp = run1::<f64>(
        Op::Clamp {
            min: -1.0,
            max: 1.0,
        },
        &[fv(&[4], &[nan, -5.0, 0.5, 5.0])],
    );
    let c = floats(&clamp);
    assert!(c[0].is_nan());
    assert_eq!(&c[1..], &[-1.0, 0.5, 1.0]);
}

#[test]
fn attribute_activations() {
    let x = fv::<f64>(&[4], &[-2.0, -0.5, 0.0, 3.0]);
    check(
        &run1(Op::LeakyRelu { alpha: 0.1 }, &[x.clone()]),
        &[4],
        &[-0.2, -0.05, 0.0, 3.0],
    );
    let elu = run1(Op::Elu { alpha: 2.0 }, &[x]);
    check(
        &elu,
        &[4],
        &[
            2.0 * ((-2f64).exp() - 1.0),
            2.0 * ((-0.5f64).exp() - 1.0),
            0.0,
            3.0,
        ],
    );
}

/// Naive broadcasting: output index → operand index with size-1 dims pinned to 0.
fn naive_broadcast(
    a: &[usize],
    b: &[usize],
    out: &[usize],
    f: impl Fn(usize, usize) -> f64,
) -> Vec<f64> {
    let n: usize = out.iter().product();
    let flat = |shape: &[usize], idx: &[usize]| {
        let off = idx.len() - shape.len();
        shape.iter().enumerate().fold(0, |acc, (d, &s)| {
            acc * s + if s == 1 { 0 } else { idx[off + d] }
        })
    };
    (0..n)
        .map(|mut i| {
            let mut idx = vec![0; out.len()];
            for d in (0..out.len()).rev() {
                idx[d] = i % out[d];
                i /= out[d];
            }
            f(flat(a, &idx), flat(b, &idx))
        })
        .collect()
}

#[test]
fn binary_ops_broadcast_both_ways() {
    let cases: [(&[usize], &[usize], &[usize]); 4] = [
        (&[3, 1], &[1, 4], &[3, 4]),
        (&[2, 1, 5], &[3, 1], &[2, 3, 5]),
        (&[5], &[2, 3, 1], &[2, 3, 5]),
        (&[1], &[], &[1]),
    ];
    for (sa, sb, so) in cases {
        let (a, b) = (ramp::<f64>(sa, 0.5, -1.0), ramp::<f64>(sb, -0.25, 2.0));
        let (fa, fb) = (floats(&a), floats(&b));
        for (op, f) in [
            (BinaryOp::Add, (|x, y| x + y) as fn(f64, f64) -> f64),
            (BinaryOp::Sub, |x, y| x - y),
            (BinaryOp::Mul, |x, y| x * y),
            (BinaryOp::Div, |x, y| x / y),
            (BinaryOp::Maximum, f64::max),
            (BinaryOp::Minimum, f64::min),
        ] {
            let got = run1(Op::Binary(op), &[a.clone(), b.clone()]);
            let want = naive_broadcast(sa, sb, so, |i, j| f(fa[i], fb[j]));
            assert_eq!(got.shape(), so);
            close(&floats(&got), &want, 1e-15);
        }
        let lt = run1(Op::Binary(BinaryOp::Lt), &[a.clone(), b.clone()]);
        let want: Vec<bool> = naive_broadcast(sa, sb, so, |i, j| (fa[i] < fb[j]) as u8 as f64)
            .iter()
            .map(|&x| x == 1.0)
            .collect();
        assert_eq!(
            lt.as_bool().unwrap().iter().copied().collect::<Vec<_>>(),
            want
        );
    }
    let pow = run1::<f64>(
        Op::Binary(BinaryOp::Pow),
        &[fv(&[2], &[2.0, 9.0]), fv(&[1], &[0.5])],
    );
    close(&floats(&pow), &[2f64.sqrt(), 3.0], 1e-15);
}

#[test]
fn integer_arithmetic_wraps_and_compares() {
    let a = iv::<f32>(&[3], &[i64::MAX, -3, 7]);
    let b = iv::<f32>(&[1], &[1]);
    let add = run1(Op::Binary(BinaryOp::Add), &[a.clone(), b.clone()]);
    assert_eq!(
        add.as_int().unwrap().as_slice().unwrap(),
        &[i64::MIN, -2, 8]
    );
    let mul = run1(Op::Binary(BinaryOp::Mul), &[a.clone(), iv(&[1], &[2])]);
    assert_eq!(mul.as_int().unwrap().as_slice().unwrap(), &[-2, -6, 14]);
    let max = run1(Op::Binary(BinaryOp::Maximum), &[a.clone(), b.clone()]);
    assert_eq!(max.as_int().unwrap().as_slice().unwrap(), &[i64::MAX, 1, 7]);
    let ge = run1(Op::Binary(BinaryOp::Ge), &[a, iv(&[1], &[7])]);
    assert_eq!(
        ge.as_bool().unwrap().as_slice().unwrap(),
        &[true, false, true]
    );
    let eq = run1::<f32>(
        Op::Binary(BinaryOp::Eq),
        &[bv(&[2], &[true, false]), bv(&[1], &[false])],
    );
    assert_eq!(eq.as_bool().unwrap().as_slice().unwrap(), &[false, true]);
    let or = run1::<f32>(
        Op::Binary(BinaryOp::Or),
        &[bv(&[2], &[true, false]), bv(&[2, 1], &[false, false])],
    );
    assert_eq!(or.shape(), &[2, 2]);
    assert_eq!(
        or.as_bool().unwrap().iter().copied().collect::<Vec<_>>(),
        vec![true, false, true, false]
    );
    let not = run1::<f32>(Op::Unary(UnaryOp::Not), &[bv(&[2], &[true, false])]);
    assert_eq!(not.as_bool().unwrap().as_slice().unwrap(), &[false, true]);
}

#[test]
fn where_broadcasts_all_three_operands() {
    let cond = bv::<f64>(&[2, 1], &[true, false]);
    let got = run1(
        Op::Where,
        &[cond.clone(), fv(&[3], &[1.0, 2.0, 3.0]), fv(&[], &[-1.0])],
    );
    check(&got, &[2, 3], &[1.0, 2.0, 3.0, -1.0, -1.0, -1.0]);
    let ints = run1(Op::Where, &[cond, iv(&[1], &[5]), iv(&[1, 2], &[6, 7])]);
    assert_eq!(
        ints.as_int().unwrap().iter().copied().collect::<Vec<_>>(),
        vec![5, 5, 6, 7]
    );
}

#[test]
fn casts_truncate_saturate_and_map_bools() {
    let x = fv::<f32>(&[6], &[-2.7, 2.7, f64::NAN, 1e20, -1e20, 0.0]);
    let i = run1(Op::Cast { to: DType::I64 }, &[x.clone()]);
    assert_eq!(
        i.as_int().unwrap().as_slice().unwrap(),
        &[-2, 2, 0, i64::MAX, i64::MIN, 0]
    );
    let b = run1(Op::Cast { to: DType::Bool }, &[x]);
    assert_eq!(
        b.as_bool().unwrap().as_slice().unwrap(),
        &[true, true, true, true, true, false]
    );
    let big = iv::<f32>(&[2], &[(1 << 24) + 1, -3]);
    let f = run1(Op::Cast { to: DType::F32 }, &[big.clone()]);
    assert_eq!(
        f.as_float().unwrap().as_slice().unwrap(),
        &[16777216.0, -3.0]
    );
    let ib = run1(Op::Cast { to: DType::Bool }, &[big]);
    assert_eq!(ib.as_bool().unwrap().as_slice().unwrap(), &[true, true]);
    let flags = bv::<f32>(&[2], &[true, false]);
    let fb = run1(Op::Cast { to: DType::F32 }, &[flags.clone()]);
    assert_eq!(fb.as_float().unwrap().as_slice().unwrap(), &[1.0, 0.0]);
    let ibool = run1(Op::Cast { to: DType::I64 }, &[flags]);
    assert_eq!(ibool.as_int().unwrap().as_slice().unwrap(), &[1, 0]);
}

#[test]
fn dropout_uses_the_shared_mask_and_scales() {
    let x = ramp::<f32>(&[4, 50], 0.01, 1.0);
    let (p, seed) = (0.3, 7);
    let op = |training| Op::Dropout { p, seed, training };
    assert_eq!(run1(op(false), &[x.clone()]), x);
    let y = floats(&run1(op(true), &[x.clone()]));
    let xs = floats(&x);
    let mut dropped = 0;
    for (i, (&got, &orig)) in y.iter().zip(&xs).enumerate() {
        if dropout_keep(seed, i as u64, p as f32) {
            close(&[got], &[orig / (1.0 - p)], 1e-6);
        } else {
            assert_eq!(got, 0.0);
            dropped += 1;
        }
    }
    assert!(dropped > 30 && dropped < 90, "{dropped} of 200 dropped");
}
