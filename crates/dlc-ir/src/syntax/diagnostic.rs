//! Diagnostics: errors that point into the source text, rendered with `ariadne`.
//!
//! A [`Diagnostic`] carries a message, the span of the offending text, a label
//! shown under it, optional related spans (e.g. the first definition of a
//! duplicated name) and help notes. [`Diagnostics`] collects several of them, so
//! one run can report many errors, and renders them as plain text:
//!
//! ```text
//! Error: unknown op `rleu`
//!    ╭─[ model.ir:3:7 ]
//!    │
//!  3 │   h = rleu(x)
//!    │       ──┬─
//!    │         ╰─── not an op
//!    │
//!    │ Help: did you mean `relu`?
//! ───╯
//! ```

use std::fmt;

use ariadne::{Config, IndexType, Label, Report, ReportKind, Source};

use crate::span::Span;

/// One error, pointing at the source text where possible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong, in one line.
    pub message: String,
    /// The offending text, when the error has a place in the source.
    pub span: Option<Span>,
    /// Shown under the offending text (e.g. "expected `)`"); may be empty.
    pub label: String,
    /// Help notes: what was expected, suggestions.
    pub notes: Vec<String>,
    /// Other places worth showing, each with its own label.
    pub related: Vec<(Span, String)>,
}

impl Diagnostic {
    /// A diagnostic with a message and a span.
    pub fn new(message: impl Into<String>, span: impl Into<Option<Span>>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            span: span.into(),
            label: String::new(),
            notes: Vec::new(),
            related: Vec::new(),
        }
    }

    /// Sets the label shown under the offending text.
    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = label.into();
        self
    }

    /// Adds a help note.
    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// Adds a help note when there is one.
    pub fn with_opt_note(self, note: Option<String>) -> Diagnostic {
        match note {
            Some(n) => self.with_note(n),
            None => self,
        }
    }

    /// Adds a related span with its own label.
    pub fn with_related(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.related.push((span, label.into()));
        self
    }

    /// Renders this diagnostic alone (see [`Diagnostics::render`]).
    pub fn render(&self, filename: &str, source: &str) -> String {
        let mut out = Vec::new();
        let Some(span) = self.span else {
            let mut s = format!("Error: {}\n", self.message);
            for n in &self.notes {
                s.push_str(&format!("  Help: {n}\n"));
            }
            return s;
        };
        let clamp = |s: Span| {
            let end = s.end.min(source.len());
            let start = s.start.min(end);
            start..end
        };
        let fname = filename.to_string();
        let config = Config::default()
            .with_color(false)
            .with_index_type(IndexType::Byte);
        let mut report = Report::build(ReportKind::Error, (fname.clone(), clamp(span)))
            .with_config(config)
            .with_message(&self.message);
        let label = if self.label.is_empty() {
            &self.message
        } else {
            &self.label
        };
        report.add_label(Label::new((fname.clone(), clamp(span))).with_message(label));
        for (i, (s, l)) in self.related.iter().enumerate() {
            report.add_label(
                Label::new((fname.clone(), clamp(*s)))
                    .with_message(l)
                    .with_order(i as i32 + 1),
            );
        }
        for n in &self.notes {
            report.add_help(n);
        }
        let written = report
            .finish()
            .write((fname, Source::from(source)), &mut out);
        match written {
            Ok(()) => String::from_utf8_lossy(&out).into_owned(),
            Err(_) => format!("Error: {}\n", self.message),
        }
    }

    /// The 1-based `line:col` of the span's start in `source` (columns count characters).
    pub fn line_col(&self, source: &str) -> Option<(usize, usize)> {
        let start = self.span?.start.min(source.len());
        let before = source.get(..start)?;
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Some((line, before[line_start..].chars().count() + 1))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for n in &self.notes {
            write!(f, "\n  help: {n}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// Several diagnostics from one file, in source order of discovery.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Renders every diagnostic as plain text (`file:line:col`, the source line, a
    /// caret and label under the offending text, and the help notes).
    pub fn render(&self, filename: &str, source: &str) -> String {
        self.0
            .iter()
            .map(|d| d.render(filename, source))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The diagnostics in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Number of diagnostics.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Diagnostics {
        Diagnostics(vec![d])
    }
}

impl From<Vec<Diagnostic>> for Diagnostics {
    fn from(v: Vec<Diagnostic>) -> Diagnostics {
        Diagnostics(v)
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Edit distance (optimal string alignment: insertions, deletions, substitutions
/// and swaps of adjacent characters each cost 1).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The closest candidate to `name` by edit distance, if it is close enough to be a typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = name.chars().count();
    if len > 64 {
        return None;
    }
    let limit = (len / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| c.len() <= 64)
        .map(|c| (edit_distance(name, c), c))
        .filter(|&(d, c)| d <= limit && c != name)
        .min_by_key(|&(d, c)| (d, c.len()))
        .map(|(_, c)| c)
}

/// A "did you mean `x`?" note for the closest candidate, if any.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    suggest(name, candidates).map(|s| format!("did you mean `{s}`?"))
}
