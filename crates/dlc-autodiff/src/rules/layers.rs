//! Linear layers and windows: matmul, convolution, transposed convolution,
//! pooling.
//!
//! The input gradient of a convolution is a transposed convolution with the same
//! weight (and vice versa); both weight gradients are `conv*_weight_grad` (for
//! the transposed convolution with the roles of input and cotangent exchanged);
//! pooling uses `*_pool*_grad`.

use dlc_ir::{ConvAttrs, ConvTransposeAttrs, Op, SliceRange, ValueId};

use super::Node;
use crate::tape::{R, Tape};

/// Gradients of a layer node.
pub(super) fn vjp(t: &mut Tape, n: &Node) -> R<Vec<Option<ValueId>>> {
    let dy = n.dy()?;
    match &n.op {
        Op::MatMul => matmul(t, n, dy),
        Op::Conv(c) => conv(t, n, c, dy),
        Op::ConvTranspose(c) => conv_transpose(t, n, c, dy),
        Op::Pool(p) => {
            let g = t.op(Op::PoolGrad(p.clone()), &[n.args[0], dy])?;
            Ok(n.only(0, g))
        }
        Op::GlobalAvgPool => {
            let xs = t.shape(n.args[0]);
            let count: usize = xs[2..].iter().product();
            let d = t.scale(dy, 1.0 / count as f64)?;
            let g = t.broadcast(d, &xs)?;
            Ok(n.only(0, g))
        }
        other => unreachable!("{} is not a layer", other.name()),
    }
}

/// `y = a @ b`: `da = dy @ bᵀ`, `db = aᵀ @ dy`, summed over broadcast batch dims.
fn matmul(t: &mut Tape, n: &Node, dy: ValueId) -> R<Vec<Option<ValueId>>> {
    let (a, b) = (n.args[0], n.args[1]);
    let (sa, sb) = (t.shape(a), t.shape(b));
    let mut out = vec![None, None];
    if n.need[0] {
        let bt = t.transpose_last2(b)?;
        let g = t.op(Op::MatMul, &[dy, bt])?;
        out[0] = Some(t.sum_to(g, &sa)?);
    }
    if n.need[1] {
        let g = if sb.len() == 2 && sa.len() > 2 {
            // A shared weight: fold a's batch dims into its rows, one product.
            let (k, m) = (sa[sa.len() - 1], sa[..sa.len() - 1].iter().product());
            let nn = sb[1];
            let a2 = t.reshape(a, &[m, k])?;
            let d2 = t.reshape(dy, &[m, nn])?;
            let at = t.transpose_last2(a2)?;
            t.op(Op::MatMul, &[at, d2])?
        } else {
            let at = t.transpose_last2(a)?;
            let g = t.op(Op::MatMul, &[at, dy])?;
            t.sum_to(g, &sb)?
        };
        out[1] = Some(g);
    }
    Ok(out)
}

/// The bias gradient of a convolution: `dy` summed over batch and space.
fn bias_grad(t: &mut Tape, dy: ValueId) -> R<ValueId> {
    let axes: Vec<usize> = (0..t.rank(dy)).filter(|&a| a != 1).collect();
    t.sum(dy, &axes, false)
}

fn conv(t: &mut Tape, n: &Node, c: &ConvAttrs, dy: ValueId) -> R<Vec<Option<ValueId>>> {
    let (x, w) = (n.args[0], n.args[1]);
    let (xs, ws, ys) = (t.shape(x), t.shape(w), t.shape(dy));
    let sp = c.stride.len();
    let mut out = vec![None; n.args.len()];
    if n.need[0] {
        // conv_transpose(dy, w) with the output padding that restores x's extent.
        let output_padding = (0..sp)
            .map(|d| {
                let span = c.dilation[d] * (ws[2 + d] - 1) + 1;
                let padded = xs[2 + d] + c.padding[d].0 + c.padding[d].1;
                (padded - span) - (ys[2 + d] - 1) * c.stride[d]
            })
            .collect();
        let op = Op::ConvTranspose(ConvTransposeAttrs {
            stride: c.stride.clone(),
            padding: c.padding.clone(),
            output_padding,
            dilation: c.dilation.clone(),
            groups: c.groups,
        });
        out[0] = Some(t.op(op, &[dy, w])?);
    }
    if n.need[1] {
        let op = Op::ConvWeightGrad {
            conv: c.clone(),
            kernel: ws[2..].to_vec(),
        };
        out[1] = Some(t.op(op, &[x, dy])?);
    }
    if n.args.len() == 3 && n.need[2] {
        out[2] = Some(bias_grad(t, dy)?);
    }
    Ok(out)
}

fn conv_transpose(
    t: &mut Tape,
    n: &Node,
    c: &ConvTransposeAttrs,
    dy: ValueId,
) -> R<Vec<Option<ValueId>>> {
    let (x, w) = (n.args[0], n.args[1]);
    let (xs, ws) = (t.shape(x), t.shape(w));
    let conv = ConvAttrs {
        stride: c.stride.clone(),
        padding: c.padding.clone(),
        dilation: c.dilation.clone(),
        groups: c.groups,
    };
    let mut out = vec![None; n.args.len()];
    if n.need[0] {
        // The convolution of dy with w; an output padding of a stride or more
        // makes it longer than x, and the extra positions are cut.
        let g = t.op(Op::Conv(conv.clone()), &[dy, w])?;
        let gs = t.shape(g);
        let g = if gs == xs {
            g
        } else {
            let ranges = xs
                .iter()
                .map(|&d| SliceRange {
                    start: 0,
                    end: d,
                    step: 1,
                })
                .collect();
            t.op(Op::Slice { ranges }, &[g])?
        };
        out[0] = Some(g);
    }
    if n.need[1] {
        let op = Op::ConvWeightGrad {
            conv,
            kernel: ws[2..].to_vec(),
        };
        out[1] = Some(t.op(op, &[dy, x])?);
    }
    if n.args.len() == 3 && n.need[2] {
        out[2] = Some(bias_grad(t, dy)?);
    }
    Ok(out)
}
