//! Batch normalisation (inference and training forms) and layer normalisation.

use dlc_tensor::Value;
use ndarray::{Array1, ArrayD, Axis};

use crate::array::{OpResult, float, from_vec};
use crate::float::{Float, c};

/// Mean and biased variance (two passes) of some values.
fn mean_var<F: Float>(values: impl Iterator<Item = F> + Clone) -> (F, F) {
    let n = F::cast_i64(values.clone().count() as i64);
    let mean = values.clone().sum::<F>() / n;
    let var = values.map(|v| (v - mean) * (v - mean)).sum::<F>() / n;
    (mean, var)
}

/// `y = (x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c]` over channel axis 1.
fn normalise_channels<F: Float>(
    x: &ArrayD<F>,
    mean: &Array1<F>,
    var: &Array1<F>,
    gamma: &ArrayD<F>,
    beta: &ArrayD<F>,
    eps: F,
) -> ArrayD<F> {
    let mut y = x.clone();
    for (c, mut chan) in y.axis_iter_mut(Axis(1)).enumerate() {
        let inv = F::one() / (var[c] + eps).sqrt();
        chan.mapv_inplace(|v| (v - mean[c]) * inv * gamma[[c]] + beta[[c]]);
    }
    y
}

/// Batch normalisation over channel axis 1; operands `x, gamma, beta, mean, var`.
///
/// Inference uses the running statistics. Training normalises with the batch mean
/// and biased variance over every axis but 1, and also returns the updated running
/// statistics `(1 - momentum) * running + momentum * batch`, where the variance
/// update uses the unbiased batch variance (`var * M / (M - 1)`).
pub(crate) fn batch_norm<F: Float>(
    eps: f64,
    momentum: f64,
    training: bool,
    args: &[&Value<F>],
) -> OpResult<F> {
    let [x, gamma, beta, rmean, rvar] = [0, 1, 2, 3, 4].map(|i| float(args[i]));
    let (x, gamma, beta, rmean, rvar) = (x?, gamma?, beta?, rmean?, rvar?);
    if x.ndim() < 2 {
        return Err("needs an [N, C, ...] input".into());
    }
    let channels = x.shape()[1];
    let eps = c::<F>(eps);
    let vec1 = |a: &ArrayD<F>| Array1::from_iter(a.iter().copied());
    if !training {
        let y = normalise_channels(x, &vec1(rmean), &vec1(rvar), gamma, beta, eps);
        return Ok(vec![Value::Float(y)]);
    }
    let (mut mean, mut var) = (Array1::zeros(channels), Array1::zeros(channels));
    for (c, chan) in x.axis_iter(Axis(1)).enumerate() {
        (mean[c], var[c]) = mean_var(chan.iter().copied());
    }
    let y = normalise_channels(x, &mean, &var, gamma, beta, eps);
    let m = F::cast_i64((x.len() / channels) as i64);
    let mom = c::<F>(momentum);
    let keep = F::one() - mom;
    let new_mean: Vec<F> = (0..channels)
        .map(|c| keep * rmean[[c]] + mom * mean[c])
        .collect();
    let new_var: Vec<F> = (0..channels)
        .map(|c| keep * rvar[[c]] + mom * var[c] * m / (m - F::one()))
        .collect();
    Ok(vec![
        Value::Float(y),
        Value::Float(from_vec(&[channels], new_mean)?),
        Value::Float(from_vec(&[channels], new_var)?),
    ])
}

/// Layer normalisation over dims `axis..` with elementwise affine `gamma`, `beta`
/// (shaped like those dims); biased variance.
pub(crate) fn layer_norm<F: Float>(axis: usize, eps: f64, args: &[&Value<F>]) -> OpResult<F> {
    let (x, gamma, beta) = (float(args[0])?, float(args[1])?, float(args[2])?);
    if axis >= x.ndim() {
        return Err(format!("axis {axis} is out of range for rank {}", x.ndim()));
    }
    let inner: usize = x.shape()[axis..].iter().product();
    let eps = c::<F>(eps);
    let (xs, gs, bs): (Vec<F>, Vec<F>, Vec<F>) = (
        x.iter().copied().collect(),
        gamma.iter().copied().collect(),
        beta.iter().copied().collect(),
    );
    if gs.len() != inner || bs.len() != inner {
        return Err("gamma and beta must have the normalised dims' shape".into());
    }
    let mut out = Vec::with_capacity(xs.len());
    for row in xs.chunks(inner) {
        let (mean, var) = mean_var(row.iter().copied());
        let inv = F::one() / (var + eps).sqrt();
        out.extend((0..inner).map(|i| (row[i] - mean) * inv * gs[i] + bs[i]));
    }
    Ok(vec![Value::Float(from_vec(x.shape(), out)?)])
}
