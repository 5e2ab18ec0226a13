//! Lowering of backpropagation through the grid LSTM (see
//! `BackwardOp::GridLstmBackward`).
//!
//! The forward kernel re-runs the grid, keeping every cell's gate
//! pre-activations. One looping kernel then recomputes the activations and
//! memories, assembles each cell's input `z = [x, h1, h2]` and walks the cells
//! in reverse, producing the gate gradients `dG [M, 8H]` (both directions side
//! by side). Everything else is a GEMM or a column sum over all cells at once:
//! `dx = dG · [w1 | w2][..F]ᵀ`, `dw_d = zᵀ · dG_d`, `db_d = Σ dG_d`.

use dlc_ir::{DType, NodeId, ReduceKind, ValueId};

use super::Lower;
use super::recurrent_grad::{gemm, push, view};
use super::sequence::grid_sweep;
use crate::kernel::{BackwardOp, BufId, CopyKernel, KernelOp, MatView};

/// A 2-D strided copy of `[rows, cols]` elements.
fn copy2(
    cx: &mut Lower,
    id: NodeId,
    (src, src_offset, src_strides): (BufId, usize, [usize; 2]),
    (dst, dst_offset, dst_strides): (BufId, usize, [usize; 2]),
    [rows, cols]: [usize; 2],
) {
    let c = CopyKernel {
        shape: vec![rows, cols],
        src_strides: src_strides.to_vec(),
        src_offset,
        dst_strides: dst_strides.to_vec(),
        dst_offset,
        dtype: DType::F32,
    };
    push(cx, id, "copy", KernelOp::Copy(c), (vec![src], vec![dst]));
}

/// Lowers a `GridLstmGrad` node.
pub fn lower(cx: &mut Lower, id: NodeId) {
    let ops = cx.g.operands(id);
    let xs = cx.g.ty(ops[0]).shape.clone();
    let (rows, cols, batch, features) = (xs[0], xs[1], xs[2], xs[3]);
    let h = cx.g.ty(ops[2]).shape[0] / 4;
    let (g4, g8, k) = (4 * h, 8 * h, features + 2 * h);
    let m = rows * cols * batch;
    let name = cx.g.value_name(ValueId::first(id)).to_string();
    let scratch = |cx: &mut Lower, len: usize, what: &str| {
        cx.temp_buffer(DType::F32, len, format!("{name}_{what}"))
    };
    let bufs: Vec<BufId> = ops.iter().map(|&v| cx.buf(v)).collect();
    let (x, ws) = (bufs[0], [bufs[1], bufs[3]]);
    // The forward pass, keeping every cell's gate pre-activations.
    let y = scratch(cx, m * 2 * h, "y");
    let mut outputs = vec![y];
    for (len, what) in [
        (cols, "h_vert"),
        (cols, "m_vert"),
        (rows, "h_hor"),
        (rows, "m_hor"),
    ] {
        outputs.push(scratch(cx, len * batch * h, what));
    }
    let gates = grid_sweep(cx, id, outputs, true);
    // Both weights side by side, and their state rows transposed.
    let wcat = scratch(cx, k * g8, "wcat");
    for (d, &w) in ws.iter().enumerate() {
        copy2(cx, id, (w, 0, [g4, 1]), (wcat, d * g4, [g8, 1]), [k, g4]);
    }
    let wt = scratch(cx, g8 * 2 * h, "wt");
    copy2(
        cx,
        id,
        (wcat, features * g8, [1, g8]),
        (wt, 0, [2 * h, 1]),
        [g8, 2 * h],
    );
    // The backward sweep.
    let z = scratch(cx, m * k, "z");
    let mut inputs = vec![x, y, wt];
    inputs.extend(&bufs[5..]);
    let outputs = vec![
        gates,
        z,
        scratch(cx, (rows + 1) * cols * batch * h, "m1"),
        scratch(cx, rows * (cols + 1) * batch * h, "m2"),
        scratch(cx, cols * batch * 2 * h, "carry_v"),
        scratch(cx, batch * 3 * h, "carry_h"),
    ];
    let op = BackwardOp::GridLstmBackward {
        rows,
        cols,
        batch,
        features,
        hidden: h,
    };
    push(
        cx,
        id,
        "grid_bptt",
        KernelOp::Backward(op),
        (inputs, outputs),
    );
    // Input, weight and bias gradients over all cells at once.
    let results: Vec<BufId> = (0..5)
        .map(|result| cx.result_buffer(ValueId { node: id, result }))
        .collect();
    gemm(
        cx,
        id,
        (m, features, g8),
        (gates, view(g8, 1)),
        (wcat, view(1, g8)),
        None,
        results[0],
    );
    let dbcat = scratch(cx, g8, "dbcat");
    let sum = KernelOp::Reduce {
        kind: ReduceKind::Sum,
        outer: 1,
        len: m,
        inner: g8,
    };
    push(cx, id, "bias_grad", sum, (vec![gates], vec![dbcat]));
    for d in 0..2 {
        let dg = MatView {
            offset: d * g4,
            ..view(g8, 1)
        };
        let dw = results[1 + 2 * d];
        gemm(cx, id, (k, g4, m), (z, view(1, k)), (gates, dg), None, dw);
        copy2(
            cx,
            id,
            (dbcat, d * g4, [g4, 1]),
            (results[2 + 2 * d], 0, [g4, 1]),
            [1, g4],
        );
    }
}
