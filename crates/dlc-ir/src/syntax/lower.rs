//! Lowering of surface calls to [`Op`]s: attribute normalisation (negative axes,
//! padding modes, `-1` in shapes, Python slices) and the ops that expand to
//! several nodes (`linear`, 1-D `matmul`, `flatten`, `embedding`).

use super::attrs::{Attrs, Pad};
use super::diagnostic::Diagnostic;
use super::elaborate::{Elab, Out, Res};
use super::table::OpSpec;
use crate::graph::ValueId;
use crate::op::*;
use crate::span::Span;
use crate::types::ShapeDisplay;

/// The default attention scale `1/sqrt(E)` (shared with the printer).
pub fn default_attention_scale(e: usize) -> f64 {
    1.0 / (e as f64).sqrt()
}

/// Lowers one call whose operands are elaborated.
pub(super) fn lower(
    cx: &mut Elab,
    spec: &'static OpSpec,
    args: &[ValueId],
    at: &Attrs,
    span: Span,
    out: Out,
) -> Res<ValueId> {
    let shape = |cx: &Elab, i: usize| cx.g.ty(args[i]).shape.clone();
    let rank0 = cx.g.ty(args[0]).rank();
    let name = spec.name;
    let op = match name {
        "gelu" => Op::Unary(if at.choice("approximate") == "tanh" {
            UnaryOp::GeluTanh
        } else {
            UnaryOp::GeluErf
        }),
        "leaky_relu" => Op::LeakyRelu {
            alpha: cx.check(at.float("alpha"))?,
        },
        "elu" => Op::Elu {
            alpha: cx.check(at.float("alpha"))?,
        },
        "clamp" => {
            if !at.has("min") && !at.has("max") {
                return cx.fail(
                    Diagnostic::new("`clamp` needs `min`, `max` or both", span)
                        .with_label("no bounds given")
                        .with_note("example: clamp(x, min=0, max=6)"),
                );
            }
            let (min, max) = (cx.check(at.float("min"))?, cx.check(at.float("max"))?);
            if min > max {
                return cx.fail(
                    Diagnostic::new(format!("`clamp`: min {min} is above max {max}"), span)
                        .with_label("empty range"),
                );
            }
            Op::Clamp { min, max }
        }
        "where" => Op::Where,
        "cast" => Op::Cast {
            to: cx.check(at.dtype("to", span))?,
        },
        "matmul" => return matmul(cx, args[0], args[1], out, span),
        "linear" => {
            let w = cx.g.ty(args[1]).rank();
            let perm = (0..w).rev().collect();
            let wt = cx.add_node(Op::Transpose { perm }, &args[1..2], None, span)?;
            if args.len() == 2 {
                return matmul(cx, args[0], wt, out, span);
            }
            let y = matmul(cx, args[0], wt, None, span)?;
            return cx.add_node(Op::Binary(BinaryOp::Add), &[y, args[2]], out, span);
        }
        "conv1d" | "conv2d" => {
            let n = if name == "conv1d" { 1 } else { 2 };
            Op::Conv(cx.check(conv_attrs(at, n, &shape(cx, 1), span))?)
        }
        "conv_transpose1d" | "conv_transpose2d" => {
            let n = if name == "conv_transpose1d" { 1 } else { 2 };
            let padding = match cx.check(at.padding("padding", n))? {
                Pad::Explicit(p) => p,
                _ => {
                    return cx.fail(
                        Diagnostic::new(
                            format!("`{name}` takes explicit padding, not \"same\"/\"valid\""),
                            at.get("padding").map_or(span, |v| v.span),
                        )
                        .with_label("give sizes"),
                    );
                }
            };
            Op::ConvTranspose(ConvTransposeAttrs {
                stride: cx.check(at.sizes("stride", n, 1))?.unwrap_or_default(),
                padding,
                output_padding: cx
                    .check(at.sizes("output_padding", n, 0))?
                    .unwrap_or_default(),
                dilation: cx.check(at.sizes("dilation", n, 1))?.unwrap_or_default(),
                groups: cx.check(at.size("groups", span))?,
            })
        }
        "max_pool1d" | "max_pool2d" | "avg_pool1d" | "avg_pool2d" => {
            let n = if name.ends_with("1d") { 1 } else { 2 };
            let kind = if name.starts_with("max") {
                PoolKind::Max
            } else {
                PoolKind::Avg {
                    count_include_pad: at.bool("count_include_pad"),
                }
            };
            let Some(kernel) = cx.check(at.sizes("kernel", n, 1))? else {
                return cx.fail(
                    Diagnostic::new(format!("`{name}` needs the attribute `kernel`"), span)
                        .with_label("missing `kernel=...`")
                        .with_note(format!("example: {}", spec.example)),
                );
            };
            let stride = cx
                .check(at.sizes("stride", n, 1))?
                .unwrap_or(kernel.clone());
            let padding = match cx.check(at.padding("padding", n))? {
                Pad::Explicit(p) => p,
                Pad::Valid => vec![(0, 0); n],
                Pad::Same => {
                    return cx.fail(
                        Diagnostic::new("pooling does not take \"same\" padding", span)
                            .with_label("give sizes"),
                    );
                }
            };
            Op::Pool(PoolAttrs {
                kind,
                kernel,
                stride,
                padding,
            })
        }
        "global_avg_pool" => Op::GlobalAvgPool,
        "sum" | "mean" | "max" | "min" => {
            let kind = match name {
                "sum" => ReduceKind::Sum,
                "mean" => ReduceKind::Mean,
                "max" => ReduceKind::Max,
                _ => ReduceKind::Min,
            };
            let mut axes = cx
                .check(at.axes("axis", rank0))?
                .unwrap_or_else(|| (0..rank0).collect());
            axes.sort_unstable();
            Op::Reduce {
                kind,
                axes,
                keepdim: at.bool("keepdim"),
            }
        }
        "argmax" => Op::ArgMax {
            axis: cx.check(at.axis("axis", rank0).map_err(|d| d.at(span)))?,
            keepdim: at.bool("keepdim"),
        },
        "softmax" => Op::Softmax {
            axis: cx.check(at.axis("axis", rank0).map_err(|d| d.at(span)))?,
        },
        "log_softmax" => Op::LogSoftmax {
            axis: cx.check(at.axis("axis", rank0).map_err(|d| d.at(span)))?,
        },
        "reshape" => {
            let want = cx.check(at.shape("shape", span, true))?;
            let vspan = at.get("shape").map_or(span, |v| v.span);
            Op::Reshape {
                shape: cx.check(resolve_reshape(&shape(cx, 0), &want, vspan))?,
            }
        }
        "flatten" => {
            let a = cx.check(at.int("axis"))?;
            let x = shape(cx, 0);
            // ONNX semantics: axis in -rank..=rank, negative counts from the end.
            let r = x.len() as i64;
            let norm = if a < 0 { a.checked_add(r) } else { Some(a) };
            let Some(axis) = norm.filter(|a| (0..=r).contains(a)).map(|a| a as usize) else {
                let s = at.get("axis").map_or(span, |v| v.span);
                return cx.fail(
                    Diagnostic::new(
                        format!("`flatten`: axis {a} is out of range for rank {}", x.len()),
                        s,
                    )
                    .with_label("bad axis"),
                );
            };
            let outer = x[..axis].iter().product();
            Op::Reshape {
                shape: vec![outer, x[axis..].iter().product()],
            }
        }
        "transpose" | "permute" => Op::Transpose {
            perm: cx
                .check(at.axes("perm", rank0))?
                .unwrap_or_else(|| (0..rank0).rev().collect()),
        },
        "broadcast_to" => Op::BroadcastTo {
            shape: cx
                .check(at.shape("shape", span, false))?
                .into_iter()
                .map(|d| d.unwrap_or(1))
                .collect(),
        },
        "concat" => Op::Concat {
            axis: cx.check(at.axis("axis", rank0).map_err(|d| d.at(span)))?,
        },
        "slice" => Op::Slice {
            ranges: cx.check(slice_ranges(at, &shape(cx, 0), span))?,
        },
        "gather" => Op::Gather {
            axis: cx.check(at.axis("axis", rank0).map_err(|d| d.at(span)))?,
        },
        "embedding" => Op::Gather { axis: 0 },
        "one_hot" => Op::OneHot {
            depth: cx.check(at.size("depth", span))?,
        },
        "batchnorm" => Op::BatchNorm {
            eps: cx.check(at.float("eps"))?,
            momentum: cx.check(at.float("momentum"))?,
            training: at.bool("training"),
        },
        "layernorm" => Op::LayerNorm {
            axis: cx.check(at.axis("axis", rank0).map_err(|d| d.at(span)))?,
            eps: cx.check(at.float("eps"))?,
        },
        "dropout" => Op::Dropout {
            p: cx.check(at.float("p"))?,
            seed: cx.check(at.seed("seed"))?,
            training: at.bool("training"),
        },
        "mse_loss" => Op::MseLoss,
        "cross_entropy" => Op::CrossEntropy,
        "rnn" | "lstm" | "gru" | "rnn_cell" | "lstm_cell" | "gru_cell" => Op::Recurrent {
            cell: match &name[..3] {
                "rnn" => CellKind::Rnn,
                "lst" => CellKind::Lstm,
                _ => CellKind::Gru,
            },
            sequence: !name.ends_with("_cell"),
        },
        "grid_lstm" => Op::GridLstm,
        "attention" => {
            let e = shape(cx, 0).last().copied().unwrap_or(1);
            let scale = match at.get("scale") {
                Some(_) => cx.check(at.float("scale"))?,
                None => default_attention_scale(e),
            };
            Op::Attention {
                causal: at.bool("causal"),
                scale,
            }
        }
        "multihead_attention" => Op::MultiHeadAttention {
            heads: cx.check(at.size("heads", span))?,
            causal: at.bool("causal"),
        },
        "conv1d_weight_grad" | "conv2d_weight_grad" => {
            let n = if name == "conv1d_weight_grad" { 1 } else { 2 };
            cx.check(super::lower_grad::conv_weight_grad(at, n, span))?
        }
        "max_pool1d_grad" | "max_pool2d_grad" | "avg_pool1d_grad" | "avg_pool2d_grad" => {
            cx.check(super::lower_grad::pool_grad(at, name, spec, span))?
        }
        "gather_grad" => Op::GatherGrad {
            axis: {
                let rank = rank0 + 1 - cx.g.ty(args[1]).rank().min(rank0 + 1);
                cx.check(at.axis("axis", rank.max(1)).map_err(|d| d.at(span)))?
            },
            size: cx.check(at.size("size", span))?,
        },
        "rnn_grad" | "lstm_grad" | "gru_grad" | "rnn_cell_grad" | "lstm_cell_grad"
        | "gru_cell_grad" => Op::RecurrentGrad {
            cell: match &name[..3] {
                "rnn" => CellKind::Rnn,
                "lst" => CellKind::Lstm,
                _ => CellKind::Gru,
            },
            sequence: !name.contains("_cell"),
        },
        "grid_lstm_grad" => Op::GridLstmGrad,
        "attention_grad" => {
            let e = shape(cx, 0).last().copied().unwrap_or(1);
            let scale = match at.get("scale") {
                Some(_) => cx.check(at.float("scale"))?,
                None => default_attention_scale(e),
            };
            Op::AttentionGrad {
                causal: at.bool("causal"),
                scale,
            }
        }
        _ => {
            if let Some(u) = UnaryOp::ALL.iter().find(|u| u.name() == name) {
                Op::Unary(*u)
            } else if let Some(b) = BinaryOp::ALL.iter().find(|b| b.name() == name) {
                Op::Binary(*b)
            } else {
                return cx.fail(Diagnostic::new(
                    format!("internal error: no lowering for `{name}`"),
                    span,
                ));
            }
        }
    };
    cx.add_node(op, args, out, span)
}

trait At {
    fn at(self, span: Span) -> Self;
}

impl At for Diagnostic {
    /// Gives a span-less diagnostic the call's span.
    fn at(mut self, span: Span) -> Diagnostic {
        if self.span.is_none() {
            self.span = Some(span);
            self.label = "in this call".into();
        }
        self
    }
}

/// Numpy matmul: rank >= 2 operands map to [`Op::MatMul`]; a 1-D operand is
/// reshaped to a matrix and the added dim removed afterwards.
pub(super) fn matmul(cx: &mut Elab, a: ValueId, b: ValueId, out: Out, span: Span) -> Res<ValueId> {
    let (ra, rb) = (cx.g.ty(a).rank(), cx.g.ty(b).rank());
    if (ra >= 2 && rb >= 2) || ra == 0 || rb == 0 {
        return cx.add_node(Op::MatMul, &[a, b], out, span);
    }
    let a2 = if ra == 1 {
        let k = cx.g.ty(a).shape[0];
        cx.add_node(Op::Reshape { shape: vec![1, k] }, &[a], None, span)?
    } else {
        a
    };
    let b2 = if rb == 1 {
        let k = cx.g.ty(b).shape[0];
        cx.add_node(Op::Reshape { shape: vec![k, 1] }, &[b], None, span)?
    } else {
        b
    };
    let m = cx.add_node(Op::MatMul, &[a2, b2], None, span)?;
    let mut shape = cx.g.ty(m).shape.clone();
    if rb == 1 {
        shape.pop();
    }
    if ra == 1 {
        let i = shape.len() - if rb == 1 { 1 } else { 2 };
        shape.remove(i);
    }
    cx.add_node(Op::Reshape { shape }, &[m], out, span)
}

fn conv_attrs(at: &Attrs, n: usize, w: &[usize], span: Span) -> Result<ConvAttrs, Diagnostic> {
    let stride = at.sizes("stride", n, 1)?.unwrap_or_default();
    let dilation = at.sizes("dilation", n, 1)?.unwrap_or_default();
    let kernel = |d: usize| w.get(2 + d).copied().unwrap_or(1);
    let causal = n == 1 && at.bool("causal");
    let padding = if causal {
        if let Some(p) = at.get("padding") {
            return Err(Diagnostic::new(
                "`causal=true` sets the padding itself; remove `padding`",
                p.span,
            )
            .with_label("conflicts with `causal=true`"));
        }
        vec![(dilation[0].saturating_mul(kernel(0).saturating_sub(1)), 0)]
    } else {
        match at.padding("padding", n)? {
            Pad::Explicit(p) => p,
            Pad::Valid => vec![(0, 0); n],
            Pad::Same => {
                if stride.iter().any(|&s| s != 1) {
                    let s = at.get("padding").map_or(span, |v| v.span);
                    return Err(Diagnostic::new("padding \"same\" needs stride 1", s)
                        .with_label("stride is not 1")
                        .with_note("give explicit padding for strided convolutions"));
                }
                (0..n)
                    .map(|d| {
                        let total = dilation[d].saturating_mul(kernel(d).saturating_sub(1));
                        (total / 2, total - total / 2)
                    })
                    .collect()
            }
        }
    };
    Ok(ConvAttrs {
        stride,
        padding,
        dilation,
        groups: at.size("groups", span)?,
    })
}

fn resolve_reshape(
    x: &[usize],
    want: &[Option<usize>],
    span: Span,
) -> Result<Vec<usize>, Diagnostic> {
    let numel: usize = x.iter().product();
    let known = want
        .iter()
        .flatten()
        .try_fold(1usize, |n, &d| n.checked_mul(d));
    let shown = || {
        let parts: Vec<String> = want
            .iter()
            .map(|d| d.map_or("-1".to_string(), |d| d.to_string()))
            .collect();
        format!("[{}]", parts.join(", "))
    };
    let fail = || {
        Diagnostic::new(
            format!(
                "reshape: cannot reshape {} ({numel} elements) to {}",
                ShapeDisplay(x),
                shown()
            ),
            span,
        )
        .with_label("element counts differ")
    };
    let known = known.ok_or_else(fail)?;
    let fill = if want.contains(&None) {
        if known == 0 || !numel.is_multiple_of(known) {
            return Err(fail());
        }
        numel / known
    } else {
        if known != numel {
            return Err(fail());
        }
        1
    };
    Ok(want.iter().map(|d| d.unwrap_or(fill)).collect())
}

/// Python slicing per listed axis: negative indices count from the end, bounds are
/// clamped to the dim, steps are positive; an empty result is an error.
fn slice_ranges(at: &Attrs, x: &[usize], span: Span) -> Result<Vec<SliceRange>, Diagnostic> {
    let mut ranges: Vec<SliceRange> = x
        .iter()
        .map(|&d| SliceRange {
            start: 0,
            end: d,
            step: 1,
        })
        .collect();
    let lists = [at.ints("start")?, at.ints("end")?, at.ints("step")?];
    let Some(axes) = at.axes("axis", x.len())? else {
        if let Some(i) = lists.iter().position(|l| l.is_some()) {
            let what = ["start", "end", "step"][i];
            return Err(
                Diagnostic::new(format!("slice: `{what}` needs `axis`"), span)
                    .with_label("which axes?")
                    .with_note("example: slice(x, axis=1, start=2, end=5)"),
            );
        }
        return Ok(ranges);
    };
    let names = ["start", "end", "step"];
    for (k, l) in lists.iter().enumerate() {
        if let Some(l) = l
            && l.len() != 1
            && l.len() != axes.len()
        {
            let s = at.get(names[k]).map_or(span, |v| v.span);
            return Err(Diagnostic::new(
                format!(
                    "slice: `{}` has {} values but `axis` lists {} axes",
                    names[k],
                    l.len(),
                    axes.len()
                ),
                s,
            )
            .with_label("length mismatch"));
        }
    }
    let pick = |k: usize, i: usize| {
        lists[k]
            .as_ref()
            .map(|l| if l.len() == 1 { l[0] } else { l[i] })
    };
    for (i, &ax) in axes.iter().enumerate() {
        let d = x[ax] as i128;
        let step = pick(2, i).unwrap_or(1);
        if step < 1 {
            let s = at.get("step").map_or(span, |v| v.span);
            return Err(
                Diagnostic::new(format!("slice: step {step} must be at least 1"), s)
                    .with_label("bad step"),
            );
        }
        let norm = |v: i64| {
            let v = v as i128;
            if v < 0 { (v + d).max(0) } else { v.min(d) }
        };
        let start = pick(0, i).map_or(0, norm);
        let end = pick(1, i).map_or(d, norm);
        if start >= end {
            return Err(Diagnostic::new(
                format!(
                    "slice of axis {ax} is empty: start {start}, end {end} on a dim of size {d}"
                ),
                span,
            )
            .with_label("empty slice")
            .with_note("dlc tensors have no zero-sized dims"));
        }
        ranges[ax] = SliceRange {
            start: start as usize,
            end: end as usize,
            step: step as usize,
        };
    }
    Ok(ranges)
}
