//! Windowed pooling (max, average) and global average pooling on `[N, C, *spatial]`.

use dlc_ir::{PoolAttrs, PoolKind, ReduceKind};
use dlc_tensor::Value;
use ndarray::{ArrayD, IxDyn};

use crate::array::{OpResult, float};
use crate::float::{Float, nan_max};

/// Max or average pooling with floor-mode output size.
///
/// Max: the largest in-bounds element of the window (padding never wins; NaN
/// propagates). Average: the sum of in-bounds elements divided by the full window
/// size (`count_include_pad`) or by the number of in-bounds elements.
pub(crate) fn pool<F: Float>(a: &PoolAttrs, x: &Value<F>) -> OpResult<F> {
    let x = float(x)?;
    let sp = a.kernel.len();
    let mut out_shape = x.shape()[..2].to_vec();
    for d in 0..sp {
        let padded = x.shape()[2 + d] + a.padding[d].0 + a.padding[d].1;
        if padded < a.kernel[d] {
            return Err("window does not fit the padded input".into());
        }
        out_shape.push((padded - a.kernel[d]) / a.stride[d] + 1);
    }
    let window = IxDyn(&a.kernel);
    let window_size: usize = a.kernel.iter().product();
    let mut xi = vec![0usize; sp + 2];
    let out = ArrayD::from_shape_fn(IxDyn(&out_shape), |idx| {
        (xi[0], xi[1]) = (idx[0], idx[1]);
        let (mut max, mut sum, mut count) = (F::neg_infinity(), F::zero(), 0usize);
        for u in ndarray::indices(window.clone()) {
            let mut inside = true;
            for d in 0..sp {
                let pos = (idx[2 + d] * a.stride[d] + u[d]) as isize - a.padding[d].0 as isize;
                inside &= pos >= 0 && (pos as usize) < x.shape()[2 + d];
                xi[2 + d] = pos.max(0) as usize;
            }
            if inside {
                let v = x[&xi[..]];
                max = nan_max(max, v);
                sum += v;
                count += 1;
            }
        }
        match a.kind {
            PoolKind::Max => max,
            PoolKind::Avg { count_include_pad } => {
                let divisor = if count_include_pad {
                    window_size
                } else {
                    count
                };
                sum / F::cast_i64(divisor.max(1) as i64)
            }
        }
    });
    Ok(vec![Value::Float(out)])
}

/// Mean over every spatial dim, which stay as size 1.
pub(crate) fn global_avg_pool<F: Float>(x: &Value<F>) -> OpResult<F> {
    let axes: Vec<usize> = (2..x.shape().len()).collect();
    crate::reduce::reduce(ReduceKind::Mean, &axes, true, x)
}
