//! The canonical printer: a [`Graph`] as `.ir` text that parses back to an equal
//! graph.
//!
//! Every node becomes one statement, in node order: `input`, `param` and `const`
//! declarations for sources, `name = op(operands, attrs)` for ops (multi-result
//! nodes destructure), then one `output` line. Only attributes that differ from
//! their defaults (per the op table) are printed, always in a form that parses
//! back to exactly the same [`Op`]. Floats use Rust's shortest round-trip form.

use std::fmt::Write;

use super::lexer::quote_ident;
use super::lower::default_attention_scale;
use super::table::{self, AttrDefault};
use crate::graph::Graph;
use crate::init::Init;
use crate::op::*;
use crate::types::TensorType;

/// Prints `g` as canonical `.ir` text.
pub fn print_graph(g: &Graph) -> String {
    let mut s = format!("model {} {{\n", quote_ident(&g.name));
    for id in g.node_ids() {
        let node = g.node(id);
        let name = quote_ident(&node.names[0]);
        let ty = node.types.first().map(type_str).unwrap_or_default();
        let line = match &node.op {
            Op::Input => format!("input {name}: {ty}"),
            Op::Param { init } => format!("param {name}: {ty} = {}", init_str(init)),
            Op::Const { value } => format!(
                "const {name}: {ty} = {}",
                const_str(value, &node.types[0].shape)
            ),
            op => {
                let names: Vec<String> = node.names.iter().map(|n| quote_ident(n)).collect();
                let operands: Vec<String> = g
                    .operands(id)
                    .iter()
                    .map(|&v| quote_ident(g.value_name(v)))
                    .collect();
                let in_types: Vec<&TensorType> = g.operands(id).iter().map(|&v| g.ty(v)).collect();
                let mut args = operands;
                args.extend(attrs(op, &in_types));
                format!(
                    "{} = {}({})",
                    names.join(", "),
                    surface_name(op),
                    args.join(", ")
                )
            }
        };
        let _ = writeln!(s, "  {line}");
    }
    if !g.outputs().is_empty() {
        let outs: Vec<String> = g
            .outputs()
            .iter()
            .map(|o| {
                let v = g.value_name(o.value);
                if v == o.name {
                    quote_ident(v)
                } else {
                    format!("{} = {}", quote_ident(&o.name), quote_ident(v))
                }
            })
            .collect();
        let _ = writeln!(s, "  output {}", outs.join(", "));
    }
    s.push_str("}\n");
    s
}

/// `f32[2, 3]` (scalars print as `f32[]`).
pub fn type_str(t: &TensorType) -> String {
    let dims: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
    format!("{}[{}]", t.dtype, dims.join(", "))
}

/// A float in shortest round-trip form, spelled so the lexer reads it back as a float.
pub fn float_str(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else {
        format!("{f:?}")
    }
}

fn init_str(init: &Init) -> String {
    let args = init.args();
    if args.is_empty() {
        init.name().to_string()
    } else {
        let a: Vec<String> = args.into_iter().map(float_str).collect();
        format!("{}({})", init.name(), a.join(", "))
    }
}

fn const_str(v: &ConstValue, shape: &[usize]) -> String {
    let items: Vec<String> = match v {
        ConstValue::Float(v) => v.iter().map(|&f| float_str(f)).collect(),
        ConstValue::Int(v) => v.iter().map(|i| i.to_string()).collect(),
        ConstValue::Bool(v) => v.iter().map(|b| b.to_string()).collect(),
    };
    nest(&items, shape)
}

fn nest(items: &[String], shape: &[usize]) -> String {
    match shape.split_first() {
        None => items.first().cloned().unwrap_or_default(),
        Some((&n, rest)) => {
            let chunk = items.len() / n.max(1);
            let parts: Vec<String> = (0..n)
                .map(|i| {
                    nest(
                        &items[(i * chunk).min(items.len())..((i + 1) * chunk).min(items.len())],
                        rest,
                    )
                })
                .collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

/// The call name of an op (spatial rank picks the 1d/2d variant).
pub fn surface_name(op: &Op) -> &'static str {
    match op {
        Op::Conv(c) if c.stride.len() == 1 => "conv1d",
        Op::Conv(_) => "conv2d",
        Op::ConvTranspose(c) if c.stride.len() == 1 => "conv_transpose1d",
        Op::ConvTranspose(_) => "conv_transpose2d",
        Op::Pool(p) => match (p.kind, p.kernel.len()) {
            (PoolKind::Max, 1) => "max_pool1d",
            (PoolKind::Max, _) => "max_pool2d",
            (_, 1) => "avg_pool1d",
            _ => "avg_pool2d",
        },
        Op::PoolGrad(p) => match (p.kind, p.kernel.len()) {
            (PoolKind::Max, 1) => "max_pool1d_grad",
            (PoolKind::Max, _) => "max_pool2d_grad",
            (_, 1) => "avg_pool1d_grad",
            _ => "avg_pool2d_grad",
        },
        op => op.name(),
    }
}

/// `key=value` for every attribute of `op` that differs from its default.
fn attrs(op: &Op, inputs: &[&TensorType]) -> Vec<String> {
    let spec = table::spec(surface_name(op));
    let rank = inputs.first().map_or(0, |t| t.rank());
    let mut out: Vec<String> = Vec::new();
    let float = |out: &mut Vec<String>, name: &str, v: f64| {
        let differs = match spec.default(name) {
            AttrDefault::Float(d) => d.to_bits() != v.to_bits(),
            _ => true,
        };
        if differs {
            out.push(format!("{name}={}", float_str(v)));
        }
    };
    let mut extra: Vec<String> = Vec::new();
    let mut flag = |name: &str, v: bool| {
        if spec.default(name) != AttrDefault::Bool(v) {
            extra.push(format!("{name}={v}"));
        }
    };
    let last = rank.saturating_sub(1);
    match op {
        Op::LeakyRelu { alpha } | Op::Elu { alpha } => float(&mut out, "alpha", *alpha),
        Op::Clamp { min, max } => {
            if *min == f64::NEG_INFINITY && *max == f64::INFINITY {
                out.push("min=-inf".into());
            }
            float(&mut out, "min", *min);
            float(&mut out, "max", *max);
        }
        Op::Cast { to } => out.push(format!("to={to}")),
        Op::Conv(c) => {
            push_sizes(&mut out, "stride", &c.stride, 1);
            push_padding(&mut out, &c.padding);
            push_sizes(&mut out, "dilation", &c.dilation, 1);
            if c.groups != 1 {
                out.push(format!("groups={}", c.groups));
            }
        }
        Op::ConvTranspose(c) => {
            push_sizes(&mut out, "stride", &c.stride, 1);
            push_padding(&mut out, &c.padding);
            push_sizes(&mut out, "output_padding", &c.output_padding, 0);
            push_sizes(&mut out, "dilation", &c.dilation, 1);
            if c.groups != 1 {
                out.push(format!("groups={}", c.groups));
            }
        }
        Op::Pool(p) | Op::PoolGrad(p) => {
            out.push(format!("kernel={}", sizes_str(&p.kernel)));
            if p.stride != p.kernel {
                out.push(format!("stride={}", sizes_str(&p.stride)));
            }
            push_padding(&mut out, &p.padding);
            if let PoolKind::Avg { count_include_pad } = p.kind {
                flag("count_include_pad", count_include_pad);
            }
        }
        Op::Reduce { axes, keepdim, .. } => {
            if *axes != (0..rank).collect::<Vec<_>>() {
                out.push(format!("axis={}", ints_str(axes)));
            }
            flag("keepdim", *keepdim);
        }
        Op::ArgMax { axis, keepdim } => {
            if *axis != last {
                out.push(format!("axis={axis}"));
            }
            flag("keepdim", *keepdim);
        }
        Op::Softmax { axis } | Op::LogSoftmax { axis } if *axis != last => {
            out.push(format!("axis={axis}"))
        }
        Op::Reshape { shape } | Op::BroadcastTo { shape } => {
            out.push(format!("shape={}", list(shape)))
        }
        Op::Transpose { perm } if *perm != (0..rank).rev().collect::<Vec<_>>() => {
            out.push(format!("perm={}", list(perm)))
        }
        Op::Concat { axis } | Op::Gather { axis } if *axis != 0 => out.push(format!("axis={axis}")),
        Op::Slice { ranges } => {
            let dims = inputs.first().map_or(&[][..], |t| &t.shape[..]);
            let cut: Vec<usize> = (0..ranges.len())
                .filter(|&i| {
                    let r = ranges[i];
                    (r.start, r.end, r.step) != (0, dims.get(i).copied().unwrap_or(0), 1)
                })
                .collect();
            if !cut.is_empty() {
                let pick = |f: fn(&SliceRange) -> usize| -> Vec<usize> {
                    cut.iter().map(|&i| f(&ranges[i])).collect()
                };
                out.push(format!("axis={}", ints_str(&cut)));
                out.push(format!("start={}", ints_str(&pick(|r| r.start))));
                out.push(format!("end={}", ints_str(&pick(|r| r.end))));
                let steps = pick(|r| r.step);
                if steps.iter().any(|&s| s != 1) {
                    out.push(format!("step={}", ints_str(&steps)));
                }
            }
        }
        Op::OneHot { depth } => out.push(format!("depth={depth}")),
        Op::BatchNorm {
            eps,
            momentum,
            training,
        } => {
            float(&mut out, "eps", *eps);
            float(&mut out, "momentum", *momentum);
            flag("training", *training);
        }
        Op::LayerNorm { axis, eps } => {
            if *axis != last {
                out.push(format!("axis={axis}"));
            }
            float(&mut out, "eps", *eps);
        }
        Op::Dropout { p, seed, training } => {
            float(&mut out, "p", *p);
            if *seed != 0 {
                out.push(format!("seed={seed}"));
            }
            flag("training", *training);
        }
        Op::Attention { causal, scale } => {
            flag("causal", *causal);
            let e = inputs
                .first()
                .and_then(|t| t.shape.last().copied())
                .unwrap_or(1);
            if scale.to_bits() != default_attention_scale(e).to_bits() {
                out.push(format!("scale={}", float_str(*scale)));
            }
        }
        Op::ConvWeightGrad { conv: c, kernel } => {
            out.push(format!("kernel={}", sizes_str(kernel)));
            push_sizes(&mut out, "stride", &c.stride, 1);
            push_padding(&mut out, &c.padding);
            push_sizes(&mut out, "dilation", &c.dilation, 1);
            if c.groups != 1 {
                out.push(format!("groups={}", c.groups));
            }
        }
        Op::GatherGrad { axis, size } => {
            if *axis != 0 {
                out.push(format!("axis={axis}"));
            }
            out.push(format!("size={size}"));
        }
        Op::AttentionGrad { causal, scale } => {
            flag("causal", *causal);
            let e = inputs
                .first()
                .and_then(|t| t.shape.last().copied())
                .unwrap_or(1);
            if scale.to_bits() != default_attention_scale(e).to_bits() {
                out.push(format!("scale={}", float_str(*scale)));
            }
        }
        Op::MultiHeadAttention { heads, causal } => {
            out.push(format!("heads={heads}"));
            flag("causal", *causal);
        }
        _ => {}
    }
    out.extend(extra);
    out
}

fn list(v: &[usize]) -> String {
    let parts: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// A single value when the list has one entry, else a list.
fn ints_str(v: &[usize]) -> String {
    if v.len() == 1 {
        v[0].to_string()
    } else {
        list(v)
    }
}

/// A single value when all entries are equal (and there is at least one), else a list.
fn sizes_str(v: &[usize]) -> String {
    if !v.is_empty() && v.iter().all(|&x| x == v[0]) {
        v[0].to_string()
    } else {
        list(v)
    }
}

fn push_sizes(out: &mut Vec<String>, name: &str, v: &[usize], default: usize) {
    if v.iter().any(|&x| x != default) {
        out.push(format!("{name}={}", sizes_str(v)));
    }
}

fn push_padding(out: &mut Vec<String>, p: &[(usize, usize)]) {
    if p.iter().all(|&(a, b)| a == 0 && b == 0) {
        return;
    }
    let s = if p.iter().all(|&(a, b)| a == b && a == p[0].0) {
        p[0].0.to_string()
    } else if p.iter().all(|&(a, b)| a == b) {
        list(&p.iter().map(|&(a, _)| a).collect::<Vec<_>>())
    } else {
        list(&p.iter().flat_map(|&(a, b)| [a, b]).collect::<Vec<_>>())
    };
    out.push(format!("padding={s}"));
}
