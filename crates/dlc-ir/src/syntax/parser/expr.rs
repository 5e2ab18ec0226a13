//! Expressions, calls and attribute values (with tree heights capped at
//! [`MAX_DEPTH`](super::MAX_DEPTH)).

use super::{MAX_DEPTH, PResult, Parser, expected, number};
use crate::span::Span;
use crate::syntax::ast::*;
use crate::syntax::diagnostic::Diagnostic;
use crate::syntax::lexer::{Tok, is_keyword};

impl<'a> Parser<'a> {
    pub(super) fn expr(&mut self) -> PResult<Expr> {
        self.expr_h().map(|(e, _)| e)
    }

    /// Expressions return their tree height too, which is capped at [`MAX_DEPTH`]:
    /// every later walk over the tree (elaboration, formatting, dropping) recurses.
    pub(super) fn expr_h(&mut self) -> PResult<(Expr, u32)> {
        let lhs = self.sum()?;
        let Some(op) = cmp_op(self.peek()) else {
            return Ok(lhs);
        };
        let t = self.bump();
        let rhs = self.sum()?;
        if cmp_op(self.peek()).is_some() {
            let t = self.peek_tok();
            return Err(Diagnostic::new("comparisons cannot be chained", t.span)
                .with_label("a second comparison")
                .with_note(
                    "comparisons are non-associative: use parentheses, e.g. `(a < b) == c`",
                ));
        }
        binary(op, lhs, rhs, t.span)
    }

    pub(super) fn sum(&mut self) -> PResult<(Expr, u32)> {
        let mut lhs = self.product()?;
        loop {
            let op = match self.peek() {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => return Ok(lhs),
            };
            let t = self.bump();
            let rhs = self.product()?;
            lhs = binary(op, lhs, rhs, t.span)?;
        }
    }

    pub(super) fn product(&mut self) -> PResult<(Expr, u32)> {
        let mut lhs = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                Tok::At => BinOp::MatMul,
                _ => return Ok(lhs),
            };
            let t = self.bump();
            let rhs = self.unary()?;
            lhs = binary(op, lhs, rhs, t.span)?;
        }
    }

    pub(super) fn unary(&mut self) -> PResult<(Expr, u32)> {
        if self.peek() == &Tok::Minus {
            let t = self.bump();
            self.enter(t.span)?;
            let (e, h) = self.unary()?;
            self.leave();
            let span = t.span.to(e.span);
            let e = Expr {
                kind: ExprKind::Neg(Box::new(e)),
                span,
            };
            return checked(e, h + 1, t.span);
        }
        self.power()
    }

    pub(super) fn power(&mut self) -> PResult<(Expr, u32)> {
        let base = self.atom()?;
        if self.peek() == &Tok::StarStar {
            let t = self.bump();
            self.enter(t.span)?;
            let exp = self.unary()?;
            self.leave();
            return binary(BinOp::Pow, base, exp, t.span);
        }
        Ok(base)
    }

    pub(super) fn atom(&mut self) -> PResult<(Expr, u32)> {
        let t = self.peek_tok();
        let span = t.span;
        let kind = match &t.tok {
            Tok::LParen => {
                self.enter(span)?;
                self.bump();
                self.parens += 1;
                let (e, h) = self.expr_h()?;
                let end = self.expect(&Tok::RParen)?.span;
                self.parens -= 1;
                self.leave();
                let e = Expr {
                    kind: ExprKind::Paren(Box::new(e)),
                    span: span.to(end),
                };
                return checked(e, h + 1, span);
            }
            tok if tok.is_kw("true") || tok.is_kw("false") => {
                self.bump();
                ExprKind::Bool(tok.is_kw("true"))
            }
            tok => {
                if let Some(n) = number(tok, false, span)? {
                    self.bump();
                    ExprKind::Num(n)
                } else if matches!(tok, Tok::Ident { .. }) {
                    let name = self.ident("an expression")?;
                    if self.peek() == &Tok::LParen {
                        return self.call(name);
                    }
                    ExprKind::Name(name.name)
                } else {
                    return Err(expected("an expression", t));
                }
            }
        };
        Ok((Expr { kind, span }, 1))
    }

    pub(super) fn call(&mut self, op: Ident) -> PResult<(Expr, u32)> {
        self.enter(op.span)?;
        self.bump();
        self.parens += 1;
        let mut args = Vec::new();
        let mut seen_kw = false;
        let mut height = 0;
        while self.peek() != &Tok::RParen {
            let is_kw = matches!(self.peek(), Tok::Ident { .. }) && self.peek2() == &Tok::Assign;
            if is_kw {
                let name = self.ident("an attribute name")?;
                self.bump();
                let value = self.attr_value()?;
                args.push(Arg::Kw { name, value });
                seen_kw = true;
            } else {
                let (e, h) = self.expr_h()?;
                if seen_kw {
                    return Err(Diagnostic::new("operand after a keyword attribute", e.span)
                        .with_label("operands must come first")
                        .with_note("write operands first, then `key=value` attributes"));
                }
                height = height.max(h);
                args.push(Arg::Pos(e));
            }
            if self.eat(&Tok::Comma).is_none() {
                break;
            }
        }
        let t = self.peek_tok();
        if t.tok != Tok::RParen {
            return Err(expected("`,` or `)`", t));
        }
        let end = self.bump().span;
        self.parens -= 1;
        self.leave();
        let span = op.span;
        let e = Expr {
            span: op.span.to(end),
            kind: ExprKind::Call { op, args },
        };
        checked(e, height + 1, span)
    }

    pub(super) fn attr_value(&mut self) -> PResult<AttrValue> {
        let t = self.peek_tok();
        let span = t.span;
        let kind = match &t.tok {
            Tok::LBracket => {
                self.enter(span)?;
                self.bump();
                self.parens += 1;
                let mut items = Vec::new();
                while self.peek() != &Tok::RBracket {
                    items.push(self.attr_value()?);
                    if self.eat(&Tok::Comma).is_none() {
                        break;
                    }
                }
                let end = self.expect(&Tok::RBracket)?.span;
                self.parens -= 1;
                self.leave();
                return Ok(AttrValue {
                    kind: AttrKind::List(items),
                    span: span.to(end),
                });
            }
            Tok::Str(s) => {
                self.bump();
                AttrKind::Str(s.clone())
            }
            tok if tok.is_kw("true") || tok.is_kw("false") => {
                self.bump();
                AttrKind::Bool(tok.is_kw("true"))
            }
            Tok::Ident { name, quoted } if *quoted || !is_keyword(name) => {
                self.bump();
                AttrKind::Ident(name.clone())
            }
            Tok::Minus | Tok::Int(_) | Tok::Float(_) | Tok::Ident { .. } => {
                // A malformed number keeps its own message (e.g. "too large").
                let number = matches!(t.tok, Tok::Int(_) | Tok::Float(_) | Tok::Minus);
                let n = self.signed_number().map_err(|e| {
                    if number {
                        e
                    } else {
                        expected("an attribute value (number, bool, string, name or list)", t)
                    }
                })?;
                let span = n.span;
                return Ok(AttrValue {
                    kind: AttrKind::Num(n),
                    span,
                });
            }
            _ => {
                return Err(expected(
                    "an attribute value (number, bool, string, name or list)",
                    t,
                ));
            }
        };
        Ok(AttrValue { kind, span })
    }
}

fn binary(op: BinOp, (l, hl): (Expr, u32), (r, hr): (Expr, u32), at: Span) -> PResult<(Expr, u32)> {
    let span = l.span.to(r.span);
    let e = Expr {
        kind: ExprKind::Binary(op, Box::new(l), Box::new(r)),
        span,
    };
    checked(e, hl.max(hr) + 1, at)
}

/// Refuses expression trees taller than [`MAX_DEPTH`].
fn checked(e: Expr, height: u32, at: Span) -> PResult<(Expr, u32)> {
    if height > MAX_DEPTH {
        return Err(Diagnostic::new(
            format!(
                "expression nested too deeply (more than {} levels)",
                MAX_DEPTH
            ),
            at,
        )
        .with_label("nested too deeply here")
        .with_note("split the expression into several statements"));
    }
    Ok((e, height))
}

fn cmp_op(t: &Tok) -> Option<BinOp> {
    Some(match t {
        Tok::EqEq => BinOp::Eq,
        Tok::NotEq => BinOp::Ne,
        Tok::Lt => BinOp::Lt,
        Tok::Le => BinOp::Le,
        Tok::Gt => BinOp::Gt,
        Tok::Ge => BinOp::Ge,
        _ => return None,
    })
}
