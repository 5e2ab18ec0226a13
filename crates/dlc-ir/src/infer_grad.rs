//! Shape inference of the backward ops autodiff emits: each checks that its
//! operands are a valid forward call plus cotangents shaped like the forward
//! results, and returns the gradients' types (shaped like the forward operands).

use crate::infer::{
    TypeError, arity, fail, grid_lstm, infer_unchecked, pool, recurrent, sh, want_dtype, want_f32,
    want_rank, want_shape, window_out,
};
use crate::op::{ConvAttrs, Op};
use crate::types::{DType, TensorType};

type Result<T> = std::result::Result<T, TypeError>;

/// Infers the result types of a backward op.
pub(crate) fn infer(op: &Op, a: &[TensorType]) -> Result<Vec<TensorType>> {
    match op {
        Op::ConvWeightGrad { conv, kernel } => conv_weight_grad(op, conv, kernel, a),
        Op::PoolGrad(p) => {
            arity(op, a, 2, 2)?;
            want_f32(op, a)?;
            let y = pool(op, p, &a[..1])?;
            want_shape(op, &a[1], "dy", &y[0].shape)?;
            Ok(vec![a[0].clone()])
        }
        Op::GatherGrad { axis, size } => gather_grad(op, *axis, *size, a),
        Op::RecurrentGrad { cell, sequence } => {
            let fwd = 5 + 1 + cell.has_cell_state() as usize;
            let n_out = fwd - 5 + *sequence as usize;
            arity(op, a, fwd + n_out, fwd + n_out)?;
            let outs = recurrent(op, *cell, *sequence, &a[..fwd])?;
            cotangents(op, &outs, &a[fwd..])?;
            Ok(a[..fwd].to_vec())
        }
        Op::GridLstmGrad => {
            arity(op, a, 10, 10)?;
            let outs = grid_lstm(op, &a[..5])?;
            cotangents(op, &outs, &a[5..])?;
            Ok(a[..5].to_vec())
        }
        Op::AttentionGrad { causal, scale } => {
            arity(op, a, 4, 4)?;
            let fwd = Op::Attention {
                causal: *causal,
                scale: *scale,
            };
            let outs = infer_unchecked(&fwd, &a[..3]).map_err(|e| TypeError {
                op: op.name(),
                message: e.message,
            })?;
            cotangents(op, &outs, &a[3..])?;
            Ok(a[..3].to_vec())
        }
        _ => fail(op, "not a backward op"),
    }
}

/// Checks that each cotangent has the type of the forward result it belongs to.
fn cotangents(op: &Op, outs: &[TensorType], grads: &[TensorType]) -> Result<()> {
    for (i, (o, g)) in outs.iter().zip(grads).enumerate() {
        want_dtype(
            op,
            g,
            &format!("the gradient of result {}", i + 1),
            DType::F32,
        )?;
        want_shape(
            op,
            g,
            &format!("the gradient of result {}", i + 1),
            &o.shape,
        )?;
    }
    Ok(())
}

fn conv_weight_grad(
    op: &Op,
    c: &ConvAttrs,
    kernel: &[usize],
    a: &[TensorType],
) -> Result<Vec<TensorType>> {
    arity(op, a, 2, 2)?;
    want_f32(op, a)?;
    let sp = c.stride.len();
    let lens = [
        ("padding", c.padding.len()),
        ("dilation", c.dilation.len()),
        ("kernel", kernel.len()),
    ];
    if let Some((name, len)) = lens.iter().find(|(_, l)| *l != sp) {
        return fail(
            op,
            format!("{name} has {len} entries, the op has {sp} spatial dims"),
        );
    }
    want_rank(op, &a[0], "the input", sp + 2)?;
    want_rank(op, &a[1], "dy", sp + 2)?;
    let (x, dy) = (&a[0].shape, &a[1].shape);
    let g = c.groups;
    if g == 0 || x[1] % g != 0 || dy[1] % g != 0 {
        return fail(
            op,
            format!(
                "groups = {g} must divide the input channels {} and the output channels {}",
                x[1], dy[1]
            ),
        );
    }
    if dy[0] != x[0] {
        return fail(
            op,
            format!("dy {} and input {} differ in batch size", sh(dy), sh(x)),
        );
    }
    for d in 0..sp {
        let o = window_out(
            x[2 + d],
            c.padding[d],
            kernel[d],
            c.dilation[d],
            c.stride[d],
        );
        let fits = kernel[d] > 0 && c.dilation[d] > 0 && o.is_some_and(|o| dy[2 + d] <= o);
        if !fits {
            return fail(
                op,
                format!(
                    "dy {} does not fit the output of kernel {kernel:?} (stride {:?}, padding {:?}, dilation {:?}) over input {}",
                    sh(dy),
                    c.stride,
                    c.padding,
                    c.dilation,
                    sh(x)
                ),
            );
        }
    }
    let mut shape = vec![dy[1], x[1] / g];
    shape.extend_from_slice(kernel);
    Ok(vec![TensorType::f32(shape)])
}

fn gather_grad(op: &Op, axis: usize, size: usize, a: &[TensorType]) -> Result<Vec<TensorType>> {
    arity(op, a, 2, 2)?;
    want_dtype(op, &a[0], "dy", DType::F32)?;
    want_dtype(op, &a[1], "the indices", DType::I64)?;
    let (dy, idx) = (&a[0].shape, &a[1].shape);
    if size == 0 {
        return fail(op, "size must be at least 1");
    }
    if dy.len() < axis + idx.len() || dy[axis..axis + idx.len()] != idx[..] {
        return fail(
            op,
            format!(
                "dy {} must hold the indices' shape {} at axis {axis}",
                sh(dy),
                sh(idx)
            ),
        );
    }
    let shape = [&dy[..axis], &[size], &dy[axis + idx.len()..]].concat();
    Ok(vec![TensorType::f32(shape)])
}
