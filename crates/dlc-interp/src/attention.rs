//! Scaled dot-product attention and PyTorch-style multi-head attention.

use dlc_tensor::Value;
use ndarray::{Array2, ArrayView2, Axis, Ix2, s};

use crate::array::{OpResult, float, from_vec};
use crate::float::{Float, c, nan_max};
use crate::linalg::{as1, as2, dot, linear};

/// `softmax(q k^T · scale + mask) v` for one head: `q [L, E]`, `k [S, E]`,
/// `v [S, Ev]`; with `causal`, query `i` attends only keys `j <= i`.
pub(crate) fn attend<F: Float>(
    q: ArrayView2<'_, F>,
    k: ArrayView2<'_, F>,
    v: ArrayView2<'_, F>,
    scale: F,
    causal: bool,
) -> Array2<F> {
    let (l, s_len, ev) = (q.nrows(), k.nrows(), v.ncols());
    let mut out = Array2::zeros((l, ev));
    for i in 0..l {
        let keys = if causal { (i + 1).min(s_len) } else { s_len };
        let scores: Vec<F> = (0..keys).map(|j| dot(q.row(i), k.row(j)) * scale).collect();
        let m = scores.iter().fold(F::neg_infinity(), |m, &x| nan_max(m, x));
        let weights: Vec<F> = scores.iter().map(|&x| (x - m).exp()).collect();
        let total: F = weights.iter().copied().sum();
        for (j, &wj) in weights.iter().enumerate() {
            let p = wj / total;
            for e in 0..ev {
                out[[i, e]] += p * v[[j, e]];
            }
        }
    }
    out
}

/// Attention over `q [.., L, E], k [.., S, E], v [.., S, Ev]` (equal batch dims).
pub(crate) fn attention<F: Float>(causal: bool, scale: f64, args: &[&Value<F>]) -> OpResult<F> {
    let (q, k, v) = (float(args[0])?, float(args[1])?, float(args[2])?);
    let r = q.ndim();
    if r < 2 || k.ndim() != r || v.ndim() != r {
        return Err("needs q, k, v of equal rank >= 2".into());
    }
    let batch: usize = q.shape()[..r - 2].iter().product();
    let flat = |a: &ndarray::ArrayD<F>| {
        let rows = a.shape()[r - 2];
        let cols = a.shape()[r - 1];
        a.iter()
            .copied()
            .collect::<Vec<F>>()
            .chunks(rows * cols)
            .map(|m| Array2::from_shape_vec((rows, cols), m.to_vec()).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()
    };
    let (qs, ks, vs) = (flat(q)?, flat(k)?, flat(v)?);
    if qs.len() != batch || ks.len() != batch || vs.len() != batch {
        return Err("q, k and v differ in batch dims".into());
    }
    let mut data = Vec::new();
    for b in 0..batch {
        let o = attend(qs[b].view(), ks[b].view(), vs[b].view(), c(scale), causal);
        data.extend(o.iter().copied());
    }
    let mut shape = q.shape().to_vec();
    shape[r - 1] = v.shape()[r - 1];
    Ok(vec![Value::Float(from_vec(&shape, data)?)])
}

/// `nn.MultiheadAttention` (sequence-first): operands
/// `query [L, N, E], key [S, N, E], value [S, N, E], in_w [3E, E], in_b [3E],
/// out_w [E, E], out_b [E]`. Head `h` uses feature columns `h*d..(h+1)*d` of the
/// projections (`d = E / heads`), scores are scaled by `1/sqrt(d)`, heads are
/// concatenated in order and projected by `out_w`.
pub(crate) fn multi_head<F: Float>(heads: usize, causal: bool, args: &[&Value<F>]) -> OpResult<F> {
    let [query, key, value] = [0, 1, 2].map(|i| float(args[i]));
    let (query, key, value) = (query?, key?, value?);
    let (in_w, in_b) = (as2(float(args[3])?)?, as1(float(args[4])?)?);
    let (out_w, out_b) = (as2(float(args[5])?)?, as1(float(args[6])?)?);
    let (l, n, e) = (query.shape()[0], query.shape()[1], query.shape()[2]);
    if heads == 0 || e % heads != 0 {
        return Err(format!(
            "heads = {heads} must divide the embedding size {e}"
        ));
    }
    let d = e / heads;
    let scale = F::one() / c::<F>(d as f64).sqrt();
    // Batch element `b` of a sequence-first tensor, as a `[len, E]` matrix.
    let seq = |a: &ndarray::ArrayD<F>, b: usize| -> Result<Array2<F>, String> {
        a.index_axis(Axis(1), b)
            .into_dimensionality::<Ix2>()
            .map(|m| m.to_owned())
            .map_err(|e| e.to_string())
    };
    let mut out = ndarray::Array3::<F>::zeros((l, n, e));
    for b in 0..n {
        let qp = linear(
            seq(query, b)?.view(),
            in_w.slice(s![0..e, ..]),
            in_b.slice(s![0..e]),
        );
        let kp = linear(
            seq(key, b)?.view(),
            in_w.slice(s![e..2 * e, ..]),
            in_b.slice(s![e..2 * e]),
        );
        let vp = linear(
            seq(value, b)?.view(),
            in_w.slice(s![2 * e.., ..]),
            in_b.slice(s![2 * e..]),
        );
        let mut concat = Array2::<F>::zeros((l, e));
        for h in 0..heads {
            let cols = s![.., h * d..(h + 1) * d];
            let o = attend(
                qp.slice(cols),
                kp.slice(cols),
                vp.slice(cols),
                scale,
                causal,
            );
            concat.slice_mut(cols).assign(&o);
        }
        let y = linear(concat.view(), out_w, out_b);
        out.index_axis_mut(Axis(1), b).assign(&y);
    }
    let data = out.iter().copied().collect();
    Ok(vec![Value::Float(from_vec(&[l, n, e], data)?)])
}
