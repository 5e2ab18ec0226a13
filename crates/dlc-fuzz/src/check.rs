//! One differential test: a model with its values, run by the interpreter and by
//! every JIT configuration, compared within per-output tolerances.

use std::borrow::Cow;

use dlc_codegen::CodegenError;
use dlc_ir::Graph;
use dlc_runtime::{CompiledModel, RunError};
use dlc_tensor::Env;
use dlc_testgen::{Case, Tol, tolerances_for_values};

use crate::Variant;
use crate::panics::catching;

/// A model with values for its inputs and parameters.
#[derive(Clone, Debug)]
pub struct TestCase {
    /// The model.
    pub graph: Graph,
    /// Input values by name.
    pub inputs: Env,
    /// Parameter values by name.
    pub params: Env,
}

impl From<Case> for TestCase {
    fn from(c: Case) -> TestCase {
        TestCase {
            graph: c.graph,
            inputs: c.inputs,
            params: c.params,
        }
    }
}

impl TestCase {
    /// Number of non-source nodes (the "ops" of the model).
    pub fn op_count(&self) -> usize {
        self.graph
            .node_ids()
            .filter(|&n| !self.graph.node(n).op.is_source())
            .count()
    }
}

/// What kind of disagreement a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The JIT's result differs from the interpreter's beyond the tolerance.
    Mismatch,
    /// The JIT failed (compile or run) where the interpreter succeeded.
    Error,
    /// dlc panicked.
    Panic,
    /// The interpreter rejected the case (for a generated case: a generator bug).
    Interp,
}

impl Kind {
    /// A lower-case name for reports and directory names.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Mismatch => "mismatch",
            Kind::Error => "error",
            Kind::Panic => "panic",
            Kind::Interp => "interp",
        }
    }
}

/// A disagreement found by [`check`].
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// Its kind.
    pub kind: Kind,
    /// The configuration it showed in (`interpreter` for interpreter failures).
    pub variant: String,
    /// What happened (the output and worst element of a mismatch, the error, the panic).
    pub message: String,
    /// How far outside the tolerance a mismatch is (the worst element's error as a
    /// multiple of its allowance); infinite for the other kinds.
    pub severity: f64,
}

impl Finding {
    fn new(kind: Kind, variant: &str, message: String) -> Finding {
        Finding {
            kind,
            variant: variant.to_string(),
            message,
            severity: f64::INFINITY,
        }
    }

    /// What identifies "the same bug" while reducing: the kind, the configuration,
    /// and for errors and panics the message with numbers and names blurred.
    pub fn key(&self) -> String {
        match self.kind {
            Kind::Mismatch => format!("mismatch@{}", self.variant),
            k => format!("{}@{}: {}", k.name(), self.variant, blur(&self.message)),
        }
    }

    /// Whether `other` (found on a smaller case) is still this finding: the same
    /// [`key`](Finding::key), and for a mismatch well outside its tolerance too
    /// (at least 16 times the allowance, or as far as this one was).
    pub fn reproduced_by(&self, other: &Finding) -> bool {
        self.key() == other.key() && other.severity >= self.severity.min(16.0)
    }

    /// One line for reports.
    pub fn summary(&self) -> String {
        let first = self.message.lines().next().unwrap_or("");
        format!("{} in `{}`: {first}", self.kind.name(), self.variant)
    }
}

/// Replaces digit runs and backquoted names by placeholders, so that messages
/// about the same bug on different models compare equal.
fn blur(msg: &str) -> String {
    let line = msg.lines().next().unwrap_or("");
    let mut out = String::new();
    let mut quoted = false;
    let mut last_digit = false;
    for c in line.chars() {
        if c == '`' {
            quoted = !quoted;
            if quoted {
                out.push_str("`_`");
            }
            continue;
        }
        if quoted {
            continue;
        }
        if c.is_ascii_digit() {
            if !last_digit {
                out.push('#');
            }
            last_digit = true;
            continue;
        }
        last_digit = false;
        out.push(c);
    }
    out
}

/// The result of [`check`].
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The first disagreement, if any.
    pub finding: Option<Finding>,
    /// The op the JIT does not support yet, when it refused the model (nothing
    /// was compared).
    pub unsupported: Option<&'static str>,
    /// How many configurations ran and agreed.
    pub agreed: usize,
}

/// The graph a variant compiles: `graph` optimised by dlc-opt at `opt_level`
/// (level 0 is the graph itself).
pub fn prepare(graph: &Graph, opt_level: u8) -> Result<Cow<'_, Graph>, String> {
    let level = match opt_level {
        0 => return Ok(Cow::Borrowed(graph)),
        1 => dlc_opt::OptLevel::O1,
        _ => dlc_opt::OptLevel::O2,
    };
    let opts = dlc_opt::OptOptions {
        level,
        ..dlc_opt::OptOptions::default()
    };
    dlc_opt::optimize(graph, &opts)
        .map(|(g, _)| Cow::Owned(g))
        .map_err(|e| e.to_string())
}

/// Runs `case` on the interpreter (f32) and on each variant in order; stops at the
/// first disagreement. Panics anywhere in dlc are caught and reported.
pub fn check(case: &TestCase, variants: &[Variant]) -> Report {
    let mut report = Report::default();
    let fail = |kind, variant: &str, message| Report {
        finding: Some(Finding::new(kind, variant, message)),
        ..Report::default()
    };
    let want = match catching(|| dlc_interp::run::<f32>(&case.graph, &case.inputs, &case.params)) {
        Err(p) => return fail(Kind::Panic, "interpreter", p),
        Ok(Err(e)) => return fail(Kind::Interp, "interpreter", e.to_string()),
        Ok(Ok(w)) => w,
    };
    let tols = match catching(|| tolerances_for_values(&case.graph, &case.inputs, &case.params)) {
        Err(p) => return fail(Kind::Panic, "tolerance", p),
        Ok(t) => t,
    };
    for v in variants {
        let graph = match catching(|| prepare(&case.graph, v.opt_level)) {
            Err(p) => return fail(Kind::Panic, &v.name, format!("optimise: {p}")),
            Ok(Err(e)) => return fail(Kind::Error, &v.name, format!("optimise: {e}")),
            Ok(Ok(g)) => g,
        };
        let model = match catching(|| CompiledModel::new(&graph, &case.params, &v.options)) {
            Err(p) => return fail(Kind::Panic, &v.name, format!("compile: {p}")),
            Ok(Err(RunError::Codegen(CodegenError::Unsupported(op)))) => {
                report.unsupported = Some(op);
                return report;
            }
            Ok(Err(e)) => return fail(Kind::Error, &v.name, format!("compile: {e}")),
            Ok(Ok(m)) => m,
        };
        let got = match catching(|| model.run(&case.inputs)) {
            Err(p) => return fail(Kind::Panic, &v.name, format!("run: {p}")),
            Ok(Err(RunError::Kernel { kernel, message })) => {
                let msg = format!("run: kernel `{kernel}`: {message}");
                return fail(Kind::Error, &v.name, msg);
            }
            Ok(Err(e)) => return fail(Kind::Error, &v.name, format!("run: {e}")),
            Ok(Ok(g)) => g,
        };
        if let Some(f) = compare(&got, &want, &tols, &v.name) {
            report.finding = Some(f);
            return report;
        }
        report.agreed += 1;
    }
    report
}

/// The worst output of `got` outside its tolerance around `want`, as a finding.
fn compare(got: &Env, want: &Env, tols: &[(String, Tol)], variant: &str) -> Option<Finding> {
    let mut worst: Option<Finding> = None;
    for (name, tol) in tols {
        let (Some(g), Some(w)) = (got.get(name), want.get(name)) else {
            return Some(Finding::new(
                Kind::Error,
                variant,
                format!("output `{name}` is missing"),
            ));
        };
        let Err(msg) = tol.check(g, w) else {
            continue;
        };
        let severity = match (g.as_float(), w.as_float()) {
            (Some(g), Some(w)) => dlc_tensor::allowance_ratio(g, w, tol.rtol, tol.atol)
                .map_or(f64::INFINITY, f64::from),
            _ => f64::INFINITY,
        };
        if worst.as_ref().is_none_or(|f| severity > f.severity) {
            worst = Some(Finding {
                kind: Kind::Mismatch,
                variant: variant.to_string(),
                message: format!("output `{name}`: {msg}"),
                severity,
            });
        }
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blurred_messages_ignore_numbers_and_names() {
        assert_eq!(
            blur("kernel `k3_add`: index 17 out of range 4"),
            blur("kernel `k12_mul`: index 2 out of range 40")
        );
        assert_ne!(blur("index out of range"), blur("label out of range"));
    }
}
