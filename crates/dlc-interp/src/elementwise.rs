//! Elementwise ops: unary math and activations, binary arithmetic and comparisons
//! with numpy broadcasting, `where`, `cast` and dropout.

use dlc_ir::init::dropout_keep;
use dlc_ir::{BinaryOp, DType, UnaryOp};
use dlc_tensor::Value;
use ndarray::{ArrayD, IxDyn, Zip};

use crate::array::{OpResult, boolean, broadcast_pair, broadcast_view, float, zip_broadcast};
use crate::float::{Float, c, nan_max, nan_min, sigmoid};

/// One unary op on one element.
pub(crate) fn unary_scalar<F: Float>(op: UnaryOp, x: F) -> F {
    let half = c::<F>(0.5);
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Relu => relu(x),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Rsqrt => F::one() / x.sqrt(),
        UnaryOp::Sigmoid => sigmoid(x),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::GeluErf => half * x * (F::one() + (x / c::<F>(2.0).sqrt()).erf()),
        UnaryOp::GeluTanh => {
            let k = c::<F>((2.0 / std::f64::consts::PI).sqrt());
            let inner = k * (x + c::<F>(0.044715) * x * x * x);
            half * x * (F::one() + inner.tanh())
        }
        // max(x, 0) + log(1 + exp(-|x|)): never overflows; NaN stays NaN.
        UnaryOp::Softplus => relu(x) + (-x.abs()).exp().ln_1p(),
        UnaryOp::Erf => x.erf(),
        // Bool-only; handled before reaching float code.
        UnaryOp::Not => x,
    }
}

/// `max(x, 0)`, keeping NaN.
fn relu<F: Float>(x: F) -> F {
    if x.is_nan() || x > F::zero() {
        x
    } else {
        F::zero()
    }
}

/// Elementwise unary op on a float or (for `not`) a bool operand.
pub(crate) fn unary<F: Float>(op: UnaryOp, x: &Value<F>) -> OpResult<F> {
    if op == UnaryOp::Not {
        return Ok(vec![Value::Bool(boolean(x)?.mapv(|b| !b))]);
    }
    Ok(vec![Value::Float(float(x)?.mapv(|v| unary_scalar(op, v)))])
}

/// `leaky_relu`, `elu` and `clamp`: unary ops with attributes.
pub(crate) fn map_float<F: Float>(x: &Value<F>, f: impl Fn(F) -> F) -> OpResult<F> {
    Ok(vec![Value::Float(float(x)?.mapv(f))])
}

/// `leaky_relu(x, alpha)`.
pub(crate) fn leaky_relu<F: Float>(alpha: f64) -> impl Fn(F) -> F {
    let alpha = c::<F>(alpha);
    move |x| if x > F::zero() { x } else { alpha * x }
}

/// `elu(x, alpha)`.
pub(crate) fn elu<F: Float>(alpha: f64) -> impl Fn(F) -> F {
    let alpha = c::<F>(alpha);
    move |x| {
        if x > F::zero() { x } else { alpha * x.exp_m1() }
    }
}

/// `clamp(x, min, max)`, keeping NaN.
pub(crate) fn clamp<F: Float>(min: f64, max: f64) -> impl Fn(F) -> F {
    let (lo, hi) = (c::<F>(min), c::<F>(max));
    move |x| nan_min(nan_max(x, lo), hi)
}

/// One binary arithmetic op on two floats.
fn float_arith<F: Float>(op: BinaryOp, a: F, b: F) -> F {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Pow => a.powf(b),
        BinaryOp::Maximum => nan_max(a, b),
        BinaryOp::Minimum => nan_min(a, b),
        _ => F::nan(),
    }
}

/// Whether `op` is defined on two integers.
fn is_int_arith(op: BinaryOp) -> bool {
    use BinaryOp::*;
    matches!(op, Add | Sub | Mul | Maximum | Minimum)
}

/// One binary arithmetic op on two integers (wrapping, like the JIT's machine ops).
fn int_arith(op: BinaryOp, a: i64, b: i64) -> i64 {
    match op {
        BinaryOp::Add => a.wrapping_add(b),
        BinaryOp::Sub => a.wrapping_sub(b),
        BinaryOp::Mul => a.wrapping_mul(b),
        BinaryOp::Maximum => a.max(b),
        _ => a.min(b),
    }
}

/// One comparison on any ordered type.
fn compare<T: PartialOrd>(op: BinaryOp, a: T, b: T) -> bool {
    match op {
        BinaryOp::Eq => a == b,
        BinaryOp::Ne => a != b,
        BinaryOp::Lt => a < b,
        BinaryOp::Le => a <= b,
        BinaryOp::Gt => a > b,
        _ => a >= b,
    }
}

/// Elementwise binary op with numpy broadcasting.
pub(crate) fn binary<F: Float>(op: BinaryOp, a: &Value<F>, b: &Value<F>) -> OpResult<F> {
    let v = match (a, b) {
        (Value::Float(x), Value::Float(y)) if op.is_comparison() => {
            Value::Bool(zip_broadcast(x, y, |p, q| compare(op, p, q))?)
        }
        (Value::Float(x), Value::Float(y)) if !op.is_logical() => {
            Value::Float(zip_broadcast(x, y, |p, q| float_arith(op, p, q))?)
        }
        (Value::Int(x), Value::Int(y)) if op.is_comparison() => {
            Value::Bool(zip_broadcast(x, y, |p, q| compare(op, p, q))?)
        }
        (Value::Int(x), Value::Int(y)) if is_int_arith(op) => {
            Value::Int(zip_broadcast(x, y, |p, q| int_arith(op, p, q))?)
        }
        (Value::Bool(x), Value::Bool(y)) => match op {
            BinaryOp::And => Value::Bool(zip_broadcast(x, y, |p, q| p && q)?),
            BinaryOp::Or => Value::Bool(zip_broadcast(x, y, |p, q| p || q)?),
            BinaryOp::Eq => Value::Bool(zip_broadcast(x, y, |p, q| p == q)?),
            BinaryOp::Ne => Value::Bool(zip_broadcast(x, y, |p, q| p != q)?),
            _ => return Err(format!("{} is not defined on bool", op.name())),
        },
        _ => {
            return Err(format!(
                "{} is not defined on {} and {}",
                op.name(),
                a.ty(),
                b.ty()
            ));
        }
    };
    Ok(vec![v])
}

/// `where(cond, a, b)` with broadcasting over all three operands.
pub(crate) fn select<F: Float>(cond: &Value<F>, a: &Value<F>, b: &Value<F>) -> OpResult<F> {
    let cond = boolean(cond)?;
    let shape = broadcast_pair(cond.shape(), a.shape())?;
    let shape = broadcast_pair(&shape, b.shape())?;
    fn pick<T: Clone>(
        cond: &ArrayD<bool>,
        a: &ArrayD<T>,
        b: &ArrayD<T>,
        shape: &[usize],
    ) -> Result<ArrayD<T>, String> {
        let (cv, av, bv) = (
            broadcast_view(cond, shape)?,
            broadcast_view(a, shape)?,
            broadcast_view(b, shape)?,
        );
        Ok(Zip::from(&cv)
            .and(&av)
            .and(&bv)
            .map_collect(|&k, x, y| if k { x.clone() } else { y.clone() })
            .into_dyn())
    }
    let v = match (a, b) {
        (Value::Float(x), Value::Float(y)) => Value::Float(pick(cond, x, y, &shape)?),
        (Value::Int(x), Value::Int(y)) => Value::Int(pick(cond, x, y, &shape)?),
        (Value::Bool(x), Value::Bool(y)) => Value::Bool(pick(cond, x, y, &shape)?),
        _ => {
            return Err(format!(
                "branches {} and {} differ in dtype",
                a.ty(),
                b.ty()
            ));
        }
    };
    Ok(vec![v])
}

/// Converts the element type.
///
/// float → i64 truncates toward zero and saturates (NaN → 0); i64 → float rounds to
/// nearest; bool ↔ numbers are 0/1; number → bool is `x != 0` (NaN → true).
pub(crate) fn cast<F: Float>(x: &Value<F>, to: DType) -> OpResult<F> {
    let v = match (x, to) {
        (Value::Float(a), DType::F32) => Value::Float(a.clone()),
        (Value::Float(a), DType::I64) => Value::Int(a.mapv(|v| v.as_f64() as i64)),
        (Value::Float(a), DType::Bool) => Value::Bool(a.mapv(|v| v != F::zero())),
        (Value::Int(a), DType::F32) => Value::Float(a.mapv(F::cast_i64)),
        (Value::Int(a), DType::I64) => Value::Int(a.clone()),
        (Value::Int(a), DType::Bool) => Value::Bool(a.mapv(|v| v != 0)),
        (Value::Bool(a), DType::F32) => {
            Value::Float(a.mapv(|v| if v { F::one() } else { F::zero() }))
        }
        (Value::Bool(a), DType::I64) => Value::Int(a.mapv(i64::from)),
        (Value::Bool(a), DType::Bool) => Value::Bool(a.clone()),
    };
    Ok(vec![v])
}

/// Inverted dropout: element `i` (row-major) is kept iff
/// [`dropout_keep`]`(seed, i, p)`, kept values are multiplied by `1 / (1 - p)` and
/// dropped ones are exactly zero. Identity when not training.
pub(crate) fn dropout<F: Float>(x: &Value<F>, p: f64, seed: u64, training: bool) -> OpResult<F> {
    let a = float(x)?;
    if !training {
        return Ok(vec![Value::Float(a.clone())]);
    }
    let scale = c::<F>(1.0 / (1.0 - p));
    let data: Vec<F> = a
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if dropout_keep(seed, i as u64, p as f32) {
                v * scale
            } else {
                F::zero()
            }
        })
        .collect();
    Ok(vec![Value::Float(
        ArrayD::from_shape_vec(IxDyn(a.shape()), data).map_err(|e| e.to_string())?,
    )])
}
