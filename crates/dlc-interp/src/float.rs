//! The float types the interpreter computes in.

use std::fmt::{Debug, Display};

/// A float type the interpreter can compute in: `f32` (what the JIT computes) or
/// `f64` (for finite-difference gradient checks).
///
/// The graph's `f32` dtype is evaluated in `F`; integer and boolean values are
/// the same whatever `F` is.
pub trait Float:
    num_traits::Float
    + num_traits::NumAssignOps
    + ndarray::ScalarOperand
    + Debug
    + Display
    + Default
    + Send
    + Sync
    + std::iter::Sum
    + 'static
{
    /// Converts an f64 (attributes, constants) to `F`, rounding to nearest.
    fn cast_f64(x: f64) -> Self;
    /// Converts an i64 to `F`, rounding to nearest.
    fn cast_i64(x: i64) -> Self;
    /// Widens (or keeps) the value as an f64.
    fn as_f64(self) -> f64;
    /// The error function (via `libm`).
    fn erf(self) -> Self;
}

impl Float for f32 {
    fn cast_f64(x: f64) -> f32 {
        x as f32
    }
    fn cast_i64(x: i64) -> f32 {
        x as f32
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
    fn erf(self) -> f32 {
        libm::erff(self)
    }
}

impl Float for f64 {
    fn cast_f64(x: f64) -> f64 {
        x
    }
    fn cast_i64(x: i64) -> f64 {
        x as f64
    }
    fn as_f64(self) -> f64 {
        self
    }
    fn erf(self) -> f64 {
        libm::erf(self)
    }
}

/// `F::cast_f64` as a free function, for brevity in kernels.
pub(crate) fn c<F: Float>(x: f64) -> F {
    F::cast_f64(x)
}

/// Maximum that propagates NaN (IEEE `maximum`, unlike `f32::max`).
pub(crate) fn nan_max<F: Float>(a: F, b: F) -> F {
    if a.is_nan() || b.is_nan() {
        F::nan()
    } else if a >= b {
        a
    } else {
        b
    }
}

/// Minimum that propagates NaN.
pub(crate) fn nan_min<F: Float>(a: F, b: F) -> F {
    if a.is_nan() || b.is_nan() {
        F::nan()
    } else if a <= b {
        a
    } else {
        b
    }
}

/// The logistic sigmoid `1 / (1 + exp(-x))`.
pub(crate) fn sigmoid<F: Float>(x: F) -> F {
    F::one() / (F::one() + (-x).exp())
}
