//! Conditions and custom appliers of the rule table.
//!
//! Appliers build every node through [`Builder`], which types it first, and union
//! the result only when its types equal the matched class's, so these functions
//! can stay short: a shape they did not anticipate makes them do nothing.

use dlc_ir::{BinaryOp, Op, SliceRange, TensorType, UnaryOp};
use egg::{Applier, Id, PatternAst, SearchMatches, Searcher, Subst, Symbol, Var};

use crate::analysis::{Data, TensorAnalysis, TensorGraph};
use crate::build::Builder;
use crate::lang::{Attr, Tensor};

/// A custom right-hand side: returns whether it changed the e-graph.
pub type ApplyFn = fn(&mut Builder, Id, &Subst) -> bool;

/// Adapts an [`ApplyFn`] to egg's [`Applier`].
pub struct Custom(pub ApplyFn);

impl Applier<Tensor, TensorAnalysis> for Custom {
    fn apply_one(
        &self,
        egraph: &mut TensorGraph,
        eclass: Id,
        subst: &Subst,
        _: Option<&PatternAst<Tensor>>,
        rule: Symbol,
    ) -> Vec<Id> {
        if (self.0)(&mut Builder { egraph }, eclass, subst) {
            egraph.analysis.rewritten.push((rule, eclass));
            vec![eclass]
        } else {
            vec![]
        }
    }
}

/// A boxed applier as an applier.
pub struct Boxed(pub Box<dyn Applier<Tensor, TensorAnalysis> + Send + Sync>);

impl Applier<Tensor, TensorAnalysis> for Boxed {
    fn apply_one(
        &self,
        egraph: &mut TensorGraph,
        eclass: Id,
        subst: &Subst,
        ast: Option<&PatternAst<Tensor>>,
        rule: Symbol,
    ) -> Vec<Id> {
        self.0.apply_one(egraph, eclass, subst, ast, rule)
    }

    fn vars(&self) -> Vec<Var> {
        self.0.vars()
    }
}

/// The searcher of constant folding: classes with a known value and no constant node.
pub struct KnownValue;

impl Searcher<Tensor, TensorAnalysis> for KnownValue {
    fn search_eclass_with_limit(
        &self,
        egraph: &TensorGraph,
        eclass: Id,
        limit: usize,
    ) -> Option<SearchMatches<'_, Tensor>> {
        let c = &egraph[eclass];
        let foldable = limit > 0
            && c.data.konst.is_some()
            && c.data.ty().is_some()
            && !c.nodes.iter().any(|n| matches!(n, Tensor::Source(_)));
        foldable.then(|| SearchMatches {
            eclass,
            substs: vec![Subst::default()],
            ast: None,
        })
    }

    fn vars(&self) -> Vec<Var> {
        vec![]
    }
}

fn var(name: &str) -> Var {
    name.parse().expect("rule variables are well-formed")
}

fn data<'g>(g: &'g TensorGraph, s: &Subst, name: &str) -> Option<&'g Data> {
    s.get(var(name)).map(|&id| &g[id].data)
}

fn attr_op<'g>(g: &'g TensorGraph, s: &Subst, name: &str) -> Option<&'g Op> {
    match data(g, s, name)?.attr? {
        Attr::Op(k) => Some(g.analysis.op(k)),
        Attr::Index(_) => None,
    }
}

/// `?c` is a known constant of ones.
pub fn c_is_one(g: &TensorGraph, s: &Subst) -> bool {
    data(g, s, "?c").is_some_and(|d| d.is_all(1.0))
}

/// `?c` is a known constant of zeros.
pub fn c_is_zero(g: &TensorGraph, s: &Subst) -> bool {
    data(g, s, "?c").is_some_and(|d| d.is_all(0.0))
}

/// `?s` has one element.
pub fn s_is_scalar(g: &TensorGraph, s: &Subst) -> bool {
    data(g, s, "?s")
        .and_then(Data::ty)
        .is_some_and(|t| t.numel() == 1)
}

fn perm(g: &TensorGraph, s: &Subst, name: &str) -> Option<Vec<usize>> {
    match attr_op(g, s, name)? {
        Op::Transpose { perm } => Some(perm.clone()),
        _ => None,
    }
}

fn swaps_last_two(p: &[usize]) -> bool {
    let n = p.len();
    n >= 2
        && p[n - 1] == n - 2
        && p[n - 2] == n - 1
        && p[..n - 2].iter().enumerate().all(|(i, &d)| i == d)
}

/// `?p` is the identity permutation.
pub fn p_is_identity(g: &TensorGraph, s: &Subst) -> bool {
    perm(g, s, "?p").is_some_and(|p| p.iter().enumerate().all(|(i, &d)| i == d))
}

/// `?p` swaps the last two dims and keeps the others.
pub fn p_swaps_last_two(g: &TensorGraph, s: &Subst) -> bool {
    perm(g, s, "?p").is_some_and(|p| swaps_last_two(&p))
}

/// `?w1` and `?w2` are different 2-D weights (taken in one order only: input-free
/// values, so the concat is work on parameters, not on activations) of different
/// matmuls `?a`, `?b` of an activation `?x`, built from no common weight.
pub fn distinct_2d_weights(g: &TensorGraph, s: &Subst) -> bool {
    let id = |n: &str| s.get(var(n)).map(|&i| g.find(i));
    let rank2 = |n| {
        data(g, s, n)
            .and_then(Data::ty)
            .is_some_and(|t| t.rank() == 2)
    };
    let disjoint = |w1: Id, w2: Id| {
        let (l1, l2) = (concat_leaves(g, w1), concat_leaves(g, w2));
        !l1.iter().any(|x| l2.contains(x))
    };
    matches!((id("?w1"), id("?w2"), id("?a"), id("?b")),
        (Some(w1), Some(w2), Some(a), Some(b)) if w1 < w2 && a != b && disjoint(w1, w2))
        && rank2("?w1")
        && rank2("?w2")
        && ["?w1", "?w2"]
            .iter()
            .all(|n| data(g, s, n).is_some_and(|d| d.input_free))
        && data(g, s, "?x").is_some_and(|d| !d.input_free)
}

/// The classes a weight is concatenated from (itself if it is no concat): two
/// merges may not share a weight, or `x·w1` would merge again with the slice of
/// `x·concat(w1, w2)` it is part of, without end. Nested concats are followed
/// to a bounded depth.
fn concat_leaves(g: &TensorGraph, w: Id) -> Vec<Id> {
    let mut leaves = Vec::new();
    let mut stack = vec![(g.find(w), 0)];
    while let Some((c, depth)) = stack.pop() {
        let concat = g[c].nodes.iter().find_map(|n| match n {
            Tensor::Concat(ops) => Some(ops.clone()),
            _ => None,
        });
        match concat {
            Some(ops) if depth < 8 => {
                stack.extend(ops[1..].iter().map(|&x| (g.find(x), depth + 1)))
            }
            _ => leaves.push(c),
        }
    }
    leaves
}

/// The softmax is over the last axis and `?p` swaps the last two dims of `k`.
pub fn attention_shape(g: &TensorGraph, s: &Subst) -> bool {
    let last_axis = match (attr_op(g, s, "?ax"), data(g, s, "?q").and_then(Data::ty)) {
        (Some(Op::Softmax { axis }), Some(q)) => *axis + 1 == q.rank(),
        _ => false,
    };
    last_axis && p_swaps_last_two(g, s)
}

fn scalar_value(g: &TensorGraph, s: &Subst, name: &str) -> Option<f64> {
    let d = data(g, s, name)?;
    let k = d.konst.as_ref()?;
    (k.len() == 1 && k[0].is_finite() && k[0] != 0.0).then(|| k[0])
}

/// [`attention_shape`] and `?s` is a known finite, non-zero scalar.
pub fn attention_shape_scalar(g: &TensorGraph, s: &Subst) -> bool {
    attention_shape(g, s) && scalar_value(g, s, "?s").is_some()
}

/// `x - x` → zeros of x's type.
pub fn zeros_like_x(b: &mut Builder, class: Id, s: &Subst) -> bool {
    let Some(ty) = b.data(s[var("?x")]).ty().cloned() else {
        return false;
    };
    let z = if ty.numel() <= crate::analysis::FOLD_LIMIT {
        Some(b.constant(ty.clone(), &vec![0.0; ty.numel()]))
    } else {
        let zero = b.constant(TensorType::new(ty.dtype, []), &[0.0]);
        b.op(Op::BroadcastTo { shape: ty.shape }, &[zero])
    };
    z.is_some_and(|z| b.union_checked(class, z))
}

/// Two stacked transposes → one (or none).
pub fn compose_transposes(b: &mut Builder, class: Id, s: &Subst) -> bool {
    let (Some(p), Some(q)) = (perm(b.egraph, s, "?p"), perm(b.egraph, s, "?q")) else {
        return false;
    };
    if p.len() != q.len() {
        return false;
    }
    let r: Vec<usize> = p.iter().map(|&i| q[i]).collect();
    let x = s[var("?x")];
    if r.iter().enumerate().all(|(i, &d)| i == d) {
        return b.union_checked(class, x);
    }
    match b.op(Op::Transpose { perm: r }, &[x]) {
        Some(t) => b.union_checked(class, t),
        None => false,
    }
}

/// Merges `?a = x·w1` and `?b = x·w2` into slices of `x·concat(w1, w2)` and records
/// the pair as a sharing group for extraction.
pub fn merge_matmuls(b: &mut Builder, _class: Id, s: &Subst) -> bool {
    let (x, w1, w2) = (s[var("?x")], s[var("?w1")], s[var("?w2")]);
    let (ca, cb) = (s[var("?a")], s[var("?b")]);
    let (Some(t1), Some(t2), Some(out)) = (
        b.data(w1).ty().cloned(),
        b.data(w2).ty().cloned(),
        b.data(ca).ty().cloned(),
    ) else {
        return false;
    };
    let (n1, n2) = (t1.shape[1], t2.shape[1]);
    let Some(w) = b.op(Op::Concat { axis: 1 }, &[w1, w2]) else {
        return false;
    };
    let Some(c) = b.op(Op::MatMul, &[x, w]) else {
        return false;
    };
    let r = out.rank();
    let slice = |start: usize, len: usize| {
        let mut ranges: Vec<SliceRange> = out
            .shape
            .iter()
            .map(|&d| SliceRange {
                start: 0,
                end: d,
                step: 1,
            })
            .collect();
        ranges[r - 1] = SliceRange {
            start,
            end: start + len,
            step: 1,
        };
        Op::Slice { ranges }
    };
    let mut group = Vec::with_capacity(2);
    let mut changed = false;
    for (class, op) in [(ca, slice(0, n1)), (cb, slice(n1, n2))] {
        let attr = b.attr(op);
        let node = Tensor::Slice([attr, c]);
        let Some(id) = b.add(node.clone()) else {
            return changed;
        };
        changed |= b.union_checked(class, id);
        group.push((class, node));
    }
    if changed {
        b.egraph.analysis.groups.push(group);
    }
    changed
}

/// Adds a constant node holding the class's known value.
pub fn fold_constant(b: &mut Builder, class: Id, _: &Subst) -> bool {
    let d = b.data(class);
    let (Some(ty), Some(values)) = (d.ty().cloned(), d.konst.clone()) else {
        return false;
    };
    let c = b.constant(ty, &values);
    b.union_checked(class, c)
}

/// `s = γ / √(σ² + ε)` and the folded bias `β - μ·s`, or `(c - μ)·s + β` with a bias `c`.
fn bn_scale_bias(b: &mut Builder, s: &Subst, bias: Option<Id>) -> Option<(Id, Id)> {
    let Op::BatchNorm { eps, .. } = attr_op(b.egraph, s, "?e")?.clone() else {
        return None;
    };
    let (g, beta, m, v) = (s[var("?g")], s[var("?b")], s[var("?m")], s[var("?v")]);
    let eps = b.constant(TensorType::f32([]), &[eps]);
    let ve = b.op(Op::Binary(BinaryOp::Add), &[v, eps])?;
    let inv = b.op(Op::Unary(UnaryOp::Rsqrt), &[ve])?;
    let scale = b.op(Op::Binary(BinaryOp::Mul), &[g, inv])?;
    let shift = match bias {
        Some(c) => {
            let cm = b.op(Op::Binary(BinaryOp::Sub), &[c, m])?;
            let cms = b.op(Op::Binary(BinaryOp::Mul), &[cm, scale])?;
            b.op(Op::Binary(BinaryOp::Add), &[cms, beta])?
        }
        None => {
            let ms = b.op(Op::Binary(BinaryOp::Mul), &[m, scale])?;
            b.op(Op::Binary(BinaryOp::Sub), &[beta, ms])?
        }
    };
    Some((scale, shift))
}

/// Batchnorm over the columns of a 2-D `x·w (+ c)` folded into `w` and a bias.
pub fn bn_matmul(b: &mut Builder, class: Id, s: &Subst) -> bool {
    let rank2 = b.data(class).ty().is_some_and(|t| t.rank() == 2);
    if !rank2 {
        return false;
    }
    let bias = s.get(var("?c")).copied();
    let Some((scale, shift)) = bn_scale_bias(b, s, bias) else {
        return false;
    };
    let (x, w) = (s[var("?x")], s[var("?w")]);
    let built = (|| {
        let ws = b.op(Op::Binary(BinaryOp::Mul), &[w, scale])?;
        let y = b.op(Op::MatMul, &[x, ws])?;
        b.op(Op::Binary(BinaryOp::Add), &[y, shift])
    })();
    built.is_some_and(|y| b.union_checked(class, y))
}

/// Batchnorm over a convolution's output channels folded into its weight and bias.
pub fn bn_conv(b: &mut Builder, class: Id, s: &Subst) -> bool {
    let bias = s.get(var("?c")).copied();
    let Some((scale, shift)) = bn_scale_bias(b, s, bias) else {
        return false;
    };
    let (k, x, w) = (s[var("?k")], s[var("?x")], s[var("?w")]);
    let Some(wt) = b.data(w).ty().cloned() else {
        return false;
    };
    let mut shape = vec![1; wt.rank()];
    shape[0] = wt.shape[0];
    let built = (|| {
        let s4 = b.op(Op::Reshape { shape }, &[scale])?;
        let ws = b.op(Op::Binary(BinaryOp::Mul), &[w, s4])?;
        b.add(Tensor::Conv(Box::new([k, x, ws, shift])))
    })();
    built.is_some_and(|y| b.union_checked(class, y))
}

fn attention(b: &mut Builder, class: Id, s: &Subst, scale: f64) -> bool {
    let attr = b.attr(Op::Attention {
        causal: false,
        scale,
    });
    let node = Tensor::Attention([attr, s[var("?q")], s[var("?k")], s[var("?v")]]);
    b.add(node).is_some_and(|y| b.union_checked(class, y))
}

/// `softmax(q·kᵀ)·v` → attention with scale 1.
pub fn attention_unscaled(b: &mut Builder, class: Id, s: &Subst) -> bool {
    attention(b, class, s, 1.0)
}

/// `softmax(q·kᵀ·s)·v` → attention with scale `s`.
pub fn attention_mul(b: &mut Builder, class: Id, s: &Subst) -> bool {
    match scalar_value(b.egraph, s, "?s") {
        Some(v) => attention(b, class, s, v),
        None => false,
    }
}

/// `softmax(q·kᵀ/s)·v` → attention with scale `1/s`.
pub fn attention_div(b: &mut Builder, class: Id, s: &Subst) -> bool {
    match scalar_value(b.egraph, s, "?s") {
        Some(v) => attention(b, class, s, 1.0 / v),
        None => false,
    }
}
