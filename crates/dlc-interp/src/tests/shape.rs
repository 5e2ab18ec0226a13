use dlc_ir::{Op, SliceRange};

use super::*;

#[test]
fn reshape_transpose_broadcast() {
    let x = ramp::<f64>(&[2, 3, 4], 1.0, 0.0);
    let r = run1(
        Op::Reshape {
            shape: vec![4, 1, 6],
        },
        &[x.clone()],
    );
    check(&r, &[4, 1, 6], &floats(&x));
    let t = run1(
        Op::Transpose {
            perm: vec![2, 0, 1],
        },
        &[x.clone()],
    );
    let mut want = Vec::new();
    for k in 0..4 {
        for i in 0..2 {
            for j in 0..3 {
                want.push((12 * i + 4 * j + k) as f64);
            }
        }
    }
    check(&t, &[4, 2, 3], &want);
    let b = run1(
        Op::BroadcastTo {
            shape: vec![2, 2, 3],
        },
        &[ramp::<f64>(&[2, 1], 1.0, 0.0)],
    );
    check(
        &b,
        &[2, 2, 3],
        &[0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0],
    );
    let ints = run1::<f32>(
        Op::Transpose { perm: vec![1, 0] },
        &[iv(&[2, 2], &[1, 2, 3, 4])],
    );
    assert_eq!(
        ints.as_int().unwrap().iter().copied().collect::<Vec<_>>(),
        vec![1, 3, 2, 4]
    );
}

#[test]
fn concat_along_a_middle_axis() {
    let a = ramp::<f64>(&[2, 1, 2], 1.0, 0.0);
    let b = ramp::<f64>(&[2, 2, 2], 1.0, 10.0);
    let got = run1(Op::Concat { axis: 1 }, &[a, b]);
    check(
        &got,
        &[2, 3, 2],
        &[
            0.0, 1.0, 10.0, 11.0, 12.0, 13.0, 2.0, 3.0, 14.0, 15.0, 16.0, 17.0,
        ],
    );
    let bools = run1::<f32>(
        Op::Concat { axis: 0 },
        &[bv(&[1], &[true]), bv(&[2], &[false, true])],
    );
    assert_eq!(
        bools.as_bool().unwrap().iter().copied().collect::<Vec<_>>(),
        vec![true, false, true]
    );
}

#[test]
fn slices_with_steps() {
    let x = ramp::<f64>(&[4, 7], 1.0, 0.0);
    let r = |start, end, step| SliceRange { start, end, step };
    let got = run1(
        Op::Slice {
            ranges: vec![r(1, 4, 2), r(0, 7, 3)],
        },
        &[x],
    );
    // rows 1, 3; cols 0, 3, 6.
    check(&got, &[2, 3], &[7.0, 10.0, 13.0, 21.0, 24.0, 27.0]);
}

#[test]
fn gather_on_a_middle_axis() {
    // x [2, 3, 2]; indices [2, 2] along axis 1 -> [2, 2, 2, 2].
    let x = ramp::<f64>(&[2, 3, 2], 1.0, 0.0);
    let idx = iv::<f64>(&[2, 2], &[2, 0, 1, 2]);
    let got = run1(Op::Gather { axis: 1 }, &[x, idx]);
    let mut want = Vec::new();
    for i in 0..2 {
        for &j in &[2, 0, 1, 2] {
            for k in 0..2 {
                want.push((6 * i + 2 * j + k) as f64);
            }
        }
    }
    check(&got, &[2, 2, 2, 2], &want);
    // A 0-d index removes the axis.
    let one = run1(
        Op::Gather { axis: 0 },
        &[ramp::<f64>(&[3, 2], 1.0, 0.0), iv(&[], &[1])],
    );
    check(&one, &[2], &[2.0, 3.0]);
}

#[test]
fn one_hot_zeroes_out_of_range_rows() {
    let got = run1::<f64>(Op::OneHot { depth: 3 }, &[iv(&[2, 2], &[0, 2, 3, -1])]);
    check(
        &got,
        &[2, 2, 3],
        &[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    );
}
