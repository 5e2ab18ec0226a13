//! Elaboration: a [`Model`] and dim bindings to a typed, verified [`Graph`].
//!
//! Statements are elaborated in order (so names are defined before use and the
//! graph is acyclic). Errors are collected: a statement that fails poisons the
//! names it defines, so later uses of them do not cascade into more errors.
//!
//! Number literals inside expressions are weakly typed: next to a tensor they take
//! its dtype; alone they are f32 when written with `.`, an exponent, `inf` or
//! `nan`, else i64.

use std::collections::{HashMap, HashSet};

use super::ast::*;
use super::attrs::Attrs;
use super::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use super::table::{self, OpSpec};
use super::{Dims, lower};

mod decl;
use crate::graph::{Graph, ValueId};
use crate::op::{BinaryOp, ConstValue, Op};
use crate::span::Span;
use crate::types::{DType, MAX_ELEMENTS, TensorType};

/// Failure whose diagnostic has already been recorded.
pub(super) type Res<T> = Result<T, ()>;

/// Names bound by the statement being elaborated (`None` inside expressions).
pub(super) type Out<'a> = Option<&'a [Ident]>;

struct Binding {
    /// `None` when the defining statement failed.
    value: Option<ValueId>,
    span: Span,
}

/// The elaboration state.
pub(super) struct Elab {
    /// The graph being built.
    pub g: Graph,
    /// Effective dim sizes (bindings over defaults).
    pub dims: HashMap<String, usize>,
    env: HashMap<String, Binding>,
    user_names: HashSet<String>,
    diags: Vec<Diagnostic>,
    unbound_reported: HashSet<String>,
    /// Whether the current statement's names were given to a node.
    named: bool,
}

/// The "unbound dimension" error.
pub(super) fn unbound_dim(name: &str, span: Span) -> Diagnostic {
    Diagnostic::new(
        format!("unbound dimension `{name}`; bind it with --dim {name}=<size>"),
        span,
    )
    .with_label("this dimension has no size")
    .with_note(format!(
        "declare a default with `dim {name} = <size>` or bind it when compiling"
    ))
}

/// Elaborates `model` with the dims in `dims` (which override declared defaults).
pub fn elaborate_model(model: &Model, dims: &Dims) -> Result<Graph, Diagnostics> {
    let mut cx = Elab {
        g: Graph::new(model.name.clone()),
        dims: HashMap::new(),
        env: HashMap::new(),
        user_names: HashSet::new(),
        diags: Vec::new(),
        unbound_reported: HashSet::new(),
        named: false,
    };
    cx.declare_dims(model, dims);
    for it in &model.items {
        match &it.stmt {
            Stmt::Input { name, .. } | Stmt::Param { name, .. } | Stmt::Const { name, .. } => {
                cx.user_names.insert(name.name.clone());
            }
            Stmt::Let { names, .. } => {
                cx.user_names.extend(names.iter().map(|n| n.name.clone()));
            }
            _ => {}
        }
    }
    let mut outputs: HashMap<String, Span> = HashMap::new();
    for it in &model.items {
        match &it.stmt {
            Stmt::Dim { .. } => {}
            Stmt::Input { name, ty } => {
                if cx.define(std::slice::from_ref(name)) {
                    let v = cx
                        .resolve_ty(ty)
                        .and_then(|t| cx.source(Op::Input, name, t));
                    cx.bind_result(name, v);
                }
            }
            Stmt::Param { name, ty, init } => {
                if cx.define(std::slice::from_ref(name)) {
                    let t = cx.resolve_ty(ty);
                    let i = cx.init(init);
                    let v = t.and_then(|t| cx.source(Op::Param { init: i? }, name, t));
                    cx.bind_result(name, v);
                }
            }
            Stmt::Const { name, ty, value } => {
                if cx.define(std::slice::from_ref(name)) {
                    let v = cx.resolve_ty(ty).and_then(|t| {
                        let value = cx.const_value(&t, value)?;
                        cx.source(Op::Const { value }, name, t)
                    });
                    cx.bind_result(name, v);
                }
            }
            Stmt::Let { names, value } => {
                if cx.define(names) {
                    cx.named = false;
                    let v = cx.eval(value, None, Some(names));
                    if !cx.named {
                        match v {
                            Ok(v) if names.len() == 1 => cx.bind_result(&names[0], Ok(v)),
                            Ok(_) => {
                                let d = count_mismatch(names, "this expression", 1, "");
                                cx.diags.push(d);
                                cx.poison(names);
                            }
                            Err(()) => cx.poison(names),
                        }
                    }
                }
            }
            Stmt::Output { items } => {
                for o in items {
                    let vname = o.value.as_ref().unwrap_or(&o.name);
                    let Ok(v) = cx.lookup(&vname.name, vname.span) else {
                        continue;
                    };
                    if let Some(&first) = outputs.get(&o.name.name) {
                        cx.diags.push(
                            Diagnostic::new(
                                format!("output `{}` is declared twice", o.name.name),
                                o.name.span,
                            )
                            .with_label("declared again here")
                            .with_related(first, "first declared here"),
                        );
                        continue;
                    }
                    outputs.insert(o.name.name.clone(), o.name.span);
                    cx.g.add_output(o.name.name.clone(), v);
                }
            }
        }
    }
    if cx.diags.is_empty()
        && let Err(e) = crate::verify::verify(&cx.g)
    {
        cx.diags
            .push(Diagnostic::new(format!("internal error: {e}"), None));
    }
    if cx.diags.is_empty() {
        return Ok(cx.g);
    }
    // One report per unbound dim, at its first use.
    let mut seen = HashSet::new();
    cx.diags
        .retain(|d| !d.message.starts_with("unbound dimension") || seen.insert(d.message.clone()));
    Err(Diagnostics(cx.diags))
}

fn count_mismatch(names: &[Ident], what: &str, results: usize, list: &str) -> Diagnostic {
    let span = names[0].span.to(names[names.len() - 1].span);
    let list = if list.is_empty() {
        String::new()
    } else {
        format!(" ({list})")
    };
    Diagnostic::new(
        format!(
            "{what} returns {results} value(s){list}, but {} name(s) are given",
            names.len()
        ),
        span,
    )
    .with_label(format!("expected {results} name(s)"))
}

impl Elab {
    fn declare_dims(&mut self, model: &Model, dims: &Dims) {
        let mut declared: HashMap<&str, Span> = HashMap::new();
        for it in &model.items {
            let Stmt::Dim { name, default } = &it.stmt else {
                continue;
            };
            if let Some(&first) = declared.get(name.name.as_str()) {
                self.diags.push(
                    Diagnostic::new(format!("dim `{}` is declared twice", name.name), name.span)
                        .with_label("declared again here")
                        .with_related(first, "first declared here"),
                );
                continue;
            }
            declared.insert(&name.name, name.span);
            if let Some(d) = default {
                if d.value < 1 || d.value > MAX_ELEMENTS as i128 {
                    self.diags.push(
                        Diagnostic::new(
                            format!(
                                "dim `{}` = {} is out of range (1 to {MAX_ELEMENTS})",
                                name.name, d.text
                            ),
                            d.span,
                        )
                        .with_label("bad size"),
                    );
                } else {
                    self.dims.insert(name.name.clone(), d.value as usize);
                }
            }
        }
        for (k, &v) in dims {
            self.dims.insert(k.clone(), v);
        }
    }

    /// Records a failure.
    pub(super) fn fail<T>(&mut self, d: Diagnostic) -> Res<T> {
        self.diags.push(d);
        Err(())
    }

    /// Turns a diagnostic result into a recorded failure.
    pub(super) fn check<T>(&mut self, r: Result<T, Diagnostic>) -> Res<T> {
        r.or_else(|d| self.fail(d))
    }

    /// Checks that `names` are new; reports duplicates (pointing at both).
    fn define(&mut self, names: &[Ident]) -> bool {
        let mut ok = true;
        for (i, n) in names.iter().enumerate() {
            let first = self
                .env
                .get(&n.name)
                .map(|b| b.span)
                .or_else(|| names[..i].iter().find(|m| m.name == n.name).map(|m| m.span));
            if let Some(first) = first {
                self.diags.push(
                    Diagnostic::new(format!("`{}` is defined twice", n.name), n.span)
                        .with_label("defined again here")
                        .with_related(first, "first defined here")
                        .with_note("names are unique within a model; pick another name"),
                );
                ok = false;
            }
        }
        ok
    }

    fn bind_result(&mut self, name: &Ident, v: Res<ValueId>) {
        self.env.insert(
            name.name.clone(),
            Binding {
                value: v.ok(),
                span: name.span,
            },
        );
    }

    fn poison(&mut self, names: &[Ident]) {
        for n in names {
            self.bind_result(n, Err(()));
        }
    }

    fn lookup(&mut self, name: &str, span: Span) -> Res<ValueId> {
        match self.env.get(name) {
            Some(Binding { value: Some(v), .. }) => Ok(*v),
            Some(_) => Err(()),
            None => {
                let note = did_you_mean(name, self.env.keys().map(|k| k.as_str()));
                let mut d = Diagnostic::new(format!("undefined name `{name}`"), span)
                    .with_label("not defined before this use")
                    .with_opt_note(note);
                if self.user_names.contains(name) {
                    d = d.with_note("names must be defined before they are used");
                }
                self.fail(d)
            }
        }
    }

    fn unbound(&mut self, name: &str, span: Span) -> Diagnostic {
        self.unbound_reported.insert(name.to_string());
        unbound_dim(name, span)
    }

    /// A fresh temporary name (`_N`), distinct from every name in the model.
    fn fresh(&self) -> String {
        let base = format!("_{}", self.g.len());
        let mut name = base.clone();
        let mut k = 0;
        while self.user_names.contains(&name) || self.g.lookup(&name).is_some() {
            k += 1;
            name = format!("{base}__{k}");
        }
        name
    }

    /// Adds an op node; with `out`, names its results and binds them.
    pub(super) fn add_node(
        &mut self,
        op: Op,
        operands: &[ValueId],
        out: Out,
        span: Span,
    ) -> Res<ValueId> {
        let types: Vec<TensorType> = operands.iter().map(|&v| self.g.ty(v).clone()).collect();
        let results = match crate::infer::infer(&op, &types) {
            Ok(r) => r,
            Err(e) => {
                let label = format!("in this `{}`", e.op);
                return self.fail(Diagnostic::new(e.to_string(), span).with_label(label));
            }
        };
        let names = match out {
            Some(names) => {
                if names.len() != results.len() {
                    let what = format!("`{}`", op.name());
                    let list = op_results(&op);
                    return self.fail(count_mismatch(names, &what, results.len(), list));
                }
                names.iter().map(|n| n.name.clone()).collect()
            }
            None if results.len() > 1 => {
                let vars: Vec<String> = (1..=results.len()).map(|i| format!("v{i}")).collect();
                return self.fail(
                    Diagnostic::new(
                        format!(
                            "`{}` returns {} values and cannot be used inside an expression",
                            op.name(),
                            results.len()
                        ),
                        span,
                    )
                    .with_label("returns several values")
                    .with_note(format!(
                        "bind its results in a statement: `{} = {}(...)`",
                        vars.join(", "),
                        op.name()
                    )),
                );
            }
            None => vec![self.fresh()],
        };
        let id = match self.g.add_op(op, operands, names, Some(span)) {
            Ok(id) => id,
            Err(e) => return self.fail(Diagnostic::new(e.to_string(), span)),
        };
        if let Some(names) = out {
            self.named = true;
            for (i, n) in names.iter().enumerate() {
                let v = ValueId {
                    node: id,
                    result: i as u32,
                };
                self.bind_result(n, Ok(v));
            }
        }
        Ok(ValueId::first(id))
    }

    /// Elaborates an expression; `hint` is the dtype weak literals should take.
    pub(super) fn eval(&mut self, e: &Expr, hint: Option<DType>, out: Out) -> Res<ValueId> {
        match &e.kind {
            ExprKind::Name(n) => self.lookup(n, e.span),
            ExprKind::Num(n) => self.literal(n.value, false, hint, e.span, out),
            ExprKind::Bool(b) => {
                let t = TensorType::new(DType::Bool, vec![]);
                self.constant(ConstValue::Bool(vec![*b]), t, e.span, out)
            }
            ExprKind::Neg(inner) => {
                if let ExprKind::Num(n) = &inner.kind {
                    return self.literal(n.value, true, hint, e.span, out);
                }
                let v = self.eval(inner, hint, None)?;
                self.add_node(Op::Unary(crate::op::UnaryOp::Neg), &[v], out, e.span)
            }
            ExprKind::Paren(inner) => self.eval(inner, hint, out),
            ExprKind::Binary(op, l, r) => {
                let cmp = matches!(
                    op,
                    BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
                );
                let (a, b) = match (is_weak(l), is_weak(r)) {
                    (true, true) => {
                        let h = if cmp { None } else { hint };
                        let h = h.or_else(|| Some(weak_dtype(e)));
                        (self.eval(l, h, None), self.eval(r, h, None))
                    }
                    (true, false) => {
                        let b = self.eval(r, None, None);
                        let h = b.ok().map(|b| self.g.ty(b).dtype);
                        (self.eval(l, h, None), b)
                    }
                    (false, true) => {
                        let a = self.eval(l, None, None);
                        let h = a.ok().map(|a| self.g.ty(a).dtype);
                        (a, self.eval(r, h, None))
                    }
                    (false, false) => (self.eval(l, None, None), self.eval(r, None, None)),
                };
                let (a, b) = (a?, b?);
                let bop = match op {
                    BinOp::Add => BinaryOp::Add,
                    BinOp::Sub => BinaryOp::Sub,
                    BinOp::Mul => BinaryOp::Mul,
                    BinOp::Div => BinaryOp::Div,
                    BinOp::Pow => BinaryOp::Pow,
                    BinOp::Eq => BinaryOp::Eq,
                    BinOp::Ne => BinaryOp::Ne,
                    BinOp::Lt => BinaryOp::Lt,
                    BinOp::Le => BinaryOp::Le,
                    BinOp::Gt => BinaryOp::Gt,
                    BinOp::Ge => BinaryOp::Ge,
                    BinOp::MatMul => return lower::matmul(self, a, b, out, e.span),
                };
                self.add_node(Op::Binary(bop), &[a, b], out, e.span)
            }
            ExprKind::Call { op, args } => self.call(op, args, e.span, out),
        }
    }

    fn literal(
        &mut self,
        v: NumValue,
        neg: bool,
        hint: Option<DType>,
        span: Span,
        out: Out,
    ) -> Res<ValueId> {
        let t = |d| TensorType::new(d, vec![]);
        match v {
            NumValue::Float(f) => {
                let f = if neg { -f } else { f };
                self.constant(ConstValue::Float(vec![f]), t(DType::F32), span, out)
            }
            NumValue::Int(i) => {
                let i = if neg { -i } else { i };
                if hint == Some(DType::F32) {
                    return self.constant(
                        ConstValue::Float(vec![i as f64]),
                        t(DType::F32),
                        span,
                        out,
                    );
                }
                match i64::try_from(i) {
                    Ok(i) => self.constant(ConstValue::Int(vec![i]), t(DType::I64), span, out),
                    Err(_) => self.fail(
                        Diagnostic::new(format!("integer literal {i} does not fit in i64"), span)
                            .with_label("too large for i64"),
                    ),
                }
            }
        }
    }

    fn constant(&mut self, value: ConstValue, t: TensorType, span: Span, out: Out) -> Res<ValueId> {
        let name = match out {
            Some([n]) => {
                self.named = true;
                n.clone()
            }
            Some(names) => return self.fail(count_mismatch(names, "a literal", 1, "")),
            None => Ident {
                name: self.fresh(),
                span,
            },
        };
        let v = self.source(
            Op::Const { value },
            &Ident {
                span,
                ..name.clone()
            },
            t,
        );
        if out.is_some() {
            self.bind_result(&name, v);
        }
        v
    }

    fn call(&mut self, op: &Ident, args: &[Arg], span: Span, out: Out) -> Res<ValueId> {
        let Some(spec) = table::lookup(&op.name) else {
            let note = did_you_mean(&op.name, table::OPS.iter().map(|o| o.name));
            let mut d = Diagnostic::new(format!("unknown op `{}`", op.name), op.span)
                .with_label("not an op")
                .with_opt_note(note);
            if self.env.contains_key(&op.name) {
                d = d.with_note(format!("`{}` is a value, not an op", op.name));
            }
            return self.fail(d.with_note("the op reference is in docs/ir.md"));
        };
        let pos: Vec<&Expr> = args
            .iter()
            .filter_map(|a| match a {
                Arg::Pos(e) => Some(e),
                Arg::Kw { .. } => None,
            })
            .collect();
        if pos.len() < spec.min || pos.len() > spec.max {
            let want = match (spec.min, spec.max) {
                (a, b) if a == b => format!("{a}"),
                (a, usize::MAX) => format!("at least {a}"),
                (a, b) => format!("{a} to {b}"),
            };
            return self.fail(
                Diagnostic::new(
                    format!("`{}` takes {want} operand(s), got {}", spec.name, pos.len()),
                    span,
                )
                .with_label(format!("expected {want} operand(s)"))
                .with_note(format!("operands: {}", spec.operands))
                .with_note(format!("example: {}", spec.example)),
            );
        }
        let dims = self.dims.clone();
        match Attrs::new(spec, args, &dims, &unbound_dim) {
            Ok(attrs) => {
                let vals = self.operands(spec, &pos)?;
                lower::lower(self, spec, &vals, &attrs, span, out)
            }
            Err(errs) => {
                self.diags.extend(errs);
                Err(())
            }
        }
    }

    /// Elaborates operands; weak literals among the operands of elementwise ops
    /// take the dtype of their strong partners.
    fn operands(&mut self, spec: &OpSpec, pos: &[&Expr]) -> Res<Vec<ValueId>> {
        let binary = BinaryOp::ALL.iter().any(|b| b.name() == spec.name);
        let group: &[usize] = match spec.name {
            _ if binary => &[0, 1],
            "where" => &[1, 2],
            _ => &[],
        };
        let mut vals: Vec<Option<Res<ValueId>>> = vec![None; pos.len()];
        for (i, e) in pos.iter().enumerate() {
            if !is_weak(e) {
                vals[i] = Some(self.eval(e, None, None));
            }
        }
        for (i, e) in pos.iter().enumerate() {
            if vals[i].is_some() {
                continue;
            }
            let partner = group
                .iter()
                .filter(|&&j| j != i && group.contains(&i))
                .find_map(|&j| vals[j].as_ref().and_then(|v| v.ok()));
            let hint = match partner {
                Some(p) => Some(self.g.ty(p).dtype),
                None if spec.name == "where" && i == 0 => Some(DType::Bool),
                // All-literal partners agree on one dtype (f32 if any is a float).
                None if group.contains(&i) => {
                    let float = group
                        .iter()
                        .filter_map(|&j| pos.get(j))
                        .any(|p| weak_dtype(p) == DType::F32);
                    Some(if float { DType::F32 } else { weak_dtype(e) })
                }
                None => Some(weak_dtype(e)),
            };
            vals[i] = Some(self.eval(e, hint, None));
        }
        vals.into_iter().map(|v| v.unwrap_or(Err(()))).collect()
    }
}

/// The results of a multi-result op as documented in the table.
fn op_results(op: &Op) -> &'static str {
    table::lookup(op.name()).map_or("", |s| s.results)
}

/// Whether an expression is built only from literals (so its dtype is flexible).
fn is_weak(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Num(_) | ExprKind::Bool(_) => true,
        ExprKind::Neg(x) | ExprKind::Paren(x) => is_weak(x),
        ExprKind::Binary(_, a, b) => is_weak(a) && is_weak(b),
        _ => false,
    }
}

/// The dtype of a literal-only expression standing alone.
fn weak_dtype(e: &Expr) -> DType {
    fn walk(e: &Expr, float: &mut bool, num: &mut bool) {
        match &e.kind {
            ExprKind::Num(n) => {
                *num = true;
                *float |= matches!(n.value, NumValue::Float(_));
            }
            ExprKind::Neg(x) | ExprKind::Paren(x) => walk(x, float, num),
            ExprKind::Binary(_, a, b) => {
                walk(a, float, num);
                walk(b, float, num);
            }
            _ => {}
        }
    }
    let (mut float, mut num) = (false, false);
    walk(e, &mut float, &mut num);
    match (float, num) {
        (true, _) => DType::F32,
        (false, true) => DType::I64,
        _ => DType::Bool,
    }
}
