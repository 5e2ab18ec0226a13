//! Extraction: greedy by estimated cost, refined for sharing.
//!
//! Greedy extraction picks, per e-class, the e-node of least *tree* cost (its own
//! cost plus its operands' best costs). Tree cost counts a shared subterm once per
//! use, which hides the benefit of the multi-pattern rules: merging two GEMMs that
//! share an input gives each original class a `slice` of one big GEMM, and each
//! slice alone looks dearer than the GEMM it replaces. So the rules that create
//! sharing record *groups* of choices that only pay off together, and extraction
//! tries each group: force its choices, re-run greedy for the rest, and keep the
//! result when the *DAG* cost (every reachable class counted once) goes down.
//! Each result is then improved by a local search on the DAG cost (switch one class
//! at a time), which finds reuse of values computed anyway.
//!
//! When sharing matters, [`ilp`] then solves extraction exactly, as an integer
//! program over the DAG cost, started from the greedy result; [`Extractor`]
//! chooses when.

mod ilp;

use std::collections::{HashMap, HashSet};

use egg::{Id, Language};

use crate::analysis::TensorGraph;
use crate::cost::node_cost;
use crate::lang::Tensor;

pub use ilp::{IlpLimits, IlpOutcome};

/// Which extractor runs after the greedy one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Extractor {
    /// Greedy, refined with the sharing groups and a local search.
    Greedy,
    /// Greedy, then the integer program started from its result.
    Ilp,
    /// The integer program when the rules created sharing (recorded sharing
    /// groups) or when it is small (at most [`AUTO_VARIABLES`] variables, well
    /// under a millisecond); greedy alone otherwise (the default).
    #[default]
    Auto,
}

/// Without sharing groups, [`Extractor::Auto`] runs the integer program only up
/// to this many variables.
pub const AUTO_VARIABLES: usize = 256;

/// At most this many sharing groups are tried (each costs one greedy pass and a
/// local search); only groups whose classes are all live are tried.
pub const MAX_GROUPS: usize = 64;

/// One e-node per class, with canonical children.
pub type Choice = HashMap<Id, Tensor>;

/// Node costs, computed once.
struct Costs {
    classes: Vec<Id>,
    nodes: HashMap<Id, Vec<(Tensor, f64)>>,
}

impl Costs {
    fn new(egraph: &TensorGraph) -> Costs {
        let mut classes: Vec<Id> = egraph.classes().map(|c| c.id).collect();
        classes.sort();
        let nodes = classes
            .iter()
            .map(|&c| {
                let class = &egraph[c];
                let list = class
                    .nodes
                    .iter()
                    .map(|n| {
                        let n = n.clone().map_children(|x| egraph.find(x));
                        let cost = if class.data.types.is_empty() && class.data.attr.is_none() {
                            f64::INFINITY
                        } else {
                            node_cost(egraph, &n, &class.data.types)
                        };
                        (n, cost)
                    })
                    .collect();
                (c, list)
            })
            .collect();
        Costs { classes, nodes }
    }

    /// Greedy tree-cost choice, honouring forced choices.
    fn greedy(&self, forced: &HashMap<Id, Tensor>) -> Choice {
        let mut best: HashMap<Id, (f64, usize)> = HashMap::new();
        loop {
            let mut changed = false;
            for &c in &self.classes {
                for (i, (n, own)) in self.nodes[&c].iter().enumerate() {
                    if forced.get(&c).is_some_and(|f| f != n) || n.operands().contains(&c) {
                        continue;
                    }
                    let mut cost = *own;
                    for o in n.operands() {
                        cost += best.get(o).map_or(f64::INFINITY, |b| b.0);
                    }
                    if cost.is_finite() && best.get(&c).is_none_or(|b| cost < b.0) {
                        best.insert(c, (cost, i));
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        best.into_iter()
            .map(|(c, (_, i))| (c, self.nodes[&c][i].0.clone()))
            .collect()
    }

    /// The DAG cost of a choice from `roots`: each reachable class once, or
    /// infinity if some reachable class has no choice or the choice has a cycle.
    fn dag_cost(&self, choice: &Choice, roots: &[Id]) -> f64 {
        let mut state: HashMap<Id, bool> = HashMap::new(); // false: open, true: done
        let mut total = 0.0;
        let mut stack: Vec<(Id, bool)> = roots.iter().map(|&r| (r, false)).collect();
        while let Some((c, expanded)) = stack.pop() {
            if expanded {
                state.insert(c, true);
                continue;
            }
            match state.get(&c) {
                Some(true) => continue,
                Some(false) => return f64::INFINITY,
                None => {}
            }
            let Some(n) = choice.get(&c) else {
                return f64::INFINITY;
            };
            total += self.nodes[&c]
                .iter()
                .find(|(m, _)| m == n)
                .map_or(0.0, |x| x.1);
            state.insert(c, false);
            stack.push((c, true));
            for &o in n.operands() {
                if state.get(&o) != Some(&true) {
                    stack.push((o, false));
                }
            }
        }
        total
    }
}

impl Costs {
    /// Local search on the DAG cost: switch one live class at a time to another
    /// node when that lowers the total (this finds reuse of values the graph
    /// computes anyway, which tree cost cannot see). Bounded passes; skipped on
    /// very large graphs. Returns the new DAG cost.
    fn improve(&self, choice: &mut Choice, roots: &[Id], forced: &HashMap<Id, Tensor>) -> f64 {
        let mut cost = self.dag_cost(choice, roots);
        for _ in 0..MAX_PASSES {
            let mut live: Vec<Id> = reachable(choice, roots).into_iter().collect();
            if live.len() > MAX_LOCAL_CLASSES {
                break;
            }
            live.sort();
            let mut better = false;
            for c in live {
                if forced.contains_key(&c) {
                    continue;
                }
                for (n, _) in &self.nodes[&c] {
                    if choice.get(&c) == Some(n) || n.operands().contains(&c) {
                        continue;
                    }
                    let old = choice.insert(c, n.clone());
                    let alt = self.dag_cost(choice, roots);
                    if alt < cost * (1.0 - 1e-9) {
                        cost = alt;
                        better = true;
                    } else if let Some(o) = old {
                        choice.insert(c, o);
                    }
                }
            }
            if !better {
                break;
            }
        }
        cost
    }
}

/// Passes of the local search.
const MAX_PASSES: usize = 3;
/// The local search is skipped when more classes than this are live.
const MAX_LOCAL_CLASSES: usize = 200;

/// The extracted choice and its DAG cost.
pub struct Extracted {
    /// One node per reachable class.
    pub choice: Choice,
    /// Estimated seconds per run.
    pub cost: f64,
    /// How many sharing groups were accepted.
    pub groups_taken: usize,
    /// What the integer program did, if it ran.
    pub ilp: Option<IlpOutcome>,
}

/// Extracts the cheapest graph for `roots` found by greedy extraction refined with
/// the sharing groups recorded by the rules, then, as `extractor` says, by the
/// integer program under `limits`.
pub fn extract(
    egraph: &TensorGraph,
    roots: &[Id],
    extractor: Extractor,
    limits: &IlpLimits,
) -> Extracted {
    let costs = Costs::new(egraph);
    let roots: Vec<Id> = roots.iter().map(|&r| egraph.find(r)).collect();
    let mut forced: HashMap<Id, Tensor> = HashMap::new();
    let mut choice = costs.greedy(&forced);
    let mut cost = costs.improve(&mut choice, &roots, &forced);
    let mut groups_taken = 0;
    let mut tried = 0;
    for group in &egraph.analysis.groups {
        // A group pays off only if every class it re-expresses is computed by the
        // current best graph; trying the others would only cost time.
        let live = reachable(&choice, &roots);
        if tried == MAX_GROUPS || !group.iter().all(|(c, _)| live.contains(&egraph.find(*c))) {
            continue;
        }
        tried += 1;
        let mut trial = forced.clone();
        for (c, n) in group {
            trial.insert(egraph.find(*c), n.clone().map_children(|x| egraph.find(x)));
        }
        let mut alt = costs.greedy(&trial);
        let alt_cost = costs.improve(&mut alt, &roots, &trial);
        if alt_cost < cost * (1.0 - 1e-9) {
            (forced, choice, cost) = (trial, alt, alt_cost);
            groups_taken += 1;
        }
    }
    let sharing = !egraph.analysis.groups.is_empty();
    let max_variables = match extractor {
        Extractor::Greedy => None,
        Extractor::Ilp => Some(limits.variables),
        Extractor::Auto if sharing => Some(limits.variables),
        Extractor::Auto => Some(AUTO_VARIABLES.min(limits.variables)),
    };
    let mut ilp = None;
    if let Some(max) = max_variables {
        let (better, outcome) = ilp::solve(&costs, &roots, &choice, cost, limits, max);
        if let Some(better) = better {
            cost = costs.dag_cost(&better, &roots);
            choice = better;
        }
        // Auto's size cut is not news; an explicit request that was skipped is.
        let quiet = extractor == Extractor::Auto && !sharing;
        if !(quiet && matches!(outcome, IlpOutcome::TooLarge { .. })) {
            ilp = Some(outcome);
        }
    }
    Extracted {
        choice,
        cost,
        groups_taken,
        ilp,
    }
}

/// The classes reachable from `roots` through a choice.
pub fn reachable(choice: &Choice, roots: &[Id]) -> HashSet<Id> {
    let mut seen: HashSet<Id> = HashSet::new();
    let mut stack: Vec<Id> = roots.to_vec();
    while let Some(c) = stack.pop() {
        if seen.insert(c)
            && let Some(n) = choice.get(&c)
        {
            stack.extend(n.operands().iter().copied());
        }
    }
    seen
}
