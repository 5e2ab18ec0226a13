//! Lowering of backpropagation through rnn/lstm/gru (see
//! `BackwardOp::RecurrentBackward`).
//!
//! Only the recurrences loop through time: the forward pass re-run by the
//! forward kernel (for the states entering each step) and the backward
//! recurrence of the state gradient. Everything else is a GEMM or a column sum
//! over all steps at once: the input- and hidden-side pre-activations, the
//! input gradient and the weight and bias gradients.

use dlc_ir::{CellKind, DType, NodeId, ReduceKind, ValueId};

use super::Lower;
use super::ops::push_matmul;
use crate::CodegenError;
use crate::kernel::{
    Activation, BackwardOp, BufId, CopyKernel, Kernel, KernelOp, MatMulKernel, MatView, SequenceOp,
};

/// A plain 2-D view `offset + r·row_stride + c·col_stride`.
pub(super) fn view(row_stride: usize, col_stride: usize) -> MatView {
    MatView {
        offset: 0,
        row_stride,
        col_stride,
        batch_strides: vec![],
    }
}

/// `out [m, n] = a · b (+ bias)`.
pub(super) fn gemm(
    cx: &mut Lower,
    id: NodeId,
    (m, n, k): (usize, usize, usize),
    (a_buf, a): (BufId, MatView),
    (b_buf, b): (BufId, MatView),
    bias: Option<BufId>,
    out: BufId,
) {
    let mut inputs = vec![a_buf, b_buf];
    inputs.extend(bias);
    let mk = MatMulKernel {
        batch: vec![],
        m,
        n,
        k,
        a,
        b,
        bias: bias.map(|_| 0),
        activation: Activation::Identity,
        epilogue: None,
    };
    push_matmul(cx, mk, inputs, out, vec![id]);
}

/// Appends a kernel computing part of node `id`.
pub(super) fn push(
    cx: &mut Lower,
    id: NodeId,
    name: &str,
    op: KernelOp,
    io: (Vec<BufId>, Vec<BufId>),
) {
    let parallel = match &op {
        KernelOp::Copy(c) => c.shape[0],
        KernelOp::Sequence(SequenceOp::Recurrent { batch, .. })
        | KernelOp::Backward(
            BackwardOp::RecurrentBackward { batch, .. }
            | BackwardOp::GridLstmBackward { batch, .. },
        ) => *batch,
        _ => 1,
    };
    let bytes: usize =
        io.0.iter()
            .chain(&io.1)
            .map(|b| cx.out.buffers[b.index()].bytes())
            .sum();
    cx.push_kernel(Kernel {
        name: name.to_string(),
        op,
        inputs: io.0,
        outputs: io.1,
        parallel,
        flops: bytes as f64,
        bytes: bytes as f64,
        nodes: vec![id],
        in_place: vec![],
    });
}

/// A contiguous copy of `len` elements to element `at` of `dst`.
fn copy(cx: &mut Lower, id: NodeId, src: BufId, dst: BufId, len: usize, at: usize) {
    let c = CopyKernel {
        shape: vec![len],
        src_strides: vec![1],
        src_offset: 0,
        dst_strides: vec![1],
        dst_offset: at,
        dtype: DType::F32,
    };
    push(cx, id, "copy", KernelOp::Copy(c), (vec![src], vec![dst]));
}

/// Lowers a `RecurrentGrad` node.
pub fn lower(
    cx: &mut Lower,
    id: NodeId,
    cell: CellKind,
    sequence: bool,
) -> Result<(), CodegenError> {
    let ops = cx.g.operands(id);
    let lstm = cell.has_cell_state();
    let states = 1 + lstm as usize;
    let fwd = 5 + states;
    let xs = cx.g.ty(ops[0]).shape.clone();
    let (steps, batch, input) = if sequence {
        (xs[0], xs[1], xs[2])
    } else {
        (1, xs[0], xs[1])
    };
    let hidden = cx.g.ty(ops[1]).shape[1];
    let gh_len = cell.gates() * hidden;
    let rows = steps * batch;
    let buf = |cx: &Lower, i: usize| cx.buf(ops[i]);
    let (x, h0) = (buf(cx, 0), buf(cx, 1));
    let c0 = lstm.then(|| buf(cx, 2));
    let [w_ih, w_hh, b_ih, b_hh] = [0, 1, 2, 3].map(|i| buf(cx, 1 + states + i));
    let grads: Vec<BufId> = ops[fwd..].iter().map(|&v| cx.buf(v)).collect();
    let name = cx.g.value_name(ValueId::first(id)).to_string();
    let scratch = |cx: &mut Lower, len: usize, what: &str| {
        cx.temp_buffer(DType::F32, len, format!("{name}_{what}"))
    };
    // Input-side pre-activations of every step.
    let gx = scratch(cx, rows * gh_len, "gx");
    let x_view = (x, view(input, 1));
    gemm(
        cx,
        id,
        (rows, gh_len, input),
        x_view.clone(),
        (w_ih, view(1, input)),
        Some(b_ih),
        gx,
    );
    // The state entering each step: h0, then the forward pass's first T-1 outputs.
    let h_prev = if steps == 1 {
        h0
    } else {
        let fwd_steps = steps - 1;
        let y = scratch(cx, fwd_steps * batch * hidden, "y");
        let mut outputs = vec![y, scratch(cx, batch * hidden, "h_last")];
        if lstm {
            outputs.push(scratch(cx, batch * hidden, "c_last"));
        }
        outputs.push(scratch(cx, batch * gh_len, "gh_step"));
        let mut inputs = vec![gx, h0];
        inputs.extend(c0);
        inputs.extend([w_hh, b_hh]);
        let op = SequenceOp::Recurrent {
            cell,
            sequence: true,
            steps: fwd_steps,
            batch,
            hidden,
        };
        push(
            cx,
            id,
            "recompute",
            KernelOp::Sequence(op),
            (inputs, outputs),
        );
        let h_prev = scratch(cx, rows * hidden, "h_prev");
        copy(cx, id, h0, h_prev, batch * hidden, 0);
        copy(
            cx,
            id,
            y,
            h_prev,
            fwd_steps * batch * hidden,
            batch * hidden,
        );
        h_prev
    };
    // Hidden-side pre-activations of every step.
    let gh = scratch(cx, rows * gh_len, "gh");
    let hp_view = (h_prev, view(hidden, 1));
    gemm(
        cx,
        id,
        (rows, gh_len, hidden),
        hp_view.clone(),
        (w_hh, view(1, hidden)),
        Some(b_hh),
        gh,
    );
    // The recurrence of the state gradient.
    let results: Vec<BufId> = (0..fwd as u32)
        .map(|result| cx.result_buffer(ValueId { node: id, result }))
        .collect();
    let dgi = scratch(cx, rows * gh_len, "dgi");
    let dgh = if cell == CellKind::Gru {
        scratch(cx, rows * gh_len, "dgh")
    } else {
        dgi
    };
    let mut inputs = vec![gx, gh, h_prev];
    inputs.extend(c0);
    inputs.push(w_hh);
    inputs.extend(&grads);
    let mut outputs = vec![dgi];
    if cell == CellKind::Gru {
        outputs.push(dgh);
    }
    outputs.extend(&results[1..1 + states]);
    if lstm {
        outputs.push(scratch(cx, (steps + 1) * batch * hidden, "c"));
    }
    let op = BackwardOp::RecurrentBackward {
        cell,
        sequence,
        steps,
        batch,
        hidden,
    };
    push(cx, id, "bptt", KernelOp::Backward(op), (inputs, outputs));
    // Input, weight and bias gradients over all steps at once.
    let [dx, dw_ih, dw_hh, db_ih, db_hh] =
        [0, 1 + states, 2 + states, 3 + states, 4 + states].map(|i| results[i]);
    let dgi_view = (dgi, view(gh_len, 1));
    gemm(
        cx,
        id,
        (rows, input, gh_len),
        dgi_view,
        (w_ih, view(input, 1)),
        None,
        dx,
    );
    let dgi_t = (dgi, view(1, gh_len));
    gemm(cx, id, (gh_len, input, rows), dgi_t, x_view, None, dw_ih);
    let dgh_t = (dgh, view(1, gh_len));
    gemm(cx, id, (gh_len, hidden, rows), dgh_t, hp_view, None, dw_hh);
    for (src, dst) in [(dgi, db_ih), (dgh, db_hh)] {
        let op = KernelOp::Reduce {
            kind: ReduceKind::Sum,
            outer: 1,
            len: rows,
            inner: gh_len,
        };
        push(cx, id, "bias_grad", op, (vec![src], vec![dst]));
    }
    Ok(())
}
