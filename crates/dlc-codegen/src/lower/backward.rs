//! Lowering of the backward ops without a recurrence (see
//! `crate::kernel::backward`).
//!
//! The reductions become GEMMs: a convolution weight gradient is the product
//! of the output gradient, channels first, and the patch matrix of the input
//! (one GEMM over every image and output position, per group); the attention
//! gradient is five batched GEMMs around two row passes. Pooling and gather
//! gradients are one kernel each.

use dlc_ir::{ConvAttrs, DType, NodeId, Op, PoolAttrs, ValueId};

use super::Lower;
use super::ops::push_matmul;
use super::spatial::{pad, pair, spatial, window};
use crate::CodegenError;
use crate::kernel::{
    Activation, BackwardOp, BufId, CopyKernel, Kernel, KernelOp, MatMulKernel, MatView, Window,
};

/// Lowers one node of the family.
pub fn lower(cx: &mut Lower, id: NodeId) -> Result<(), CodegenError> {
    match &cx.g.node(id).op {
        Op::ConvWeightGrad { conv, kernel } => conv_weight_grad(cx, id, conv, kernel),
        Op::PoolGrad(p) => pool_grad(cx, id, p),
        Op::GatherGrad { axis, size } => gather_grad(cx, id, *axis, *size),
        Op::AttentionGrad { causal, scale } => attention_grad(cx, id, *causal, *scale),
        other => Err(CodegenError::Internal(format!(
            "{} reached the backward lowering",
            other.name()
        ))),
    }
}

/// Appends a kernel of the family.
#[allow(clippy::too_many_arguments)]
fn push(
    cx: &mut Lower,
    id: NodeId,
    name: &str,
    op: BackwardOp,
    (inputs, outputs): (Vec<BufId>, Vec<BufId>),
    parallel: usize,
    flops: f64,
    bytes: usize,
) {
    cx.push_kernel(Kernel {
        name: name.to_string(),
        op: KernelOp::Backward(op),
        inputs,
        outputs,
        parallel,
        flops,
        bytes: bytes as f64,
        nodes: vec![id],
        in_place: vec![],
    });
}

/// A scratch f32 buffer named after the node's first result.
fn scratch(cx: &mut Lower, id: NodeId, len: usize, what: &str) -> BufId {
    let name = format!("{}_{what}", cx.g.value_name(ValueId::first(id)));
    cx.temp_buffer(DType::F32, len, name)
}

/// `dw[g] (O/G × C/G·K) = dyᵀ[g] (O/G × N·P) · col (N·P × C/G·K)`: the patch
/// matrix `col [N·P, C·K]` of `x`, `dy` transposed to `[O, N·P]` (a copy, unless
/// N is 1), then one GEMM per group reducing over images and positions at once.
fn conv_weight_grad(
    cx: &mut Lower,
    id: NodeId,
    a: &ConvAttrs,
    kernel: &[usize],
) -> Result<(), CodegenError> {
    if !(1..=2).contains(&kernel.len()) {
        return Err(CodegenError::Unsupported(cx.g.node(id).op.name()));
    }
    let ops = cx.g.operands(id);
    let (x, dy) = (cx.g.ty(ops[0]).clone(), cx.g.ty(ops[1]).clone());
    let (n, c, o) = (x.shape[0], x.shape[1], dy.shape[1]);
    let groups = a.groups;
    let (cg, og) = (c / groups, o / groups);
    let attrs = (&a.stride[..], &a.padding[..], &a.dilation[..]);
    let window = window(&x.shape, &dy.shape, pair(kernel), attrs);
    let Window { kernel, output, .. } = window;
    let (taps, positions) = (kernel[0] * kernel[1], output[0] * output[1]);
    let rows = n * positions;
    let col = scratch(cx, id, rows * c * taps, "patches");
    let im2col = BackwardOp::Im2Col { c, window };
    let io = (vec![cx.buf(ops[0])], vec![col]);
    let bytes = x.size_bytes() + 4 * rows * c * taps;
    push(cx, id, "im2col", im2col, io, n * output[0], 0.0, bytes);
    let dy_t = if n == 1 {
        cx.buf(ops[1])
    } else {
        let t = scratch(cx, id, dy.numel(), "dy_t");
        let copy = CopyKernel {
            shape: vec![o, n, positions],
            src_strides: vec![positions, o * positions, 1],
            src_offset: 0,
            dst_strides: vec![rows, positions, 1],
            dst_offset: 0,
            dtype: DType::F32,
        };
        cx.push_kernel(Kernel {
            name: "transpose".to_string(),
            op: KernelOp::Copy(copy),
            inputs: vec![cx.buf(ops[1])],
            outputs: vec![t],
            parallel: o,
            flops: 0.0,
            bytes: 2.0 * dy.size_bytes() as f64,
            nodes: vec![id],
            in_place: vec![],
        });
        t
    };
    let batch = |s: usize| if groups == 1 { vec![] } else { vec![s] };
    let mk = MatMulKernel {
        batch: batch(groups),
        m: og,
        n: cg * taps,
        k: rows,
        a: MatView {
            offset: 0,
            row_stride: rows,
            col_stride: 1,
            batch_strides: batch(og * rows),
        },
        b: MatView {
            offset: 0,
            row_stride: c * taps,
            col_stride: 1,
            batch_strides: batch(cg * taps),
        },
        bias: None,
        activation: Activation::Identity,
        epilogue: None,
    };
    let out = cx.result_buffer(ValueId::first(id));
    push_matmul(cx, mk, vec![dy_t, col], out, vec![id]);
    Ok(())
}

/// One kernel over the `N·C` planes.
fn pool_grad(cx: &mut Lower, id: NodeId, p: &PoolAttrs) -> Result<(), CodegenError> {
    if !(1..=2).contains(&p.kernel.len()) {
        return Err(CodegenError::Unsupported(cx.g.node(id).op.name()));
    }
    let ops = cx.g.operands(id);
    let (x, dy) = (cx.g.ty(ops[0]).clone(), cx.g.ty(ops[1]).clone());
    let planes = x.shape[0] * x.shape[1];
    let kernel = pair(&p.kernel);
    let op = BackwardOp::PoolGrad {
        kind: p.kind,
        input: spatial(&x.shape),
        output: spatial(&dy.shape),
        kernel,
        stride: pair(&p.stride),
        pad: pad(&p.padding),
    };
    let inputs = vec![cx.buf(ops[0]), cx.buf(ops[1])];
    let out = cx.result_buffer(ValueId::first(id));
    let flops = (dy.numel() * kernel[0] * kernel[1]) as f64;
    let bytes = 2 * x.size_bytes() + dy.size_bytes();
    let name = cx.g.node(id).op.name();
    push(cx, id, name, op, (inputs, vec![out]), planes, flops, bytes);
    Ok(())
}

/// One scatter-add kernel over the slabs before the gathered axis.
fn gather_grad(cx: &mut Lower, id: NodeId, axis: usize, size: usize) -> Result<(), CodegenError> {
    let ops = cx.g.operands(id);
    let (dy, idx) = (cx.g.ty(ops[0]).clone(), cx.g.ty(ops[1]).clone());
    let pre: usize = dy.shape[..axis].iter().product();
    let post: usize = dy.shape[axis + idx.rank()..].iter().product();
    let count = idx.numel();
    let op = BackwardOp::ScatterAdd { size, count, post };
    let inputs = vec![cx.buf(ops[0]), cx.buf(ops[1])];
    let out = cx.result_buffer(ValueId::first(id));
    let bytes = dy.size_bytes() + idx.size_bytes() + 4 * pre * size * post;
    let flops = dy.numel() as f64;
    push(
        cx,
        id,
        "gather_grad",
        op,
        (inputs, vec![out]),
        pre,
        flops,
        bytes,
    );
    Ok(())
}

/// A batched view `[batch][rows, cols]` of a contiguous `[.., rows, cols]` array,
/// read transposed when `t`.
fn mat(rows: usize, cols: usize, t: bool, batched: bool) -> MatView {
    let (row_stride, col_stride) = if t { (1, cols) } else { (cols, 1) };
    MatView {
        offset: 0,
        row_stride,
        col_stride,
        batch_strides: if batched { vec![rows * cols] } else { vec![] },
    }
}

/// `P = softmax(scale·Q Kᵀ)` (recomputed), `dV = Pᵀ dO`, `dP = dO Vᵀ`,
/// `dS = scale·P ⊙ (dP − rowsum(P ⊙ dP))`, `dQ = dS K`, `dK = dSᵀ Q`, each
/// product one GEMM batched over the leading dims.
fn attention_grad(
    cx: &mut Lower,
    id: NodeId,
    causal: bool,
    scale: f64,
) -> Result<(), CodegenError> {
    let ops = cx.g.operands(id);
    let (q, k, v) = (
        cx.g.ty(ops[0]).clone(),
        cx.g.ty(ops[1]).clone(),
        cx.g.ty(ops[2]).clone(),
    );
    let r = q.rank();
    let (l, e, s, ev) = (
        q.shape[r - 2],
        q.shape[r - 1],
        k.shape[r - 2],
        v.shape[r - 1],
    );
    let nb: usize = q.shape[..r - 2].iter().product();
    let batched = nb > 1;
    let batch = if batched { vec![nb] } else { vec![] };
    let bufs: Vec<BufId> = ops.iter().map(|&o| cx.buf(o)).collect();
    let (bq, bk, bv, bdo) = (bufs[0], bufs[1], bufs[2], bufs[3]);
    let gemm = |cx: &mut Lower, (m, n, kk), (a_buf, av), (b_buf, bv), out: BufId| {
        let mk = MatMulKernel {
            batch: batch.clone(),
            m,
            n,
            k: kk,
            a: av,
            b: bv,
            bias: None,
            activation: Activation::Identity,
            epilogue: None,
        };
        push_matmul(cx, mk, vec![a_buf, b_buf], out, vec![id]);
    };
    let probs = scratch(cx, id, nb * l * s, "probs");
    let dscores = scratch(cx, id, nb * l * s, "dscores");
    let results: Vec<BufId> = (0..3)
        .map(|result| cx.result_buffer(ValueId { node: id, result }))
        .collect();
    let (dq, dk, dv) = (results[0], results[1], results[2]);
    // Scores Q Kᵀ, then probabilities in place.
    gemm(
        cx,
        (l, s, e),
        (bq, mat(l, e, false, batched)),
        (bk, mat(s, e, true, batched)),
        probs,
    );
    let op = BackwardOp::AttentionProbs {
        rows: l,
        cols: s,
        causal,
        scale: scale as f32,
    };
    let bytes = 8 * nb * l * s;
    let flops = (nb * l * s * 12) as f64;
    push(
        cx,
        id,
        "attention_probs",
        op,
        (vec![], vec![probs]),
        nb * l,
        flops,
        bytes,
    );
    gemm(
        cx,
        (s, ev, l),
        (probs, mat(l, s, true, batched)),
        (bdo, mat(l, ev, false, batched)),
        dv,
    );
    gemm(
        cx,
        (l, s, ev),
        (bdo, mat(l, ev, false, batched)),
        (bv, mat(s, ev, true, batched)),
        dscores,
    );
    let op = BackwardOp::AttentionScoreGrad {
        cols: s,
        scale: scale as f32,
    };
    let io = (vec![probs], vec![dscores]);
    push(
        cx,
        id,
        "attention_score_grad",
        op,
        io,
        nb * l,
        (nb * l * s * 4) as f64,
        3 * bytes / 2,
    );
    gemm(
        cx,
        (l, e, s),
        (dscores, mat(l, s, false, batched)),
        (bk, mat(s, e, false, batched)),
        dq,
    );
    gemm(
        cx,
        (s, e, l),
        (dscores, mat(l, s, true, batched)),
        (bq, mat(l, e, false, batched)),
        dk,
    );
    Ok(())
}
