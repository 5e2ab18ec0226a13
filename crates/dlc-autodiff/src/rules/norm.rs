//! Normalisation and losses, composed of elementwise ops and reductions.
//!
//! With `x̂ = (x - mean) · rstd` over a group, the input gradient is
//! `rstd · (g - mean(g) - x̂ · mean(g · x̂))` with `g = dy · gamma`; the statistics
//! are recomputed from `x` in the backward graph. Cross-entropy's gradient is
//! `(softmax(logits) - one_hot(labels)) · dloss / N`.

use dlc_ir::{Op, UnaryOp as U, ValueId};

use super::Node;
use crate::tape::{R, Tape};

/// Gradients of a normalisation or loss node.
pub(super) fn vjp(t: &mut Tape, n: &Node) -> R<Vec<Option<ValueId>>> {
    match &n.op {
        Op::BatchNorm {
            eps,
            momentum,
            training,
        } => {
            if *training {
                batchnorm_training(t, n, *eps, *momentum)
            } else {
                batchnorm_inference(t, n, *eps)
            }
        }
        Op::LayerNorm { axis, eps } => layernorm(t, n, *axis, *eps),
        Op::MseLoss => {
            let dy = n.dy()?;
            let (p, q) = (n.args[0], n.args[1]);
            let d = t.sub(p, q)?;
            let scale = t.scale(dy, 2.0 / t.numel(p))?;
            let gp = t.mul(d, scale)?;
            let mut out = vec![None, None];
            if n.need[0] {
                out[0] = Some(gp);
            }
            if n.need[1] {
                out[1] = Some(t.neg(gp)?);
            }
            Ok(out)
        }
        Op::CrossEntropy => {
            let dy = n.dy()?;
            let (logits, labels) = (n.args[0], n.args[1]);
            let ls = t.shape(logits);
            let p = t.op(Op::Softmax { axis: 1 }, &[logits])?;
            let oh = t.op(Op::OneHot { depth: ls[1] }, &[labels])?;
            let d = t.sub(p, oh)?;
            let s = t.scale(dy, 1.0 / ls[0] as f64)?;
            let g = t.mul(d, s)?;
            Ok(n.only(0, g))
        }
        other => unreachable!("{} is not a normalisation or loss", other.name()),
    }
}

/// `[1, C, 1, ...]` for an `[N, C, ...]` input.
fn channel_shape(xs: &[usize]) -> Vec<usize> {
    xs.iter()
        .enumerate()
        .map(|(i, &d)| if i == 1 { d } else { 1 })
        .collect()
}

/// `rstd · (g - mean(g) - x̂ · mean(g · x̂))` over `axes`.
fn normalized_grad(
    t: &mut Tape,
    g: ValueId,
    xhat: ValueId,
    rstd: ValueId,
    axes: &[usize],
) -> R<ValueId> {
    let mg = t.mean_keep(g, axes)?;
    let gx = t.mul(g, xhat)?;
    let mgx = t.mean_keep(gx, axes)?;
    let a = t.sub(g, mg)?;
    let b = t.mul(xhat, mgx)?;
    let c = t.sub(a, b)?;
    t.mul(c, rstd)
}

/// Centered input, `rstd` and `x̂` over `axes` (biased variance).
fn stats(t: &mut Tape, x: ValueId, axes: &[usize], eps: f64) -> R<(ValueId, ValueId, ValueId)> {
    let mean = t.mean_keep(x, axes)?;
    let xc = t.sub(x, mean)?;
    let sq = t.mul(xc, xc)?;
    let var = t.mean_keep(sq, axes)?;
    let e = t.scalar(eps)?;
    let ve = t.add(var, e)?;
    let rstd = t.un(U::Rsqrt, ve)?;
    let xhat = t.mul(xc, rstd)?;
    Ok((xc, rstd, xhat))
}

fn batchnorm_training(t: &mut Tape, n: &Node, eps: f64, momentum: f64) -> R<Vec<Option<ValueId>>> {
    let x = n.args[0];
    let xs = t.shape(x);
    let cs = channel_shape(&xs);
    let axes: Vec<usize> = (0..xs.len()).filter(|&a| a != 1).collect();
    let m = (xs.iter().product::<usize>() / xs[1]) as f64;
    let (xc, rstd, xhat) = stats(t, x, &axes, eps)?;
    let mut out = vec![None; 5];
    let mut dx: Option<ValueId> = None;
    if let Some(dy) = n.dys[0] {
        let gamma = t.reshape(n.args[1], &cs)?;
        if n.need[0] {
            let g = t.mul(dy, gamma)?;
            dx = Some(normalized_grad(t, g, xhat, rstd, &axes)?);
        }
        if n.need[1] {
            let p = t.mul(dy, xhat)?;
            out[1] = Some(t.sum(p, &axes, false)?);
        }
        if n.need[2] {
            out[2] = Some(t.sum(dy, &axes, false)?);
        }
    }
    // The running statistics: new = (1 - momentum) running + momentum batch, with
    // the unbiased batch variance.
    for (r, slot) in [(1, 3), (2, 4)] {
        let Some(d) = n.dys[r] else { continue };
        if n.need[slot] {
            out[slot] = Some(t.scale(d, 1.0 - momentum)?);
        }
        if n.need[0] {
            let dk = t.reshape(d, &cs)?;
            let contrib = if r == 1 {
                let s = t.scale(dk, momentum / m)?;
                t.broadcast(s, &xs)?
            } else {
                let s = t.scale(dk, momentum * 2.0 / (m - 1.0))?;
                t.mul(xc, s)?
            };
            dx = Some(match dx {
                Some(v) => t.add(v, contrib)?,
                None => contrib,
            });
        }
    }
    out[0] = dx;
    Ok(out)
}

fn batchnorm_inference(t: &mut Tape, n: &Node, eps: f64) -> R<Vec<Option<ValueId>>> {
    let dy = n.dy()?;
    let [x, gamma, _, rmean, rvar] = [0, 1, 2, 3, 4].map(|i| n.args[i]);
    let xs = t.shape(x);
    let cs = channel_shape(&xs);
    let axes: Vec<usize> = (0..xs.len()).filter(|&a| a != 1).collect();
    let e = t.scalar(eps)?;
    let ve = t.add(rvar, e)?;
    let rstd = t.un(U::Rsqrt, ve)?;
    let rstd_c = t.reshape(rstd, &cs)?;
    let gamma_c = t.reshape(gamma, &cs)?;
    let mut out = vec![None; 5];
    if n.need[0] {
        let s = t.mul(gamma_c, rstd_c)?;
        out[0] = Some(t.mul(dy, s)?);
    }
    let sum_dy = if n.need[2] || n.need[3] {
        Some(t.sum(dy, &axes, false)?)
    } else {
        None
    };
    let centered = if n.need[1] || n.need[4] {
        let m = t.reshape(rmean, &cs)?;
        let xc = t.sub(x, m)?;
        let p = t.mul(dy, xc)?;
        Some(t.sum(p, &axes, false)?)
    } else {
        None
    };
    if let (true, Some(c)) = (n.need[1], centered) {
        out[1] = Some(t.mul(c, rstd)?);
    }
    if let (true, Some(s)) = (n.need[2], sum_dy) {
        out[2] = Some(s);
    }
    if let (true, Some(s)) = (n.need[3], sum_dy) {
        let gr = t.mul(gamma, rstd)?;
        let p = t.mul(s, gr)?;
        out[3] = Some(t.neg(p)?);
    }
    if let (true, Some(c)) = (n.need[4], centered) {
        // d rstd / d var = -rstd³ / 2
        let r2 = t.mul(rstd, rstd)?;
        let r3 = t.mul(r2, rstd)?;
        let gr = t.mul(gamma, r3)?;
        let p = t.mul(c, gr)?;
        out[4] = Some(t.scale(p, -0.5)?);
    }
    Ok(out)
}

fn layernorm(t: &mut Tape, n: &Node, axis: usize, eps: f64) -> R<Vec<Option<ValueId>>> {
    let dy = n.dy()?;
    let x = n.args[0];
    let rank = t.rank(x);
    let norm: Vec<usize> = (axis..rank).collect();
    let lead: Vec<usize> = (0..axis).collect();
    let (_, rstd, xhat) = stats(t, x, &norm, eps)?;
    let mut out = vec![None; 3];
    if n.need[0] {
        let g = t.mul(dy, n.args[1])?;
        out[0] = Some(normalized_grad(t, g, xhat, rstd, &norm)?);
    }
    if n.need[1] {
        let p = t.mul(dy, xhat)?;
        out[1] = Some(t.sum(p, &lead, false)?);
    }
    if n.need[2] {
        out[2] = Some(t.sum(dy, &lead, false)?);
    }
    Ok(out)
}
