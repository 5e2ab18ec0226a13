//! Reductions over axes, argmax, softmax and log-softmax.

use dlc_ir::ReduceKind;
use dlc_ir::infer::reduced_shape;
use dlc_tensor::Value;
use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};

use crate::array::{OpResult, float, from_vec};
use crate::float::{Float, nan_max, nan_min};

/// Sum, mean, max or min over `axes` (max/min propagate NaN).
pub(crate) fn reduce<F: Float>(
    kind: ReduceKind,
    axes: &[usize],
    keepdim: bool,
    x: &Value<F>,
) -> OpResult<F> {
    let x = float(x)?;
    if let Some(&bad) = axes.iter().find(|&&a| a >= x.ndim()) {
        return Err(format!("axis {bad} is out of range for rank {}", x.ndim()));
    }
    let kept = reduced_shape(x.shape(), axes, true);
    let count: usize = axes.iter().map(|&a| x.shape()[a]).product();
    let init = match kind {
        ReduceKind::Sum | ReduceKind::Mean => F::zero(),
        ReduceKind::Max => F::neg_infinity(),
        ReduceKind::Min => F::infinity(),
    };
    let mut acc = ArrayD::from_elem(IxDyn(&kept), init);
    // Visit the input in row-major order; each element lands on its output with
    // the reduced coordinates set to 0.
    let mut oi = vec![0usize; x.ndim()];
    for (xi, &v) in x.indexed_iter() {
        for (d, o) in oi.iter_mut().enumerate() {
            *o = if axes.contains(&d) { 0 } else { xi[d] };
        }
        let a = &mut acc[&oi[..]];
        *a = match kind {
            ReduceKind::Sum | ReduceKind::Mean => *a + v,
            ReduceKind::Max => nan_max(*a, v),
            ReduceKind::Min => nan_min(*a, v),
        };
    }
    if kind == ReduceKind::Mean {
        acc.mapv_inplace(|s| s / F::cast_i64(count as i64));
    }
    let shape = reduced_shape(x.shape(), axes, keepdim);
    let data = acc.iter().copied().collect();
    Ok(vec![Value::Float(from_vec(&shape, data)?)])
}

/// Index of the maximum along `axis`: the first on ties; a NaN counts as the
/// maximum (the first NaN wins), as in PyTorch.
pub(crate) fn argmax<F: Float>(axis: usize, keepdim: bool, x: &Value<F>) -> OpResult<F> {
    let x = float(x)?;
    check_axis(axis, x)?;
    let best = x.map_axis(Axis(axis), |lane| {
        let mut best = 0usize;
        for (i, &v) in lane.iter().enumerate() {
            let b = lane[best];
            if !b.is_nan() && (v.is_nan() || v > b) {
                best = i;
            }
        }
        best as i64
    });
    let shape = reduced_shape(x.shape(), &[axis], keepdim);
    Ok(vec![Value::Int(from_vec(
        &shape,
        best.iter().copied().collect(),
    )?)])
}

fn check_axis<F>(axis: usize, x: &ArrayD<F>) -> Result<(), String> {
    if axis >= x.ndim() {
        return Err(format!("axis {axis} is out of range for rank {}", x.ndim()));
    }
    Ok(())
}

/// The largest element of a lane (NaN if any is NaN).
fn lane_max<F: Float>(lane: &ArrayViewD<'_, F>) -> F {
    lane.iter().fold(F::neg_infinity(), |m, &v| nan_max(m, v))
}

/// Softmax (or log-softmax) along `axis`, subtracting the lane maximum first so
/// large logits do not overflow.
pub(crate) fn softmax<F: Float>(axis: usize, log: bool, x: &Value<F>) -> OpResult<F> {
    let x = float(x)?;
    check_axis(axis, x)?;
    let mut y = x.clone();
    for mut lane in y.lanes_mut(Axis(axis)) {
        let m = lane_max(&lane.view().into_dyn());
        let sum: F = lane.iter().map(|&v| (v - m).exp()).sum();
        lane.mapv_inplace(|v| {
            if log {
                v - m - sum.ln()
            } else {
                (v - m).exp() / sum
            }
        });
    }
    Ok(vec![Value::Float(y)])
}
