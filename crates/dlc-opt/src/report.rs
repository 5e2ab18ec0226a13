//! What an optimisation run did, for `dlc compile --explain` and the API.

use std::fmt;
use std::time::Duration;

/// The outcome of [`optimize`](crate::optimize).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Why saturation stopped (`saturated`, or which limit was hit).
    pub stop: String,
    /// Iterations run.
    pub iterations: usize,
    /// E-nodes at the end.
    pub nodes: usize,
    /// E-classes at the end.
    pub classes: usize,
    /// Rules enabled.
    pub rules: usize,
    /// Every rule that fired, with how many times (sorted by name).
    pub applied: Vec<(String, usize)>,
    /// The rules that rewrote a value whose extracted computation differs from
    /// the original one: the rules that changed the result (sorted).
    pub changed: Vec<String>,
    /// Estimated seconds per run of the input graph ([`crate::cost`]).
    pub cost_before: f64,
    /// Estimated seconds per run of the result.
    pub cost_after: f64,
    /// Sharing groups (merged GEMMs) accepted by extraction.
    pub sharing_groups: usize,
    /// What the extraction integer program did, if it ran.
    pub ilp: Option<crate::IlpOutcome>,
    /// Time spent loading and saturating.
    pub saturate: Duration,
    /// Total optimisation time.
    pub total: Duration,
}

impl Report {
    /// The report of a run that did nothing (`-O0` or no rule enabled).
    pub fn unchanged(cost: f64, total: Duration) -> Report {
        Report {
            stop: "not run".into(),
            cost_before: cost,
            cost_after: cost,
            total,
            ..Report::default()
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = |s: f64| s * 1e6;
        writeln!(
            f,
            "optimiser: {} rules, {} iterations, stopped: {}; e-graph {} nodes in {} classes; {:.2} ms ({:.2} ms saturating)",
            self.rules,
            self.iterations,
            self.stop,
            self.nodes,
            self.classes,
            self.total.as_secs_f64() * 1e3,
            self.saturate.as_secs_f64() * 1e3
        )?;
        let pct = if self.cost_before > 0.0 {
            100.0 * (self.cost_after - self.cost_before) / self.cost_before
        } else {
            0.0
        };
        writeln!(
            f,
            "  estimated cost {:.2} µs -> {:.2} µs per run ({pct:+.1}%){}",
            us(self.cost_before),
            us(self.cost_after),
            if self.sharing_groups > 0 {
                format!(", {} merged GEMM group(s)", self.sharing_groups)
            } else {
                String::new()
            }
        )?;
        if let Some(ilp) = &self.ilp {
            writeln!(f, "  extraction: {ilp}")?;
        }
        if self.applied.is_empty() {
            writeln!(f, "  no rule fired")?;
        }
        for (name, n) in &self.applied {
            let mark = if self.changed.contains(name) {
                "changed the result"
            } else {
                "no effect on the result"
            };
            writeln!(f, "  {name:<24} fired {n:>4}x  {mark}")?;
        }
        Ok(())
    }
}
