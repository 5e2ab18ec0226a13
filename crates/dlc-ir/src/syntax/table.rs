//! The surface op table: every op callable from `.ir` text, as data.
//!
//! One entry per op name: operand count range, attributes with their kinds and
//! defaults, results, a summary and an example. The table drives arity and
//! unknown-attribute errors, attribute defaults during elaboration, the printer's
//! "differs from default" test and the op reference in `docs/ir.md`
//! ([`reference_markdown`]).

/// What an attribute accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrType {
    /// An integer (may be negative, e.g. an axis).
    Int,
    /// An integer or a list of integers (axes, perms, slice bounds).
    Ints,
    /// A number (integer, float, `inf`, `-inf`).
    Float,
    /// `true` or `false`.
    Bool,
    /// A size: a non-negative integer or a named dim.
    Size,
    /// A size or a list of sizes (one per spatial dim).
    Sizes,
    /// A list of sizes or named dims (`-1` allowed once in `reshape`).
    Shape,
    /// A padding: size, list of sizes, `"same"` or `"valid"`.
    Padding,
    /// One of the listed strings.
    Choice(&'static [&'static str]),
    /// A dtype name: `f32`, `i64` or `bool`.
    DType,
    /// A non-negative integer up to 2^64 - 1.
    Seed,
}

impl AttrType {
    /// How the kind is described in errors and docs.
    pub fn describe(self) -> String {
        match self {
            AttrType::Int => "an integer".into(),
            AttrType::Ints => "an integer or a list of integers".into(),
            AttrType::Float => "a number".into(),
            AttrType::Bool => "`true` or `false`".into(),
            AttrType::Size => "a size (integer or named dim)".into(),
            AttrType::Sizes => "a size or a list of sizes".into(),
            AttrType::Shape => "a list of sizes".into(),
            AttrType::Padding => "a size, a list of sizes, \"same\" or \"valid\"".into(),
            AttrType::Choice(c) => {
                let c: Vec<String> = c.iter().map(|s| format!("\"{s}\"")).collect();
                format!("one of {}", c.join(", "))
            }
            AttrType::DType => "a dtype (f32, i64 or bool)".into(),
            AttrType::Seed => "a non-negative integer".into(),
        }
    }
}

/// An attribute's default.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AttrDefault {
    /// The attribute must be given.
    Required,
    /// Computed from the operands or other attributes (described for the docs).
    Computed(&'static str),
    /// An integer.
    Int(i64),
    /// A number.
    Float(f64),
    /// A bool.
    Bool(bool),
    /// A string.
    Str(&'static str),
}

impl AttrDefault {
    /// How the default is written in docs.
    pub fn describe(self) -> String {
        match self {
            AttrDefault::Required => "required".into(),
            AttrDefault::Computed(s) => s.into(),
            AttrDefault::Int(i) => i.to_string(),
            AttrDefault::Float(f) if f == f64::NEG_INFINITY => "-inf".into(),
            AttrDefault::Float(f) if f == f64::INFINITY => "inf".into(),
            AttrDefault::Float(f) => format!("{f:?}"),
            AttrDefault::Bool(b) => b.to_string(),
            AttrDefault::Str(s) => format!("\"{s}\""),
        }
    }
}

/// One attribute of an op.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttrSpec {
    /// Its keyword.
    pub name: &'static str,
    /// What it accepts.
    pub ty: AttrType,
    /// Its default.
    pub default: AttrDefault,
}

/// One surface op.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpSpec {
    /// The name used in calls.
    pub name: &'static str,
    /// The operands as documented (`x, w, b?`).
    pub operands: &'static str,
    /// Fewest operands.
    pub min: usize,
    /// Most operands (`usize::MAX` for variadic).
    pub max: usize,
    /// Keyword attributes.
    pub attrs: &'static [AttrSpec],
    /// The results as documented (`y, h_n, c_n`).
    pub results: &'static str,
    /// What it computes.
    pub summary: &'static str,
    /// A one-line example.
    pub example: &'static str,
}

impl OpSpec {
    /// The attribute named `name`.
    pub fn attr(&self, name: &str) -> Option<&'static AttrSpec> {
        self.attrs.iter().find(|a| a.name == name)
    }

    /// The default of attribute `name` (panics if the table lacks it: a table bug).
    pub fn default(&self, name: &str) -> AttrDefault {
        self.attr(name)
            .unwrap_or_else(|| panic!("op table: `{}` has no attribute `{name}`", self.name))
            .default
    }

    /// The float default of `name` (0 if not a float default).
    pub fn float_default(&self, name: &str) -> f64 {
        match self.default(name) {
            AttrDefault::Float(f) => f,
            AttrDefault::Int(i) => i as f64,
            _ => 0.0,
        }
    }
}

/// The op named `name`.
pub fn lookup(name: &str) -> Option<&'static OpSpec> {
    OPS.iter().find(|o| o.name == name)
}

/// The op named `name`, which must exist (for the printer and lowering).
pub fn spec(name: &str) -> &'static OpSpec {
    lookup(name).unwrap_or_else(|| panic!("op table has no `{name}`"))
}

mod ops;
pub use ops::OPS;

/// The op reference as a markdown table (kept verbatim in `docs/ir.md`).
pub fn reference_markdown() -> String {
    let mut s =
        String::from("| op | operands | attributes (default) | results | computes | example |\n");
    s.push_str("|---|---|---|---|---|---|\n");
    for o in OPS {
        let attrs: Vec<String> = o
            .attrs
            .iter()
            .map(|a| format!("`{}` ({})", a.name, a.default.describe()))
            .collect();
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | `{}` |\n",
            o.name,
            o.operands,
            if attrs.is_empty() {
                "—".into()
            } else {
                attrs.join(", ")
            },
            o.results,
            o.summary,
            o.example.replace('|', "\\|"),
        ));
    }
    s
}
