//! Lowering of the non-elementwise ops, one function per family.

use dlc_ir::types::strides;
use dlc_ir::{NodeId, Op, ReduceKind, ValueId};

use super::Lower;
use super::elementwise::broadcast_strides;
use crate::CodegenError;
use crate::kernel::{Activation, BufId, CopyKernel, Kernel, KernelOp, MatMulKernel, MatView};

/// Lowers one non-elementwise node.
pub fn lower(cx: &mut Lower, id: NodeId) -> Result<(), CodegenError> {
    let node = cx.g.node(id);
    match &node.op {
        Op::Reduce { kind, axes, .. } => reduce(cx, id, *kind, axes),
        Op::GlobalAvgPool => {
            let rank = cx.g.ty(cx.g.operands(id)[0]).rank();
            reduce(cx, id, ReduceKind::Mean, &(2..rank).collect::<Vec<_>>())
        }
        Op::ArgMax { axis, .. } => {
            let (outer, len, inner) =
                split3(&cx.g.ty(cx.g.operands(id)[0]).shape, *axis, *axis + 1);
            single(
                cx,
                id,
                "argmax",
                KernelOp::ArgMax { outer, len, inner },
                outer * inner,
                (outer * len * inner) as f64,
            )
        }
        Op::Softmax { axis } | Op::LogSoftmax { axis } => {
            let (outer, len, inner) =
                split3(&cx.g.ty(cx.g.operands(id)[0]).shape, *axis, *axis + 1);
            let log = matches!(node.op, Op::LogSoftmax { .. });
            let op = KernelOp::Softmax {
                outer,
                len,
                inner,
                log,
            };
            single(
                cx,
                id,
                node.op.name(),
                op,
                outer,
                (outer * len * inner * 8) as f64,
            )
        }
        Op::Transpose { perm } => {
            let x = cx.g.ty(cx.g.operands(id)[0]).clone();
            let st = strides(&x.shape);
            let out_shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
            let copy = CopyKernel {
                src_strides: perm.iter().map(|&p| st[p]).collect(),
                dst_strides: strides(&out_shape),
                shape: out_shape,
                src_offset: 0,
                dst_offset: 0,
                dtype: x.dtype,
            };
            copy_kernel(cx, id, "transpose", copy)
        }
        Op::BroadcastTo { shape } => {
            let x = cx.g.ty(cx.g.operands(id)[0]).clone();
            let copy = CopyKernel {
                src_strides: broadcast_strides(&x.shape, shape),
                dst_strides: strides(shape),
                shape: shape.clone(),
                src_offset: 0,
                dst_offset: 0,
                dtype: x.dtype,
            };
            copy_kernel(cx, id, "broadcast_to", copy)
        }
        Op::Slice { ranges } => {
            let x = cx.g.ty(cx.g.operands(id)[0]).clone();
            let st = strides(&x.shape);
            let shape: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
            let copy = CopyKernel {
                src_strides: ranges.iter().zip(&st).map(|(r, s)| r.step * s).collect(),
                src_offset: ranges.iter().zip(&st).map(|(r, s)| r.start * s).sum(),
                dst_strides: strides(&shape),
                shape,
                dst_offset: 0,
                dtype: x.dtype,
            };
            copy_kernel(cx, id, "slice", copy)
        }
        Op::Concat { axis } => concat(cx, id, *axis),
        Op::MatMul => matmul(cx, id),
        Op::Gather { .. }
        | Op::OneHot { .. }
        | Op::BatchNorm { .. }
        | Op::LayerNorm { .. }
        | Op::MseLoss
        | Op::CrossEntropy => super::norm::lower(cx, id),
        Op::Conv(_) | Op::ConvTranspose(_) | Op::Pool(_) => super::spatial::lower(cx, id),
        Op::Recurrent { .. }
        | Op::GridLstm
        | Op::Attention { .. }
        | Op::MultiHeadAttention { .. } => super::sequence::lower(cx, id),
        Op::ConvWeightGrad { .. }
        | Op::PoolGrad(_)
        | Op::GatherGrad { .. }
        | Op::AttentionGrad { .. } => super::backward::lower(cx, id),
        Op::RecurrentGrad { cell, sequence } => {
            super::recurrent_grad::lower(cx, id, *cell, *sequence)
        }
        Op::GridLstmGrad => {
            super::grid_grad::lower(cx, id);
            Ok(())
        }
        other => Err(CodegenError::Unsupported(other.name())),
    }
}

/// Collapses a copy's iteration space (see [`super::collapse_dims`]).
pub(crate) fn collapse_copy(c: CopyKernel) -> CopyKernel {
    let (shape, st) = super::collapse_dims(&c.shape, &[c.src_strides, c.dst_strides]);
    CopyKernel {
        shape,
        src_strides: st[0].clone(),
        dst_strides: st[1].clone(),
        ..c
    }
}

/// `(prod(shape[..a]), prod(shape[a..b]), prod(shape[b..]))`.
pub(crate) fn split3(shape: &[usize], a: usize, b: usize) -> (usize, usize, usize) {
    (
        shape[..a].iter().product(),
        shape[a..b].iter().product(),
        shape[b..].iter().product(),
    )
}

/// Emits a one-input, one-output kernel writing the node's first result.
pub(crate) fn single(
    cx: &mut Lower,
    id: NodeId,
    name: &str,
    op: KernelOp,
    parallel: usize,
    flops: f64,
) -> Result<(), CodegenError> {
    let x = cx.g.operands(id)[0];
    let input = cx.buf(x);
    let bytes = (cx.g.ty(x).size_bytes() + cx.g.ty(ValueId::first(id)).size_bytes()) as f64;
    let out = cx.result_buffer(ValueId::first(id));
    cx.push_kernel(Kernel {
        name: name.to_string(),
        op,
        inputs: vec![input],
        outputs: vec![out],
        parallel,
        flops,
        bytes,
        nodes: vec![id],
        in_place: vec![],
    });
    Ok(())
}

fn copy_kernel(
    cx: &mut Lower,
    id: NodeId,
    name: &str,
    copy: CopyKernel,
) -> Result<(), CodegenError> {
    let copy = collapse_copy(copy);
    let parallel = copy.shape[0];
    single(cx, id, name, KernelOp::Copy(copy), parallel, 0.0)
}

/// Reductions over any set of axes, as one kernel per contiguous run of axes
/// (last run first); a mean of equal-sized means is the overall mean.
fn reduce(
    cx: &mut Lower,
    id: NodeId,
    kind: ReduceKind,
    axes: &[usize],
) -> Result<(), CodegenError> {
    let x = cx.g.operands(id)[0];
    let mut shape = cx.g.ty(x).shape.clone();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &a in axes {
        match runs.last_mut() {
            Some((_, end)) if *end == a => *end += 1,
            _ => runs.push((a, a + 1)),
        }
    }
    let mut input = cx.buf(x);
    let dtype = cx.g.ty(x).dtype;
    for (i, &(a, b)) in runs.iter().enumerate().rev() {
        let (outer, len, inner) = split3(&shape, a, b);
        shape.drain(a..b);
        let last = i == 0;
        let out = if last {
            cx.result_buffer(ValueId::first(id))
        } else {
            cx.temp_buffer(
                dtype,
                outer * inner,
                format!("{}_partial{i}", cx.g.value_name(ValueId::first(id))),
            )
        };
        cx.push_kernel(Kernel {
            name: kind.name().to_string(),
            op: KernelOp::Reduce {
                kind,
                outer,
                len,
                inner,
            },
            inputs: vec![input],
            outputs: vec![out],
            parallel: outer,
            flops: (outer * len * inner) as f64,
            bytes: (4 * outer * inner * (len + 1)) as f64,
            nodes: vec![id],
            in_place: vec![],
        });
        input = out;
    }
    Ok(())
}

/// Concatenation: one strided copy per operand into its slab of the result.
fn concat(cx: &mut Lower, id: NodeId, axis: usize) -> Result<(), CodegenError> {
    let out_ty = cx.g.ty(ValueId::first(id)).clone();
    let out_strides = strides(&out_ty.shape);
    let out = cx.result_buffer(ValueId::first(id));
    let mut at = 0;
    for v in cx.g.operands(id) {
        let ty = cx.g.ty(v).clone();
        let copy = collapse_copy(CopyKernel {
            src_strides: strides(&ty.shape),
            src_offset: 0,
            dst_strides: out_strides.clone(),
            dst_offset: at * out_strides[axis],
            shape: ty.shape.clone(),
            dtype: ty.dtype,
        });
        at += ty.shape[axis];
        let input = cx.buf(v);
        cx.push_kernel(Kernel {
            name: "concat".to_string(),
            parallel: copy.shape[0],
            op: KernelOp::Copy(copy),
            inputs: vec![input],
            outputs: vec![out],
            flops: 0.0,
            bytes: 2.0 * ty.size_bytes() as f64,
            nodes: vec![id],
            in_place: vec![],
        });
    }
    Ok(())
}

/// Numpy matmul of operands with rank >= 2 (batch dims broadcast). An operand
/// that is a folded transpose (see `fusion::folded_transposes`) is read from the
/// transpose's input with its last two strides exchanged.
fn matmul(cx: &mut Lower, id: NodeId) -> Result<(), CodegenError> {
    let ops = cx.g.operands(id);
    let out_ty = cx.g.ty(ValueId::first(id)).clone();
    let r = out_ty.rank();
    let batch = out_ty.shape[..r - 2].to_vec();
    let operand = |v: ValueId| -> (BufId, MatView) {
        let (src, transposed) = if cx.folded.contains(&v.node) {
            (cx.g.operands(v.node)[0], true)
        } else {
            (v, false)
        };
        let shape = &cx.g.ty(src).shape;
        let rank = shape.len();
        let st = strides(shape);
        let bs = broadcast_strides(&shape[..rank - 2], &batch);
        let scale = shape[rank - 2] * shape[rank - 1];
        let (row_stride, col_stride) = if transposed {
            (st[rank - 1], st[rank - 2])
        } else {
            (st[rank - 2], st[rank - 1])
        };
        let view = MatView {
            offset: 0,
            row_stride,
            col_stride,
            batch_strides: bs.iter().map(|&s| s * scale).collect(),
        };
        (cx.buf(src), view)
    };
    let (a_buf, a) = operand(ops[0]);
    let (b_buf, b) = operand(ops[1]);
    let (a_ty, b_ty) = (cx.g.ty(ops[0]), cx.g.ty(ops[1]));
    let mk = MatMulKernel {
        batch: batch.clone(),
        m: a_ty.shape[a_ty.rank() - 2],
        n: b_ty.shape[b_ty.rank() - 1],
        k: a_ty.shape[a_ty.rank() - 1],
        a,
        b,
        bias: None,
        activation: Activation::Identity,
        epilogue: None,
    };
    let out = cx.result_buffer(ValueId::first(id));
    push_matmul(cx, mk, vec![a_buf, b_buf], out, vec![id]);
    Ok(())
}

/// Appends a matmul kernel: `inputs` are A, B and (when `mk.bias` is set) the bias
/// buffer; `out` receives the contiguous `[batch.., m, n]` result.
pub(crate) fn push_matmul(
    cx: &mut Lower,
    mk: MatMulKernel,
    inputs: Vec<BufId>,
    out: BufId,
    nodes: Vec<NodeId>,
) {
    let nb: usize = mk.batch.iter().product();
    let (m, n, k) = (mk.m, mk.n, mk.k);
    cx.push_kernel(Kernel {
        name: "matmul".to_string(),
        parallel: mk.parallel(),
        op: KernelOp::MatMul(mk),
        inputs,
        outputs: vec![out],
        flops: (2 * nb * m * n * k) as f64,
        bytes: (4 * nb * (m * k + k * n + m * n)) as f64,
        nodes,
        in_place: vec![],
    });
}
