//! Recurrent layers, the grid LSTM and attention use their dedicated backward
//! ops; multi-head attention is recomposed from projections (matmuls), head
//! reshapes and `attention_grad`.

use dlc_ir::{Op, SliceRange, ValueId};

use super::Node;
use crate::tape::{R, Tape};

/// Gradients of a sequence node.
pub(super) fn vjp(t: &mut Tape, n: &Node) -> R<Vec<Option<ValueId>>> {
    match &n.op {
        Op::Recurrent { cell, sequence } => {
            let op = Op::RecurrentGrad {
                cell: *cell,
                sequence: *sequence,
            };
            fused(t, n, op)
        }
        Op::GridLstm => fused(t, n, Op::GridLstmGrad),
        Op::Attention { causal, scale } => {
            let op = Op::AttentionGrad {
                causal: *causal,
                scale: *scale,
            };
            fused(t, n, op)
        }
        Op::MultiHeadAttention { heads, causal } => multi_head(t, n, *heads, *causal),
        other => unreachable!("{} is not a sequence op", other.name()),
    }
}

/// A backward op taking the forward operands and every result's cotangent
/// (zeros where none arrives), returning every operand's gradient.
fn fused(t: &mut Tape, n: &Node, op: Op) -> R<Vec<Option<ValueId>>> {
    let mut args = n.args.clone();
    for r in 0..n.outs.len() {
        args.push(n.dy_or_zeros(t, r)?);
    }
    let grads = t.ops(op, &args)?;
    Ok(grads
        .into_iter()
        .zip(&n.need)
        .map(|(g, &need)| need.then_some(g))
        .collect())
}

/// Rows `lo..hi` of a matrix or vector.
fn rows(t: &mut Tape, w: ValueId, lo: usize, hi: usize) -> R<ValueId> {
    let s = t.shape(w);
    let ranges = s
        .iter()
        .enumerate()
        .map(|(d, &size)| SliceRange {
            start: if d == 0 { lo } else { 0 },
            end: if d == 0 { hi } else { size },
            step: 1,
        })
        .collect();
    t.op(Op::Slice { ranges }, &[w])
}

/// `nn.MultiheadAttention` backward. Forward, recomputed: `q = query Wqᵀ + bq`
/// (likewise k, v), heads `[len, N, E] -> [N, h, len, d]`, `o = attention(q, k, v)`,
/// `concat = o` back to `[L, N, E]`, `y = concat Woᵀ + bo`.
fn multi_head(t: &mut Tape, n: &Node, heads: usize, causal: bool) -> R<Vec<Option<ValueId>>> {
    let dy = n.dy()?;
    let [query, key, value, in_w, in_b, out_w, _] = [0, 1, 2, 3, 4, 5, 6].map(|i| n.args[i]);
    let qs = t.shape(query);
    let (l, nb, e) = (qs[0], qs[1], qs[2]);
    let s = t.shape(key)[0];
    let d = e / heads;
    let scale = 1.0 / (d as f64).sqrt();
    let mut w = Vec::new();
    let mut proj = Vec::new();
    for (p, x) in [query, key, value].into_iter().enumerate() {
        let wp = rows(t, in_w, p * e, (p + 1) * e)?;
        let bp = rows(t, in_b, p * e, (p + 1) * e)?;
        let wt = t.transpose_last2(wp)?;
        let xw = t.op(Op::MatMul, &[x, wt])?;
        proj.push(t.add(xw, bp)?);
        w.push(wp);
    }
    let to_heads = |t: &mut Tape, x: ValueId, len: usize| -> R<ValueId> {
        let r = t.reshape(x, &[len, nb, heads, d])?;
        t.transpose(r, &[1, 2, 0, 3])
    };
    let from_heads = |t: &mut Tape, x: ValueId, len: usize| -> R<ValueId> {
        let r = t.transpose(x, &[2, 0, 1, 3])?;
        t.reshape(r, &[len, nb, e])
    };
    let qh = to_heads(t, proj[0], l)?;
    let kh = to_heads(t, proj[1], s)?;
    let vh = to_heads(t, proj[2], s)?;
    let mut out = vec![None; 7];
    let flat = |t: &mut Tape, x: ValueId| -> R<ValueId> {
        let sh = t.shape(x);
        t.reshape(x, &[sh[0] * sh[1], sh[2]])
    };
    if n.need[5] {
        let o = t.op(Op::Attention { causal, scale }, &[qh, kh, vh])?;
        let concat = from_heads(t, o, l)?;
        let dy2 = flat(t, dy)?;
        let c2 = flat(t, concat)?;
        let dyt = t.transpose_last2(dy2)?;
        out[5] = Some(t.op(Op::MatMul, &[dyt, c2])?);
    }
    if n.need[6] {
        out[6] = Some(t.sum(dy, &[0, 1], false)?);
    }
    if !(n.need[..5].iter().any(|&b| b)) {
        return Ok(out);
    }
    let dconcat = t.op(Op::MatMul, &[dy, out_w])?;
    let doh = to_heads(t, dconcat, l)?;
    let g = t.ops(Op::AttentionGrad { causal, scale }, &[qh, kh, vh, doh])?;
    let dproj = [
        from_heads(t, g[0], l)?,
        from_heads(t, g[1], s)?,
        from_heads(t, g[2], s)?,
    ];
    for p in 0..3 {
        if n.need[p] {
            let gx = t.op(Op::MatMul, &[dproj[p], w[p]])?;
            out[p] = Some(match out[p] {
                Some(prev) => t.add(prev, gx)?,
                None => gx,
            });
        }
    }
    if n.need[3] {
        let mut parts = Vec::new();
        for (p, x) in [query, key, value].into_iter().enumerate() {
            let d2 = flat(t, dproj[p])?;
            let x2 = flat(t, x)?;
            let dt = t.transpose_last2(d2)?;
            parts.push(t.op(Op::MatMul, &[dt, x2])?);
        }
        out[3] = Some(t.op(Op::Concat { axis: 0 }, &parts)?);
    }
    if n.need[4] {
        let mut parts = Vec::new();
        for dp in dproj {
            parts.push(t.sum(dp, &[0, 1], false)?);
        }
        out[4] = Some(t.op(Op::Concat { axis: 0 }, &parts)?);
    }
    Ok(out)
}
