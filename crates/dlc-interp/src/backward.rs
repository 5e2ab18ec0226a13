//! Backward ops without a recurrence: the convolution weight gradient, the
//! pooling gradients, the gather gradient (a scatter-add) and the attention
//! gradient. Each is written from the derivative of its forward op's defining
//! sum, as plainly as the forward kernels.

use dlc_ir::{ConvAttrs, PoolAttrs, PoolKind};
use dlc_tensor::Value;
use ndarray::{Array2, ArrayD, IxDyn};

use crate::array::{OpResult, float, from_vec, int};
use crate::float::{Float, c};
use crate::linalg::dot;

/// `dw[o, c, u] = Σ_{n,p} dy[n, o, p] · x[n, g(o)·C/groups + c, p·stride + u·dilation − pad]`
/// (positions in the padding read zero).
pub(crate) fn conv_weight_grad<F: Float>(
    a: &ConvAttrs,
    kernel: &[usize],
    args: &[&Value<F>],
) -> OpResult<F> {
    let (x, dy) = (float(args[0])?, float(args[1])?);
    let sp = a.stride.len();
    if x.ndim() != sp + 2 || dy.ndim() != sp + 2 || kernel.len() != sp {
        return Err("x, dy and the kernel disagree in spatial rank".into());
    }
    let (n, cin, o) = (x.shape()[0], x.shape()[1], dy.shape()[1]);
    let (cg, og) = (cin / a.groups, o / a.groups);
    let wshape = [&[o, cg][..], kernel].concat();
    let out_sp = IxDyn(&dy.shape()[2..]);
    let (mut xi, mut di) = (vec![0usize; sp + 2], vec![0usize; sp + 2]);
    let dw = ArrayD::from_shape_fn(IxDyn(&wshape), |idx| {
        let (oc, ch) = (idx[0], idx[1]);
        let g = oc / og;
        let mut acc = F::zero();
        for bn in 0..n {
            for p in ndarray::indices(out_sp.clone()) {
                let mut inside = true;
                for d in 0..sp {
                    let pos = (p[d] * a.stride[d] + idx[2 + d] * a.dilation[d]) as isize
                        - a.padding[d].0 as isize;
                    inside &= pos >= 0 && (pos as usize) < x.shape()[2 + d];
                    xi[2 + d] = pos.max(0) as usize;
                    di[2 + d] = p[d];
                }
                if inside {
                    (xi[0], xi[1]) = (bn, g * cg + ch);
                    (di[0], di[1]) = (bn, oc);
                    acc += dy[&di[..]] * x[&xi[..]];
                }
            }
        }
        acc
    });
    Ok(vec![Value::Float(dw)])
}

/// The gradient of max or average pooling: each `dy` goes to the first maximum of
/// its window (max; a NaN counts as the maximum) or, divided by the forward
/// divisor, to every in-bounds element of it (average).
pub(crate) fn pool_grad<F: Float>(a: &PoolAttrs, x: &Value<F>, dy: &Value<F>) -> OpResult<F> {
    let (x, dy) = (float(x)?, float(dy)?);
    let sp = a.kernel.len();
    if x.ndim() != sp + 2 || dy.ndim() != sp + 2 {
        return Err("x and dy disagree in spatial rank".into());
    }
    let window = IxDyn(&a.kernel);
    let window_size: usize = a.kernel.iter().product();
    let mut dx = ArrayD::<F>::zeros(x.raw_dim());
    let mut xi = vec![0usize; sp + 2];
    for (idx, &g) in dy.indexed_iter() {
        (xi[0], xi[1]) = (idx[0], idx[1]);
        let mut cells: Vec<Vec<usize>> = Vec::new();
        for u in ndarray::indices(window.clone()) {
            let mut inside = true;
            for d in 0..sp {
                let pos = (idx[2 + d] * a.stride[d] + u[d]) as isize - a.padding[d].0 as isize;
                inside &= pos >= 0 && (pos as usize) < x.shape()[2 + d];
                xi[2 + d] = pos.max(0) as usize;
            }
            if inside {
                cells.push(xi.clone());
            }
        }
        match a.kind {
            PoolKind::Max => {
                let mut best: Option<&Vec<usize>> = None;
                for cell in &cells {
                    let v = x[&cell[..]];
                    let take = match best {
                        None => true,
                        Some(b) => {
                            let bv = x[&b[..]];
                            !bv.is_nan() && (v > bv || v.is_nan())
                        }
                    };
                    if take {
                        best = Some(cell);
                    }
                }
                if let Some(b) = best {
                    dx[&b[..]] += g;
                }
            }
            PoolKind::Avg { count_include_pad } => {
                let divisor = if count_include_pad {
                    window_size
                } else {
                    cells.len()
                };
                let share = g / F::cast_i64(divisor.max(1) as i64);
                for cell in &cells {
                    dx[&cell[..]] += share;
                }
            }
        }
    }
    Ok(vec![Value::Float(dx)])
}

/// `dx[pre, indices[i], post] += dy[pre, i, post]` into zeros of `size` rows along
/// `axis`; an index outside `0..size` is an error.
pub(crate) fn gather_grad<F: Float>(
    axis: usize,
    size: usize,
    dy: &Value<F>,
    indices: &Value<F>,
) -> OpResult<F> {
    let (dy, idx) = (float(dy)?, int(indices)?);
    let s = dy.shape();
    if s.len() < axis + idx.ndim() {
        return Err("dy does not hold the indices' shape".into());
    }
    let pre: usize = s[..axis].iter().product();
    let post: usize = s[axis + idx.ndim()..].iter().product();
    let count = idx.len();
    let src: Vec<F> = dy.iter().copied().collect();
    let mut out = vec![F::zero(); pre * size * post];
    for (i, &v) in idx.iter().enumerate() {
        if v < 0 || v as u64 >= size as u64 {
            return Err(format!(
                "index {v} (entry {i} of the indices) is out of range for size {size}"
            ));
        }
        let v = v as usize;
        for p in 0..pre {
            let (from, to) = ((p * count + i) * post, (p * size + v) * post);
            for k in 0..post {
                out[to + k] += src[from + k];
            }
        }
    }
    let shape = [&s[..axis], &[size], &s[axis + idx.ndim()..]].concat();
    Ok(vec![Value::Float(from_vec(&shape, out)?)])
}

/// The matrices `[rows, cols]` of a `[.., rows, cols]` array, in batch order.
fn matrices<F: Float>(a: &ArrayD<F>) -> Result<Vec<Array2<F>>, String> {
    let r = a.ndim();
    let (rows, cols) = (a.shape()[r - 2], a.shape()[r - 1]);
    a.iter()
        .copied()
        .collect::<Vec<F>>()
        .chunks(rows * cols)
        .map(|m| Array2::from_shape_vec((rows, cols), m.to_vec()).map_err(|e| e.to_string()))
        .collect()
}

/// The gradient of attention, row by row: with `p = softmax(scale · q_i kᵀ)` and
/// `dp_j = dout_i · v_j`, `ds_j = p_j (dp_j − Σ p·dp)`; then
/// `dq_i = scale Σ ds_j k_j`, `dk_j += scale ds_j q_i`, `dv_j += p_j dout_i`.
pub(crate) fn attention_grad<F: Float>(
    causal: bool,
    scale: f64,
    args: &[&Value<F>],
) -> OpResult<F> {
    let arrays: Vec<&ArrayD<F>> = args.iter().map(|v| float(v)).collect::<Result<_, _>>()?;
    if arrays.len() != 4 || arrays.iter().any(|a| a.ndim() < 2) {
        return Err("needs q, k, v, dout of rank >= 2".into());
    }
    let mats: Vec<Vec<Array2<F>>> = arrays
        .iter()
        .map(|a| matrices(a))
        .collect::<Result<_, _>>()?;
    let scale = c::<F>(scale);
    let (mut dq, mut dk, mut dv) = (Vec::new(), Vec::new(), Vec::new());
    let batches = mats[0].iter().zip(&mats[1]).zip(&mats[2]).zip(&mats[3]);
    for (((q, k), v), d_o) in batches {
        let (l, s_len) = (q.nrows(), k.nrows());
        let mut gq = Array2::<F>::zeros(q.raw_dim());
        let mut gk = Array2::<F>::zeros(k.raw_dim());
        let mut gv = Array2::<F>::zeros(v.raw_dim());
        for i in 0..l {
            let keys = if causal { (i + 1).min(s_len) } else { s_len };
            let scores: Vec<F> = (0..keys).map(|j| dot(q.row(i), k.row(j)) * scale).collect();
            let m = scores
                .iter()
                .fold(F::neg_infinity(), |m, &x| crate::float::nan_max(m, x));
            let w: Vec<F> = scores.iter().map(|&x| (x - m).exp()).collect();
            let total: F = w.iter().copied().sum();
            let p: Vec<F> = w.iter().map(|&x| x / total).collect();
            let dp: Vec<F> = (0..keys).map(|j| dot(d_o.row(i), v.row(j))).collect();
            let mix: F = p.iter().zip(&dp).map(|(&a, &b)| a * b).sum();
            for j in 0..keys {
                let ds = p[j] * (dp[j] - mix) * scale;
                gq.row_mut(i).scaled_add(ds, &k.row(j));
                gk.row_mut(j).scaled_add(ds, &q.row(i));
                gv.row_mut(j).scaled_add(p[j], &d_o.row(i));
            }
        }
        dq.extend(gq.iter().copied());
        dk.extend(gk.iter().copied());
        dv.extend(gv.iter().copied());
    }
    Ok(vec![
        Value::Float(from_vec(arrays[0].shape(), dq)?),
        Value::Float(from_vec(arrays[1].shape(), dk)?),
        Value::Float(from_vec(arrays[2].shape(), dv)?),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_grad_sums_repeated_indices() {
        let dy = Value::Float(
            ArrayD::from_shape_vec(IxDyn(&[3, 2]), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap(),
        );
        let idx = Value::Int(ArrayD::from_shape_vec(IxDyn(&[3]), vec![2i64, 0, 2]).unwrap());
        let out = gather_grad::<f64>(0, 4, &dy.to_f64(), &idx.to_f64()).unwrap();
        let got = out[0].as_float().unwrap();
        assert_eq!(got.shape(), &[4, 2]);
        assert_eq!(
            got.iter().copied().collect::<Vec<_>>(),
            vec![3.0, 4.0, 0.0, 0.0, 6.0, 8.0, 0.0, 0.0]
        );
    }
}
