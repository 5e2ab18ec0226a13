//! Losses: mean squared error and softmax cross-entropy.

use dlc_tensor::Value;

use crate::array::{OpResult, float, int, scalar};
use crate::float::{Float, nan_max};

/// `mean((pred - target)^2)` as a 0-d value.
pub(crate) fn mse<F: Float>(pred: &Value<F>, target: &Value<F>) -> OpResult<F> {
    let (p, t) = (float(pred)?, float(target)?);
    if p.shape() != t.shape() {
        return Err("prediction and target differ in shape".into());
    }
    let sum: F = p.iter().zip(t).map(|(&a, &b)| (a - b) * (a - b)).sum();
    Ok(vec![Value::Float(scalar(
        sum / F::cast_i64(p.len() as i64),
    ))])
}

/// `mean_n(logsumexp(logits[n]) - logits[n, labels[n]])` with the row maximum
/// subtracted inside the logsumexp (`-log_softmax` at the label); a label outside `0..C` is an error.
pub(crate) fn cross_entropy<F: Float>(logits: &Value<F>, labels: &Value<F>) -> OpResult<F> {
    let (x, y) = (float(logits)?, int(labels)?);
    if x.ndim() != 2 || y.ndim() != 1 || y.len() != x.shape()[0] {
        return Err("needs logits [N, C] and labels [N]".into());
    }
    let classes = x.shape()[1];
    let mut total = F::zero();
    for (n, (row, &label)) in x.outer_iter().zip(y).enumerate() {
        if label < 0 || label as u64 >= classes as u64 {
            return Err(format!(
                "label {label} of row {n} is out of range for {classes} classes"
            ));
        }
        let m = row.iter().fold(F::neg_infinity(), |m, &v| nan_max(m, v));
        // logsumexp - x[label], grouped as (m - x[label]) + log Σ exp(x - m) so
        // large logits lose no precision.
        let log_sum = row.iter().map(|&v| (v - m).exp()).sum::<F>().ln();
        total += (m - row[label as usize]) + log_sum;
    }
    Ok(vec![Value::Float(scalar(
        total / F::cast_i64(y.len() as i64),
    ))])
}
