//! Declarations: types with named dims, initialisers and constant literals.

use super::Elab;
use super::Res;
use crate::graph::ValueId;
use crate::init::Init;
use crate::op::{ConstValue, Op};
use crate::syntax::ast::*;
use crate::syntax::diagnostic::{Diagnostic, did_you_mean};
use crate::types::{DType, ShapeDisplay, TensorType, check_shape};

impl Elab {
    pub(super) fn resolve_ty(&mut self, t: &TypeExpr) -> Res<TensorType> {
        let mut shape = Vec::with_capacity(t.dims.len().min(64));
        let mut failed = false;
        for d in &t.dims {
            match d {
                DimExpr::Int(l) => shape.push(usize::try_from(l.value).unwrap_or(usize::MAX)),
                DimExpr::Named(id) => match self.dims.get(&id.name) {
                    Some(&n) => shape.push(n),
                    None => {
                        failed = true;
                        if !self.unbound_reported.contains(&id.name) {
                            let d = self.unbound(&id.name, id.span);
                            self.diags.push(d);
                        }
                    }
                },
            }
        }
        if failed {
            return Err(());
        }
        if let Err(limit) = check_shape(&shape) {
            let shown = if shape.len() > 16 {
                format!("{}[...{} dims]", t.dtype, shape.len())
            } else {
                format!("{}{}", t.dtype, ShapeDisplay(&shape))
            };
            return self.fail(
                Diagnostic::new(format!("invalid shape {shown}: {limit}"), t.span)
                    .with_label("shape out of limits"),
            );
        }
        Ok(TensorType::new(t.dtype, shape))
    }

    pub(super) fn init(&mut self, init: &InitExpr) -> Res<Init> {
        let args: Vec<f64> = init
            .args
            .iter()
            .flatten()
            .map(|n| n.value.as_f64())
            .collect();
        Init::from_call(&init.name.name, &args).or_else(|msg| {
            let names = [
                "zeros",
                "ones",
                "constant",
                "normal",
                "uniform",
                "glorot_uniform",
                "glorot_normal",
                "he_normal",
            ];
            let note = did_you_mean(&init.name.name, names);
            self.fail(
                Diagnostic::new(msg, init.span)
                    .with_label("bad initialiser")
                    .with_opt_note(note),
            )
        })
    }

    pub(super) fn const_value(&mut self, t: &TensorType, lit: &Literal) -> Res<ConstValue> {
        let mut flat = Vec::new();
        let r = flatten_literal(lit, &t.shape, &mut flat);
        self.check(r)?;
        let bad = |l: &Literal, what: &str| {
            Diagnostic::new(format!("a {} constant needs {what}", t.dtype), l.span())
                .with_label(format!("not {what}"))
        };
        let r = match t.dtype {
            DType::F32 => flat
                .iter()
                .map(|l| match l {
                    Literal::Num(n) => Ok(n.value.as_f64()),
                    _ => Err(bad(l, "numbers")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(ConstValue::Float),
            DType::I64 => flat
                .iter()
                .map(|l| match l {
                    Literal::Num(Number {
                        value: NumValue::Int(i),
                        ..
                    }) => i64::try_from(*i).map_err(|_| bad(l, "integers that fit in i64")),
                    _ => Err(bad(l, "integers")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(ConstValue::Int),
            DType::Bool => flat
                .iter()
                .map(|l| match l {
                    Literal::Bool(b, _) => Ok(*b),
                    _ => Err(bad(l, "`true` or `false`")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(ConstValue::Bool),
        };
        self.check(r)
    }

    pub(super) fn source(&mut self, op: Op, name: &Ident, t: TensorType) -> Res<ValueId> {
        let r = self.g.add_source(op, name.name.clone(), t, Some(name.span));
        r.or_else(|e| self.fail(Diagnostic::new(e.to_string(), name.span)))
    }
}

/// Flattens a nested list literal, checking it has exactly `shape`.
fn flatten_literal<'l>(
    lit: &'l Literal,
    shape: &[usize],
    out: &mut Vec<&'l Literal>,
) -> Result<(), Diagnostic> {
    match (lit, shape.split_first()) {
        (Literal::List(..), None) => Err(Diagnostic::new(
            "expected a single value, found a list",
            lit.span(),
        )
        .with_label("the type has no more dims here")),
        (_, None) => {
            out.push(lit);
            Ok(())
        }
        (Literal::List(items, span), Some((&n, rest))) => {
            if items.len() != n {
                return Err(Diagnostic::new(
                    format!("expected a list of {n} values, found {}", items.len()),
                    *span,
                )
                .with_label(format!("expected {n} values")));
            }
            items.iter().try_for_each(|x| flatten_literal(x, rest, out))
        }
        (_, Some((&n, _))) => Err(Diagnostic::new(
            format!("expected a list of {n} values, found a single value"),
            lit.span(),
        )
        .with_label(format!("expected `[...]` with {n} values"))),
    }
}
