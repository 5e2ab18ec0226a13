//! Runtime values for dlc: typed n-dimensional arrays, checked against graph types,
//! and read from / written to `.npy`, `.npz` and safetensors files.
//!
//! [`Value<F>`] is generic over the float type so the interpreter can run in f64
//! (for gradient checks); [`Tensor`] is the f32 value every other stage uses.
#![deny(missing_docs)]

mod bind;
mod io;

use std::collections::BTreeMap;

use dlc_ir::types::ShapeDisplay;
use dlc_ir::{DType, TensorType};
use ndarray::ArrayD;

pub use bind::{check_inputs, check_params, init_params};
pub use io::{IoError, read_npz, read_safetensors, read_tensors, write_npz, write_safetensors};

/// A runtime value: an array of floats, integers or booleans.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<F = f32> {
    /// Floating-point data (the graph's f32 type, computed as `F`).
    Float(ArrayD<F>),
    /// i64 data (indices, labels).
    Int(ArrayD<i64>),
    /// Boolean data (masks).
    Bool(ArrayD<bool>),
}

/// The f32 value used by the runtime, the CLI and file I/O.
pub type Tensor = Value<f32>;

/// Named values, ordered by name (inputs, outputs, parameters).
pub type Env<F = f32> = BTreeMap<String, Value<F>>;

/// A value that does not fit the type a graph expects.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// A required value is absent.
    #[error("missing {what} `{name}` (expected {expected})")]
    Missing {
        /// "input" or "parameter".
        what: &'static str,
        /// Its name.
        name: String,
        /// The type the graph declares.
        expected: TensorType,
    },
    /// A value's dtype or shape differs from the declaration.
    #[error("{what} `{name}` has type {got}, but the model declares {expected}")]
    Mismatch {
        /// "input" or "parameter".
        what: &'static str,
        /// Its name.
        name: String,
        /// What was given.
        got: String,
        /// What the graph declares.
        expected: TensorType,
    },
    /// A value was given that the graph does not declare.
    #[error("unknown {what} `{name}`; the model declares: {known}")]
    Unknown {
        /// "input" or "parameter".
        what: &'static str,
        /// Its name.
        name: String,
        /// The declared names.
        known: String,
    },
}

impl<F> Value<F> {
    /// The element type (floats report [`DType::F32`], the graph's float type).
    pub fn dtype(&self) -> DType {
        match self {
            Value::Float(_) => DType::F32,
            Value::Int(_) => DType::I64,
            Value::Bool(_) => DType::Bool,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Value::Float(a) => a.shape(),
            Value::Int(a) => a.shape(),
            Value::Bool(a) => a.shape(),
        }
    }

    /// The type `dtype[shape]`.
    pub fn ty(&self) -> TensorType {
        TensorType::new(self.dtype(), self.shape().to_vec())
    }

    /// The float array, if this is a float value.
    pub fn as_float(&self) -> Option<&ArrayD<F>> {
        match self {
            Value::Float(a) => Some(a),
            _ => None,
        }
    }

    /// The integer array, if this is an integer value.
    pub fn as_int(&self) -> Option<&ArrayD<i64>> {
        match self {
            Value::Int(a) => Some(a),
            _ => None,
        }
    }

    /// The boolean array, if this is a boolean value.
    pub fn as_bool(&self) -> Option<&ArrayD<bool>> {
        match self {
            Value::Bool(a) => Some(a),
            _ => None,
        }
    }

    /// Converts the float payload with `f` (integers and booleans are kept).
    pub fn map_float<G>(&self, f: impl Fn(&F) -> G) -> Value<G> {
        match self {
            Value::Float(a) => Value::Float(a.map(f)),
            Value::Int(a) => Value::Int(a.clone()),
            Value::Bool(a) => Value::Bool(a.clone()),
        }
    }

    /// Checks the value against a declared type; `what` and `name` go into the error.
    pub fn check(
        &self,
        what: &'static str,
        name: &str,
        expected: &TensorType,
    ) -> Result<(), ValueError> {
        if self.dtype() == expected.dtype && self.shape() == expected.shape.as_slice() {
            Ok(())
        } else {
            Err(ValueError::Mismatch {
                what,
                name: name.to_string(),
                got: format!("{}{}", self.dtype(), ShapeDisplay(self.shape())),
                expected: expected.clone(),
            })
        }
    }
}

impl Tensor {
    /// Widens an f32 value to f64 (for the f64 interpreter).
    pub fn to_f64(&self) -> Value<f64> {
        self.map_float(|&x| x as f64)
    }
}

impl Value<f64> {
    /// Rounds an f64 value to f32.
    pub fn to_f32(&self) -> Tensor {
        self.map_float(|&x| x as f32)
    }
}

impl From<ArrayD<f32>> for Tensor {
    fn from(a: ArrayD<f32>) -> Tensor {
        Value::Float(a)
    }
}

impl From<ArrayD<i64>> for Tensor {
    fn from(a: ArrayD<i64>) -> Tensor {
        Value::Int(a)
    }
}

impl From<ArrayD<bool>> for Tensor {
    fn from(a: ArrayD<bool>) -> Tensor {
        Value::Bool(a)
    }
}

/// A one-line summary of a value: type, and for floats min/mean/max and the first values.
pub fn summarize(v: &Tensor) -> String {
    let ty = v.ty();
    match v {
        Value::Float(a) => {
            let n = a.len().max(1) as f64;
            let (mut lo, mut hi, mut sum, mut nonfinite) =
                (f32::INFINITY, f32::NEG_INFINITY, 0.0f64, 0);
            for &x in a.iter() {
                if x.is_finite() {
                    lo = lo.min(x);
                    hi = hi.max(x);
                    sum += x as f64;
                } else {
                    nonfinite += 1;
                }
            }
            let head: Vec<String> = a.iter().take(4).map(|x| format!("{x:.5}")).collect();
            let more = if a.len() > 4 { ", ..." } else { "" };
            let bad = if nonfinite > 0 {
                format!("  ({nonfinite} non-finite)")
            } else {
                String::new()
            };
            format!(
                "{ty}  min {lo:.5}  mean {:.5}  max {hi:.5}  [{}{more}]{bad}",
                sum / n,
                head.join(", ")
            )
        }
        Value::Int(a) => {
            let head: Vec<String> = a.iter().take(8).map(|x| x.to_string()).collect();
            let more = if a.len() > 8 { ", ..." } else { "" };
            format!("{ty}  [{}{more}]", head.join(", "))
        }
        Value::Bool(a) => {
            let t = a.iter().filter(|&&b| b).count();
            format!("{ty}  {t} true of {}", a.len())
        }
    }
}

/// Largest elementwise error of `got` against `want`, as a multiple of the
/// allowance `atol + rtol * |want|` (a result <= 1 passes). NaNs must match.
///
/// Returns `None` when the shapes differ or a NaN appears on one side only.
pub fn allowance_ratio(got: &ArrayD<f32>, want: &ArrayD<f32>, rtol: f32, atol: f32) -> Option<f32> {
    if got.shape() != want.shape() {
        return None;
    }
    let mut worst = 0.0f32;
    for (&g, &w) in got.iter().zip(want.iter()) {
        if g.is_nan() || w.is_nan() {
            if g.is_nan() != w.is_nan() {
                return None;
            }
            continue;
        }
        if g == w {
            continue;
        }
        let r = (g - w).abs() / (atol + rtol * w.abs());
        if r.is_nan() {
            return None;
        }
        worst = worst.max(r);
    }
    Some(worst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayD;

    #[test]
    fn check_names_both_types() {
        let t: Tensor = ArrayD::<f32>::zeros(vec![2, 3]).into();
        assert!(t.check("input", "x", &TensorType::f32([2, 3])).is_ok());
        let e = t.check("input", "x", &TensorType::f32([3, 2])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "input `x` has type f32[2, 3], but the model declares f32[3, 2]"
        );
    }

    #[test]
    fn allowance_ratio_scales_with_magnitude() {
        let a = ArrayD::from_shape_vec(vec![2], vec![1.0f32, 100.0]).unwrap();
        let b = ArrayD::from_shape_vec(vec![2], vec![1.0f32, 100.01]).unwrap();
        let r = allowance_ratio(&a, &b, 1e-4, 1e-5).unwrap();
        assert!(r < 1.0, "{r}");
        let c = ArrayD::from_shape_vec(vec![2], vec![f32::NAN, 1.0]).unwrap();
        assert_eq!(allowance_ratio(&c, &a, 1e-4, 1e-5), None);
    }
}
