use dlc_ir::Op;

use super::*;

fn bn(training: bool) -> Op {
    Op::BatchNorm {
        eps: 1e-3,
        momentum: 0.25,
        training,
    }
}

#[test]
fn batchnorm_inference_uses_running_stats() {
    let x = ramp::<f64>(&[2, 2, 1, 2], 1.0, 0.0); // channel 0: 0,1,4,5; channel 1: 2,3,6,7
    let (g, b) = (fv(&[2], &[2.0, -1.0]), fv(&[2], &[0.5, 0.0]));
    let (m, v) = (fv(&[2], &[1.0, 3.0]), fv(&[2], &[4.0, 0.25]));
    let got = run1(bn(false), &[x.clone(), g, b, m, v]);
    let xs = floats(&x);
    let want: Vec<f64> = xs
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let c = (i / 2) % 2;
            let (g, b, m, v) = [(2.0, 0.5, 1.0, 4.0), (-1.0, 0.0, 3.0, 0.25)][c];
            (x - m) / (v + 1e-3f64).sqrt() * g + b
        })
        .collect();
    check(&got, &[2, 2, 1, 2], &want);
}

#[test]
fn batchnorm_training_uses_batch_stats_and_updates_running_ones() {
    let x = fv::<f64>(&[3, 2], &[1.0, 10.0, 2.0, 20.0, 6.0, 60.0]);
    let (g, b) = (fv(&[2], &[1.0, 2.0]), fv(&[2], &[0.0, 1.0]));
    let (m, v) = (fv(&[2], &[0.0, 1.0]), fv(&[2], &[1.0, 2.0]));
    let outs = run_op(bn(true), &[x, g, b, m, v]).unwrap();
    // Channel 0: mean 3, biased var (4 + 1 + 9) / 3 = 14/3, unbiased 7.
    let (mu, var) = (3.0, 14.0 / 3.0);
    let y0: Vec<f64> = [1.0, 2.0, 6.0]
        .iter()
        .map(|x| (x - mu) / (var + 1e-3f64).sqrt())
        .collect();
    let y = floats(&outs[0]);
    close(&[y[0], y[2], y[4]], &y0, 1e-14);
    // Channel 1 is channel 0 scaled by 10: the same normalised values, times 2 plus 1.
    let y1: Vec<f64> = [10.0, 20.0, 60.0]
        .iter()
        .map(|x| (x - 30.0) / (1400.0 / 3.0 + 1e-3f64).sqrt() * 2.0 + 1.0)
        .collect();
    close(&[y[1], y[3], y[5]], &y1, 1e-14);
    check(
        &outs[1],
        &[2],
        &[0.75 * 0.0 + 0.25 * 3.0, 0.75 * 1.0 + 0.25 * 30.0],
    );
    check(
        &outs[2],
        &[2],
        &[0.75 * 1.0 + 0.25 * 7.0, 0.75 * 2.0 + 0.25 * 700.0],
    );
}

#[test]
fn layernorm_over_trailing_dims() {
    let x = noise::<f64>(&[2, 3, 4], 5);
    let (g, b) = (noise::<f64>(&[3, 4], 6), noise::<f64>(&[3, 4], 7));
    let got = floats(&run1(
        Op::LayerNorm { axis: 1, eps: 1e-5 },
        &[x.clone(), g.clone(), b.clone()],
    ));
    let (xs, gs, bs) = (floats(&x), floats(&g), floats(&b));
    for row in 0..2 {
        let r = &xs[row * 12..row * 12 + 12];
        let mean = r.iter().sum::<f64>() / 12.0;
        let var = r.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 12.0;
        let want: Vec<f64> = (0..12)
            .map(|i| (r[i] - mean) / (var + 1e-5).sqrt() * gs[i] + bs[i])
            .collect();
        close(&got[row * 12..row * 12 + 12], &want, 1e-13);
    }
}

#[test]
fn mse_and_cross_entropy_by_hand() {
    let mse = run1::<f64>(
        Op::MseLoss,
        &[
            fv(&[2, 2], &[1.0, 2.0, 3.0, 4.0]),
            fv(&[2, 2], &[1.0, 0.0, 3.0, 7.0]),
        ],
    );
    check(&mse, &[], &[13.0 / 4.0]);
    // Row 0: equal logits, loss ln 2; row 1: logits (0, ln 3), label 1: ln(4/3).
    let logits = fv::<f64>(&[2, 2], &[5.0, 5.0, 0.0, 3f64.ln()]);
    let ce = run1(Op::CrossEntropy, &[logits, iv(&[2], &[0, 1])]);
    check(&ce, &[], &[(2f64.ln() + (4.0f64 / 3.0).ln()) / 2.0]);
    // Huge logits stay finite in f32.
    let big = fv::<f32>(&[1, 3], &[1000.0, 1000.0, 1000.0]);
    let ce = floats(&run1(Op::CrossEntropy, &[big, iv(&[1], &[2])]));
    close(&ce, &[3f64.ln()], 1e-6);
}
