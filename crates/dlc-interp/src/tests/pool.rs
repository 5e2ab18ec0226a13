use dlc_ir::{Op, PoolAttrs, PoolKind};

use super::*;

fn pool(kind: PoolKind, k: [usize; 2], s: [usize; 2], p: [(usize, usize); 2]) -> Op {
    Op::Pool(PoolAttrs {
        kind,
        kernel: k.to_vec(),
        stride: s.to_vec(),
        padding: p.to_vec(),
    })
}

/// 1..9 in a 3x3 image.
fn nine(sign: f64) -> Value<f64> {
    ramp(&[1, 1, 3, 3], sign, sign)
}

#[test]
fn max_pool_with_padding_by_hand() {
    let op = pool(PoolKind::Max, [3, 3], [2, 2], [(1, 1), (1, 1)]);
    check(
        &run1(op.clone(), &[nine(1.0)]),
        &[1, 1, 2, 2],
        &[5.0, 6.0, 8.0, 9.0],
    );
    // All values negative: the zero padding must never win.
    check(
        &run1(op, &[nine(-1.0)]),
        &[1, 1, 2, 2],
        &[-1.0, -2.0, -4.0, -5.0],
    );
}

#[test]
fn avg_pool_counts_padding_or_not() {
    let p = [(1, 1), (1, 1)];
    let incl = pool(
        PoolKind::Avg {
            count_include_pad: true,
        },
        [3, 3],
        [2, 2],
        p,
    );
    let excl = pool(
        PoolKind::Avg {
            count_include_pad: false,
        },
        [3, 3],
        [2, 2],
        p,
    );
    // Window sums: {1,2,4,5} = 12, {2,3,5,6} = 16, {4,5,7,8} = 24, {5,6,8,9} = 28.
    check(
        &run1(incl, &[nine(1.0)]),
        &[1, 1, 2, 2],
        &[12.0 / 9.0, 16.0 / 9.0, 24.0 / 9.0, 28.0 / 9.0],
    );
    check(
        &run1(excl, &[nine(1.0)]),
        &[1, 1, 2, 2],
        &[3.0, 4.0, 6.0, 7.0],
    );
}

#[test]
fn asymmetric_padding_and_strides() {
    // 1x4 row [1, 2, 3, 4], window 1x2, stride 1x3, padding left 1 right 0:
    // windows cover [pad, 1] and [3, 4].
    let x = fv::<f64>(&[1, 1, 1, 4], &[1.0, 2.0, 3.0, 4.0]);
    let p = [(0, 0), (1, 0)];
    let max = pool(PoolKind::Max, [1, 2], [1, 3], p);
    check(&run1(max, &[x.clone()]), &[1, 1, 1, 2], &[1.0, 4.0]);
    let avg = pool(
        PoolKind::Avg {
            count_include_pad: true,
        },
        [1, 2],
        [1, 3],
        p,
    );
    check(&run1(avg, &[x.clone()]), &[1, 1, 1, 2], &[0.5, 3.5]);
    let avg = pool(
        PoolKind::Avg {
            count_include_pad: false,
        },
        [1, 2],
        [1, 3],
        p,
    );
    check(&run1(avg, &[x]), &[1, 1, 1, 2], &[1.0, 3.5]);
}

#[test]
fn max_pool_propagates_nan() {
    let x = fv::<f64>(&[1, 1, 2, 2], &[1.0, f64::NAN, 3.0, 4.0]);
    let got = floats(&run1(
        pool(PoolKind::Max, [2, 2], [2, 2], [(0, 0); 2]),
        &[x],
    ));
    assert!(got[0].is_nan());
}

#[test]
fn global_avg_pool_keeps_unit_dims() {
    let x = ramp::<f64>(&[2, 3, 2, 2], 1.0, 0.0);
    let want: Vec<f64> = (0..6)
        .map(|c| (0..4).map(|i| (c * 4 + i) as f64).sum::<f64>() / 4.0)
        .collect();
    check(&run1(Op::GlobalAvgPool, &[x]), &[2, 3, 1, 1], &want);
    let x1 = ramp::<f64>(&[1, 2, 3], 1.0, 0.0);
    check(&run1(Op::GlobalAvgPool, &[x1]), &[1, 2, 1], &[1.0, 4.0]);
}
