//! The lexer: source text to tokens, comments kept aside for the formatter.
//!
//! The lexer never stops at an error: a bad character or an unterminated string
//! becomes a diagnostic and lexing goes on, so one run reports every lexical error.

use std::fmt;

use super::diagnostic::Diagnostic;
use crate::span::Span;

/// Words that cannot name a value, a dim or a model (quote them with backticks to do so).
pub const KEYWORDS: [&str; 10] = [
    "model", "dim", "input", "param", "const", "output", "true", "false", "inf", "nan",
];

/// Whether `name` is reserved.
pub fn is_keyword(name: &str) -> bool {
    KEYWORDS.contains(&name)
}

/// Whether `name` can be written without backticks.
pub fn is_plain_ident(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !is_keyword(name)
}

/// Whether `name` can be written at all (plain, or quoted in backticks).
pub fn is_writable_ident(name: &str) -> bool {
    is_plain_ident(name) || (!name.is_empty() && !name.contains(['`', '\n', '\r']))
}

/// `name` as written in `.ir` text: plain when possible, else in backticks.
pub fn quote_ident(name: &str) -> String {
    if is_plain_ident(name) {
        name.to_string()
    } else {
        format!("`{name}`")
    }
}

/// A token's kind and payload.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// An identifier or keyword (`relu`, `model`); backtick-quoted names are never keywords.
    Ident {
        /// The name (without backticks).
        name: String,
        /// Written in backticks.
        quoted: bool,
    },
    /// An integer literal, as written (digits only).
    Int(String),
    /// A float literal, as written (has `.` or an exponent).
    Float(String),
    /// A string literal (contents, without quotes).
    Str(String),
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `:`
    Colon,
    /// `=`
    Assign,
    /// `==`
    EqEq,
    /// `!=`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `*`
    Star,
    /// `/`
    Slash,
    /// `@`
    At,
    /// `**`
    StarStar,
    /// End of a line.
    Newline,
    /// End of the input.
    Eof,
}

impl Tok {
    /// Whether this is the (unquoted) keyword `kw`.
    pub fn is_kw(&self, kw: &str) -> bool {
        matches!(self, Tok::Ident { name, quoted: false } if name == kw)
    }

    /// The token's fixed spelling, for punctuation.
    pub fn symbol(&self) -> Option<&'static str> {
        Some(match self {
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::Comma => ",",
            Tok::Colon => ":",
            Tok::Assign => "=",
            Tok::EqEq => "==",
            Tok::NotEq => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::At => "@",
            Tok::StarStar => "**",
            _ => return None,
        })
    }
}

impl fmt::Display for Tok {
    /// Describes the token for "found X" messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident { name, quoted } if !quoted && is_keyword(name) => {
                write!(f, "keyword `{name}`")
            }
            Tok::Ident { name, .. } => write!(f, "identifier `{}`", short(name)),
            Tok::Int(t) | Tok::Float(t) => write!(f, "number `{}`", short(t)),
            Tok::Str(s) => write!(f, "string \"{}\"", short(s)),
            Tok::Newline => f.write_str("end of line"),
            Tok::Eof => f.write_str("end of file"),
            t => write!(f, "`{}`", t.symbol().unwrap_or("?")),
        }
    }
}

fn short(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

/// A token with its place in the source.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// Kind and payload.
    pub tok: Tok,
    /// Byte span.
    pub span: Span,
    /// Bracket nesting depth before the token (used to resynchronise after errors).
    pub depth: u32,
}

/// A `#` comment (text includes the `#`, without the line end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    /// Byte span.
    pub span: Span,
    /// The text from `#` to the end of the line, trailing whitespace removed.
    pub text: String,
}

/// The result of lexing: tokens (ending with [`Tok::Eof`]) and comments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lexed {
    /// Tokens in order; the last is `Eof`.
    pub tokens: Vec<Token>,
    /// Comments in order.
    pub comments: Vec<Comment>,
}

/// Lexes `src`, returning the tokens and every lexical error found.
pub fn lex(src: &str) -> (Lexed, Vec<Diagnostic>) {
    let mut out = Lexed::default();
    let mut diags = Vec::new();
    let bytes = src.as_bytes();
    let mut i = 0;
    let mut depth: u32 = 0;
    let mut line_start = true;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        // Statement keywords or `}` at the start of a line end any unclosed bracket:
        // they cannot occur inside brackets, so this only helps error recovery.
        if line_start && c != b' ' && c != b'\t' && c != b'\r' && c != b'\n' {
            let word_end = src[i..]
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .map_or(src.len(), |n| i + n);
            let word = &src[i..word_end];
            let stmt_kw = ["model", "dim", "input", "param", "const", "output"].contains(&word);
            if stmt_kw || c == b'}' {
                depth = 0;
            }
            line_start = false;
        }
        let mut push = |tok: Tok, end: usize, depth: u32| {
            out.tokens.push(Token {
                tok,
                span: Span::new(start, end),
                depth,
            })
        };
        match c {
            b' ' | b'\t' | b'\r' => i += 1,
            b'\n' => {
                push(Tok::Newline, i + 1, depth);
                i += 1;
                line_start = true;
            }
            b'#' => {
                let end = src[i..].find('\n').map_or(src.len(), |n| i + n);
                let text = src[i..end].trim_end().to_string();
                out.comments.push(Comment {
                    span: Span::new(i, i + text.len()),
                    text,
                });
                i = end;
            }
            b'"' => {
                let rest = &src[i + 1..];
                match rest.find(['"', '\n']) {
                    Some(n) if rest.as_bytes()[n] == b'"' => {
                        push(Tok::Str(rest[..n].to_string()), i + n + 2, depth);
                        i += n + 2;
                    }
                    found => {
                        let end = found.map_or(src.len(), |n| i + 1 + n);
                        diags.push(
                            Diagnostic::new("unterminated string literal", Span::new(i, end))
                                .with_label("this string has no closing `\"`")
                                .with_note("strings end on the line they start on"),
                        );
                        i = end;
                    }
                }
            }
            b'`' => {
                let rest = &src[i + 1..];
                match rest.find(['`', '\n']) {
                    Some(n) if rest.as_bytes()[n] == b'`' && n > 0 => {
                        let name = rest[..n].to_string();
                        push(Tok::Ident { name, quoted: true }, i + n + 2, depth);
                        i += n + 2;
                    }
                    found => {
                        let end = found.map_or(src.len(), |n| i + 2 + n).min(src.len());
                        diags.push(
                            Diagnostic::new("bad quoted name", Span::new(i, end))
                                .with_label("expected a non-empty name between backticks")
                                .with_note(
                                    "a quoted name looks like `my name` and ends on its line",
                                ),
                        );
                        i = end;
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let end = src[i..]
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                    .map_or(src.len(), |n| i + n);
                let name = src[i..end].to_string();
                push(
                    Tok::Ident {
                        name,
                        quoted: false,
                    },
                    end,
                    depth,
                );
                i = end;
            }
            c if c.is_ascii_digit() => {
                let (tok, end, err) = number(src, i);
                if let Some(msg) = err {
                    diags.push(
                        Diagnostic::new(msg, Span::new(i, end))
                            .with_label("malformed number")
                            .with_note("numbers look like 42, 0.5, 1e-5 or 2.5E+3"),
                    );
                } else {
                    push(tok, end, depth);
                }
                i = end;
            }
            _ => {
                let two = src.get(i..i + 2).unwrap_or("");
                let (tok, len) = match two {
                    "==" => (Some(Tok::EqEq), 2),
                    "!=" => (Some(Tok::NotEq), 2),
                    "<=" => (Some(Tok::Le), 2),
                    ">=" => (Some(Tok::Ge), 2),
                    "**" => (Some(Tok::StarStar), 2),
                    _ => {
                        let t = match c {
                            b'{' => Some(Tok::LBrace),
                            b'}' => Some(Tok::RBrace),
                            b'(' => Some(Tok::LParen),
                            b')' => Some(Tok::RParen),
                            b'[' => Some(Tok::LBracket),
                            b']' => Some(Tok::RBracket),
                            b',' => Some(Tok::Comma),
                            b':' => Some(Tok::Colon),
                            b'=' => Some(Tok::Assign),
                            b'<' => Some(Tok::Lt),
                            b'>' => Some(Tok::Gt),
                            b'+' => Some(Tok::Plus),
                            b'-' => Some(Tok::Minus),
                            b'*' => Some(Tok::Star),
                            b'/' => Some(Tok::Slash),
                            b'@' => Some(Tok::At),
                            _ => None,
                        };
                        (t, 1)
                    }
                };
                match tok {
                    Some(tok) => {
                        let d = depth;
                        match tok {
                            Tok::LParen | Tok::LBracket => depth = depth.saturating_add(1),
                            Tok::RParen | Tok::RBracket => depth = depth.saturating_sub(1),
                            _ => {}
                        }
                        push(tok, i + len, d);
                        i += len;
                    }
                    None => {
                        let ch = src[i..].chars().next().unwrap_or('?');
                        let end = i + ch.len_utf8();
                        diags.push(
                            Diagnostic::new(
                                format!("unexpected character `{}`", ch.escape_debug()),
                                Span::new(i, end),
                            )
                            .with_label("not part of the language"),
                        );
                        i = end;
                    }
                }
            }
        }
    }
    out.tokens.push(Token {
        tok: Tok::Eof,
        span: Span::new(src.len(), src.len()),
        depth,
    });
    (out, diags)
}

/// Lexes a number starting at `i`: `digits [. digits*] [(e|E) [+|-] digits]`.
fn number(src: &str, i: usize) -> (Tok, usize, Option<String>) {
    let b = src.as_bytes();
    let digits = |mut j: usize| {
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    let mut j = digits(i);
    let mut float = false;
    if j < b.len() && b[j] == b'.' && !(j + 1 < b.len() && b[j + 1] == b'.') {
        float = true;
        j = digits(j + 1);
    }
    if j < b.len() && (b[j] == b'e' || b[j] == b'E') {
        float = true;
        let mut k = j + 1;
        if k < b.len() && (b[k] == b'+' || b[k] == b'-') {
            k += 1;
        }
        let e = digits(k);
        if e == k {
            let end = src[j..]
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .map_or(src.len(), |n| j + n)
                .max(k);
            return (
                Tok::Eof,
                end,
                Some(format!("malformed number `{}`", short(&src[i..end]))),
            );
        }
        j = e;
    }
    // A number glued to letters (`3x`) is an error, not two tokens.
    if j < b.len() && (b[j].is_ascii_alphabetic() || b[j] == b'_') {
        let end = src[j..]
            .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
            .map_or(src.len(), |n| j + n);
        return (
            Tok::Eof,
            end,
            Some(format!("malformed number `{}`", short(&src[i..end]))),
        );
    }
    let text = src[i..j].to_string();
    let tok = if float {
        Tok::Float(text)
    } else {
        Tok::Int(text)
    };
    (tok, j, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        lex(src).0.tokens.into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_operators_numbers_and_comments() {
        let (l, d) = lex("y = x ** 2 <= 1e-5 # hi\n");
        assert!(d.is_empty());
        assert_eq!(l.comments[0].text, "# hi");
        let t = kinds("a**-1.5e3 != `my x`");
        assert_eq!(t[1], Tok::StarStar);
        assert_eq!(t[2], Tok::Minus);
        assert_eq!(t[3], Tok::Float("1.5e3".into()));
        assert_eq!(t[4], Tok::NotEq);
        assert_eq!(
            t[5],
            Tok::Ident {
                name: "my x".into(),
                quoted: true
            }
        );
    }

    #[test]
    fn keeps_going_after_errors() {
        let (l, d) = lex("a $ b ? \"open\n1e+ c");
        assert_eq!(d.len(), 4, "{d:?}");
        assert!(d[0].message.contains("`$`"));
        assert!(d[2].message.contains("unterminated"));
        assert!(d[3].message.contains("malformed number"));
        assert!(l.tokens.iter().any(|t| t.tok.is_kw("c")));
    }

    #[test]
    fn identifiers_quote_when_needed() {
        assert_eq!(quote_ident("x1"), "x1");
        assert_eq!(quote_ident("input"), "`input`");
        assert_eq!(quote_ident("a b"), "`a b`");
    }
}
