use dlc_ir::Op;

use super::*;

#[test]
fn attention_by_hand() {
    // Scale 0 makes every score equal: the output averages the visible values.
    let q = noise::<f64>(&[1, 3, 2], 1);
    let k = noise::<f64>(&[1, 3, 2], 2);
    let v = fv::<f64>(&[1, 3, 1], &[3.0, 6.0, 12.0]);
    let plain = run1(
        Op::Attention {
            causal: false,
            scale: 0.0,
        },
        &[q.clone(), k.clone(), v.clone()],
    );
    check(&plain, &[1, 3, 1], &[7.0, 7.0, 7.0]);
    let causal = run1(
        Op::Attention {
            causal: true,
            scale: 0.0,
        },
        &[q, k, v],
    );
    check(&causal, &[1, 3, 1], &[3.0, 4.5, 7.0]);
}

#[test]
fn attention_matches_the_formula_with_batch_dims() {
    let (l, s, e, ev) = (3, 4, 2, 3);
    let q = noise::<f64>(&[2, 1, l, e], 3);
    let k = noise::<f64>(&[2, 1, s, e], 4);
    let v = noise::<f64>(&[2, 1, s, ev], 5);
    let (qs, ks, vs) = (floats(&q), floats(&k), floats(&v));
    for causal in [false, true] {
        let got = run1(
            Op::Attention { causal, scale: 0.7 },
            &[q.clone(), k.clone(), v.clone()],
        );
        assert_eq!(got.shape(), &[2, 1, l, ev]);
        let mut want = Vec::new();
        for bb in 0..2 {
            for i in 0..l {
                let n = if causal { i + 1 } else { s };
                let w: Vec<f64> = (0..n)
                    .map(|j| {
                        (0.7 * (0..e)
                            .map(|p| qs[(bb * l + i) * e + p] * ks[(bb * s + j) * e + p])
                            .sum::<f64>())
                        .exp()
                    })
                    .collect();
                let z: f64 = w.iter().sum();
                for c in 0..ev {
                    want.push((0..n).map(|j| w[j] / z * vs[(bb * s + j) * ev + c]).sum());
                }
            }
        }
        close(&floats(&got), &want, 1e-14);
    }
}

#[test]
fn multi_head_attention_splits_heads_and_projects() {
    // Identity projections with zero biases: each head is plain attention on its
    // feature columns with scale 1/sqrt(d), and the heads concatenate back.
    let (l, n, e, heads) = (3, 2, 4, 2);
    let d = e / heads;
    let x = noise::<f64>(&[l, n, e], 1);
    let eye = |k: usize| -> Vec<f64> {
        (0..k * k)
            .map(|i| if i / k == i % k { 1.0 } else { 0.0 })
            .collect()
    };
    let in_w: Vec<f64> = [eye(e), eye(e), eye(e)].concat();
    let args = [
        x.clone(),
        x.clone(),
        x.clone(),
        fv(&[3 * e, e], &in_w),
        fv(&[3 * e], &vec![0.0; 3 * e]),
        fv(&[e, e], &eye(e)),
        fv(&[e], &vec![0.0; e]),
    ];
    let xs = floats(&x);
    for causal in [false, true] {
        let got = floats(&run1(Op::MultiHeadAttention { heads, causal }, &args));
        for bb in 0..n {
            for h in 0..heads {
                let head = |t: usize| -> Vec<f64> {
                    (0..d).map(|p| xs[(t * n + bb) * e + h * d + p]).collect()
                };
                for i in 0..l {
                    let keys = if causal { i + 1 } else { l };
                    let qi = head(i);
                    let w: Vec<f64> = (0..keys)
                        .map(|j| {
                            (qi.iter().zip(head(j)).map(|(a, b)| a * b).sum::<f64>()
                                / (d as f64).sqrt())
                            .exp()
                        })
                        .collect();
                    let z: f64 = w.iter().sum();
                    for p in 0..d {
                        let want: f64 = (0..keys).map(|j| w[j] / z * head(j)[p]).sum();
                        close(&[got[(i * n + bb) * e + h * d + p]], &[want], 1e-14);
                    }
                }
            }
        }
    }
    // Output bias is added after the projection.
    let mut with_bias = args.clone();
    with_bias[6] = fv(&[e], &[1.0, 2.0, 3.0, 4.0]);
    let base = floats(&run1(
        Op::MultiHeadAttention {
            heads,
            causal: false,
        },
        &args,
    ));
    let shifted = floats(&run1(
        Op::MultiHeadAttention {
            heads,
            causal: false,
        },
        &with_bias,
    ));
    for (i, (s, b)) in shifted.iter().zip(&base).enumerate() {
        close(&[s - b], &[(i % e + 1) as f64], 1e-14);
    }
}
