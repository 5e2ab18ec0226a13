//! dlc's graph optimiser: equality saturation with [egg].
//!
//! ```text
//! Graph ──load──▶ e-graph ──saturate (rules, bounded)──▶ e-graph ──extract (cost model)──▶ Graph
//! ```
//!
//! - [`lang`]: the tensor language. Rule-relevant ops are named nodes (`matmul`,
//!   `transpose`, …) whose attributes are a leading attribute child; every other op
//!   is an opaque node carrying its [`Op`](dlc_ir::Op); multi-result ops are tuples
//!   read by `get`.
//! - [`analysis`]: every e-class knows its result types (so every rewrite is
//!   shape-checked) and, when parameter-free and small, its value (so conditions
//!   like `x * 1` and constant folding work).
//! - [`rules`]: the rule table, [`RULES`](rules::RULES): named, grouped, directed
//!   rules as data, each with a random example of its left-hand side that the
//!   property tests evaluate on the interpreter.
//! - [`cost`]: the backend cost model (kernel overhead, flops at GEMM or
//!   elementwise throughput, bytes at memory bandwidth).
//! - [`extract`]: greedy extraction refined for the sharing multi-patterns create,
//!   and an integer program (optimal under sharing) when they do.
//!
//! [`optimize`] runs it all under [`Limits`] (iterations, e-nodes, time) and
//! returns the new graph with a [`Report`]: why saturation stopped, which rules
//! fired, which changed the result, and the estimated cost before and after.
//! The result verifies, has the same inputs and parameters (names, order, types)
//! and the same outputs (names, order, types); for fixed limits it is
//! deterministic unless the time limit is what stopped the run.
//!
//! ```
//! use dlc_opt::{optimize, OptOptions};
//! let src = "model m { input x: f32[4, 8]\n y = relu(relu(x)) * 1.0\n output y }";
//! let g = dlc_ir::syntax::elaborate(&dlc_ir::syntax::parse(src).unwrap(), &Default::default()).unwrap();
//! let (opt, report) = optimize(&g, &OptOptions::default()).unwrap();
//! assert!(opt.len() < g.len());
//! assert!(report.changed.iter().any(|r| r == "relu-relu"));
//! ```
#![deny(missing_docs)]

pub mod analysis;
mod build;
mod convert;
pub mod cost;
pub mod extract;
pub mod lang;
mod report;
pub mod rules;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use dlc_ir::{BuildError, Graph, VerifyError};
use egg::{Runner, StopReason};

pub use extract::{AUTO_VARIABLES, Extractor, IlpLimits, IlpOutcome};
pub use report::Report;
pub use rules::{Group, RULES, Rule};

use analysis::TensorAnalysis;

/// How much to optimise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OptLevel {
    /// No optimisation: the graph is compiled as written.
    O0,
    /// Every exact rule: both sides agree for all inputs, infinities and NaN
    /// included, up to floating-point rounding (the default).
    #[default]
    O1,
    /// Also the rules that assume finite values without overflow (`x - x → 0`,
    /// `log(exp(x)) → x`), like a C compiler's fast-math.
    O2,
}

/// Bounds on saturation. The defaults keep the optimiser within a few
/// milliseconds on every model in `ir/` (see `docs/optimizer.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Rewrite iterations (each searches every rule, then applies the matches).
    pub iterations: usize,
    /// E-nodes in the e-graph.
    pub nodes: usize,
    /// Wall-clock time of saturation (a safety net: when it is what stops the
    /// run, the result may differ between runs).
    pub time: Duration,
    /// Bounds on the extraction integer program.
    pub ilp: IlpLimits,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            iterations: 8,
            nodes: 10_000,
            time: Duration::from_millis(50),
            ilp: IlpLimits::default(),
        }
    }
}

/// What to optimise and how far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptOptions {
    /// The level.
    pub level: OptLevel,
    /// The rule groups that may run (all by default).
    pub groups: Vec<Group>,
    /// When set, only the rules with these names run (for tests and bisection).
    pub only: Option<Vec<String>>,
    /// Saturation bounds.
    pub limits: Limits,
    /// Price values computed from parameters and constants alone as computed
    /// once per parameter change (the runtime's prelude), not on every run. True
    /// for inference; a training step, whose parameters change on every run, sets
    /// it to false so that the optimiser does not buy work it would repeat.
    pub amortise_params: bool,
    /// Which extractor runs ([`Extractor::Auto`]: the integer program when the
    /// rules created sharing).
    pub extractor: Extractor,
}

impl Default for OptOptions {
    fn default() -> OptOptions {
        OptOptions {
            level: OptLevel::default(),
            groups: Group::ALL.to_vec(),
            only: None,
            limits: Limits::default(),
            amortise_params: true,
            extractor: Extractor::default(),
        }
    }
}

impl OptOptions {
    /// Options for a level with every group and the default limits.
    pub fn level(level: OptLevel) -> OptOptions {
        OptOptions {
            level,
            ..OptOptions::default()
        }
    }

    /// The rules these options enable, in table order.
    pub fn rules(&self) -> Vec<&'static Rule> {
        RULES
            .iter()
            .filter(|r| self.level > OptLevel::O0 && (r.exact || self.level >= OptLevel::O2))
            .filter(|r| self.groups.contains(&r.group))
            .filter(|r| {
                self.only
                    .as_ref()
                    .is_none_or(|o| o.iter().any(|n| n == r.name))
            })
            .collect()
    }
}

/// Why optimisation failed (always a bug in the optimiser, reported rather than
/// compiled wrongly).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum OptError {
    /// Rebuilding the graph from the extracted e-nodes failed.
    #[error("optimiser: rebuilding the graph failed: {0}")]
    Build(#[from] BuildError),
    /// The optimised graph does not verify.
    #[error("optimiser: the optimised graph does not verify: {0}")]
    Verify(#[from] VerifyError),
    /// Extraction found no finite-cost choice for an output.
    #[error("optimiser: no extractable term for output `{0}`")]
    Unextractable(String),
}

/// Optimises `graph`: load, saturate under the limits, extract, rebuild.
///
/// Returns the graph unchanged (with an empty report) at `-O0` or when no rule is
/// enabled, and the original graph when extraction finds nothing cheaper.
pub fn optimize(graph: &Graph, opts: &OptOptions) -> Result<(Graph, Report), OptError> {
    let start = Instant::now();
    let enabled = opts.rules();
    let cost_before = cost::graph_cost(graph, opts.amortise_params);
    if enabled.is_empty() {
        return Ok((
            graph.clone(),
            Report::unchanged(cost_before, start.elapsed()),
        ));
    }
    let rewrites: Vec<_> = enabled.iter().map(|r| r.rewrite()).collect();
    let mut analysis = TensorAnalysis::default();
    analysis.amortise_params = opts.amortise_params;
    let mut egraph = analysis::TensorGraph::new(analysis);
    let loaded = convert::load(graph, &mut egraph);
    let runner = Runner::default()
        .with_egraph(egraph)
        .with_iter_limit(opts.limits.iterations)
        .with_node_limit(opts.limits.nodes)
        .with_time_limit(opts.limits.time)
        .run(&rewrites);
    let saturate = start.elapsed();
    let egraph = &runner.egraph;
    let mut applied: HashMap<String, usize> = HashMap::new();
    for it in &runner.iterations {
        for (name, n) in &it.applied {
            *applied.entry(name.to_string()).or_default() += n;
        }
    }
    let ex = extract::extract(egraph, &loaded.roots, opts.extractor, &opts.limits.ilp);
    for (o, r) in graph.outputs().iter().zip(&loaded.roots) {
        if !ex.choice.contains_key(&egraph.find(*r)) {
            return Err(OptError::Unextractable(o.name.clone()));
        }
    }
    let mut out = convert::rebuild(graph, egraph, &loaded, &ex.choice)?;
    dlc_ir::verify(&out)?;
    let mut cost_after = cost::graph_cost(&out, opts.amortise_params);
    // Extraction estimates per e-node; the rebuilt graph is costed exactly like the
    // input. Never return something the model thinks is slower.
    let kept_original = cost_after > cost_before;
    if kept_original {
        out = graph.clone();
        cost_after = cost_before;
    }
    let changed = if kept_original {
        vec![]
    } else {
        changed_rules(egraph, &loaded, &ex.choice)
    };
    let mut applied: Vec<(String, usize)> = applied.into_iter().filter(|(_, n)| *n > 0).collect();
    applied.sort();
    let report = Report {
        stop: stop_reason(runner.stop_reason.as_ref()),
        iterations: runner.iterations.len(),
        nodes: egraph.total_number_of_nodes(),
        classes: egraph.number_of_classes(),
        rules: enabled.len(),
        applied,
        changed,
        cost_before,
        cost_after,
        sharing_groups: ex.groups_taken,
        ilp: ex.ilp,
        saturate,
        total: start.elapsed(),
    };
    Ok((out, report))
}

/// The rules that rewrote a value whose extracted computation is not its original
/// one (its class is live and chose another node than the value's original node).
fn changed_rules(
    egraph: &analysis::TensorGraph,
    loaded: &convert::Loaded,
    choice: &extract::Choice,
) -> Vec<String> {
    use egg::Language;
    let roots: Vec<egg::Id> = loaded.roots.iter().map(|&r| egraph.find(r)).collect();
    let live = extract::reachable(choice, &roots);
    let changed: HashSet<egg::Id> = loaded
        .nodes
        .iter()
        .filter_map(|(_, node, class)| {
            let c = egraph.find(*class);
            let node = node.clone().map_children(|x| egraph.find(x));
            (live.contains(&c) && choice.get(&c) != Some(&node)).then_some(c)
        })
        .collect();
    let mut names: Vec<String> = egraph
        .analysis
        .rewritten
        .iter()
        .filter(|(_, class)| changed.contains(&egraph.find(*class)))
        .map(|(rule, _)| rule.to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn stop_reason(r: Option<&StopReason>) -> String {
    match r {
        Some(StopReason::Saturated) | None => "saturated".into(),
        Some(StopReason::IterationLimit(n)) => format!("iteration limit ({n})"),
        Some(StopReason::NodeLimit(n)) => format!("e-node limit ({n})"),
        Some(StopReason::TimeLimit(t)) => format!("time limit ({:.1} ms)", t * 1e3),
        Some(StopReason::Other(s)) => s.clone(),
    }
}
