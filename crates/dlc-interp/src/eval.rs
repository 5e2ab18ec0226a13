//! Dispatch: evaluates one node from its operands' values.

use dlc_ir::{ConstValue, Node, Op};
use dlc_tensor::{Env, Value};

use crate::array::{OpResult, arg, from_vec};
use crate::float::Float;
use crate::{
    attention, backward, conv, elementwise as ew, linalg, loss, norm, pool, recurrent,
    recurrent_grad, reduce, shape,
};

/// Evaluates `node` on its operand values. Sources read `inputs`/`params` (already
/// checked against the graph) or their constant data.
pub(crate) fn eval_node<F: Float>(
    node: &Node,
    args: &[&Value<F>],
    inputs: &Env<F>,
    params: &Env<F>,
) -> OpResult<F> {
    let name = node.names.first().map(String::as_str).unwrap_or_default();
    let a = |i| arg(args, i);
    match &node.op {
        Op::Input => source(inputs, name, "input"),
        Op::Param { .. } => source(params, name, "parameter"),
        Op::Const { value } => constant(value, &node.types[0].shape),
        Op::Unary(u) => ew::unary(*u, a(0)?),
        Op::Binary(b) => ew::binary(*b, a(0)?, a(1)?),
        Op::LeakyRelu { alpha } => ew::map_float(a(0)?, ew::leaky_relu(*alpha)),
        Op::Elu { alpha } => ew::map_float(a(0)?, ew::elu(*alpha)),
        Op::Clamp { min, max } => ew::map_float(a(0)?, ew::clamp(*min, *max)),
        Op::Where => ew::select(a(0)?, a(1)?, a(2)?),
        Op::Cast { to } => ew::cast(a(0)?, *to),
        Op::Dropout { p, seed, training } => ew::dropout(a(0)?, *p, *seed, *training),
        Op::MatMul => linalg::matmul(a(0)?, a(1)?),
        Op::Conv(c) => conv::conv(c, args),
        Op::ConvTranspose(c) => conv::conv_transpose(c, args),
        Op::Pool(p) => pool::pool(p, a(0)?),
        Op::GlobalAvgPool => pool::global_avg_pool(a(0)?),
        Op::Reduce {
            kind,
            axes,
            keepdim,
        } => reduce::reduce(*kind, axes, *keepdim, a(0)?),
        Op::ArgMax { axis, keepdim } => reduce::argmax(*axis, *keepdim, a(0)?),
        Op::Softmax { axis } => reduce::softmax(*axis, false, a(0)?),
        Op::LogSoftmax { axis } => reduce::softmax(*axis, true, a(0)?),
        Op::Reshape { shape } => shape::reshape(shape, a(0)?),
        Op::Transpose { perm } => shape::transpose(perm, a(0)?),
        Op::BroadcastTo { shape } => shape::broadcast_to(shape, a(0)?),
        Op::Concat { axis } => shape::concat(*axis, args),
        Op::Slice { ranges } => shape::slice(ranges, a(0)?),
        Op::Gather { axis } => shape::gather(*axis, a(0)?, a(1)?),
        Op::OneHot { depth } => shape::one_hot(*depth, a(0)?),
        Op::BatchNorm {
            eps,
            momentum,
            training,
        } => norm::batch_norm(*eps, *momentum, *training, args),
        Op::LayerNorm { axis, eps } => norm::layer_norm(*axis, *eps, args),
        Op::MseLoss => loss::mse(a(0)?, a(1)?),
        Op::CrossEntropy => loss::cross_entropy(a(0)?, a(1)?),
        Op::Recurrent { cell, sequence } => recurrent::recurrent(*cell, *sequence, args),
        Op::GridLstm => recurrent::grid_lstm(args),
        Op::Attention { causal, scale } => attention::attention(*causal, *scale, args),
        Op::MultiHeadAttention { heads, causal } => attention::multi_head(*heads, *causal, args),
        Op::ConvWeightGrad { conv, kernel } => backward::conv_weight_grad(conv, kernel, args),
        Op::PoolGrad(p) => backward::pool_grad(p, a(0)?, a(1)?),
        Op::GatherGrad { axis, size } => backward::gather_grad(*axis, *size, a(0)?, a(1)?),
        Op::AttentionGrad { causal, scale } => backward::attention_grad(*causal, *scale, args),
        Op::RecurrentGrad { cell, sequence } => {
            recurrent_grad::recurrent_grad(*cell, *sequence, args)
        }
        Op::GridLstmGrad => recurrent_grad::grid_lstm_grad(args),
    }
}

/// The value bound to an input or parameter.
fn source<F: Float>(env: &Env<F>, name: &str, what: &str) -> OpResult<F> {
    env.get(name)
        .map(|v| vec![v.clone()])
        .ok_or_else(|| format!("no value for {what} `{name}`"))
}

/// A constant's data as a value of `shape` (floats cast from f64 to `F`).
fn constant<F: Float>(value: &ConstValue, shape: &[usize]) -> OpResult<F> {
    let v = match value {
        ConstValue::Float(d) => Value::Float(from_vec(
            shape,
            d.iter().map(|&x| F::cast_f64(x)).collect(),
        )?),
        ConstValue::Int(d) => Value::Int(from_vec(shape, d.clone())?),
        ConstValue::Bool(d) => Value::Bool(from_vec(shape, d.clone())?),
    };
    Ok(vec![v])
}
