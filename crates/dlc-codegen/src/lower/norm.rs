//! Lowering of the norm op family (see `crate::kernel::norm`): gather, one-hot,
//! batch and layer normalisation, and the losses.
//!
//! Each op becomes one kernel, except the losses, whose scalar mean needs a
//! second, sequential kernel over per-row (cross-entropy) or per-block (MSE)
//! partial results when there is more than one of them.

use dlc_ir::{DType, NodeId, Op, ReduceKind, ValueId};

use super::Lower;
use super::ops::split3;
use crate::CodegenError;
use crate::kernel::{BufId, Kernel, KernelOp, NormOp};

/// Elements per block of the squared-error partial sums (two 128 KiB inputs).
const MSE_BLOCK: usize = 1 << 15;

/// Lowers one node of the family.
pub fn lower(cx: &mut Lower, id: NodeId) -> Result<(), CodegenError> {
    let g = cx.g;
    let ops = g.operands(id);
    let x = g.ty(ops[0]).clone();
    let bytes_of = |v: ValueId| g.ty(v).size_bytes();
    let in_bytes: usize = ops.iter().map(|&v| bytes_of(v)).sum();
    match g.node(id).op {
        Op::Gather { axis } => {
            let (outer, axis_len, inner) = split3(&x.shape, axis, axis + 1);
            let count = g.ty(ops[1]).numel();
            let op = NormOp::Gather {
                outer,
                axis_len,
                count,
                inner,
                dtype: x.dtype,
            };
            let out_bytes = bytes_of(ValueId::first(id));
            push(cx, id, "gather", op, outer * count, 0.0, out_bytes * 2, 1);
        }
        Op::OneHot { depth } => {
            let count = x.numel();
            let op = NormOp::OneHot { count, depth };
            let bytes = in_bytes + bytes_of(ValueId::first(id));
            push(cx, id, "one_hot", op, count, 0.0, bytes, 1);
        }
        Op::BatchNorm {
            eps,
            momentum,
            training,
        } => {
            let (outer, channels, inner) = split3(&x.shape, 1, 2);
            let op = NormOp::BatchNorm {
                outer,
                channels,
                inner,
                eps: eps as f32,
                momentum: training.then_some(momentum as f32),
            };
            let (parallel, n_out, passes) = match (training, inner) {
                (true, _) => (channels, 3, 3),
                (false, 1) => (outer, 1, 2),
                (false, _) => (outer * channels, 1, 2),
            };
            let flops = (x.numel() * 2 * passes) as f64;
            push(
                cx,
                id,
                "batchnorm",
                op,
                parallel,
                flops,
                in_bytes * passes,
                n_out,
            );
        }
        Op::LayerNorm { axis, eps } => {
            if super::epilogue::absorb_layernorm(cx, id, eps as f32) {
                return Ok(());
            }
            let (rows, len, _) = split3(&x.shape, axis, x.rank());
            let op = NormOp::LayerNorm {
                rows,
                len,
                eps: eps as f32,
            };
            let flops = (x.numel() * 8) as f64;
            push(cx, id, "layernorm", op, rows, flops, in_bytes * 2, 1);
        }
        Op::MseLoss => {
            let len = x.numel();
            let blocks = len.div_ceil(MSE_BLOCK).max(1);
            let op = NormOp::SquaredError {
                len,
                block: MSE_BLOCK,
                divisor: len as f32,
            };
            loss(cx, id, "mse", op, blocks, (3 * len) as f64, in_bytes);
        }
        Op::CrossEntropy => {
            let (rows, classes) = (x.shape[0], x.shape[1]);
            let op = NormOp::CrossEntropyRows { rows, classes };
            let flops = (rows * classes * 24) as f64;
            loss(cx, id, "cross_entropy", op, rows, flops, in_bytes);
        }
        ref other => {
            return Err(CodegenError::Internal(format!(
                "{} reached the norm lowering",
                other.name()
            )));
        }
    }
    Ok(())
}

/// Appends a kernel reading every operand of `id` and writing its first `n_out` results.
#[allow(clippy::too_many_arguments)]
fn push(
    cx: &mut Lower,
    id: NodeId,
    name: &str,
    op: NormOp,
    parallel: usize,
    flops: f64,
    bytes: usize,
    n_out: u32,
) {
    let inputs: Vec<BufId> = cx.g.operands(id).iter().map(|&v| cx.buf(v)).collect();
    let outputs: Vec<BufId> = (0..n_out)
        .map(|result| cx.result_buffer(ValueId { node: id, result }))
        .collect();
    // Normalisations read each element of `x` before writing the same element of `y`.
    let in_place = match op {
        NormOp::BatchNorm { .. } | NormOp::LayerNorm { .. } => vec![(0, 0)],
        _ => vec![],
    };
    cx.push_kernel(Kernel {
        name: name.to_string(),
        op: KernelOp::Norm(op),
        inputs,
        outputs,
        parallel,
        flops,
        bytes: bytes as f64,
        nodes: vec![id],
        in_place,
    });
}

/// A loss: `op` writes `parts` partial results (into the scalar output itself
/// when there is one); more than one are then combined by a sequential
/// reduction (the mean of cross-entropy rows; the sum of pre-divided MSE blocks).
fn loss(
    cx: &mut Lower,
    id: NodeId,
    name: &str,
    op: NormOp,
    parts: usize,
    flops: f64,
    bytes: usize,
) {
    if parts == 1 && matches!(op, NormOp::SquaredError { .. }) {
        push(cx, id, name, op, 1, flops, bytes, 1);
        return;
    }
    let kind = match op {
        NormOp::SquaredError { .. } => ReduceKind::Sum,
        _ => ReduceKind::Mean,
    };
    let inputs: Vec<BufId> = cx.g.operands(id).iter().map(|&v| cx.buf(v)).collect();
    let v0 = ValueId::first(id);
    let partial = cx.temp_buffer(DType::F32, parts, format!("{}_parts", cx.g.value_name(v0)));
    cx.push_kernel(Kernel {
        name: name.to_string(),
        op: KernelOp::Norm(op),
        inputs,
        outputs: vec![partial],
        parallel: parts,
        flops,
        bytes: bytes as f64,
        nodes: vec![id],
        in_place: vec![],
    });
    let out = cx.result_buffer(v0);
    cx.push_kernel(Kernel {
        name: format!("{name}_{}", kind.name()),
        op: KernelOp::Reduce {
            kind,
            outer: 1,
            len: parts,
            inner: 1,
        },
        inputs: vec![partial],
        outputs: vec![out],
        parallel: 1,
        flops: parts as f64,
        bytes: (4 * parts) as f64,
        nodes: vec![id],
        in_place: vec![],
    });
}
