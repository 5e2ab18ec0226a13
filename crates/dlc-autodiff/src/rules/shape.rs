//! Reductions, softmax and data movement: the gradient is moved back to where
//! the values came from (broadcast over reduced axes, inverse permutations,
//! slices of a concatenation, zeros around a slice, scatter-adds for gather).

use dlc_ir::infer::reduced_shape;
use dlc_ir::{BinaryOp as B, DType, Op, ReduceKind, SliceRange, UnaryOp as U, ValueId};

use super::Node;
use crate::tape::{R, Tape};

/// Gradients of a reduction, softmax or data-movement node.
pub(super) fn vjp(t: &mut Tape, n: &Node) -> R<Vec<Option<ValueId>>> {
    let dy = n.dy()?;
    let x = n.args[0];
    let xs = t.shape(x);
    let g = match &n.op {
        Op::Reduce { kind, axes, .. } => reduce(t, *kind, axes, x, n.outs[0], dy)?,
        Op::Softmax { axis } => {
            // y (dy - Σ dy·y)
            let y = n.outs[0];
            let p = t.mul(dy, y)?;
            let s = t.sum(p, &[*axis], true)?;
            let d = t.sub(dy, s)?;
            t.mul(y, d)?
        }
        Op::LogSoftmax { axis } => {
            // dy - exp(y) Σ dy
            let s = t.sum(dy, &[*axis], true)?;
            let e = t.un(U::Exp, n.outs[0])?;
            let p = t.mul(e, s)?;
            t.sub(dy, p)?
        }
        Op::Reshape { .. } => t.reshape(dy, &xs)?,
        Op::Transpose { perm } => {
            let mut inv = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inv[p] = i;
            }
            t.transpose(dy, &inv)?
        }
        Op::BroadcastTo { .. } => t.sum_to(dy, &xs)?,
        Op::Concat { axis } => return concat(t, n, *axis, dy),
        Op::Slice { ranges } => unslice(t, dy, ranges, &xs)?,
        Op::Gather { axis } => t.op(
            Op::GatherGrad {
                axis: *axis,
                size: xs[*axis],
            },
            &[dy, n.args[1]],
        )?,
        other => unreachable!("{} is not a reduction or layout op", other.name()),
    };
    Ok(n.only(0, g))
}

fn reduce(
    t: &mut Tape,
    kind: ReduceKind,
    axes: &[usize],
    x: ValueId,
    y: ValueId,
    dy: ValueId,
) -> R<ValueId> {
    let xs = t.shape(x);
    let keep = reduced_shape(&xs, axes, true);
    let dk = t.reshape(dy, &keep)?;
    Ok(match kind {
        ReduceKind::Sum => t.broadcast(dk, &xs)?,
        ReduceKind::Mean => {
            let count: usize = axes.iter().map(|&a| xs[a]).product();
            let d = t.scale(dk, 1.0 / count as f64)?;
            t.broadcast(d, &xs)?
        }
        ReduceKind::Max | ReduceKind::Min => {
            // Every element equal to the extremum shares the gradient evenly.
            let yk = t.reshape(y, &keep)?;
            let hit = t.bin(B::Eq, x, yk)?;
            let ones = t.cast(hit, DType::F32)?;
            let count = t.sum(ones, axes, true)?;
            let share = t.div(dk, count)?;
            let share = t.broadcast(share, &xs)?;
            t.mask(hit, share)?
        }
    })
}

/// Each operand's gradient is its slab of `dy`.
fn concat(t: &mut Tape, n: &Node, axis: usize, dy: ValueId) -> R<Vec<Option<ValueId>>> {
    let ys = t.shape(dy);
    let mut at = 0;
    let mut out = vec![None; n.args.len()];
    for (i, &v) in n.args.iter().enumerate() {
        let len = t.shape(v)[axis];
        if n.need[i] {
            let ranges = ys
                .iter()
                .enumerate()
                .map(|(d, &size)| {
                    if d == axis {
                        SliceRange {
                            start: at,
                            end: at + len,
                            step: 1,
                        }
                    } else {
                        SliceRange {
                            start: 0,
                            end: size,
                            step: 1,
                        }
                    }
                })
                .collect();
            out[i] = Some(if len == ys[axis] {
                dy
            } else {
                t.op(Op::Slice { ranges }, &[dy])?
            });
        }
        at += len;
    }
    Ok(out)
}

/// The gradient of a strided slice: `dy` placed at the sliced positions of zeros
/// shaped like the input, one axis at a time (strides interleave zeros).
fn unslice(t: &mut Tape, dy: ValueId, ranges: &[SliceRange], xs: &[usize]) -> R<ValueId> {
    let mut g = dy;
    for (axis, r) in ranges.iter().enumerate() {
        if (r.start, r.end, r.step) == (0, xs[axis], 1) {
            continue;
        }
        let mut s = t.shape(g);
        let len = s[axis];
        if r.step > 1 {
            // [.., len, ..] -> [.., len, 1, ..] ++ zeros [.., len, step-1, ..] -> [.., len*step, ..]
            let mut s1 = s.clone();
            s1.insert(axis + 1, 1);
            let g1 = t.reshape(g, &s1)?;
            let mut zs = s1.clone();
            zs[axis + 1] = r.step - 1;
            let z = t.zeros(&zs)?;
            let j = t.op(Op::Concat { axis: axis + 1 }, &[g1, z])?;
            s[axis] = len * r.step;
            g = t.reshape(j, &s)?;
            // Keep only the part inside the input.
            let keep = (xs[axis] - r.start).min(len * r.step);
            if keep < s[axis] {
                let ranges = s
                    .iter()
                    .enumerate()
                    .map(|(d, &size)| SliceRange {
                        start: 0,
                        end: if d == axis { keep } else { size },
                        step: 1,
                    })
                    .collect();
                g = t.op(Op::Slice { ranges }, &[g])?;
                s[axis] = keep;
            }
        }
        let (before, after) = (r.start, xs[axis] - r.start - s[axis]);
        let mut parts = Vec::new();
        for (count, is_data) in [(before, false), (s[axis], true), (after, false)] {
            if is_data {
                parts.push(g);
            } else if count > 0 {
                let mut zs = s.clone();
                zs[axis] = count;
                parts.push(t.zeros(&zs)?);
            }
        }
        if parts.len() > 1 {
            g = t.op(Op::Concat { axis }, &parts)?;
        }
    }
    Ok(g)
}
