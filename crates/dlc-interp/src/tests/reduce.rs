use dlc_ir::{Op, ReduceKind};

use super::*;

fn reduce(kind: ReduceKind, axes: &[usize], keepdim: bool) -> Op {
    Op::Reduce {
        kind,
        axes: axes.to_vec(),
        keepdim,
    }
}

#[test]
fn reductions_over_several_axes_with_and_without_keepdim() {
    // x[i, j, k] = 12 i + 4 j + k over [2, 3, 4]; reduce axes 0 and 2.
    let x = ramp::<f64>(&[2, 3, 4], 1.0, 0.0);
    let val = |i: usize, j: usize, k: usize| (12 * i + 4 * j + k) as f64;
    let per_j = |f: &dyn Fn(&mut dyn Iterator<Item = f64>) -> f64| -> Vec<f64> {
        (0..3)
            .map(|j| f(&mut (0..2).flat_map(move |i| (0..4).map(move |k| val(i, j, k)))))
            .collect()
    };
    let sum = per_j(&|it| it.sum());
    let max = per_j(&|it| it.fold(f64::MIN, f64::max));
    let min = per_j(&|it| it.fold(f64::MAX, f64::min));
    let mean: Vec<f64> = sum.iter().map(|s| s / 8.0).collect();
    for (kind, want) in [
        (ReduceKind::Sum, &sum),
        (ReduceKind::Mean, &mean),
        (ReduceKind::Max, &max),
        (ReduceKind::Min, &min),
    ] {
        check(
            &run1(reduce(kind, &[0, 2], false), &[x.clone()]),
            &[3],
            want,
        );
        check(
            &run1(reduce(kind, &[0, 2], true), &[x.clone()]),
            &[1, 3, 1],
            want,
        );
    }
    check(
        &run1(reduce(ReduceKind::Sum, &[0, 1, 2], false), &[x.clone()]),
        &[],
        &[276.0],
    );
    check(
        &run1(reduce(ReduceKind::Sum, &[0, 1, 2], true), &[x.clone()]),
        &[1, 1, 1],
        &[276.0],
    );
    // Reducing a size-1 axis is the identity on the data.
    let y = ramp::<f64>(&[3, 1], 1.0, 0.0);
    check(
        &run1(reduce(ReduceKind::Mean, &[1], false), &[y]),
        &[3],
        &[0.0, 1.0, 2.0],
    );
}

#[test]
fn max_and_min_propagate_nan() {
    let x = fv::<f64>(&[2, 2], &[1.0, f64::NAN, 3.0, 4.0]);
    for kind in [ReduceKind::Max, ReduceKind::Min] {
        let got = floats(&run1(reduce(kind, &[1], false), &[x.clone()]));
        assert!(got[0].is_nan(), "{kind:?}");
        assert!(!got[1].is_nan(), "{kind:?}");
    }
}

#[test]
fn argmax_takes_the_first_maximum() {
    let x = fv::<f64>(&[2, 4], &[1.0, 5.0, 5.0, 0.0, -1.0, -1.0, -3.0, -2.0]);
    let got = run1(
        Op::ArgMax {
            axis: 1,
            keepdim: false,
        },
        &[x.clone()],
    );
    assert_eq!(got.as_int().unwrap().as_slice().unwrap(), &[1, 0]);
    let kept = run1(
        Op::ArgMax {
            axis: 0,
            keepdim: true,
        },
        &[x],
    );
    assert_eq!(kept.shape(), &[1, 4]);
    assert_eq!(
        kept.as_int().unwrap().iter().copied().collect::<Vec<_>>(),
        vec![0, 0, 0, 0]
    );
    let nan = fv::<f64>(&[3], &[1.0, f64::NAN, 2.0]);
    let got = run1(
        Op::ArgMax {
            axis: 0,
            keepdim: false,
        },
        &[nan],
    );
    assert_eq!(
        got.as_int().unwrap().iter().copied().collect::<Vec<_>>(),
        vec![1]
    );
}

#[test]
fn softmax_on_a_middle_axis_and_with_huge_logits() {
    let x = ramp::<f64>(&[2, 3, 2], 0.7, -1.0);
    let xs = floats(&x);
    let got = floats(&run1(Op::Softmax { axis: 1 }, &[x.clone()]));
    let logs = floats(&run1(Op::LogSoftmax { axis: 1 }, &[x]));
    for i in 0..2 {
        for k in 0..2 {
            let at = |j: usize| i * 6 + j * 2 + k;
            let z: f64 = (0..3).map(|j| xs[at(j)].exp()).sum();
            for j in 0..3 {
                close(&[got[at(j)]], &[xs[at(j)].exp() / z], 1e-15);
                close(&[logs[at(j)]], &[xs[at(j)] - z.ln()], 1e-15);
            }
        }
    }
    // exp(1000) overflows f32; the max-subtracted form does not.
    let big = fv::<f32>(&[1, 2], &[1000.0, 1001.0]);
    let e = std::f64::consts::E;
    let sm = floats(&run1(Op::Softmax { axis: 1 }, &[big.clone()]));
    close(&sm, &[1.0 / (1.0 + e), e / (1.0 + e)], 1e-6);
    let ls = floats(&run1(Op::LogSoftmax { axis: 1 }, &[big]));
    close(&ls, &[-(1.0 + e).ln(), 1.0 - (1.0 + e).ln()], 1e-6);
    // A size-1 axis gives exactly 1 (and 0 for log-softmax).
    check(
        &run1(Op::Softmax { axis: 0 }, &[fv::<f64>(&[1, 2], &[3.0, -7.0])]),
        &[1, 2],
        &[1.0, 1.0],
    );
}
