//! Matrix products: numpy `matmul` and the 2-D helpers the layer kernels share.

use dlc_tensor::Value;
use ndarray::{Array2, ArrayD, ArrayView1, ArrayView2, ArrayViewD, Axis, Dimension, Ix2, IxDyn};

use crate::array::{OpResult, broadcast_pair, broadcast_view, float, from_vec};
use crate::float::Float;

/// The dot product of two vectors, summed in ascending order.
pub(crate) fn dot<F: Float>(a: ArrayView1<'_, F>, b: ArrayView1<'_, F>) -> F {
    a.iter().zip(b).fold(F::zero(), |acc, (&x, &y)| acc + x * y)
}

/// `a @ b` of two matrices, summing `k` in ascending order.
pub(crate) fn mm<F: Float>(a: ArrayView2<'_, F>, b: ArrayView2<'_, F>) -> Array2<F> {
    let (m, k) = a.dim();
    let n = b.ncols();
    Array2::from_shape_fn((m, n), |(i, j)| {
        (0..k).fold(F::zero(), |acc, p| acc + a[[i, p]] * b[[p, j]])
    })
}

/// `x @ w^T + b` with `w` in PyTorch's `[out, in]` layout.
pub(crate) fn linear<F: Float>(
    x: ArrayView2<'_, F>,
    w: ArrayView2<'_, F>,
    b: ArrayView1<'_, F>,
) -> Array2<F> {
    let mut y = mm(x, w.t());
    y += &b;
    y
}

/// Numpy matmul: operands of rank >= 2, leading (batch) dims broadcast.
pub(crate) fn matmul<F: Float>(a: &Value<F>, b: &Value<F>) -> OpResult<F> {
    let (a, b) = (float(a)?, float(b)?);
    let (ra, rb) = (a.ndim(), b.ndim());
    if ra < 2 || rb < 2 {
        return Err("matmul needs operands of rank >= 2".into());
    }
    let (m, k, n) = (a.shape()[ra - 2], a.shape()[ra - 1], b.shape()[rb - 1]);
    if b.shape()[rb - 2] != k {
        return Err(format!("inner dims differ: {} vs {}", k, b.shape()[rb - 2]));
    }
    let batch = broadcast_pair(&a.shape()[..ra - 2], &b.shape()[..rb - 2])?;
    let av = broadcast_view(a, &[&batch[..], &[m, k]].concat())?;
    let bv = broadcast_view(b, &[&batch[..], &[k, n]].concat())?;
    let mut data = Vec::with_capacity(batch.iter().product::<usize>() * m * n);
    for idx in ndarray::indices(IxDyn(&batch)) {
        let (x, y) = (
            batch_matrix(&av, idx.slice())?,
            batch_matrix(&bv, idx.slice())?,
        );
        data.extend(mm(x, y).iter().copied());
    }
    let shape = [&batch[..], &[m, n]].concat();
    Ok(vec![Value::Float(from_vec(&shape, data)?)])
}

/// The matrix at batch index `idx` of a `[*batch, rows, cols]` view.
fn batch_matrix<'a, F>(a: &ArrayViewD<'a, F>, idx: &[usize]) -> Result<ArrayView2<'a, F>, String> {
    let mut v = a.clone();
    for &i in idx {
        v.index_axis_inplace(Axis(0), i);
    }
    v.into_dimensionality::<Ix2>().map_err(|e| e.to_string())
}

/// Converts a dynamic-rank view to a matrix view, or an error naming the rank.
pub(crate) fn as2<'a, F>(a: &'a ArrayD<F>) -> Result<ArrayView2<'a, F>, String> {
    a.view()
        .into_dimensionality::<ndarray::Ix2>()
        .map_err(|_| format!("expected a matrix, got rank {}", a.ndim()))
}

/// Converts a dynamic-rank view to a vector view, or an error naming the rank.
pub(crate) fn as1<'a, F>(a: &'a ArrayD<F>) -> Result<ArrayView1<'a, F>, String> {
    a.view()
        .into_dimensionality::<ndarray::Ix1>()
        .map_err(|_| format!("expected a vector, got rank {}", a.ndim()))
}
