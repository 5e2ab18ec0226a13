//! Lowering of the sequence op family (see `crate::kernel::sequence`).
//!
//! Everything without a sequential dependence becomes a GEMM (`ops::push_matmul`
//! over strided views of the PyTorch-layout weights): the input projections of
//! all time steps or grid cells, the in- and out-projections of multi-head
//! attention. What remains — the recurrence, the grid sweep, the softmax-weighted
//! sum — is one looping kernel.

use dlc_ir::types::strides;
use dlc_ir::{CellKind, DType, NodeId, Op, ValueId};

use super::Lower;
use super::ops::push_matmul;
use crate::CodegenError;
use crate::kernel::{Activation, BufId, Kernel, KernelOp, MatMulKernel, MatView, SequenceOp};

/// Lowers one node of the family.
pub fn lower(cx: &mut Lower, id: NodeId) -> Result<(), CodegenError> {
    match cx.g.node(id).op {
        Op::Recurrent { cell, sequence } => recurrent(cx, id, cell, sequence),
        Op::GridLstm => grid_lstm(cx, id),
        Op::Attention { causal, scale } => attention(cx, id, causal, scale),
        Op::MultiHeadAttention { heads, causal } => multi_head(cx, id, heads, causal),
        ref other => Err(CodegenError::Internal(format!(
            "{} reached the sequence lowering",
            other.name()
        ))),
    }
}

/// A plain 2-D view: `offset + r*row_stride + c*col_stride`.
fn view(offset: usize, row_stride: usize, col_stride: usize) -> MatView {
    MatView {
        offset,
        row_stride,
        col_stride,
        batch_strides: vec![],
    }
}

/// `out [m, n] = a [m, k] · b [k, n] + bias[bias_off..]` with the given views.
#[allow(clippy::too_many_arguments)]
fn gemm(
    cx: &mut Lower,
    id: NodeId,
    (m, n, k): (usize, usize, usize),
    (a_buf, a): (BufId, MatView),
    (b_buf, b): (BufId, MatView),
    bias: Option<(BufId, usize)>,
    out: BufId,
) {
    let mut inputs = vec![a_buf, b_buf];
    inputs.extend(bias.map(|(buf, _)| buf));
    let mk = MatMulKernel {
        batch: vec![],
        m,
        n,
        k,
        a,
        b,
        bias: bias.map(|(_, off)| off),
        activation: Activation::Identity,
        epilogue: None,
    };
    push_matmul(cx, mk, inputs, out, vec![id]);
}

/// A scratch f32 buffer named after the node's first result.
fn scratch(cx: &mut Lower, id: NodeId, len: usize, what: &str) -> BufId {
    let name = format!("{}_{what}", cx.g.value_name(ValueId::first(id)));
    cx.temp_buffer(DType::F32, len, name)
}

/// The buffers of a node's results `0..n`.
fn results(cx: &mut Lower, id: NodeId, n: usize) -> Vec<BufId> {
    (0..n as u32)
        .map(|result| cx.result_buffer(ValueId { node: id, result }))
        .collect()
}

/// rnn/lstm/gru: the input projection of every step as one GEMM, then the recurrence.
fn recurrent(
    cx: &mut Lower,
    id: NodeId,
    cell: CellKind,
    sequence: bool,
) -> Result<(), CodegenError> {
    let ops = cx.g.operands(id);
    let states = 1 + cell.has_cell_state() as usize;
    let xs = cx.g.ty(ops[0]).shape.clone();
    let (steps, batch, input) = if sequence {
        (xs[0], xs[1], xs[2])
    } else {
        (1, xs[0], xs[1])
    };
    let hidden = cx.g.ty(ops[1]).shape[1];
    let gh = cell.gates() * hidden;
    let [w_ih, w_hh, b_ih, b_hh] = [0, 1, 2, 3].map(|i| cx.buf(ops[1 + states + i]));
    let gx = scratch(cx, id, steps * batch * gh, "gx");
    // gx [T*B, G*H] = x [T*B, I] · w_ihᵀ + b_ih (w_ihᵀ is a transposed view of [G*H, I]).
    let x = cx.buf(ops[0]);
    gemm(
        cx,
        id,
        (steps * batch, gh, input),
        (x, view(0, input, 1)),
        (w_ih, view(0, 1, input)),
        Some((b_ih, 0)),
        gx,
    );
    let mut inputs = vec![gx];
    inputs.extend(ops[1..1 + states].iter().map(|&v| cx.buf(v)));
    inputs.extend([w_hh, b_hh]);
    let mut outputs = results(cx, id, sequence as usize + states);
    outputs.push(scratch(cx, id, batch * gh, "gh"));
    let op = SequenceOp::Recurrent {
        cell,
        sequence,
        steps,
        batch,
        hidden,
    };
    let per_step = batch * gh;
    cx.push_kernel(Kernel {
        name: format!("{}_recurrence", cell.name()),
        op: KernelOp::Sequence(op),
        inputs,
        outputs,
        parallel: batch,
        flops: (steps * per_step * (2 * hidden + 12)) as f64,
        bytes: (4 * (steps * (per_step + 2 * batch * hidden) + gh * (hidden + 1))) as f64,
        nodes: vec![id],
        in_place: vec![],
    });
    Ok(())
}

/// Grid LSTM: the input part of both directions' gates as two GEMMs, then the sweep.
fn grid_lstm(cx: &mut Lower, id: NodeId) -> Result<(), CodegenError> {
    let outputs = results(cx, id, 5);
    grid_sweep(cx, id, outputs, false);
    Ok(())
}

/// Pushes the grid-LSTM forward pass of node `id` (whose first five operands
/// are `x, w1, b1, w2, b2`) writing `outputs` (`y, h_vert, m_vert, h_hor,
/// m_hor`); returns its gate scratch, which holds every cell's gate
/// pre-activations `[Hg·Wg·B, 2, 4H]` afterwards when `keep_gates`.
pub(super) fn grid_sweep(
    cx: &mut Lower,
    id: NodeId,
    mut outputs: Vec<BufId>,
    keep_gates: bool,
) -> BufId {
    let ops = cx.g.operands(id);
    let xs = cx.g.ty(ops[0]).shape.clone();
    let (rows, cols, batch, features) = (xs[0], xs[1], xs[2], xs[3]);
    let g4 = cx.g.ty(ops[2]).shape[0];
    let hidden = g4 / 4;
    let x = cx.buf(ops[0]);
    let m = rows * cols * batch;
    let mut inputs = Vec::new();
    let mut weights = Vec::new();
    for d in 0..2 {
        let (w, b) = (cx.buf(ops[1 + 2 * d]), cx.buf(ops[2 + 2 * d]));
        let gx = scratch(cx, id, m * g4, &format!("gx{}", d + 1));
        gemm(
            cx,
            id,
            (m, g4, features),
            (x, view(0, features, 1)),
            (w, view(0, g4, 1)),
            Some((b, 0)),
            gx,
        );
        inputs.push(gx);
        weights.push(w);
    }
    inputs.extend(weights);
    let gate_rows = if keep_gates { m } else { batch };
    let gates = scratch(cx, id, gate_rows * 2 * g4, "gates");
    outputs.push(gates);
    let op = SequenceOp::GridLstm {
        rows,
        cols,
        batch,
        features,
        hidden,
        keep_gates,
    };
    let k = 2 * hidden;
    cx.push_kernel(Kernel {
        name: "grid_lstm_sweep".to_string(),
        op: KernelOp::Sequence(op),
        inputs,
        outputs,
        parallel: batch,
        flops: (m * 2 * g4 * (2 * k + 12)) as f64,
        bytes: (4 * (m * 2 * (g4 + hidden) + 2 * k * g4)) as f64,
        nodes: vec![id],
        in_place: vec![],
    });
    gates
}

/// Appends an attention kernel writing `o`.
fn push_attention(cx: &mut Lower, id: NodeId, op: SequenceOp, inputs: Vec<BufId>, o: BufId) {
    let SequenceOp::Attention {
        ref batch,
        queries: l,
        keys: s,
        depth: e,
        value_depth: ev,
        causal,
        ..
    } = op
    else {
        unreachable!("push_attention takes an attention kernel")
    };
    let nb: usize = batch.iter().product();
    let blocks = l.div_ceil(SequenceOp::ATTENTION_QUERY_BLOCK);
    let pairs = if causal {
        (0..l).map(|i| (i + 1).min(s)).sum()
    } else {
        l * s
    };
    cx.push_kernel(Kernel {
        name: "attention".to_string(),
        op: KernelOp::Sequence(op),
        inputs,
        outputs: vec![o],
        parallel: nb * blocks,
        flops: (nb * pairs * (2 * e + 2 * ev + 8)) as f64,
        // q and o once; k and v once per query block.
        bytes: (4 * nb * (l * (e + ev) + blocks * s * (e + ev))) as f64,
        nodes: vec![id],
        in_place: vec![],
    });
}

/// Scaled dot-product attention over `q [.., L, E], k [.., S, E], v [.., S, Ev]`.
fn attention(cx: &mut Lower, id: NodeId, causal: bool, scale: f64) -> Result<(), CodegenError> {
    let ops = cx.g.operands(id);
    let qs = cx.g.ty(ops[0]).shape.clone();
    let r = qs.len();
    let (l, e) = (qs[r - 2], qs[r - 1]);
    let s = cx.g.ty(ops[1]).shape[r - 2];
    let ev = cx.g.ty(ops[2]).shape[r - 1];
    let batch = qs[..r - 2].to_vec();
    // Contiguous [.., rows, cols] operands: batch strides are the row-major ones.
    let bview = |rows: usize, cols: usize| MatView {
        offset: 0,
        row_stride: cols,
        col_stride: 1,
        batch_strides: strides(&batch).iter().map(|&st| st * rows * cols).collect(),
    };
    let op = SequenceOp::Attention {
        batch: batch.clone(),
        queries: l,
        keys: s,
        depth: e,
        value_depth: ev,
        scale: scale as f32,
        causal,
        views: Box::new([bview(l, e), bview(s, e), bview(s, ev), bview(l, ev)]),
    };
    let inputs = ops.iter().map(|&v| cx.buf(v)).collect();
    let o = cx.result_buffer(ValueId::first(id));
    push_attention(cx, id, op, inputs, o);
    Ok(())
}

/// `nn.MultiheadAttention`: in-projections (one GEMM when query, key and value
/// are the same value), attention over `(n, head)`, the out-projection.
fn multi_head(cx: &mut Lower, id: NodeId, heads: usize, causal: bool) -> Result<(), CodegenError> {
    let ops = cx.g.operands(id);
    let qs = cx.g.ty(ops[0]).shape.clone();
    let (l, n, e) = (qs[0], qs[1], qs[2]);
    let s = cx.g.ty(ops[1]).shape[0];
    let d = e / heads;
    let [in_w, in_b, out_w, out_b] = [3, 4, 5, 6].map(|i| cx.buf(ops[i]));
    // Projection p (0 = q, 1 = k, 2 = v) uses rows p*E.. of in_w, transposed.
    let w_view = |p: usize| view(p * e * e, 1, e);
    // A head view of a projection stored as [len, N, width] at column `col`.
    let head_view = |width: usize, col: usize| MatView {
        offset: col,
        row_stride: n * width,
        col_stride: 1,
        batch_strides: vec![width, d],
    };
    let self_attention = ops[1] == ops[0] && ops[2] == ops[0];
    let (proj, views) = if self_attention {
        let qkv = scratch(cx, id, l * n * 3 * e, "qkv");
        let x = cx.buf(ops[0]);
        gemm(
            cx,
            id,
            (l * n, 3 * e, e),
            (x, view(0, e, 1)),
            (in_w, view(0, 1, e)),
            Some((in_b, 0)),
            qkv,
        );
        let views = [0, 1, 2].map(|p| head_view(3 * e, p * e));
        ([qkv; 3], views)
    } else {
        let mut bufs = [BufId(0); 3];
        for (p, buf) in bufs.iter_mut().enumerate() {
            let rows = if p == 0 { l } else { s };
            *buf = scratch(cx, id, rows * n * e, ["q", "k", "v"][p]);
            let x = cx.buf(ops[p]);
            gemm(
                cx,
                id,
                (rows * n, e, e),
                (x, view(0, e, 1)),
                (in_w, w_view(p)),
                Some((in_b, p * e)),
                *buf,
            );
        }
        (bufs, [0, 1, 2].map(|_| head_view(e, 0)))
    };
    let [qv, kv, vv] = views;
    let concat = scratch(cx, id, l * n * e, "heads");
    // As the interpreter computes it in f32: 1 / sqrt(d).
    let scale = 1.0 / (d as f32).sqrt();
    let op = SequenceOp::Attention {
        batch: vec![n, heads],
        queries: l,
        keys: s,
        depth: d,
        value_depth: d,
        scale,
        causal,
        views: Box::new([qv, kv, vv, head_view(e, 0)]),
    };
    push_attention(cx, id, op, proj.to_vec(), concat);
    let y = cx.result_buffer(ValueId::first(id));
    gemm(
        cx,
        id,
        (l * n, e, e),
        (concat, view(0, e, 1)),
        (out_w, view(0, 1, e)),
        Some((out_b, 0)),
        y,
    );
    Ok(())
}
