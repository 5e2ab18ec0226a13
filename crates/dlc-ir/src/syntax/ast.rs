//! The syntax tree of one `.ir` file, as written (named dims, infix expressions,
//! literal spellings and comments are kept, so the formatter can re-print it).

use crate::span::Span;
use crate::types::DType;

/// A name with its place in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    /// The name (without backticks).
    pub name: String,
    /// Where it is written.
    pub span: Span,
}

/// One model: `model NAME { statements }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// The model's name.
    pub name: String,
    /// Where the name is written.
    pub name_span: Span,
    /// The statements in order.
    pub items: Vec<Item>,
    /// Comments before `model` (own lines).
    pub header_comments: Vec<String>,
    /// Comments after the last statement, before `}`.
    pub end_comments: Vec<String>,
    /// Comments after `}`.
    pub footer_comments: Vec<String>,
    /// A comment on the `model NAME {` line.
    pub open_comment: Option<String>,
    /// The whole model.
    pub span: Span,
}

/// A declared dimension: `dim B = 32` (or `dim B`, to be bound by the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DimDecl {
    /// The dim's name.
    pub name: String,
    /// Its default size, if any.
    pub default: Option<usize>,
}

impl Model {
    /// The declared dims (`dim` statements) with their defaults, in order.
    pub fn declared_dims(&self) -> Vec<DimDecl> {
        self.items
            .iter()
            .filter_map(|it| match &it.stmt {
                Stmt::Dim { name, default } => Some(DimDecl {
                    name: name.name.clone(),
                    default: default.as_ref().and_then(|d| usize::try_from(d.value).ok()),
                }),
                _ => None,
            })
            .collect()
    }

    /// Every dim name the model declares or uses (in shapes or attributes), in order
    /// of first appearance.
    pub fn all_dim_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let mut add = |n: &str| {
            if !names.iter().any(|m| m == n) {
                names.push(n.to_string());
            }
        };
        for it in &self.items {
            match &it.stmt {
                Stmt::Dim { name, .. } => add(&name.name),
                Stmt::Input { ty, .. } | Stmt::Param { ty, .. } | Stmt::Const { ty, .. } => {
                    for d in &ty.dims {
                        if let DimExpr::Named(n) = d {
                            add(&n.name);
                        }
                    }
                }
                Stmt::Let { value, .. } => value.visit_attr_idents(&mut |n| add(n)),
                Stmt::Output { .. } => {}
            }
        }
        names
    }

    /// The free dims: names used in shapes that have no default (`dim B` without
    /// `= size`, or not declared at all). These must be bound (e.g. `--dim B=64`).
    ///
    /// Attribute identifiers that are not declared dims (such as `to=f32`) are not
    /// counted.
    pub fn dim_names(&self) -> Vec<String> {
        let declared = self.declared_dims();
        let mut names: Vec<String> = Vec::new();
        let mut add = |n: &str| {
            let defaulted = declared.iter().any(|d| d.name == n && d.default.is_some());
            if !defaulted && !names.iter().any(|m| m == n) {
                names.push(n.to_string());
            }
        };
        for it in &self.items {
            match &it.stmt {
                Stmt::Dim { name, .. } => add(&name.name),
                Stmt::Input { ty, .. } | Stmt::Param { ty, .. } | Stmt::Const { ty, .. } => {
                    for d in &ty.dims {
                        if let DimExpr::Named(n) = d {
                            add(&n.name);
                        }
                    }
                }
                _ => {}
            }
        }
        names
    }
}

/// A statement with the comments attached to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Comments on their own lines just before the statement.
    pub comments: Vec<String>,
    /// A comment at the end of the statement's line(s).
    pub trailing: Option<String>,
    /// Whether a blank line separates it from what precedes it.
    pub blank_before: bool,
    /// The statement.
    pub stmt: Stmt,
    /// Where the statement is written.
    pub span: Span,
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `dim B = 32` or `dim B`.
    Dim {
        /// The dim's name.
        name: Ident,
        /// Its default size.
        default: Option<IntLit>,
    },
    /// `input x: f32[B, 784]`.
    Input {
        /// The input's name.
        name: Ident,
        /// Its type.
        ty: TypeExpr,
    },
    /// `param w: f32[784, 128] = glorot_uniform`.
    Param {
        /// The parameter's name.
        name: Ident,
        /// Its type.
        ty: TypeExpr,
        /// Its initialiser.
        init: InitExpr,
    },
    /// `const t: f32[2] = [1, 2]`.
    Const {
        /// The constant's name.
        name: Ident,
        /// Its type.
        ty: TypeExpr,
        /// Its value.
        value: Literal,
    },
    /// `a, b = expr` (one or more names).
    Let {
        /// The bound names.
        names: Vec<Ident>,
        /// The value.
        value: Expr,
    },
    /// `output a, b = c`.
    Output {
        /// The outputs in order.
        items: Vec<OutputItem>,
    },
}

/// One output: `name` or `name = value`.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputItem {
    /// The output's name.
    pub name: Ident,
    /// The value, when named differently.
    pub value: Option<Ident>,
}

/// An integer as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntLit {
    /// The value (magnitudes up to `u64::MAX`, signs applied).
    pub value: i128,
    /// The spelling.
    pub text: String,
    /// Where it is written.
    pub span: Span,
}

/// A type: `f32[B, 784]`, `i64[]` or `f32` (scalar).
#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    /// The element type.
    pub dtype: DType,
    /// The dims (empty for a scalar).
    pub dims: Vec<DimExpr>,
    /// Whether brackets were written (`f32[]` vs `f32`).
    pub brackets: bool,
    /// Where it is written.
    pub span: Span,
}

/// One dim of a type.
#[derive(Clone, Debug, PartialEq)]
pub enum DimExpr {
    /// A literal size.
    Int(IntLit),
    /// A named dim.
    Named(Ident),
}

/// A parameter initialiser: `zeros`, `normal(0, 0.02)`.
#[derive(Clone, Debug, PartialEq)]
pub struct InitExpr {
    /// The initialiser's name.
    pub name: Ident,
    /// Its arguments (numbers), when written with parentheses.
    pub args: Option<Vec<Number>>,
    /// Where it is written.
    pub span: Span,
}

/// A number literal with its sign folded in.
#[derive(Clone, Debug, PartialEq)]
pub struct Number {
    /// The value.
    pub value: NumValue,
    /// The spelling (including a leading `-`).
    pub text: String,
    /// Where it is written.
    pub span: Span,
}

/// The value of a number literal.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NumValue {
    /// An integer (no `.`, no exponent).
    Int(i128),
    /// A float (`.`, exponent, `inf` or `nan`).
    Float(f64),
}

impl NumValue {
    /// The value as f64.
    pub fn as_f64(self) -> f64 {
        match self {
            NumValue::Int(i) => i as f64,
            NumValue::Float(f) => f,
        }
    }
}

/// A constant's value: a number, a bool or a nested list.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// A number.
    Num(Number),
    /// `true` or `false`.
    Bool(bool, Span),
    /// `[a, b, ...]`.
    List(Vec<Literal>, Span),
}

impl Literal {
    /// Where it is written.
    pub fn span(&self) -> Span {
        match self {
            Literal::Num(n) => n.span,
            Literal::Bool(_, s) | Literal::List(_, s) => *s,
        }
    }
}

/// An expression with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it is written.
    pub span: Span,
}

/// Infix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `@`
    MatMul,
    /// `**`
    Pow,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl BinOp {
    /// The operator's spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::MatMul => "@",
            BinOp::Pow => "**",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
        }
    }

    /// The op the operator stands for (`add`, `matmul`, ...).
    pub fn op_name(self) -> &'static str {
        match self {
            BinOp::Add => "add",
            BinOp::Sub => "sub",
            BinOp::Mul => "mul",
            BinOp::Div => "div",
            BinOp::MatMul => "matmul",
            BinOp::Pow => "pow",
            BinOp::Eq => "eq",
            BinOp::Ne => "ne",
            BinOp::Lt => "lt",
            BinOp::Le => "le",
            BinOp::Gt => "gt",
            BinOp::Ge => "ge",
        }
    }
}

/// Expression forms.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A value's name.
    Name(String),
    /// A weakly typed number literal.
    Num(Number),
    /// `true` / `false`.
    Bool(bool),
    /// `-e`.
    Neg(Box<Expr>),
    /// `a op b`.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `op(args)`.
    Call {
        /// The op's name.
        op: Ident,
        /// Positional and keyword arguments, in order.
        args: Vec<Arg>,
    },
    /// `(e)`, kept so the formatter prints parentheses as written.
    Paren(Box<Expr>),
}

impl Expr {
    /// Calls `f` on every bare identifier used as an attribute value (named dims).
    pub fn visit_attr_idents(&self, f: &mut dyn FnMut(&str)) {
        match &self.kind {
            ExprKind::Neg(e) | ExprKind::Paren(e) => e.visit_attr_idents(f),
            ExprKind::Binary(_, a, b) => {
                a.visit_attr_idents(f);
                b.visit_attr_idents(f);
            }
            ExprKind::Call { args, .. } => {
                for a in args {
                    match a {
                        Arg::Pos(e) => e.visit_attr_idents(f),
                        Arg::Kw { value, .. } => value.visit_idents(f),
                    }
                }
            }
            _ => {}
        }
    }
}

/// A call argument.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// An operand.
    Pos(Expr),
    /// A compile-time attribute `key=value`.
    Kw {
        /// The attribute's name.
        name: Ident,
        /// Its value.
        value: AttrValue,
    },
}

/// An attribute value with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct AttrValue {
    /// What it is.
    pub kind: AttrKind,
    /// Where it is written.
    pub span: Span,
}

/// Attribute value forms.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrKind {
    /// A number (sign folded in).
    Num(Number),
    /// `true` / `false`.
    Bool(bool),
    /// `"text"`.
    Str(String),
    /// A bare identifier: a named dim or a dtype.
    Ident(String),
    /// `[v, ...]`.
    List(Vec<AttrValue>),
}

impl AttrValue {
    /// Calls `f` on every bare identifier in the value.
    pub fn visit_idents(&self, f: &mut dyn FnMut(&str)) {
        match &self.kind {
            AttrKind::Ident(n) if DType::from_name(n).is_none() => f(n),
            AttrKind::List(v) => v.iter().for_each(|x| x.visit_idents(f)),
            _ => {}
        }
    }

    /// A short description of the value's kind, for error messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            AttrKind::Num(n) => match n.value {
                NumValue::Int(_) => format!("integer `{}`", n.text),
                NumValue::Float(_) => format!("number `{}`", n.text),
            },
            AttrKind::Bool(b) => format!("bool `{b}`"),
            AttrKind::Str(s) => format!("string \"{s}\""),
            AttrKind::Ident(i) => format!("name `{i}`"),
            AttrKind::List(_) => "a list".to_string(),
        }
    }
}
