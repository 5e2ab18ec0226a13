//! The parser: tokens to a [`Model`], by recursive descent.
//!
//! Statements end at a line end; inside brackets line ends are ignored, so a call
//! may continue over several lines. After an error the parser skips to the next
//! statement and goes on, so one run reports an error per broken statement.
//! Nesting is capped at [`MAX_DEPTH`] so deep input cannot overflow the stack.

use super::ast::*;
use super::comments::attach_comments;
use super::diagnostic::Diagnostic;
use super::lexer::{Lexed, Tok, Token, is_keyword, lex};

mod expr;
use crate::span::Span;
use crate::types::DType;

/// The deepest nesting of expressions, brackets and lists the parser accepts.
pub const MAX_DEPTH: u32 = 200;

type PResult<T> = Result<T, Diagnostic>;

/// Parses one model from `src`; returns every diagnostic found.
pub fn parse_model(src: &str) -> Result<Model, Vec<Diagnostic>> {
    let (lexed, mut diags) = lex(src);
    let Lexed { tokens, comments } = lexed;
    let mut p = Parser {
        toks: &tokens,
        pos: 0,
        parens: 0,
        depth: 0,
        diags: Vec::new(),
    };
    let model = p.file(src);
    diags.append(&mut p.diags);
    diags.sort_by_key(|d| d.span.map_or(usize::MAX, |s| s.start));
    match model {
        Some(mut m) if diags.is_empty() => {
            attach_comments(&mut m, &comments, src);
            Ok(m)
        }
        _ => Err(diags),
    }
}

struct Parser<'a> {
    toks: &'a [Token],
    pos: usize,
    /// Open brackets in the current statement: line ends inside are skipped.
    parens: u32,
    /// Current recursion depth.
    depth: u32,
    diags: Vec<Diagnostic>,
}

fn expected(what: &str, found: &Token) -> Diagnostic {
    Diagnostic::new(format!("expected {what}, found {}", found.tok), found.span)
        .with_label(format!("expected {what}"))
}

impl<'a> Parser<'a> {
    fn peek_tok(&mut self) -> &'a Token {
        if self.parens > 0 {
            while self.toks[self.pos].tok == Tok::Newline {
                self.pos += 1;
            }
        }
        &self.toks[self.pos]
    }

    fn peek(&mut self) -> &'a Tok {
        &self.peek_tok().tok
    }

    fn peek2(&mut self) -> &'a Tok {
        let _ = self.peek_tok();
        let mut j = self.pos + 1;
        while self.parens > 0 && j < self.toks.len() && self.toks[j].tok == Tok::Newline {
            j += 1;
        }
        &self.toks[j.min(self.toks.len() - 1)].tok
    }

    fn bump(&mut self) -> &'a Token {
        let t = self.peek_tok();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, tok: &Tok) -> Option<&'a Token> {
        if self.peek() == tok {
            Some(self.bump())
        } else {
            None
        }
    }

    fn expect(&mut self, tok: &Tok) -> PResult<&'a Token> {
        if self.peek() == tok {
            Ok(self.bump())
        } else {
            let what = format!("`{}`", tok.symbol().unwrap_or("?"));
            Err(expected(&what, self.peek_tok()))
        }
    }

    fn skip_newlines(&mut self) {
        while self.toks[self.pos].tok == Tok::Newline {
            self.pos += 1;
        }
    }

    fn enter(&mut self, span: Span) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Diagnostic::new(
                format!("nesting too deep (more than {MAX_DEPTH} levels)"),
                span,
            )
            .with_label("nested too deeply here")
            .with_note("split the expression into several statements"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// An identifier that is not a keyword.
    fn ident(&mut self, what: &str) -> PResult<Ident> {
        let t = self.peek_tok();
        match &t.tok {
            Tok::Ident { name, quoted } if *quoted || !is_keyword(name) => {
                self.bump();
                Ok(Ident {
                    name: name.clone(),
                    span: t.span,
                })
            }
            Tok::Ident { name, .. } => Err(Diagnostic::new(
                format!("expected {what}, found keyword `{name}`"),
                t.span,
            )
            .with_label("this is a keyword")
            .with_note(format!(
                "keywords cannot be names; rename it or quote it as `{name}` in backticks"
            ))),
            _ => Err(expected(what, t)),
        }
    }

    fn file(&mut self, src: &str) -> Option<Model> {
        self.skip_newlines();
        let t = self.peek_tok();
        if t.tok == Tok::Eof {
            let span = Span::new(0, src.len());
            self.diags.push(
                Diagnostic::new("empty file: no model", span)
                    .with_label("expected a model here")
                    .with_note("a file holds one model: `model NAME { ... }`"),
            );
            return None;
        }
        if !t.tok.is_kw("model") {
            self.diags.push(
                expected("`model`", t).with_note("a file holds one model: `model NAME { ... }`"),
            );
            return None;
        }
        let start = self.bump().span;
        let header = (|| {
            let name = self.ident("a model name")?;
            self.expect(&Tok::LBrace)?;
            Ok(name)
        })();
        let name = match header {
            Ok(n) => n,
            Err(d) => {
                self.diags.push(d);
                return None;
            }
        };
        let mut items = Vec::new();
        loop {
            self.skip_newlines();
            let t = self.peek_tok();
            match &t.tok {
                Tok::RBrace => break,
                Tok::Eof => {
                    self.diags.push(
                        expected("`}`", t)
                            .with_note(format!("the model `{}` is not closed", name.name))
                            .with_related(name.span, "the model starts here"),
                    );
                    return None;
                }
                _ => {}
            }
            let st = t.span;
            let st_col = self.col(self.pos);
            match self.stmt() {
                Ok(stmt) => {
                    let end = self.toks[self.pos.saturating_sub(1)].span;
                    let t = self.peek_tok();
                    if matches!(t.tok, Tok::Newline | Tok::RBrace | Tok::Eof) {
                        items.push(Item {
                            comments: vec![],
                            trailing: None,
                            blank_before: false,
                            stmt,
                            span: st.to(end),
                        });
                    } else {
                        self.diags.push(
                            expected("end of line", t)
                                .with_note("each statement goes on its own line"),
                        );
                        self.resync(st_col);
                    }
                }
                Err(d) => {
                    self.diags.push(d);
                    self.resync(st_col);
                }
            }
        }
        let end = self.bump().span;
        self.skip_newlines();
        let t = self.peek_tok();
        if t.tok != Tok::Eof {
            let rest = Span::new(t.span.start, src.len());
            self.diags.push(
                Diagnostic::new(
                    format!("trailing text after the model: found {}", t.tok),
                    rest,
                )
                .with_label("expected end of file")
                .with_note("a file holds exactly one model"),
            );
        }
        Some(Model {
            name: name.name,
            name_span: name.span,
            items,
            header_comments: vec![],
            end_comments: vec![],
            footer_comments: vec![],
            open_comment: None,
            span: start.to(end),
        })
    }

    /// The column (in bytes) of token `idx` within its line.
    fn col(&self, idx: usize) -> usize {
        let line_start = self.toks[..idx]
            .iter()
            .rev()
            .find(|t| t.tok == Tok::Newline)
            .map_or(0, |t| t.span.end);
        self.toks[idx].span.start.saturating_sub(line_start)
    }

    /// Skips to the start of the next statement: the next line end outside
    /// brackets, or (when a bracket was left open) the next line that starts no
    /// deeper than the broken statement did.
    fn resync(&mut self, stmt_col: usize) {
        self.parens = 0;
        self.depth = 0;
        loop {
            let t = &self.toks[self.pos];
            match t.tok {
                Tok::Eof => return,
                Tok::RBrace if t.depth == 0 => return,
                Tok::Newline if t.depth == 0 => return,
                Tok::Newline => {
                    let next = &self.toks[self.pos + 1];
                    let starts_stmt = matches!(next.tok, Tok::Ident { .. } | Tok::RBrace);
                    if starts_stmt && self.col(self.pos + 1) <= stmt_col {
                        return;
                    }
                    self.pos += 1;
                }
                _ => self.pos += 1,
            }
        }
    }

    fn stmt(&mut self) -> PResult<Stmt> {
        let t = self.peek_tok();
        let kw = match &t.tok {
            Tok::Ident {
                name,
                quoted: false,
            } => name.as_str(),
            _ => "",
        };
        match kw {
            "dim" => {
                self.bump();
                let name = self.ident("a dim name")?;
                let default = if self.eat(&Tok::Assign).is_some() {
                    Some(self.int_lit("a dim size")?)
                } else {
                    None
                };
                Ok(Stmt::Dim { name, default })
            }
            "input" => {
                self.bump();
                let name = self.ident("an input name")?;
                self.expect(&Tok::Colon)?;
                let ty = self.ty()?;
                Ok(Stmt::Input { name, ty })
            }
            "param" => {
                self.bump();
                let name = self.ident("a parameter name")?;
                self.expect(&Tok::Colon)?;
                let ty = self.ty()?;
                if self.peek() != &Tok::Assign {
                    return Err(expected("`=` and an initialiser", self.peek_tok())
                        .with_note("e.g. `= zeros`, `= glorot_uniform`, `= normal(0, 0.02)`"));
                }
                self.bump();
                let init = self.init()?;
                Ok(Stmt::Param { name, ty, init })
            }
            "const" => {
                self.bump();
                let name = self.ident("a constant name")?;
                self.expect(&Tok::Colon)?;
                let ty = self.ty()?;
                self.expect(&Tok::Assign)?;
                let value = self.literal()?;
                Ok(Stmt::Const { name, ty, value })
            }
            "output" => {
                self.bump();
                let mut items = Vec::new();
                loop {
                    let name = self.ident("an output name")?;
                    let value = if self.eat(&Tok::Assign).is_some() {
                        Some(self.ident("a value name")?)
                    } else {
                        None
                    };
                    items.push(OutputItem { name, value });
                    if self.eat(&Tok::Comma).is_none() {
                        break;
                    }
                }
                Ok(Stmt::Output { items })
            }
            "model" => Err(Diagnostic::new("only one model per file", t.span)
                .with_label("a model cannot be nested or repeated")),
            _ => {
                let mut names = vec![self.ident("a statement")?];
                while self.eat(&Tok::Comma).is_some() {
                    names.push(self.ident("a name")?);
                }
                if self.peek() != &Tok::Assign {
                    return Err(expected("`=`", self.peek_tok()).with_note(
                        "statements are `dim`, `input`, `param`, `const`, `output` or `name = expression`",
                    ));
                }
                self.bump();
                let value = self.expr()?;
                Ok(Stmt::Let { names, value })
            }
        }
    }

    fn int_lit(&mut self, what: &str) -> PResult<IntLit> {
        let t = self.peek_tok();
        match &t.tok {
            Tok::Int(text) => {
                self.bump();
                Ok(IntLit {
                    value: int_value(text, false, t.span)?,
                    text: text.clone(),
                    span: t.span,
                })
            }
            _ => Err(expected(what, t)),
        }
    }

    fn ty(&mut self) -> PResult<TypeExpr> {
        let t = self.peek_tok();
        let dtype = match &t.tok {
            Tok::Ident { name, .. } => DType::from_name(name),
            _ => None,
        };
        let Some(dtype) = dtype else {
            return Err(expected("a dtype (f32, i64 or bool)", t));
        };
        self.bump();
        let mut dims = Vec::new();
        let mut end = t.span;
        let brackets = self.peek() == &Tok::LBracket;
        if brackets {
            self.bump();
            self.parens += 1;
            while self.peek() != &Tok::RBracket {
                let t = self.peek_tok();
                match &t.tok {
                    Tok::Int(_) => dims.push(DimExpr::Int(self.int_lit("a dim")?)),
                    Tok::Ident { .. } => dims.push(DimExpr::Named(self.ident("a dim")?)),
                    _ => return Err(expected("a dim size or name", t)),
                }
                if self.eat(&Tok::Comma).is_none() {
                    break;
                }
            }
            end = self.expect(&Tok::RBracket)?.span;
            self.parens -= 1;
        }
        Ok(TypeExpr {
            dtype,
            dims,
            brackets,
            span: t.span.to(end),
        })
    }

    fn init(&mut self) -> PResult<InitExpr> {
        let name = self.ident("an initialiser")?;
        let mut span = name.span;
        let args = if self.eat(&Tok::LParen).is_some() {
            self.parens += 1;
            let mut args = Vec::new();
            while self.peek() != &Tok::RParen {
                args.push(self.signed_number()?);
                if self.eat(&Tok::Comma).is_none() {
                    break;
                }
            }
            span = span.to(self.expect(&Tok::RParen)?.span);
            self.parens -= 1;
            Some(args)
        } else {
            None
        };
        Ok(InitExpr { name, args, span })
    }

    /// `[-] (int | float | inf | nan)`.
    fn signed_number(&mut self) -> PResult<Number> {
        let minus = self.eat(&Tok::Minus).map(|t| t.span);
        let t = self.peek_tok();
        let Some(n) = number(&t.tok, minus.is_some(), t.span)? else {
            return Err(expected("a number", t));
        };
        self.bump();
        let span = minus.map_or(t.span, |m| m.to(t.span));
        Ok(Number { span, ..n })
    }

    fn literal(&mut self) -> PResult<Literal> {
        let t = self.peek_tok();
        match &t.tok {
            Tok::LBracket => {
                self.enter(t.span)?;
                self.bump();
                self.parens += 1;
                let mut items = Vec::new();
                while self.peek() != &Tok::RBracket {
                    items.push(self.literal()?);
                    if self.eat(&Tok::Comma).is_none() {
                        break;
                    }
                }
                let end = self.expect(&Tok::RBracket)?.span;
                self.parens -= 1;
                self.leave();
                Ok(Literal::List(items, t.span.to(end)))
            }
            tok if tok.is_kw("true") || tok.is_kw("false") => {
                self.bump();
                Ok(Literal::Bool(tok.is_kw("true"), t.span))
            }
            _ => self
                .signed_number()
                .map(Literal::Num)
                .map_err(|_| expected("a number, `true`, `false` or a list `[...]`", t)),
        }
    }
}

/// The value of an integer literal (`neg` applies a leading minus).
fn int_value(text: &str, neg: bool, span: Span) -> PResult<i128> {
    match text.parse::<u64>() {
        Ok(v) if !neg => Ok(v as i128),
        Ok(v) => Ok(-(v as i128)),
        Err(_) => Err(Diagnostic::new(
            format!("integer literal `{}` is too large", shorten(text)),
            span,
        )
        .with_label("does not fit in 64 bits")
        .with_note(format!("integers must lie within ±{}", u64::MAX))),
    }
}

fn shorten(s: &str) -> String {
    if s.len() > 30 {
        format!("{}...", &s[..30])
    } else {
        s.to_string()
    }
}

/// A number token (`inf`, `nan` included) as a [`Number`], or `None` if not a number.
fn number(tok: &Tok, neg: bool, span: Span) -> PResult<Option<Number>> {
    let sign = if neg { "-" } else { "" };
    let (value, text) = match tok {
        Tok::Int(t) => (NumValue::Int(int_value(t, neg, span)?), t),
        Tok::Float(t) => {
            let v: f64 = t.parse().unwrap_or(f64::INFINITY);
            if !v.is_finite() {
                return Err(Diagnostic::new(
                    format!("float literal `{}` is out of range", shorten(t)),
                    span,
                )
                .with_label("too large for a 64-bit float")
                .with_note("write `inf` for infinity"));
            }
            (NumValue::Float(if neg { -v } else { v }), t)
        }
        t if t.is_kw("inf") => (
            NumValue::Float(if neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }),
            &"inf".to_string(),
        ),
        t if t.is_kw("nan") => (NumValue::Float(f64::NAN), &"nan".to_string()),
        _ => return Ok(None),
    };
    Ok(Some(Number {
        value,
        text: format!("{sign}{text}"),
        span,
    }))
}
