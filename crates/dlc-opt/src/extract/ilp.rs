//! Optimal extraction under sharing: a 0-1 integer program solved by [microlp].
//!
//! What the backend pays is the *DAG* cost of the extracted graph (each value
//! computed once, however many users it has). Greedy extraction minimises tree
//! cost instead and repairs that with the sharing groups and a local search; the
//! integer program minimises the DAG cost itself (Tensat's formulation):
//!
//! - a binary `a_c` per class reachable from the roots: the class is computed;
//! - a binary `x_n` per e-node of those classes, priced at its cost;
//! - `Σ x_n (n ∈ c) = a_c`: a computed class picks exactly one node;
//! - `x_n ≤ a_d` for every operand class `d` of `n`, and `a_r = 1` for the roots;
//! - no cycles: only classes of one strongly connected component of the class
//!   graph can form one, so only they get an order `t_c ∈ [0, |S| − 1]` with
//!   `t_c ≥ t_d + 1 − |S|·(1 − x_n)` for every node `n` of `c` reading `d` in the
//!   same component `S`.
//!
//! The solver starts from the greedy result (a warm start, so it only ever
//! returns something at least as cheap) and runs under a branch-and-bound node
//! limit (deterministic) and a time limit (a safety net).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use egg::Id;
use microlp::{ComparisonOp, OptimizationDirection, Problem, SolveOptions, Variable};
use petgraph::graph::DiGraph;

use super::{Choice, Costs, reachable};
use crate::lang::Tensor;

/// Bounds on the integer program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IlpLimits {
    /// The program is not built when it would have more variables than this.
    pub variables: usize,
    /// Branch-and-bound nodes (deterministic).
    pub nodes: u64,
    /// Wall-clock time of the solver (a safety net: when it is what stops the
    /// solver, the result may differ between runs).
    pub time: Duration,
}

impl Default for IlpLimits {
    fn default() -> IlpLimits {
        IlpLimits {
            variables: 20_000,
            nodes: 2_000,
            time: Duration::from_millis(100),
        }
    }
}

/// What the integer program did.
#[derive(Clone, Debug, PartialEq)]
pub enum IlpOutcome {
    /// It ran: `optimal` if it proved its answer optimal, else why it stopped;
    /// `improved` if its answer was cheaper than the greedy one (and was kept).
    Solved {
        /// Variables of the program.
        variables: usize,
        /// Optimality was proven.
        optimal: bool,
        /// Branch-and-bound nodes solved.
        branches: u64,
        /// The solver's termination reason.
        stop: String,
        /// The answer beat the greedy extraction.
        improved: bool,
        /// Solver time.
        time: Duration,
    },
    /// It was not built: more variables than allowed.
    TooLarge {
        /// Variables it would have had.
        variables: usize,
    },
    /// The solver failed (reported, never fatal: the greedy result stands).
    Failed(String),
}

impl fmt::Display for IlpOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IlpOutcome::Solved {
                variables,
                optimal,
                branches,
                stop,
                improved,
                time,
            } => write!(
                f,
                "ILP over {variables} variables, {} ({stop}) after {branches} branch nodes in {:.2} ms, {}",
                if *optimal {
                    "optimal"
                } else {
                    "not proven optimal"
                },
                time.as_secs_f64() * 1e3,
                if *improved {
                    "cheaper than greedy"
                } else {
                    "greedy already as cheap"
                }
            ),
            IlpOutcome::TooLarge { variables } => {
                write!(f, "ILP skipped: {variables} variables over the limit")
            }
            IlpOutcome::Failed(e) => write!(f, "ILP failed ({e}); greedy result kept"),
        }
    }
}

/// Costs in seconds are scaled to microseconds for the solver's tolerances.
const SCALE: f64 = 1e6;

/// How a class enters the program.
enum ClassVars {
    /// A usable node is a free leaf (a source or an attribute): always available
    /// at no cost, so the class needs no variable.
    Free(usize),
    /// `active`: the class is computed; `nodes`: its usable nodes (index in
    /// `Costs::nodes[class]`) and their variables. A class with one usable node
    /// uses `active` as that node's variable.
    Priced {
        active: Variable,
        nodes: Vec<(usize, Variable)>,
    },
}

/// Solves the program for `roots`, warm-started from `start` (whose DAG cost is
/// `start_cost`). Returns a cheaper choice if one was found, and what happened.
pub(super) fn solve(
    costs: &Costs,
    roots: &[Id],
    start: &Choice,
    start_cost: f64,
    limits: &IlpLimits,
    max_variables: usize,
) -> (Option<Choice>, IlpOutcome) {
    let began = Instant::now();
    let classes = candidate_classes(costs, roots);
    let index: HashMap<Id, usize> = classes.iter().enumerate().map(|(i, &c)| (c, i)).collect();
    let component = components(costs, &classes, &index);
    let plans: Vec<Result<usize, Vec<(usize, f64)>>> =
        classes.iter().map(|&c| plan(costs, c)).collect();
    let variables = component.iter().filter(|c| c.1 > 1).count()
        + plans
            .iter()
            .map(|p| match p {
                Ok(_) => 0,
                Err(nodes) if nodes.len() == 1 => 1,
                Err(nodes) => nodes.len() + 1,
            })
            .sum::<usize>();
    if variables > max_variables {
        return (None, IlpOutcome::TooLarge { variables });
    }

    let mut p = Problem::new(OptimizationDirection::Minimize);
    let vars: Vec<ClassVars> = classes
        .iter()
        .zip(plans)
        .map(|(c, plan)| match plan {
            Ok(leaf) => ClassVars::Free(leaf),
            Err(nodes) => {
                let root = roots.contains(c);
                let bounds = (i32::from(root), 1);
                if let [(i, cost)] = nodes[..] {
                    let active = p.add_integer_var(cost * SCALE, bounds);
                    return ClassVars::Priced {
                        active,
                        nodes: vec![(i, active)],
                    };
                }
                let bounds = (i32::from(root), i32::from(!nodes.is_empty()));
                let active = p.add_integer_var(0.0, bounds);
                let nodes: Vec<(usize, Variable)> = nodes
                    .into_iter()
                    .map(|(i, cost)| (i, p.add_binary_var(cost * SCALE)))
                    .collect();
                if !nodes.is_empty() {
                    let mut one: Vec<(Variable, f64)> =
                        nodes.iter().map(|&(_, x)| (x, 1.0)).collect();
                    one.push((active, -1.0));
                    p.add_constraint(one.as_slice(), ComparisonOp::Eq, 0.0);
                }
                ClassVars::Priced { active, nodes }
            }
        })
        .collect();
    let order: Vec<Option<Variable>> = component
        .iter()
        .map(|&(_, size)| (size > 1).then(|| p.add_var(0.0, (0.0, (size - 1) as f64))))
        .collect();
    for (ci, &c) in classes.iter().enumerate() {
        let ClassVars::Priced { nodes, .. } = &vars[ci] else {
            continue;
        };
        // Operands: Σ x_n (n reading d) ≤ a_d, one row per operand class d.
        let mut readers: HashMap<usize, Vec<(Variable, f64)>> = HashMap::new();
        for &(ni, x) in nodes {
            for d in distinct_operands(&costs.nodes[&c][ni].0) {
                let di = index[&d];
                if let ClassVars::Priced { active, .. } = vars[di] {
                    readers
                        .entry(di)
                        .or_insert_with(|| vec![(active, -1.0)])
                        .push((x, 1.0));
                }
                let (Some(tc), Some(td)) = (order[ci], order[di]) else {
                    continue;
                };
                if component[ci].0 == component[di].0 {
                    let size = component[ci].1 as f64;
                    p.add_constraint(
                        [(tc, 1.0), (td, -1.0), (x, -size)],
                        ComparisonOp::Ge,
                        1.0 - size,
                    );
                }
            }
        }
        let mut readers: Vec<_> = readers.into_iter().collect();
        readers.sort_by_key(|r| r.0);
        for (_, row) in readers {
            p.add_constraint(row.as_slice(), ComparisonOp::Le, 0.0);
        }
    }

    let warm = warm_start(costs, roots, start, &classes, &vars);
    let mut options = SolveOptions::default();
    options.time_limit = Some(limits.time);
    options.node_limit = Some(limits.nodes);
    options.warm_start = Some(warm);
    let solution = match p.solve_with(options) {
        Ok(outcome) => match outcome.into_solution() {
            Ok(s) => s,
            Err(i) => {
                let stop = format!("{:?}", i.termination_reason());
                return (None, IlpOutcome::Failed(format!("no solution: {stop}")));
            }
        },
        Err(e) => return (None, IlpOutcome::Failed(e.to_string())),
    };
    let mut choice = Choice::new();
    for (&c, v) in classes.iter().zip(&vars) {
        let picked = match v {
            ClassVars::Free(leaf) => Some(*leaf),
            ClassVars::Priced { nodes, .. } => nodes
                .iter()
                .find(|&&(_, x)| solution.var_value(x) > 0.5)
                .map(|&(ni, _)| ni),
        };
        if let Some(ni) = picked {
            choice.insert(c, costs.nodes[&c][ni].0.clone());
        }
    }
    let cost = costs.dag_cost(&choice, roots);
    if !cost.is_finite() {
        // The constraints exclude cycles and missing operands: a bug if seen.
        let e = "the solver's choice is not a complete acyclic graph".to_string();
        return (None, IlpOutcome::Failed(e));
    }
    let improved = cost < start_cost * (1.0 - 1e-9);
    let outcome = IlpOutcome::Solved {
        variables,
        optimal: solution.status() == microlp::SolutionStatus::Optimal,
        branches: solution.stats().nodes_solved,
        stop: format!("{:?}", solution.termination_reason()),
        improved,
        time: began.elapsed(),
    };
    (improved.then_some(choice), outcome)
}

/// The usable nodes of a class (finite cost, not reading the class itself), with
/// their index and cost.
fn usable(costs: &Costs, c: Id) -> impl Iterator<Item = (usize, f64)> + '_ {
    costs.nodes[&c]
        .iter()
        .enumerate()
        .filter(move |(_, (n, cost))| cost.is_finite() && !n.operands().contains(&c))
        .map(|(i, (_, cost))| (i, *cost))
}

/// The operand classes of a node, each once.
fn distinct_operands(n: &Tensor) -> Vec<Id> {
    let mut ops = n.operands().to_vec();
    ops.sort();
    ops.dedup();
    ops
}

/// The classes some usable node chain reaches from the roots, sorted.
fn candidate_classes(costs: &Costs, roots: &[Id]) -> Vec<Id> {
    let mut seen: HashSet<Id> = roots.iter().copied().collect();
    let mut stack: Vec<Id> = roots.to_vec();
    while let Some(c) = stack.pop() {
        for (i, _) in usable(costs, c) {
            for &d in costs.nodes[&c][i].0.operands() {
                if seen.insert(d) {
                    stack.push(d);
                }
            }
        }
    }
    let mut classes: Vec<Id> = seen.into_iter().collect();
    classes.sort();
    classes
}

/// Per class: its strongly connected component of the class graph (an edge
/// from a class to each operand class of its usable nodes) and that
/// component's size.
fn components(costs: &Costs, classes: &[Id], index: &HashMap<Id, usize>) -> Vec<(usize, usize)> {
    let mut g: DiGraph<(), ()> = DiGraph::with_capacity(classes.len(), 0);
    let ids: Vec<_> = classes.iter().map(|_| g.add_node(())).collect();
    for (ci, &c) in classes.iter().enumerate() {
        for (i, _) in usable(costs, c) {
            for d in distinct_operands(&costs.nodes[&c][i].0) {
                g.add_edge(ids[ci], ids[index[&d]], ());
            }
        }
    }
    let mut out = vec![(0, 1); classes.len()];
    for (k, scc) in petgraph::algo::tarjan_scc(&g).into_iter().enumerate() {
        for n in &scc {
            out[n.index()] = (k, scc.len());
        }
    }
    out
}

/// The greedy choice as a (partial) assignment: the chosen node of every class
/// it computes, and which classes are computed; the solver completes the rest.
fn warm_start(
    costs: &Costs,
    roots: &[Id],
    start: &Choice,
    classes: &[Id],
    vars: &[ClassVars],
) -> Vec<(Variable, f64)> {
    let live = reachable(start, roots);
    let mut hint = Vec::new();
    for (&c, v) in classes.iter().zip(vars) {
        let ClassVars::Priced { active, nodes } = v else {
            continue;
        };
        let on = live.contains(&c);
        hint.push((*active, f64::from(u8::from(on))));
        for &(ni, x) in nodes.iter().filter(|(_, x)| x != active) {
            let chosen = on && start.get(&c) == Some(&costs.nodes[&c][ni].0);
            hint.push((x, f64::from(u8::from(chosen))));
        }
    }
    hint
}

/// How class `c` enters the program: `Ok(leaf)` if it has a free leaf, else
/// its usable nodes with their costs, less the dominated ones (another node
/// costs no more and reads a subset of its operand classes, so it can always
/// replace it).
fn plan(costs: &Costs, c: Id) -> Result<usize, Vec<(usize, f64)>> {
    let nodes: Vec<(usize, f64, Vec<Id>)> = usable(costs, c)
        .map(|(i, cost)| (i, cost, distinct_operands(&costs.nodes[&c][i].0)))
        .collect();
    if let Some(&(leaf, ..)) = nodes
        .iter()
        .find(|(_, cost, ops)| *cost == 0.0 && ops.is_empty())
    {
        return Ok(leaf);
    }
    let dominates = |m: &(usize, f64, Vec<Id>), n: &(usize, f64, Vec<Id>)| {
        let cheaper = m.1 < n.1 || (m.1 == n.1 && (m.2.len() < n.2.len() || m.0 < n.0));
        cheaper && m.2.iter().all(|d| n.2.contains(d))
    };
    Err(nodes
        .iter()
        .filter(|n| !nodes.iter().any(|m| m.0 != n.0 && dominates(m, n)))
        .map(|&(i, cost, _)| (i, cost))
        .collect())
}
