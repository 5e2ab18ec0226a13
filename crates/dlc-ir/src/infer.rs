//! Type and shape inference: the result types of every op from its operand types.
//!
//! Every rule checks what the op needs (arity, dtypes, ranks, matching dims) and
//! returns a [`TypeError`] that names the op and the shapes involved.

use crate::op::{CellKind, ConvAttrs, ConvTransposeAttrs, Op, PoolAttrs};
use crate::types::{DType, ShapeDisplay, TensorType, broadcast_shapes, broadcasts_to, check_shape};

/// An op applied to operands of the wrong kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {message}")]
pub struct TypeError {
    /// The op's name.
    pub op: &'static str,
    /// What is wrong, naming the shapes or dtypes involved.
    pub message: String,
}

type Result<T> = std::result::Result<T, TypeError>;

pub(crate) fn fail<T>(op: &Op, message: impl Into<String>) -> Result<T> {
    Err(TypeError {
        op: op.name(),
        message: message.into(),
    })
}

pub(crate) fn sh(s: &[usize]) -> ShapeDisplay<'_> {
    ShapeDisplay(s)
}

/// Infers the result types of `op` applied to operands of types `args`.
///
/// Sources (`Input`, `Param`, `Const`) have no operands; their type is given by
/// their declaration and is not inferred here.
pub fn infer(op: &Op, args: &[TensorType]) -> Result<Vec<TensorType>> {
    let out = infer_unchecked(op, args)?;
    for t in &out {
        if let Err(limit) = check_shape(&t.shape) {
            return fail(op, format!("result shape {}: {limit}", sh(&t.shape)));
        }
    }
    Ok(out)
}

pub(crate) fn arity(op: &Op, args: &[TensorType], lo: usize, hi: usize) -> Result<()> {
    if args.len() < lo || args.len() > hi {
        let want = if lo == hi {
            format!("{lo}")
        } else {
            format!("{lo} to {hi}")
        };
        return fail(op, format!("takes {want} operand(s), got {}", args.len()));
    }
    Ok(())
}

pub(crate) fn want_dtype(op: &Op, t: &TensorType, what: &str, dtype: DType) -> Result<()> {
    if t.dtype != dtype {
        return fail(
            op,
            format!("{what} must be {dtype}, got {} {}", t.dtype, sh(&t.shape)),
        );
    }
    Ok(())
}

pub(crate) fn want_f32(op: &Op, args: &[TensorType]) -> Result<()> {
    for (i, t) in args.iter().enumerate() {
        want_dtype(op, t, &format!("operand {}", i + 1), DType::F32)?;
    }
    Ok(())
}

pub(crate) fn want_shape(op: &Op, t: &TensorType, what: &str, shape: &[usize]) -> Result<()> {
    if t.shape != shape {
        return fail(
            op,
            format!("{what} must have shape {}, got {}", sh(shape), sh(&t.shape)),
        );
    }
    Ok(())
}

pub(crate) fn want_rank(op: &Op, t: &TensorType, what: &str, rank: usize) -> Result<()> {
    if t.rank() != rank {
        return fail(
            op,
            format!("{what} must have rank {rank}, got shape {}", sh(&t.shape)),
        );
    }
    Ok(())
}

pub(crate) fn infer_unchecked(op: &Op, a: &[TensorType]) -> Result<Vec<TensorType>> {
    let one = |dtype: DType, shape: Vec<usize>| Ok(vec![TensorType::new(dtype, shape)]);
    match op {
        Op::Input | Op::Param { .. } | Op::Const { .. } => {
            fail(op, "sources have declared types; nothing to infer")
        }
        Op::Unary(u) => {
            arity(op, a, 1, 1)?;
            let want = if *u == crate::op::UnaryOp::Not {
                DType::Bool
            } else {
                DType::F32
            };
            want_dtype(op, &a[0], "the operand", want)?;
            Ok(vec![a[0].clone()])
        }
        Op::LeakyRelu { .. } | Op::Elu { .. } | Op::Clamp { .. } => {
            arity(op, a, 1, 1)?;
            want_f32(op, a)?;
            Ok(vec![a[0].clone()])
        }
        Op::Dropout { p, .. } => {
            arity(op, a, 1, 1)?;
            want_f32(op, a)?;
            if !(0.0..1.0).contains(p) {
                return fail(op, format!("p must be in [0, 1), got {p}"));
            }
            Ok(vec![a[0].clone()])
        }
        Op::Binary(b) => {
            arity(op, a, 2, 2)?;
            if a[0].dtype != a[1].dtype {
                return fail(
                    op,
                    format!(
                        "operands must have the same dtype, got {} and {}",
                        a[0], a[1]
                    ),
                );
            }
            let dt = a[0].dtype;
            if b.is_logical() {
                want_dtype(op, &a[0], "operand 1", DType::Bool)?;
            } else if b.is_comparison() {
                if dt == DType::Bool
                    && !matches!(b, crate::op::BinaryOp::Eq | crate::op::BinaryOp::Ne)
                {
                    return fail(
                        op,
                        "ordering comparisons need f32 or i64 operands, got bool",
                    );
                }
            } else {
                use crate::op::BinaryOp as B;
                let int_ok = matches!(b, B::Add | B::Sub | B::Mul | B::Maximum | B::Minimum);
                if dt != DType::F32 && !(dt == DType::I64 && int_ok) {
                    return fail(op, format!("needs f32 operands, got {} and {}", a[0], a[1]));
                }
            }
            let shape = broadcast_shapes(&a[0].shape, &a[1].shape).ok_or_else(|| TypeError {
                op: op.name(),
                message: format!(
                    "shapes {} and {} do not broadcast",
                    sh(&a[0].shape),
                    sh(&a[1].shape)
                ),
            })?;
            let out_dt = if b.is_comparison() { DType::Bool } else { dt };
            one(out_dt, shape)
        }
        Op::Where => {
            arity(op, a, 3, 3)?;
            want_dtype(op, &a[0], "the condition", DType::Bool)?;
            if a[1].dtype != a[2].dtype {
                return fail(
                    op,
                    format!(
                        "both branches must have the same dtype, got {} and {}",
                        a[1], a[2]
                    ),
                );
            }
            let s = broadcast_shapes(&a[0].shape, &a[1].shape)
                .and_then(|s| broadcast_shapes(&s, &a[2].shape))
                .ok_or_else(|| TypeError {
                    op: op.name(),
                    message: format!(
                        "shapes {}, {} and {} do not broadcast",
                        sh(&a[0].shape),
                        sh(&a[1].shape),
                        sh(&a[2].shape)
                    ),
                })?;
            one(a[1].dtype, s)
        }
        Op::Cast { to } => {
            arity(op, a, 1, 1)?;
            one(*to, a[0].shape.clone())
        }
        Op::MatMul => {
            arity(op, a, 2, 2)?;
            want_f32(op, a)?;
            matmul_shape(op, &a[0].shape, &a[1].shape).map(|s| vec![TensorType::f32(s)])
        }
        Op::Conv(c) => conv(op, c, a),
        Op::ConvTranspose(c) => conv_transpose(op, c, a),
        Op::Pool(p) => pool(op, p, a),
        Op::GlobalAvgPool => {
            arity(op, a, 1, 1)?;
            want_f32(op, a)?;
            if a[0].rank() < 3 {
                return fail(
                    op,
                    format!("needs [N, C, *spatial] input, got {}", sh(&a[0].shape)),
                );
            }
            let mut s = a[0].shape.clone();
            s[2..].iter_mut().for_each(|d| *d = 1);
            one(DType::F32, s)
        }
        Op::Reduce { axes, keepdim, .. } => {
            arity(op, a, 1, 1)?;
            want_f32(op, a)?;
            check_axes(op, axes, a[0].rank())?;
            one(DType::F32, reduced_shape(&a[0].shape, axes, *keepdim))
        }
        Op::ArgMax { axis, keepdim } => {
            arity(op, a, 1, 1)?;
            want_f32(op, a)?;
            check_axes(op, &[*axis], a[0].rank())?;
            one(DType::I64, reduced_shape(&a[0].shape, &[*axis], *keepdim))
        }
        Op::Softmax { axis } | Op::LogSoftmax { axis } => {
            arity(op, a, 1, 1)?;
            want_f32(op, a)?;
            check_axes(op, &[*axis], a[0].rank())?;
            Ok(vec![a[0].clone()])
        }
        Op::Reshape { shape } => {
            arity(op, a, 1, 1)?;
            let n: Option<usize> = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
            if n != Some(a[0].numel()) {
                return fail(
                    op,
                    format!(
                        "cannot reshape {} ({} elements) to {}",
                        sh(&a[0].shape),
                        a[0].numel(),
                        sh(shape)
                    ),
                );
            }
            one(a[0].dtype, shape.clone())
        }
        Op::Transpose { perm } => {
            arity(op, a, 1, 1)?;
            let mut seen = vec![false; a[0].rank()];
            let valid = perm.len() == a[0].rank()
                && perm
                    .iter()
                    .all(|&p| p < seen.len() && !std::mem::replace(&mut seen[p], true));
            if !valid {
                return fail(
                    op,
                    format!(
                        "perm {perm:?} is not a permutation of the {} axes of {}",
                        a[0].rank(),
                        sh(&a[0].shape)
                    ),
                );
            }
            one(a[0].dtype, perm.iter().map(|&p| a[0].shape[p]).collect())
        }
        Op::BroadcastTo { shape } => {
            arity(op, a, 1, 1)?;
            if !broadcasts_to(&a[0].shape, shape) {
                return fail(
                    op,
                    format!(
                        "shape {} does not broadcast to {}",
                        sh(&a[0].shape),
                        sh(shape)
                    ),
                );
            }
            one(a[0].dtype, shape.clone())
        }
        Op::Concat { axis } => {
            arity(op, a, 1, usize::MAX)?;
            let first = &a[0];
            check_axes(op, &[*axis], first.rank())?;
            let mut total = 0usize;
            for (i, t) in a.iter().enumerate() {
                let compatible = t.dtype == first.dtype
                    && t.rank() == first.rank()
                    && (0..t.rank()).all(|d| d == *axis || t.shape[d] == first.shape[d]);
                if !compatible {
                    return fail(
                        op,
                        format!(
                            "operand {} has type {t}, incompatible with operand 1 {first} \
                             (all dims but axis {axis} must match)",
                            i + 1
                        ),
                    );
                }
                total = total.saturating_add(t.shape[*axis]);
            }
            let mut s = first.shape.clone();
            s[*axis] = total;
            one(first.dtype, s)
        }
        Op::Slice { ranges } => {
            arity(op, a, 1, 1)?;
            if ranges.len() != a[0].rank() {
                return fail(
                    op,
                    format!(
                        "needs one range per axis of {}, got {}",
                        sh(&a[0].shape),
                        ranges.len()
                    ),
                );
            }
            let mut s = Vec::with_capacity(ranges.len());
            for (axis, (r, &d)) in ranges.iter().zip(&a[0].shape).enumerate() {
                if r.step == 0 || r.start >= r.end || r.end > d {
                    return fail(
                        op,
                        format!(
                            "axis {axis}: range {}:{}:{} is empty or outside dim {d} of {}",
                            r.start,
                            r.end,
                            r.step,
                            sh(&a[0].shape)
                        ),
                    );
                }
                s.push(r.len());
            }
            one(a[0].dtype, s)
        }
        Op::Gather { axis } => {
            arity(op, a, 2, 2)?;
            want_dtype(op, &a[1], "the indices", DType::I64)?;
            check_axes(op, &[*axis], a[0].rank())?;
            let x = &a[0].shape;
            let s = [&x[..*axis], &a[1].shape[..], &x[axis + 1..]].concat();
            one(a[0].dtype, s)
        }
        Op::OneHot { depth } => {
            arity(op, a, 1, 1)?;
            want_dtype(op, &a[0], "the indices", DType::I64)?;
            if *depth == 0 {
                return fail(op, "depth must be at least 1");
            }
            let mut s = a[0].shape.clone();
            s.push(*depth);
            one(DType::F32, s)
        }
        Op::BatchNorm { training, eps, .. } => {
            arity(op, a, 5, 5)?;
            want_f32(op, a)?;
            if a[0].rank() < 2 {
                return fail(
                    op,
                    format!("needs [N, C, ...] input, got {}", sh(&a[0].shape)),
                );
            }
            if eps.is_nan() || *eps <= 0.0 {
                return fail(op, format!("eps must be positive, got {eps}"));
            }
            let c = a[0].shape[1];
            for (t, what) in a[1..]
                .iter()
                .zip(["gamma", "beta", "running mean", "running var"])
            {
                want_shape(op, t, what, &[c])?;
            }
            let y = a[0].clone();
            if *training {
                if a[0].numel() / c < 2 {
                    return fail(
                        op,
                        format!(
                            "training needs at least 2 values per channel, input is {}",
                            sh(&a[0].shape)
                        ),
                    );
                }
                Ok(vec![y, TensorType::f32([c]), TensorType::f32([c])])
            } else {
                Ok(vec![y])
            }
        }
        Op::LayerNorm { axis, eps } => {
            arity(op, a, 3, 3)?;
            want_f32(op, a)?;
            check_axes(op, &[*axis], a[0].rank())?;
            if eps.is_nan() || *eps <= 0.0 {
                return fail(op, format!("eps must be positive, got {eps}"));
            }
            let norm = &a[0].shape[*axis..];
            want_shape(op, &a[1], "gamma", norm)?;
            want_shape(op, &a[2], "beta", norm)?;
            Ok(vec![a[0].clone()])
        }
        Op::MseLoss => {
            arity(op, a, 2, 2)?;
            want_f32(op, a)?;
            if a[0].shape != a[1].shape {
                return fail(
                    op,
                    format!(
                        "prediction {} and target {} must have the same shape",
                        sh(&a[0].shape),
                        sh(&a[1].shape)
                    ),
                );
            }
            one(DType::F32, vec![])
        }
        Op::CrossEntropy => {
            arity(op, a, 2, 2)?;
            want_dtype(op, &a[0], "the logits", DType::F32)?;
            want_dtype(op, &a[1], "the labels", DType::I64)?;
            want_rank(op, &a[0], "the logits", 2)?;
            want_shape(op, &a[1], "the labels", &a[0].shape[..1])?;
            one(DType::F32, vec![])
        }
        Op::Recurrent { cell, sequence } => recurrent(op, *cell, *sequence, a),
        Op::GridLstm => grid_lstm(op, a),
        Op::ConvWeightGrad { .. }
        | Op::PoolGrad(_)
        | Op::GatherGrad { .. }
        | Op::RecurrentGrad { .. }
        | Op::GridLstmGrad
        | Op::AttentionGrad { .. } => crate::infer_grad::infer(op, a),
        Op::Attention { scale, .. } => {
            arity(op, a, 3, 3)?;
            want_f32(op, a)?;
            let (q, k, v) = (&a[0].shape, &a[1].shape, &a[2].shape);
            let r = q.len();
            let ok = r >= 2
                && k.len() == r
                && v.len() == r
                && q[..r - 2] == k[..r - 2]
                && k[..r - 1] == v[..r - 1]
                && q[r - 1] == k[r - 1];
            if !ok {
                return fail(
                    op,
                    format!(
                        "needs q [.., L, E], k [.., S, E], v [.., S, Ev] with equal batch dims, \
                         got {}, {}, {}",
                        sh(q),
                        sh(k),
                        sh(v)
                    ),
                );
            }
            if !scale.is_finite() {
                return fail(op, format!("scale must be finite, got {scale}"));
            }
            let mut s = q.clone();
            s[r - 1] = v[r - 1];
            one(DType::F32, s)
        }
        Op::MultiHeadAttention { heads, .. } => {
            arity(op, a, 7, 7)?;
            want_f32(op, a)?;
            for (t, what) in a[..3].iter().zip(["query", "key", "value"]) {
                want_rank(op, t, what, 3)?;
            }
            let [l, n, e] = [a[0].shape[0], a[0].shape[1], a[0].shape[2]];
            let s = a[1].shape[0];
            want_shape(op, &a[1], "key", &[s, n, e])?;
            want_shape(op, &a[2], "value", &[s, n, e])?;
            if *heads == 0 || e % heads != 0 {
                return fail(
                    op,
                    format!("heads = {heads} must divide the embedding size {e}"),
                );
            }
            want_shape(op, &a[3], "in_proj_weight", &[3 * e, e])?;
            want_shape(op, &a[4], "in_proj_bias", &[3 * e])?;
            want_shape(op, &a[5], "out_proj_weight", &[e, e])?;
            want_shape(op, &a[6], "out_proj_bias", &[e])?;
            one(DType::F32, vec![l, n, e])
        }
    }
}

/// Numpy matmul shape for operands of rank >= 2.
fn matmul_shape(op: &Op, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    if a.len() < 2 || b.len() < 2 {
        return fail(
            op,
            format!("operands need rank >= 2, got {} and {}", sh(a), sh(b)),
        );
    }
    let (m, k1) = (a[a.len() - 2], a[a.len() - 1]);
    let (k2, n) = (b[b.len() - 2], b[b.len() - 1]);
    if k1 != k2 {
        return fail(
            op,
            format!(
                "inner dimensions differ: {} @ {} ({k1} vs {k2})",
                sh(a),
                sh(b)
            ),
        );
    }
    let batch =
        broadcast_shapes(&a[..a.len() - 2], &b[..b.len() - 2]).ok_or_else(|| TypeError {
            op: op.name(),
            message: format!("batch dims of {} and {} do not broadcast", sh(a), sh(b)),
        })?;
    Ok([batch, vec![m, n]].concat())
}

fn check_axes(op: &Op, axes: &[usize], rank: usize) -> Result<()> {
    for (i, &ax) in axes.iter().enumerate() {
        if ax >= rank {
            return fail(op, format!("axis {ax} is out of range for rank {rank}"));
        }
        if axes[..i].contains(&ax) {
            return fail(op, format!("axis {ax} is listed twice"));
        }
    }
    Ok(())
}

/// The shape after reducing `axes`.
pub fn reduced_shape(shape: &[usize], axes: &[usize], keepdim: bool) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keepdim) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// Output length of a sliding window over one dim, or `None` if no window fits.
pub fn window_out(
    input: usize,
    pad: (usize, usize),
    kernel: usize,
    dilation: usize,
    stride: usize,
) -> Option<usize> {
    let span = dilation
        .checked_mul(kernel.checked_sub(1)?)?
        .checked_add(1)?;
    let padded = input.checked_add(pad.0)?.checked_add(pad.1)?;
    (padded >= span && stride > 0).then(|| (padded - span) / stride + 1)
}

fn check_spatial_attrs(op: &Op, spatial: usize, lens: &[(&str, usize)]) -> Result<()> {
    for (name, len) in lens {
        if *len != spatial {
            return fail(
                op,
                format!("{name} has {len} entries, the op has {spatial} spatial dims"),
            );
        }
    }
    Ok(())
}

fn conv(op: &Op, c: &ConvAttrs, a: &[TensorType]) -> Result<Vec<TensorType>> {
    arity(op, a, 2, 3)?;
    want_f32(op, a)?;
    let (x, w) = (&a[0].shape, &a[1].shape);
    let sp = c.stride.len();
    check_spatial_attrs(
        op,
        sp,
        &[("padding", c.padding.len()), ("dilation", c.dilation.len())],
    )?;
    want_rank(op, &a[0], "the input", sp + 2)?;
    want_rank(op, &a[1], "the weight", sp + 2)?;
    let g = c.groups;
    if g == 0 || x[1] % g != 0 || w[0] % g != 0 {
        return fail(
            op,
            format!(
                "groups = {g} must divide the input channels {} and the output channels {}",
                x[1], w[0]
            ),
        );
    }
    if w[1] * g != x[1] {
        return fail(
            op,
            format!(
                "weight {} expects {} input channels (x groups {g}), input {} has {}",
                sh(w),
                w[1] * g,
                sh(x),
                x[1]
            ),
        );
    }
    if a.len() == 3 {
        want_shape(op, &a[2], "the bias", &[w[0]])?;
    }
    let mut out = vec![x[0], w[0]];
    for d in 0..sp {
        let o = window_out(x[2 + d], c.padding[d], w[2 + d], c.dilation[d], c.stride[d]);
        match o {
            Some(o) if c.dilation[d] > 0 => out.push(o),
            _ => {
                return fail(
                    op,
                    format!(
                        "kernel {} (dilation {:?}) does not fit input {} with padding {:?}, stride {:?}",
                        sh(w),
                        c.dilation,
                        sh(x),
                        c.padding,
                        c.stride
                    ),
                );
            }
        }
    }
    Ok(vec![TensorType::f32(out)])
}

fn conv_transpose(op: &Op, c: &ConvTransposeAttrs, a: &[TensorType]) -> Result<Vec<TensorType>> {
    arity(op, a, 2, 3)?;
    want_f32(op, a)?;
    let (x, w) = (&a[0].shape, &a[1].shape);
    let sp = c.stride.len();
    check_spatial_attrs(
        op,
        sp,
        &[
            ("padding", c.padding.len()),
            ("dilation", c.dilation.len()),
            ("output_padding", c.output_padding.len()),
        ],
    )?;
    want_rank(op, &a[0], "the input", sp + 2)?;
    want_rank(op, &a[1], "the weight", sp + 2)?;
    let g = c.groups;
    if g == 0 || x[1] % g != 0 || w[0] != x[1] {
        return fail(
            op,
            format!(
                "weight {} (IOHW) needs {} input channels divisible by groups = {g}; input is {}",
                sh(w),
                w[0],
                sh(x)
            ),
        );
    }
    let cout = w[1] * g;
    if a.len() == 3 {
        want_shape(op, &a[2], "the bias", &[cout])?;
    }
    let mut out = vec![x[0], cout];
    for d in 0..sp {
        let (s, dil, op_) = (c.stride[d], c.dilation[d], c.output_padding[d]);
        if s == 0 || dil == 0 || (op_ >= s && op_ >= dil) {
            return fail(
                op,
                format!(
                    "stride {:?} and dilation {:?} must be >= 1 and output_padding {:?} smaller than stride or dilation",
                    c.stride, c.dilation, c.output_padding
                ),
            );
        }
        let full = (x[2 + d] - 1)
            .checked_mul(s)
            .and_then(|v| v.checked_add(dil.checked_mul(w[2 + d] - 1)?))
            .and_then(|v| v.checked_add(op_ + 1));
        let cropped = full.and_then(|v| v.checked_sub(c.padding[d].0 + c.padding[d].1));
        match cropped {
            Some(o) if o > 0 => out.push(o),
            _ => {
                return fail(
                    op,
                    format!(
                        "padding {:?} crops away the whole output of input {} with kernel {}",
                        c.padding,
                        sh(x),
                        sh(w)
                    ),
                );
            }
        }
    }
    Ok(vec![TensorType::f32(out)])
}

pub(crate) fn pool(op: &Op, p: &PoolAttrs, a: &[TensorType]) -> Result<Vec<TensorType>> {
    arity(op, a, 1, 1)?;
    want_f32(op, a)?;
    let sp = p.kernel.len();
    check_spatial_attrs(
        op,
        sp,
        &[("stride", p.stride.len()), ("padding", p.padding.len())],
    )?;
    want_rank(op, &a[0], "the input", sp + 2)?;
    let x = &a[0].shape;
    let mut out = x[..2].to_vec();
    for d in 0..sp {
        let (k, (lo, hi)) = (p.kernel[d], p.padding[d]);
        if k == 0 || lo > k / 2 || hi > k / 2 {
            return fail(
                op,
                format!(
                    "padding {:?} must be at most half the kernel {:?}",
                    p.padding, p.kernel
                ),
            );
        }
        match window_out(x[2 + d], p.padding[d], k, 1, p.stride[d]) {
            Some(o) => out.push(o),
            None => {
                return fail(
                    op,
                    format!(
                        "kernel {:?} (stride {:?}, padding {:?}) does not fit input {}",
                        p.kernel,
                        p.stride,
                        p.padding,
                        sh(x)
                    ),
                );
            }
        }
    }
    Ok(vec![TensorType::f32(out)])
}

pub(crate) fn recurrent(
    op: &Op,
    cell: CellKind,
    sequence: bool,
    a: &[TensorType],
) -> Result<Vec<TensorType>> {
    let states = if cell.has_cell_state() { 2 } else { 1 };
    arity(op, a, 5 + states, 5 + states)?;
    want_f32(op, a)?;
    let x = &a[0];
    let (b, i) = if sequence {
        want_rank(op, x, "the input sequence [T, B, I]", 3)?;
        (x.shape[1], x.shape[2])
    } else {
        want_rank(op, x, "the input [B, I]", 2)?;
        (x.shape[0], x.shape[1])
    };
    let w = &a[1 + states..];
    want_rank(op, &w[1], "w_hh [G*H, H]", 2)?;
    let h = w[1].shape[1];
    let gh = cell.gates() * h;
    want_shape(op, &a[1], "h0", &[b, h])?;
    if states == 2 {
        want_shape(op, &a[2], "c0", &[b, h])?;
    }
    want_shape(op, &w[0], "w_ih", &[gh, i])?;
    want_shape(op, &w[1], "w_hh", &[gh, h])?;
    want_shape(op, &w[2], "b_ih", &[gh])?;
    want_shape(op, &w[3], "b_hh", &[gh])?;
    let state = TensorType::f32([b, h]);
    let mut out = Vec::new();
    if sequence {
        out.push(TensorType::f32([x.shape[0], b, h]));
    }
    out.extend(std::iter::repeat_n(state, states));
    Ok(out)
}

pub(crate) fn grid_lstm(op: &Op, a: &[TensorType]) -> Result<Vec<TensorType>> {
    arity(op, a, 5, 5)?;
    want_f32(op, a)?;
    want_rank(op, &a[0], "the input [H, W, B, F]", 4)?;
    want_rank(op, &a[1], "w1 [F+2*hidden, 4*hidden]", 2)?;
    let [gh, gw, b, f] = [a[0].shape[0], a[0].shape[1], a[0].shape[2], a[0].shape[3]];
    let g4 = a[1].shape[1];
    if !g4.is_multiple_of(4) {
        return fail(op, format!("w1 {} needs 4*hidden columns", sh(&a[1].shape)));
    }
    let h = g4 / 4;
    want_shape(op, &a[1], "w1", &[f + 2 * h, g4])?;
    want_shape(op, &a[2], "b1", &[g4])?;
    want_shape(op, &a[3], "w2", &[f + 2 * h, g4])?;
    want_shape(op, &a[4], "b2", &[g4])?;
    Ok(vec![
        TensorType::f32([gh, gw, b, 2 * h]),
        TensorType::f32([gw, b, h]),
        TensorType::f32([gw, b, h]),
        TensorType::f32([gh, b, h]),
        TensorType::f32([gh, b, h]),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{BinaryOp, PoolKind};

    fn f(s: &[usize]) -> TensorType {
        TensorType::f32(s.to_vec())
    }

    #[test]
    fn binary_broadcasts_both_ways() {
        let t = infer(&Op::Binary(BinaryOp::Add), &[f(&[4, 1, 6]), f(&[5, 1])]).unwrap();
        assert_eq!(t[0].shape, vec![4, 5, 6]);
        let err = infer(&Op::Binary(BinaryOp::Mul), &[f(&[2, 3]), f(&[4])]).unwrap_err();
        assert_eq!(err.op, "mul");
        assert!(
            err.message.contains("[2, 3]") && err.message.contains("[4]"),
            "{err}"
        );
    }

    #[test]
    fn matmul_broadcasts_batch_and_names_shapes() {
        let t = infer(&Op::MatMul, &[f(&[2, 1, 4, 6]), f(&[3, 6, 5])]).unwrap();
        assert_eq!(t[0].shape, vec![2, 3, 4, 5]);
        let err = infer(&Op::MatMul, &[f(&[2, 3]), f(&[4, 5])]).unwrap_err();
        assert!(err.to_string().contains("[2, 3] @ [4, 5]"), "{err}");
    }

    #[test]
    fn conv_output_shapes_match_pytorch() {
        let c = ConvAttrs {
            stride: vec![2, 1],
            padding: vec![(1, 1), (2, 2)],
            dilation: vec![1, 1],
            groups: 1,
        };
        let t = infer(
            &Op::Conv(c),
            &[f(&[2, 3, 7, 10]), f(&[4, 3, 3, 5]), f(&[4])],
        )
        .unwrap();
        assert_eq!(t[0].shape, vec![2, 4, 4, 10]);
        let ct = ConvTransposeAttrs {
            stride: vec![2, 2],
            padding: vec![(1, 1), (1, 1)],
            output_padding: vec![1, 1],
            dilation: vec![1, 1],
            groups: 1,
        };
        let t = infer(
            &Op::ConvTranspose(ct),
            &[f(&[2, 4, 5, 5]), f(&[4, 3, 3, 3])],
        )
        .unwrap();
        assert_eq!(t[0].shape, vec![2, 3, 10, 10]);
    }

    #[test]
    fn pooling_and_reductions() {
        let p = PoolAttrs {
            kind: PoolKind::Max,
            kernel: vec![3, 3],
            stride: vec![2, 2],
            padding: vec![(1, 1), (1, 1)],
        };
        let t = infer(&Op::Pool(p), &[f(&[1, 4, 9, 9])]).unwrap();
        assert_eq!(t[0].shape, vec![1, 4, 5, 5]);
        let r = Op::Reduce {
            kind: crate::op::ReduceKind::Sum,
            axes: vec![0, 1, 2],
            keepdim: false,
        };
        assert_eq!(
            infer(&r, &[f(&[3, 4, 5])]).unwrap()[0].shape,
            Vec::<usize>::new()
        );
    }

    #[test]
    fn recurrent_shapes() {
        let op = Op::Recurrent {
            cell: CellKind::Lstm,
            sequence: true,
        };
        let args = [
            f(&[5, 3, 4]),
            f(&[3, 6]),
            f(&[3, 6]),
            f(&[24, 4]),
            f(&[24, 6]),
            f(&[24]),
            f(&[24]),
        ];
        let t = infer(&op, &args).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].shape, vec![5, 3, 6]);
        let mut bad = args.clone();
        bad[3] = f(&[18, 4]);
        assert!(infer(&op, &bad).unwrap_err().message.contains("w_ih"));
    }

    #[test]
    fn results_over_the_element_limit_are_refused() {
        let op = Op::BroadcastTo {
            shape: vec![1 << 16, 1 << 16],
        };
        assert!(infer(&op, &[f(&[1])]).is_err());
    }
}
