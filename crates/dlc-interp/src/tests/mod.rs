//! Unit tests per op family: tiny hand-computed cases, and comparisons with
//! independent naive formulas (written differently from the kernels).
#![allow(clippy::cloned_ref_to_slice_refs)]

mod attention;
mod conv;
mod elementwise;
mod errors;
mod linalg;
mod norm_loss;
mod pool;
mod recurrent;
mod reduce;
mod shape;

use dlc_ir::{Graph, Op, ValueId};
use dlc_tensor::{Env, Value};
use ndarray::{ArrayD, IxDyn};

use crate::{Float, InterpError, run};

/// A float value of `shape` from row-major data.
pub(crate) fn fv<F: Float>(shape: &[usize], data: &[f64]) -> Value<F> {
    Value::Float(arr(shape, data))
}

/// A float array of `shape` from row-major data.
pub(crate) fn arr<F: Float>(shape: &[usize], data: &[f64]) -> ArrayD<F> {
    let data = data.iter().map(|&x| F::cast_f64(x)).collect();
    ArrayD::from_shape_vec(IxDyn(shape), data).unwrap()
}

/// An i64 value.
pub(crate) fn iv<F>(shape: &[usize], data: &[i64]) -> Value<F> {
    Value::Int(ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).unwrap())
}

/// A bool value.
pub(crate) fn bv<F>(shape: &[usize], data: &[bool]) -> Value<F> {
    Value::Bool(ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).unwrap())
}

/// `0, 1, 2, ...` scaled and shifted, as a float value: varied, non-symmetric data.
pub(crate) fn ramp<F: Float>(shape: &[usize], scale: f64, shift: f64) -> Value<F> {
    let n: usize = shape.iter().product();
    let data: Vec<f64> = (0..n).map(|i| i as f64 * scale + shift).collect();
    fv(shape, &data)
}

/// Pseudo-random floats in [-1, 1) (SplitMix64), for comparisons with naive formulas.
pub(crate) fn noise<F: Float>(shape: &[usize], seed: u64) -> Value<F> {
    let mut rng = dlc_ir::init::SplitMix64::new(seed);
    let n: usize = shape.iter().product();
    let data: Vec<f64> = (0..n).map(|_| rng.uniform() * 2.0 - 1.0).collect();
    fv(shape, &data)
}

/// Builds a graph applying `op` to inputs `a0, a1, ...` and runs it; returns every result.
pub(crate) fn run_op<F: Float>(op: Op, args: &[Value<F>]) -> Result<Vec<Value<F>>, InterpError> {
    let mut g = Graph::new("t");
    let mut inputs = Env::new();
    let mut ids = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let name = format!("a{i}");
        ids.push(g.add_source(Op::Input, &name, a.ty(), None).unwrap());
        inputs.insert(name, a.clone());
    }
    let node = g.add_anon(op, &ids).expect("the test graph type-checks");
    let n = g.node(node).types.len();
    for r in 0..n {
        g.add_output(
            format!("r{r}"),
            ValueId {
                node,
                result: r as u32,
            },
        );
    }
    let mut out = run(&g, &inputs, &Env::new())?;
    Ok((0..n)
        .map(|r| out.remove(&format!("r{r}")).unwrap())
        .collect())
}

/// The single result of `op`, which must succeed.
pub(crate) fn run1<F: Float>(op: Op, args: &[Value<F>]) -> Value<F> {
    run_op(op, args).unwrap().remove(0)
}

/// The float payload of a value.
pub(crate) fn floats<F: Float>(v: &Value<F>) -> Vec<f64> {
    v.as_float()
        .expect("a float value")
        .iter()
        .map(|x| x.as_f64())
        .collect()
}

/// Asserts two float sequences agree within `tol` (absolute + relative), NaN == NaN.
#[track_caller]
pub(crate) fn close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "lengths differ: {got:?} vs {want:?}");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= tol * (1.0 + w.abs());
        assert!(
            ok,
            "element {i}: got {g}, want {w}\n got {got:?}\nwant {want:?}"
        );
    }
}

/// Asserts a value's shape and float data.
#[track_caller]
pub(crate) fn check<F: Float>(v: &Value<F>, shape: &[usize], want: &[f64]) {
    assert_eq!(v.shape(), shape, "shape");
    close(&floats(v), want, 1e-6);
}
