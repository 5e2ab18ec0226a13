//! Small helpers on values and arrays shared by the op kernels.

use dlc_ir::types::{ShapeDisplay, broadcast_shapes};
use dlc_tensor::Value;
use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};

/// What a kernel returns: its results, or a message (wrapped into
/// [`crate::InterpError::Runtime`] with the op and node by the caller).
pub(crate) type OpResult<F> = Result<Vec<Value<F>>, String>;

/// The float array of an operand.
pub(crate) fn float<F>(v: &Value<F>) -> Result<&ArrayD<F>, String> {
    v.as_float()
        .ok_or_else(|| format!("expected an f32 operand, got {}", v.ty()))
}

/// The i64 array of an operand.
pub(crate) fn int<F>(v: &Value<F>) -> Result<&ArrayD<i64>, String> {
    v.as_int()
        .ok_or_else(|| format!("expected an i64 operand, got {}", v.ty()))
}

/// The bool array of an operand.
pub(crate) fn boolean<F>(v: &Value<F>) -> Result<&ArrayD<bool>, String> {
    v.as_bool()
        .ok_or_else(|| format!("expected a bool operand, got {}", v.ty()))
}

/// Operand `i`, or an error naming the missing operand.
pub(crate) fn arg<'a, F>(args: &[&'a Value<F>], i: usize) -> Result<&'a Value<F>, String> {
    args.get(i)
        .copied()
        .ok_or_else(|| format!("missing operand {}", i + 1))
}

/// A fresh row-major array with the elements of `v` in logical (row-major) order.
///
/// Kernels never rely on memory layout (they index or iterate logically); this
/// only turns views (broadcast, permuted, sliced) into owned arrays.
pub(crate) fn standard<T: Clone>(v: ArrayViewD<'_, T>) -> ArrayD<T> {
    let shape = v.shape().to_vec();
    let data: Vec<T> = v.iter().cloned().collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).expect("element count equals the shape's")
}

/// A row-major array of `shape` from row-major `data`, or an error if they disagree.
pub(crate) fn from_vec<T>(shape: &[usize], data: Vec<T>) -> Result<ArrayD<T>, String> {
    let n = data.len();
    ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|_| {
        format!(
            "internal: {n} values do not fill shape {}",
            ShapeDisplay(shape)
        )
    })
}

/// A view of `a` broadcast to `shape` (numpy rules), or an error.
pub(crate) fn broadcast_view<'a, T>(
    a: &'a ArrayD<T>,
    shape: &[usize],
) -> Result<ArrayViewD<'a, T>, String> {
    a.broadcast(IxDyn(shape)).ok_or_else(|| {
        format!(
            "shape {} does not broadcast to {}",
            ShapeDisplay(a.shape()),
            ShapeDisplay(shape)
        )
    })
}

/// The numpy broadcast of two shapes, or an error naming both.
pub(crate) fn broadcast_pair(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    broadcast_shapes(a, b).ok_or_else(|| {
        format!(
            "shapes {} and {} do not broadcast",
            ShapeDisplay(a),
            ShapeDisplay(b)
        )
    })
}

/// Applies `f` elementwise to `a` and `b` after broadcasting them to a common shape.
pub(crate) fn zip_broadcast<A: Copy, B: Copy, C>(
    a: &ArrayD<A>,
    b: &ArrayD<B>,
    f: impl Fn(A, B) -> C,
) -> Result<ArrayD<C>, String> {
    let shape = broadcast_pair(a.shape(), b.shape())?;
    let (av, bv) = (broadcast_view(a, &shape)?, broadcast_view(b, &shape)?);
    Ok(Zip::from(&av)
        .and(&bv)
        .map_collect(|&x, &y| f(x, y))
        .into_dyn())
}

/// A 0-d array holding `x`.
pub(crate) fn scalar<T: Clone>(x: T) -> ArrayD<T> {
    ArrayD::from_elem(IxDyn(&[]), x)
}
