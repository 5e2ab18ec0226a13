//! Data movement: reshape, transpose, broadcast, concat, slice, gather, one-hot.
//!
//! These work on every dtype; [`each_dtype!`] applies one generic body to whichever
//! array a value holds.

use dlc_ir::SliceRange;
use dlc_tensor::Value;
use ndarray::{ArrayD, ArrayViewD, Axis, Dimension, IxDyn, Slice};

use crate::array::{OpResult, broadcast_view, from_vec, int, standard};
use crate::float::Float;

/// Applies `$body` (which may use `?`) to the array inside `$v`, keeping the dtype.
macro_rules! each_dtype {
    ($v:expr, |$a:ident| $body:expr) => {
        match $v {
            Value::Float($a) => Value::Float($body),
            Value::Int($a) => Value::Int($body),
            Value::Bool($a) => Value::Bool($body),
        }
    };
}

/// Same elements in row-major order, new shape.
pub(crate) fn reshape<F: Float>(shape: &[usize], x: &Value<F>) -> OpResult<F> {
    fn go<T: Clone>(a: &ArrayD<T>, shape: &[usize]) -> Result<ArrayD<T>, String> {
        from_vec(shape, a.iter().cloned().collect())
    }
    Ok(vec![each_dtype!(x, |a| go(a, shape)?)])
}

/// Output dim `i` is input dim `perm[i]`.
pub(crate) fn transpose<F: Float>(perm: &[usize], x: &Value<F>) -> OpResult<F> {
    fn go<T: Clone>(a: &ArrayD<T>, perm: &[usize]) -> Result<ArrayD<T>, String> {
        let mut seen = vec![false; a.ndim()];
        let valid = perm.len() == a.ndim()
            && perm
                .iter()
                .all(|&p| p < seen.len() && !std::mem::replace(&mut seen[p], true));
        if !valid {
            return Err(format!(
                "{perm:?} is not a permutation of {} axes",
                a.ndim()
            ));
        }
        Ok(standard(a.view().permuted_axes(IxDyn(perm))))
    }
    Ok(vec![each_dtype!(x, |a| go(a, perm)?)])
}

/// Numpy broadcast to `shape`.
pub(crate) fn broadcast_to<F: Float>(shape: &[usize], x: &Value<F>) -> OpResult<F> {
    Ok(vec![each_dtype!(x, |a| standard(broadcast_view(
        a, shape
    )?))])
}

/// Joins the operands along `axis` (all of one dtype).
pub(crate) fn concat<F: Float>(axis: usize, args: &[&Value<F>]) -> OpResult<F> {
    fn go<T: Clone>(axis: usize, parts: Option<Vec<&ArrayD<T>>>) -> Result<ArrayD<T>, String> {
        let parts = parts.ok_or("operands differ in dtype")?;
        let views: Vec<ArrayViewD<'_, T>> = parts.iter().map(|a| a.view()).collect();
        let joined = ndarray::concatenate(Axis(axis), &views).map_err(|e| e.to_string())?;
        Ok(standard(joined.view()))
    }
    let first = args.first().ok_or("needs at least one operand")?;
    let v = match first {
        Value::Float(_) => Value::Float(go(axis, args.iter().map(|v| v.as_float()).collect())?),
        Value::Int(_) => Value::Int(go(axis, args.iter().map(|v| v.as_int()).collect())?),
        Value::Bool(_) => Value::Bool(go(axis, args.iter().map(|v| v.as_bool()).collect())?),
    };
    Ok(vec![v])
}

/// Takes `start..end` by `step` on every axis.
pub(crate) fn slice<F: Float>(ranges: &[SliceRange], x: &Value<F>) -> OpResult<F> {
    fn go<T: Clone>(a: &ArrayD<T>, ranges: &[SliceRange]) -> Result<ArrayD<T>, String> {
        let fits = ranges.len() == a.ndim()
            && ranges
                .iter()
                .zip(a.shape())
                .all(|(r, &d)| r.step > 0 && r.start < r.end && r.end <= d);
        if !fits {
            return Err(format!(
                "ranges {ranges:?} do not fit shape {:?}",
                a.shape()
            ));
        }
        let view = a.slice_each_axis(|ax| {
            let r = ranges[ax.axis.index()];
            Slice::new(r.start as isize, Some(r.end as isize), r.step as isize)
        });
        Ok(standard(view))
    }
    Ok(vec![each_dtype!(x, |a| go(a, ranges)?)])
}

/// `out[pre, idx, post] = x[pre, indices[idx], post]`; an index outside
/// `0..x.shape[axis]` is an error.
pub(crate) fn gather<F: Float>(axis: usize, x: &Value<F>, indices: &Value<F>) -> OpResult<F> {
    let idx = int(indices)?;
    let shape = x.shape();
    if axis >= shape.len() {
        return Err(format!(
            "axis {axis} is out of range for rank {}",
            shape.len()
        ));
    }
    let dim = shape[axis];
    let mut flat = Vec::with_capacity(idx.len());
    for (pos, &i) in idx.indexed_iter() {
        if i < 0 || i as u64 >= dim as u64 {
            return Err(format!(
                "index {i} (at position {:?} of the indices) is out of range for axis {axis} of size {dim}",
                pos.slice()
            ));
        }
        flat.push(i as usize);
    }
    let out_shape = [&shape[..axis], idx.shape(), &shape[axis + 1..]].concat();
    fn go<T: Clone>(
        a: &ArrayD<T>,
        axis: usize,
        flat: &[usize],
        out: &[usize],
    ) -> Result<ArrayD<T>, String> {
        let picked = a.select(Axis(axis), flat);
        from_vec(out, picked.iter().cloned().collect())
    }
    Ok(vec![each_dtype!(x, |a| go(a, axis, &flat, &out_shape)?)])
}

/// One-hot rows of length `depth`; an index outside `0..depth` gives a zero row.
pub(crate) fn one_hot<F: Float>(depth: usize, indices: &Value<F>) -> OpResult<F> {
    let idx = int(indices)?;
    let mut shape = idx.shape().to_vec();
    shape.push(depth);
    let mut data = Vec::with_capacity(idx.len() * depth);
    for &i in idx.iter() {
        data.extend((0..depth).map(|d| if i == d as i64 { F::one() } else { F::zero() }));
    }
    Ok(vec![Value::Float(from_vec(&shape, data)?)])
}
