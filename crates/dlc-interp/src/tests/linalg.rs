use dlc_ir::Op;

use super::*;

#[test]
fn matmul_2d_by_hand() {
    let a = fv::<f64>(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = fv::<f64>(&[3, 2], &[7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
    check(
        &run1(Op::MatMul, &[a, b]),
        &[2, 2],
        &[58.0, 64.0, 139.0, 154.0],
    );
}

#[test]
fn matmul_broadcasts_batch_dims_both_ways() {
    // a [2, 1, 3, 4] @ b [5, 4, 2] -> [2, 5, 3, 2]; a's batch dim 1 and b's
    // missing leading dim both stretch.
    let (a, b) = (noise::<f64>(&[2, 1, 3, 4], 1), noise::<f64>(&[5, 4, 2], 2));
    let (fa, fb) = (floats(&a), floats(&b));
    let got = run1(Op::MatMul, &[a, b]);
    assert_eq!(got.shape(), &[2, 5, 3, 2]);
    let mut want = Vec::new();
    for i in 0..2 {
        for j in 0..5 {
            for r in 0..3 {
                for c in 0..2 {
                    want.push(
                        (0..4)
                            .map(|k| fa[i * 12 + r * 4 + k] * fb[j * 8 + k * 2 + c])
                            .sum(),
                    );
                }
            }
        }
    }
    close(&floats(&got), &want, 1e-14);
}

#[test]
fn matmul_with_size_one_dims() {
    let a = fv::<f32>(&[1, 1, 3], &[1.0, 2.0, 3.0]);
    let b = fv::<f32>(&[3, 1], &[1.0, 1.0, 1.0]);
    check(&run1(Op::MatMul, &[a, b]), &[1, 1, 1], &[6.0]);
}
