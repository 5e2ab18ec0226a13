//! Keyword attributes of one call, checked against the op table and read with
//! their defaults.

use std::collections::HashMap;

use super::ast::{Arg, AttrKind, AttrValue, NumValue};
use super::diagnostic::{Diagnostic, did_you_mean};
use super::table::{AttrDefault, AttrType, OpSpec};
use crate::span::Span;
use crate::types::{DType, MAX_ELEMENTS, normalize_axis};

type R<T> = Result<T, Diagnostic>;

/// Padding as written: explicit `(before, after)` per spatial dim, or a mode.
#[derive(Clone, Debug, PartialEq)]
pub enum Pad {
    /// Explicit amounts.
    Explicit(Vec<(usize, usize)>),
    /// `"same"`: output size equals input size (stride 1).
    Same,
    /// `"valid"`: no padding.
    Valid,
}

/// The attributes of one call.
pub struct Attrs<'a> {
    spec: &'static OpSpec,
    vals: Vec<(&'a str, &'a AttrValue)>,
    dims: &'a HashMap<String, usize>,
    unbound: &'a dyn Fn(&str, Span) -> Diagnostic,
}

fn bad(spec: &OpSpec, name: &str, v: &AttrValue, want: &str) -> Diagnostic {
    Diagnostic::new(
        format!(
            "bad value for attribute `{name}` of `{}`: expected {want}, found {}",
            spec.name,
            v.describe()
        ),
        v.span,
    )
    .with_label(format!("expected {want}"))
}

fn is_int(v: &AttrValue) -> bool {
    matches!(&v.kind, AttrKind::Num(n) if matches!(n.value, NumValue::Int(_)))
}

fn is_size(v: &AttrValue) -> bool {
    is_int(v) || matches!(v.kind, AttrKind::Ident(_))
}

fn list_of(v: &AttrValue, f: fn(&AttrValue) -> bool) -> bool {
    matches!(&v.kind, AttrKind::List(items) if items.iter().all(f))
}

impl<'a> Attrs<'a> {
    /// Collects and checks the keyword arguments of a call: unknown or repeated
    /// attributes and values of the wrong kind are reported.
    pub fn new(
        spec: &'static OpSpec,
        args: &'a [Arg],
        dims: &'a HashMap<String, usize>,
        unbound: &'a dyn Fn(&str, Span) -> Diagnostic,
    ) -> Result<Attrs<'a>, Vec<Diagnostic>> {
        let mut vals: Vec<(&'a str, &'a AttrValue)> = Vec::new();
        let mut errs = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for arg in args {
            let Arg::Kw { name, value } = arg else {
                continue;
            };
            let Some(a) = spec.attr(&name.name) else {
                let valid: Vec<&str> = spec.attrs.iter().map(|a| a.name).collect();
                let list = if valid.is_empty() {
                    format!("`{}` takes no attributes", spec.name)
                } else {
                    format!("valid attributes of `{}`: {}", spec.name, valid.join(", "))
                };
                errs.push(
                    Diagnostic::new(
                        format!("unknown attribute `{}` for `{}`", name.name, spec.name),
                        name.span,
                    )
                    .with_label("unknown attribute")
                    .with_opt_note(did_you_mean(&name.name, valid.iter().copied()))
                    .with_note(list),
                );
                continue;
            };
            if let Some(first) = seen.insert(a.name, name.span) {
                errs.push(
                    Diagnostic::new(format!("attribute `{}` given twice", a.name), name.span)
                        .with_label("given again here")
                        .with_related(first, "first given here"),
                );
                continue;
            }
            let ok = match a.ty {
                AttrType::Int => is_int(value),
                AttrType::Ints => is_int(value) || list_of(value, is_int),
                AttrType::Float => matches!(value.kind, AttrKind::Num(_)),
                AttrType::Bool => matches!(value.kind, AttrKind::Bool(_)),
                AttrType::Size => is_size(value),
                AttrType::Sizes => is_size(value) || list_of(value, is_size),
                AttrType::Shape => list_of(value, is_size),
                AttrType::Padding => {
                    is_size(value)
                        || list_of(value, is_size)
                        || matches!(&value.kind, AttrKind::Str(s) if s == "same" || s == "valid")
                }
                AttrType::Choice(c) => {
                    matches!(&value.kind, AttrKind::Str(s) if c.contains(&s.as_str()))
                }
                AttrType::DType => {
                    matches!(&value.kind, AttrKind::Ident(s) if DType::from_name(s).is_some())
                }
                AttrType::Seed => is_int(value),
            };
            if !ok {
                errs.push(bad(spec, a.name, value, &a.ty.describe()));
                continue;
            }
            vals.push((a.name, value));
        }
        if errs.is_empty() {
            Ok(Attrs {
                spec,
                vals,
                dims,
                unbound,
            })
        } else {
            Err(errs)
        }
    }

    /// The value written for `name`, if any.
    pub fn get(&self, name: &str) -> Option<&'a AttrValue> {
        self.vals.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    /// Whether `name` was written.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    fn err(&self, name: &str, v: &AttrValue, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::new(
            format!(
                "bad value for attribute `{name}` of `{}`: {}",
                self.spec.name,
                msg.into()
            ),
            v.span,
        )
        .with_label("bad value")
    }

    fn missing(&self, name: &str, call: Span) -> Diagnostic {
        Diagnostic::new(
            format!("`{}` needs the attribute `{name}`", self.spec.name),
            call,
        )
        .with_label(format!("missing `{name}=...`"))
        .with_note(format!("example: {}", self.spec.example))
    }

    fn int_of(&self, name: &str, v: &AttrValue) -> R<i64> {
        match &v.kind {
            AttrKind::Num(n) => match n.value {
                NumValue::Int(i) => i64::try_from(i)
                    .map_err(|_| self.err(name, v, format!("{i} does not fit in 64 bits"))),
                NumValue::Float(_) => Err(bad(self.spec, name, v, "an integer")),
            },
            _ => Err(bad(self.spec, name, v, "an integer")),
        }
    }

    /// An integer attribute (default from the table).
    pub fn int(&self, name: &str) -> R<i64> {
        match self.get(name) {
            Some(v) => self.int_of(name, v),
            None => match self.spec.default(name) {
                AttrDefault::Int(i) => Ok(i),
                _ => Ok(0),
            },
        }
    }

    /// A number attribute (default from the table).
    pub fn float(&self, name: &str) -> R<f64> {
        match self.get(name).map(|v| &v.kind) {
            Some(AttrKind::Num(n)) => Ok(n.value.as_f64()),
            _ => Ok(self.spec.float_default(name)),
        }
    }

    /// A bool attribute (default from the table).
    pub fn bool(&self, name: &str) -> bool {
        match self.get(name).map(|v| &v.kind) {
            Some(AttrKind::Bool(b)) => *b,
            _ => matches!(self.spec.default(name), AttrDefault::Bool(true)),
        }
    }

    /// A string-choice attribute (default from the table).
    pub fn choice(&self, name: &str) -> &str {
        match self.get(name).map(|v| &v.kind) {
            Some(AttrKind::Str(s)) => s,
            _ => match self.spec.default(name) {
                AttrDefault::Str(s) => s,
                _ => "",
            },
        }
    }

    /// A required dtype attribute.
    pub fn dtype(&self, name: &str, call: Span) -> R<DType> {
        match self.get(name).map(|v| &v.kind) {
            Some(AttrKind::Ident(s)) => Ok(DType::from_name(s).unwrap_or(DType::F32)),
            _ => Err(self.missing(name, call)),
        }
    }

    /// A seed (u64) attribute.
    pub fn seed(&self, name: &str) -> R<u64> {
        match self.get(name) {
            Some(v) => match &v.kind {
                AttrKind::Num(n) => match n.value {
                    NumValue::Int(i) => {
                        u64::try_from(i).map_err(|_| self.err(name, v, format!("{i} is negative")))
                    }
                    _ => Err(bad(self.spec, name, v, "an integer")),
                },
                _ => Err(bad(self.spec, name, v, "an integer")),
            },
            None => Ok(0),
        }
    }

    /// One size: an integer in `min..=MAX_ELEMENTS` or a bound named dim.
    fn size_of(&self, name: &str, v: &AttrValue, min: usize) -> R<usize> {
        let n: i128 = match &v.kind {
            AttrKind::Ident(d) => match self.dims.get(d) {
                Some(&n) => n as i128,
                None => return Err((self.unbound)(d, v.span)),
            },
            AttrKind::Num(n) => match n.value {
                NumValue::Int(i) => i,
                _ => return Err(bad(self.spec, name, v, "an integer")),
            },
            _ => return Err(bad(self.spec, name, v, "a size")),
        };
        if n < min as i128 {
            return Err(self.err(name, v, format!("{n} must be at least {min}")));
        }
        if n > MAX_ELEMENTS as i128 {
            return Err(self.err(name, v, format!("{n} exceeds the limit {MAX_ELEMENTS}")));
        }
        Ok(n as usize)
    }

    /// A required positive size.
    pub fn size(&self, name: &str, call: Span) -> R<usize> {
        match self.get(name) {
            Some(v) => self.size_of(name, v, 1),
            None => match self.spec.default(name) {
                AttrDefault::Int(i) => Ok(i as usize),
                _ => Err(self.missing(name, call)),
            },
        }
    }

    /// One size per spatial dim (`n`); a single size applies to all. `None` when
    /// absent and without a default.
    pub fn sizes(&self, name: &str, n: usize, min: usize) -> R<Option<Vec<usize>>> {
        let Some(v) = self.get(name) else {
            return Ok(match self.spec.default(name) {
                AttrDefault::Int(i) => Some(vec![i as usize; n]),
                _ => None,
            });
        };
        match &v.kind {
            AttrKind::List(items) => {
                if items.len() != n {
                    return Err(self.err(
                        name,
                        v,
                        format!(
                            "expected 1 or {n} values (one per spatial dim), got {}",
                            items.len()
                        ),
                    ));
                }
                items
                    .iter()
                    .map(|x| self.size_of(name, x, min))
                    .collect::<R<_>>()
                    .map(Some)
            }
            _ => Ok(Some(vec![self.size_of(name, v, min)?; n])),
        }
    }

    /// A padding over `n` spatial dims: `p`, one per dim (symmetric), or
    /// `(before, after)` per dim, or `"same"` / `"valid"`.
    pub fn padding(&self, name: &str, n: usize) -> R<Pad> {
        let Some(v) = self.get(name) else {
            return Ok(Pad::Explicit(vec![(0, 0); n]));
        };
        match &v.kind {
            AttrKind::Str(s) if s == "same" => Ok(Pad::Same),
            AttrKind::Str(_) => Ok(Pad::Valid),
            AttrKind::List(items) if items.len() == n => {
                let p: Vec<usize> = items
                    .iter()
                    .map(|x| self.size_of(name, x, 0))
                    .collect::<R<_>>()?;
                Ok(Pad::Explicit(p.into_iter().map(|p| (p, p)).collect()))
            }
            AttrKind::List(items) if items.len() == 2 * n => {
                let p: Vec<usize> = items
                    .iter()
                    .map(|x| self.size_of(name, x, 0))
                    .collect::<R<_>>()?;
                Ok(Pad::Explicit(p.chunks(2).map(|c| (c[0], c[1])).collect()))
            }
            AttrKind::List(items) => Err(self.err(
                name,
                v,
                format!(
                    "expected 1, {n} (per dim) or {} (before/after per dim) values, got {}",
                    2 * n,
                    items.len()
                ),
            )),
            _ => {
                let p = self.size_of(name, v, 0)?;
                Ok(Pad::Explicit(vec![(p, p); n]))
            }
        }
    }

    fn axis_of(&self, name: &str, v: &AttrValue, rank: usize) -> R<usize> {
        let a = self.int_of(name, v)?;
        normalize_axis(a, rank).ok_or_else(|| {
            self.err(name, v, format!("axis {a} is out of range for rank {rank}"))
                .with_note(format!("valid axes are -{rank}..{rank}"))
        })
    }

    /// One axis (negative counts from the end), default from the table.
    pub fn axis(&self, name: &str, rank: usize) -> R<usize> {
        match self.get(name) {
            Some(v) => self.axis_of(name, v, rank),
            None => {
                let a = self.int(name)?;
                normalize_axis(a, rank).ok_or_else(|| {
                    Diagnostic::new(
                        format!(
                            "`{}`: the default axis {a} is out of range for rank {rank}",
                            self.spec.name
                        ),
                        None,
                    )
                })
            }
        }
    }

    /// Axes as written (normalised, in the order written), or `None` if absent.
    pub fn axes(&self, name: &str, rank: usize) -> R<Option<Vec<usize>>> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let items: Vec<&AttrValue> = match &v.kind {
            AttrKind::List(items) => items.iter().collect(),
            _ => vec![v],
        };
        let mut out = Vec::new();
        for x in items {
            let a = self.axis_of(name, x, rank)?;
            if out.contains(&a) {
                return Err(self.err(name, x, format!("axis {a} is listed twice")));
            }
            out.push(a);
        }
        Ok(Some(out))
    }

    /// Integers (a single one becomes a list of one), or `None` if absent.
    pub fn ints(&self, name: &str) -> R<Option<Vec<i64>>> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        match &v.kind {
            AttrKind::List(items) => items
                .iter()
                .map(|x| self.int_of(name, x))
                .collect::<R<_>>()
                .map(Some),
            _ => Ok(Some(vec![self.int_of(name, v)?])),
        }
    }

    /// A shape: sizes or named dims, with `-1` allowed when `infer` is set.
    pub fn shape(&self, name: &str, call: Span, infer: bool) -> R<Vec<Option<usize>>> {
        let Some(v) = self.get(name) else {
            return Err(self.missing(name, call));
        };
        let AttrKind::List(items) = &v.kind else {
            return Err(bad(self.spec, name, v, "a list of sizes"));
        };
        let mut out = Vec::new();
        for x in items {
            let minus_one = matches!(&x.kind, AttrKind::Num(n) if n.value == NumValue::Int(-1));
            if minus_one && infer {
                if out.contains(&None) {
                    return Err(self.err(name, x, "only one dim can be -1"));
                }
                out.push(None);
            } else {
                out.push(Some(self.size_of(name, x, 1)?));
            }
        }
        Ok(out)
    }
}
