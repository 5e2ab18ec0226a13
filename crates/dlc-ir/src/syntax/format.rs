//! The source formatter (`dlc fmt`): re-prints a [`Model`] with canonical spacing.
//!
//! Expressions, named dims, literal spellings and comments are kept as written;
//! only layout changes: two-space indent, keywords in a 6-wide column, one
//! statement per line, one blank line kept where there were any. Within a block
//! (statements not separated by a blank line) the `=` of `let`s and of
//! `param`/`const` declarations line up, and so do trailing comments. The output
//! depends only on the syntax tree, so formatting is idempotent.

use super::ast::*;
use super::lexer::quote_ident;

const KW_WIDTH: usize = 6;
const ALIGN_CAP: usize = 24;
const COMMENT_CAP: usize = 72;

/// Formats a model.
pub fn format_model(m: &Model) -> String {
    let mut s = String::new();
    for c in &m.header_comments {
        s.push_str(c);
        s.push('\n');
    }
    s.push_str(&format!("model {} {{", quote_ident(&m.name)));
    if let Some(c) = &m.open_comment {
        s.push_str("  ");
        s.push_str(c);
    }
    s.push('\n');
    let mut start = 0;
    while start < m.items.len() {
        let mut end = start + 1;
        while end < m.items.len() && !m.items[end].blank_before {
            end += 1;
        }
        if start > 0 {
            s.push('\n');
        }
        block(&mut s, &m.items[start..end]);
        start = end;
    }
    for c in &m.end_comments {
        s.push_str("  ");
        s.push_str(c);
        s.push('\n');
    }
    s.push_str("}\n");
    for c in &m.footer_comments {
        s.push_str(c);
        s.push('\n');
    }
    s
}

/// Formats a run of statements with aligned `=` and trailing comments.
fn block(s: &mut String, items: &[Item]) {
    let lhs_width = items
        .iter()
        .filter_map(|it| match &it.stmt {
            Stmt::Let { names, .. } => Some(names_str(names).len()),
            _ => None,
        })
        .filter(|&w| w <= ALIGN_CAP)
        .max()
        .unwrap_or(0)
        .max(KW_WIDTH);
    let decl_width = items
        .iter()
        .filter_map(|it| match &it.stmt {
            Stmt::Param { name, ty, .. } | Stmt::Const { name, ty, .. } => {
                Some(decl_head(name, ty).len())
            }
            _ => None,
        })
        .filter(|&w| w <= 2 * ALIGN_CAP)
        .max()
        .unwrap_or(0);
    let lines: Vec<String> = items
        .iter()
        .map(|it| stmt_str(&it.stmt, lhs_width, decl_width))
        .collect();
    let comment_col = items
        .iter()
        .zip(&lines)
        .filter(|(it, l)| it.trailing.is_some() && l.len() <= COMMENT_CAP)
        .map(|(_, l)| l.len())
        .max()
        .unwrap_or(0);
    for (it, line) in items.iter().zip(lines) {
        for c in &it.comments {
            s.push_str("  ");
            s.push_str(c);
            s.push('\n');
        }
        s.push_str("  ");
        s.push_str(&line);
        if let Some(c) = &it.trailing {
            let pad = comment_col.saturating_sub(line.len()) + 2;
            s.push_str(&" ".repeat(pad));
            s.push_str(c);
        }
        s.push('\n');
    }
}

fn kw(k: &str) -> String {
    format!("{k:<KW_WIDTH$} ")
}

fn names_str(names: &[Ident]) -> String {
    let v: Vec<String> = names.iter().map(|n| quote_ident(&n.name)).collect();
    v.join(", ")
}

fn decl_head(name: &Ident, ty: &TypeExpr) -> String {
    format!("{}: {}", quote_ident(&name.name), type_str(ty))
}

fn stmt_str(st: &Stmt, lhs_width: usize, decl_width: usize) -> String {
    match st {
        Stmt::Dim { name, default } => {
            let mut s = format!("{}{}", kw("dim"), quote_ident(&name.name));
            if let Some(d) = default {
                s.push_str(&format!(" = {}", d.text));
            }
            s
        }
        Stmt::Input { name, ty } => format!("{}{}", kw("input"), decl_head(name, ty)),
        Stmt::Param { name, ty, init } => {
            let args = init.args.as_ref().map_or(String::new(), |a| {
                let v: Vec<&str> = a.iter().map(|n| n.text.as_str()).collect();
                format!("({})", v.join(", "))
            });
            format!(
                "{}{:<decl_width$} = {}{args}",
                kw("param"),
                decl_head(name, ty),
                quote_ident(&init.name.name)
            )
        }
        Stmt::Const { name, ty, value } => format!(
            "{}{:<decl_width$} = {}",
            kw("const"),
            decl_head(name, ty),
            literal_str(value)
        ),
        Stmt::Let { names, value } => {
            format!("{:<lhs_width$} = {}", names_str(names), expr_str(value))
        }
        Stmt::Output { items } => {
            let v: Vec<String> = items
                .iter()
                .map(|o| match &o.value {
                    Some(v) => format!("{} = {}", quote_ident(&o.name.name), quote_ident(&v.name)),
                    None => quote_ident(&o.name.name),
                })
                .collect();
            format!("{}{}", kw("output"), v.join(", "))
        }
    }
}

fn type_str(t: &TypeExpr) -> String {
    if !t.brackets {
        return t.dtype.to_string();
    }
    let dims: Vec<String> = t
        .dims
        .iter()
        .map(|d| match d {
            DimExpr::Int(i) => i.text.clone(),
            DimExpr::Named(n) => quote_ident(&n.name),
        })
        .collect();
    format!("{}[{}]", t.dtype, dims.join(", "))
}

fn literal_str(l: &Literal) -> String {
    match l {
        Literal::Num(n) => n.text.clone(),
        Literal::Bool(b, _) => b.to_string(),
        Literal::List(items, _) => {
            let v: Vec<String> = items.iter().map(literal_str).collect();
            format!("[{}]", v.join(", "))
        }
    }
}

/// An expression as written, with canonical spacing.
pub fn expr_str(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Name(n) => quote_ident(n),
        ExprKind::Num(n) => n.text.clone(),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Neg(x) => format!("-{}", expr_str(x)),
        ExprKind::Binary(op, a, b) => {
            format!("{} {} {}", expr_str(a), op.symbol(), expr_str(b))
        }
        ExprKind::Paren(x) => format!("({})", expr_str(x)),
        ExprKind::Call { op, args } => {
            let v: Vec<String> = args
                .iter()
                .map(|a| match a {
                    Arg::Pos(e) => expr_str(e),
                    Arg::Kw { name, value } => {
                        format!("{}={}", quote_ident(&name.name), attr_str(value))
                    }
                })
                .collect();
            format!("{}({})", quote_ident(&op.name), v.join(", "))
        }
    }
}

fn attr_str(v: &AttrValue) -> String {
    match &v.kind {
        AttrKind::Num(n) => n.text.clone(),
        AttrKind::Bool(b) => b.to_string(),
        AttrKind::Str(s) => format!("\"{s}\""),
        AttrKind::Ident(i) => quote_ident(i),
        AttrKind::List(items) => {
            let v: Vec<String> = items.iter().map(attr_str).collect();
            format!("[{}]", v.join(", "))
        }
    }
}
