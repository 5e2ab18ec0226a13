use dlc_ir::{ConvAttrs, ConvTransposeAttrs, Op};

use super::*;

fn attrs(
    stride: &[usize],
    padding: &[(usize, usize)],
    dilation: &[usize],
    groups: usize,
) -> ConvAttrs {
    ConvAttrs {
        stride: stride.to_vec(),
        padding: padding.to_vec(),
        dilation: dilation.to_vec(),
        groups,
    }
}

/// Conv2d written the textbook way: materialise the zero-padded input, then a
/// valid strided, dilated cross-correlation per group.
fn naive_conv2d(
    x: &Value<f64>,
    w: &Value<f64>,
    b: Option<&Value<f64>>,
    a: &ConvAttrs,
) -> (Vec<usize>, Vec<f64>) {
    let (xs, ws) = (x.shape().to_vec(), w.shape().to_vec());
    let (n, c, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let (o, cg, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
    let (ph, pw) = (
        h + a.padding[0].0 + a.padding[0].1,
        wd + a.padding[1].0 + a.padding[1].1,
    );
    let xv = floats(x);
    let mut padded = vec![0.0; n * c * ph * pw];
    for i in 0..n * c {
        for r in 0..h {
            for q in 0..wd {
                padded[(i * ph + r + a.padding[0].0) * pw + q + a.padding[1].0] =
                    xv[(i * h + r) * wd + q];
            }
        }
    }
    let ho = (ph - a.dilation[0] * (kh - 1) - 1) / a.stride[0] + 1;
    let wo = (pw - a.dilation[1] * (kw - 1) - 1) / a.stride[1] + 1;
    let wv = floats(w);
    let bias = b.map(floats);
    let og = o / a.groups;
    let mut out = Vec::new();
    for bn in 0..n {
        for k in 0..o {
            for i in 0..ho {
                for j in 0..wo {
                    let mut s = bias.as_ref().map_or(0.0, |b| b[k]);
                    for ci in 0..cg {
                        let chan = (k / og) * cg + ci;
                        for u in 0..kh {
                            for v in 0..kw {
                                let (r, q) = (
                                    i * a.stride[0] + u * a.dilation[0],
                                    j * a.stride[1] + v * a.dilation[1],
                                );
                                s += wv[((k * cg + ci) * kh + u) * kw + v]
                                    * padded[((bn * c + chan) * ph + r) * pw + q];
                            }
                        }
                    }
                    out.push(s);
                }
            }
        }
    }
    (vec![n, o, ho, wo], out)
}

#[test]
fn conv2d_matches_the_naive_formula_for_every_attribute() {
    let cases = [
        // (x shape, w shape, attrs)
        (
            [1, 1, 4, 4],
            [1, 1, 3, 3],
            attrs(&[1, 1], &[(0, 0), (0, 0)], &[1, 1], 1),
        ),
        (
            [2, 3, 7, 6],
            [4, 3, 3, 2],
            attrs(&[2, 1], &[(1, 1), (0, 2)], &[1, 1], 1),
        ),
        (
            [1, 2, 9, 9],
            [3, 2, 3, 3],
            attrs(&[1, 2], &[(2, 0), (1, 3)], &[2, 3], 1),
        ),
        (
            [2, 4, 5, 5],
            [6, 2, 3, 3],
            attrs(&[1, 1], &[(1, 1), (1, 1)], &[1, 1], 2),
        ),
        (
            [1, 3, 6, 5],
            [3, 1, 3, 3],
            attrs(&[2, 2], &[(1, 0), (0, 1)], &[1, 1], 3),
        ), // depthwise
        (
            [1, 6, 5, 4],
            [3, 2, 1, 2],
            attrs(&[1, 3], &[(0, 0), (2, 1)], &[1, 1], 3),
        ),
        (
            [3, 1, 1, 1],
            [2, 1, 1, 1],
            attrs(&[1, 1], &[(0, 0), (0, 0)], &[1, 1], 1),
        ), // size-1 everything
    ];
    for (i, (xs, ws, a)) in cases.into_iter().enumerate() {
        let x = noise::<f64>(&xs, 10 + i as u64);
        let w = noise::<f64>(&ws, 20 + i as u64);
        let b = noise::<f64>(&[ws[0]], 30 + i as u64);
        let (shape, want) = naive_conv2d(&x, &w, Some(&b), &a);
        let got = run1(Op::Conv(a.clone()), &[x.clone(), w.clone(), b]);
        assert_eq!(got.shape(), &shape[..], "case {i}");
        close(&floats(&got), &want, 1e-13);
        let (_, want_nb) = naive_conv2d(&x, &w, None, &a);
        close(&floats(&run1(Op::Conv(a), &[x, w])), &want_nb, 1e-13);
    }
}

#[test]
fn conv1d_causal_by_hand() {
    // x = [1, 2, 3], kernel [1, 10] with dilation 2 and left padding 2:
    // out[t] = 1 * x[t-2] + 10 * x[t].
    let a = attrs(&[1], &[(2, 0)], &[2], 1);
    let got = run1::<f64>(
        Op::Conv(a),
        &[
            fv(&[1, 1, 3], &[1.0, 2.0, 3.0]),
            fv(&[1, 1, 2], &[1.0, 10.0]),
        ],
    );
    check(&got, &[1, 1, 3], &[10.0, 20.0, 31.0]);
}

fn tattrs(
    stride: &[usize],
    padding: &[(usize, usize)],
    out_pad: &[usize],
    dilation: &[usize],
    groups: usize,
) -> ConvTransposeAttrs {
    ConvTransposeAttrs {
        stride: stride.to_vec(),
        padding: padding.to_vec(),
        output_padding: out_pad.to_vec(),
        dilation: dilation.to_vec(),
        groups,
    }
}

#[test]
fn conv_transpose1d_by_hand() {
    // Each input scatters the kernel [1, 1, 1] at stride 2: [1, 1, 1+2, 2, 2].
    let x = fv::<f64>(&[1, 1, 2], &[1.0, 2.0]);
    let w = fv::<f64>(&[1, 1, 3], &[1.0, 1.0, 1.0]);
    let run = |a| run1(Op::ConvTranspose(a), &[x.clone(), w.clone()]);
    check(
        &run(tattrs(&[2], &[(0, 0)], &[0], &[1], 1)),
        &[1, 1, 5],
        &[1.0, 1.0, 3.0, 2.0, 2.0],
    );
    // Padding crops both borders; output_padding adds a zero at the end first.
    check(
        &run(tattrs(&[2], &[(1, 1)], &[0], &[1], 1)),
        &[1, 1, 3],
        &[1.0, 3.0, 2.0],
    );
    check(
        &run(tattrs(&[2], &[(1, 1)], &[1], &[1], 1)),
        &[1, 1, 4],
        &[1.0, 3.0, 2.0, 2.0],
    );
    check(
        &run(tattrs(&[2], &[(0, 2)], &[1], &[1], 1)),
        &[1, 1, 4],
        &[1.0, 1.0, 3.0, 2.0],
    );
    // Bias is added everywhere, also where nothing scatters.
    let b = fv::<f64>(&[1], &[0.5]);
    let got = run1(
        Op::ConvTranspose(tattrs(&[3], &[(0, 0)], &[1], &[1], 1)),
        &[x.clone(), fv(&[1, 1, 1], &[2.0]), b],
    );
    check(&got, &[1, 1, 5], &[2.5, 0.5, 0.5, 4.5, 0.5]);
}

fn dot(a: &Value<f64>, b: &Value<f64>) -> f64 {
    floats(a).iter().zip(floats(b)).map(|(x, y)| x * y).sum()
}

#[test]
fn conv_transpose_is_the_adjoint_of_conv() {
    // <conv(x, w), y> == <x, conv_transpose(y, w)> for the same stride, padding,
    // dilation and groups: w [O, C/g, *k] is read as IOHW [Cin = O, Cout/g = C/g, *k],
    // and output_padding makes the transpose's output exactly x's shape.
    let cases = [
        (
            [2, 4, 7, 6],
            [6, 2, 3, 2],
            [2, 1],
            [(1, 1), (0, 1)],
            [1, 2],
            2,
        ),
        (
            [1, 3, 8, 9],
            [3, 1, 3, 3],
            [2, 3],
            [(2, 0), (1, 1)],
            [2, 1],
            3,
        ),
        (
            [1, 2, 5, 5],
            [4, 2, 2, 3],
            [3, 2],
            [(0, 0), (0, 0)],
            [1, 1],
            1,
        ),
    ];
    for (i, (xs, ws, stride, pad, dil, groups)) in cases.into_iter().enumerate() {
        let x = noise::<f64>(&xs, 40 + i as u64);
        let w = noise::<f64>(&ws, 50 + i as u64);
        let y_shape = run1(
            Op::Conv(attrs(&stride, &pad, &dil, groups)),
            &[x.clone(), w.clone()],
        )
        .shape()
        .to_vec();
        let y = noise::<f64>(&y_shape, 60 + i as u64);
        let out_pad: Vec<usize> = (0..2)
            .map(|d| {
                xs[2 + d] + pad[d].0 + pad[d].1
                    - ((y_shape[2 + d] - 1) * stride[d] + dil[d] * (ws[2 + d] - 1) + 1)
            })
            .collect();
        let ta = tattrs(&stride, &pad, &out_pad, &dil, groups);
        let conv = run1(
            Op::Conv(attrs(&stride, &pad, &dil, groups)),
            &[x.clone(), w.clone()],
        );
        let back = run1(Op::ConvTranspose(ta), &[y.clone(), w]);
        assert_eq!(back.shape(), &xs[..], "case {i}");
        let (lhs, rhs) = (dot(&conv, &y), dot(&x, &back));
        assert!(
            (lhs - rhs).abs() < 1e-12 * (1.0 + lhs.abs()),
            "case {i}: {lhs} vs {rhs}"
        );
    }
}

/// Random conv2d attributes with an input that fits: (x shape, w shape, attrs).
fn arb_conv() -> impl proptest::strategy::Strategy<Value = ([usize; 4], [usize; 4], ConvAttrs)> {
    use proptest::prelude::*;
    let dim = || {
        (
            1usize..4,
            1usize..4,
            1usize..3,
            0usize..3,
            0usize..3,
            0usize..4,
        )
    };
    (1usize..3, 1usize..3, 1usize..3, 1usize..3, dim(), dim()).prop_map(
        |(n, groups, cg, og, dh, dw)| {
            let mut x = [n, groups * cg, 0, 0];
            let w_shape = [groups * og, cg, dh.0, dw.0];
            let mut a = attrs(&[1, 1], &[(0, 0), (0, 0)], &[1, 1], groups);
            for (d, (k, s, dil, lo, hi, extra)) in [dh, dw].into_iter().enumerate() {
                let span = dil * (k - 1) + 1;
                x[2 + d] = span.saturating_sub(lo + hi).max(1) + extra;
                (a.stride[d], a.dilation[d], a.padding[d]) = (s, dil, (lo, hi));
            }
            (x, w_shape, a)
        },
    )
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(64))]

    #[test]
    fn random_convs_match_the_naive_formula_and_their_transpose((xs, ws, a) in arb_conv(), seed in 0u64..1000) {
        let x = noise::<f64>(&xs, seed);
        let w = noise::<f64>(&ws, seed + 1);
        let b = noise::<f64>(&[ws[0]], seed + 2);
        let (shape, want) = naive_conv2d(&x, &w, Some(&b), &a);
        let got = run1(Op::Conv(a.clone()), &[x.clone(), w.clone(), b]);
        proptest::prop_assert_eq!(got.shape(), &shape[..]);
        close(&floats(&got), &want, 1e-13);
        // Adjointness with the transposed conv of the same attributes.
        let y = noise::<f64>(&shape, seed + 3);
        let out_pad: Vec<usize> = (0..2)
            .map(|d| {
                let padded = xs[2 + d] + a.padding[d].0 + a.padding[d].1;
                padded - ((shape[2 + d] - 1) * a.stride[d] + a.dilation[d] * (ws[2 + d] - 1) + 1)
            })
            .collect();
        let ta = tattrs(&a.stride, &a.padding, &out_pad, &a.dilation, a.groups);
        let conv = run1(Op::Conv(a), &[x.clone(), w.clone()]);
        let back = run1(Op::ConvTranspose(ta), &[y.clone(), w]);
        proptest::prop_assert_eq!(back.shape(), &xs[..]);
        let (lhs, rhs) = (dot(&conv, &y), dot(&x, &back));
        proptest::prop_assert!((lhs - rhs).abs() < 1e-12 * (1.0 + lhs.abs()), "{} vs {}", lhs, rhs);
    }
}
