//! Delta debugging: shrink a failing case to a smallest one that still shows the
//! same finding.
//!
//! Passes, repeated until none makes progress (or the budget runs out):
//!
//! 1. **outputs** — keep one output alone, or drop one;
//! 2. **cut** — replace a node by a new input holding the value the interpreter
//!    computed for it (everything upstream that nothing else uses disappears);
//! 3. **bypass** — replace a node by one of its operands of the same type;
//! 4. **attributes** — delete one attribute of one call (it takes its default),
//!    or turn a `true` flag `false`;
//! 5. **shapes** — shrink integer literals of the printed model (all occurrences
//!    of a value at once, then one at a time; to 1, then to half), re-elaborated
//!    so every candidate is re-typed and re-verified; values are cut to the new shapes.
//!
//! A candidate is kept when [`Finding::reproduced_by`] holds for the finding it
//! produces. Every accepted candidate is strictly smaller (fewer nodes, outputs,
//! attributes, or a smaller literal), so reduction terminates.

mod rewrite;
mod text;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dlc_ir::{NodeId, ValueId};
use dlc_tensor::Tensor;

use crate::{Finding, TestCase};
use rewrite::{Repl, prune, rebuild};

/// Limits of one reduction.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Stop trying candidates after this long.
    pub time: Duration,
    /// Stop after this many candidate checks.
    pub checks: usize,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            time: Duration::from_secs(120),
            checks: 5_000,
        }
    }
}

/// Counts of a reduction.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Candidates checked.
    pub checks: usize,
    /// Candidates accepted.
    pub accepted: usize,
    /// Whether the budget ran out before a fixed point.
    pub exhausted: bool,
}

/// Reduces `case`, whose finding is `target`, using `test` to run a candidate
/// (it returns the candidate's finding, if any). Returns the smallest case found
/// and its finding.
pub fn reduce(
    case: &TestCase,
    target: &Finding,
    budget: Budget,
    test: &mut dyn FnMut(&TestCase) -> Option<Finding>,
) -> (TestCase, Finding, Stats) {
    let mut r = Reducer {
        best: prune(case).unwrap_or_else(|| case.clone()),
        finding: target.clone(),
        target: target.clone(),
        stats: Stats::default(),
        deadline: Instant::now() + budget.time,
        max_checks: budget.checks,
        test,
    };
    if r.best.graph != case.graph {
        let pruned = std::mem::replace(&mut r.best, case.clone());
        r.accept_if(pruned);
    }
    loop {
        let mut progress = false;
        progress |= r.outputs();
        progress |= r.cut();
        progress |= r.bypass();
        progress |= r.text_pass(text::drop_attrs);
        progress |= r.text_pass(text::shrink_ints);
        if !progress || r.stats.exhausted {
            break;
        }
    }
    (r.best, r.finding, r.stats)
}

struct Reducer<'t> {
    best: TestCase,
    finding: Finding,
    target: Finding,
    stats: Stats,
    deadline: Instant,
    max_checks: usize,
    test: &'t mut dyn FnMut(&TestCase) -> Option<Finding>,
}

impl Reducer<'_> {
    /// Checks a candidate; adopts it if it still shows the target finding.
    fn accept_if(&mut self, cand: TestCase) -> bool {
        if Instant::now() > self.deadline || self.stats.checks >= self.max_checks {
            self.stats.exhausted = true;
            return false;
        }
        if size(&cand) >= size(&self.best) {
            return false;
        }
        self.stats.checks += 1;
        match (self.test)(&cand) {
            Some(f) if self.target.reproduced_by(&f) => {
                self.best = cand;
                self.finding = f;
                self.stats.accepted += 1;
                true
            }
            _ => false,
        }
    }

    /// Tries candidates from `make` (rebuilt from the current best each time)
    /// until one is accepted; repeats while that happens. True on progress.
    fn sweep(&mut self, make: impl Fn(&TestCase, usize) -> Option<Option<TestCase>>) -> bool {
        let mut progress = false;
        let mut i = 0;
        while !self.stats.exhausted {
            match make(&self.best, i) {
                None => break,
                Some(Some(c)) => {
                    if self.accept_if(c) {
                        progress = true;
                    } else {
                        i += 1;
                    }
                }
                Some(None) => i += 1,
            }
        }
        progress
    }

    fn outputs(&mut self) -> bool {
        self.sweep(|c, i| {
            let n = c.graph.outputs().len();
            if n <= 1 || i >= 2 * n {
                return None;
            }
            let keep: Vec<usize> = if i < n {
                vec![i]
            } else {
                (0..n).filter(|&j| j != i - n).collect()
            };
            Some(rebuild(c, &HashMap::new(), &keep))
        })
    }

    fn cut(&mut self) -> bool {
        let mut values: Option<(usize, Vec<Vec<Tensor>>)> = None;
        let mut progress = false;
        let mut i = 0;
        while !self.stats.exhausted {
            let g = &self.best.graph;
            let ops: Vec<NodeId> = g
                .node_ids()
                .filter(|&n| !g.node(n).op.is_source())
                .collect();
            let Some(&id) = ops.get(i) else { break };
            // The interpreter's values of the current best (recomputed after a change).
            if values
                .as_ref()
                .is_none_or(|(k, _)| *k != self.stats.accepted)
            {
                let (inputs, params) = (&self.best.inputs, &self.best.params);
                let all = crate::panics::catching(|| dlc_interp::run_all::<f32>(g, inputs, params));
                let Ok(Ok(all)) = all else { break };
                values = Some((self.stats.accepted, all));
            }
            let vals = &values.as_ref().expect("computed above").1[id.index()];
            let subst: HashMap<ValueId, Repl> = vals
                .iter()
                .enumerate()
                .map(|(r, t)| {
                    let v = ValueId {
                        node: id,
                        result: r as u32,
                    };
                    (v, Repl::Input(t.clone()))
                })
                .collect();
            let all: Vec<usize> = (0..g.outputs().len()).collect();
            let accepted = rebuild(&self.best, &subst, &all).is_some_and(|c| self.accept_if(c));
            if accepted {
                progress = true;
            } else {
                i += 1;
            }
        }
        progress
    }

    fn bypass(&mut self) -> bool {
        self.sweep(|c, i| {
            let g = &c.graph;
            let pairs: Vec<(ValueId, ValueId)> = g
                .node_ids()
                .filter(|&n| !g.node(n).op.is_source())
                .flat_map(|n| {
                    let ops = g.operands(n);
                    (0..g.node(n).types.len() as u32).flat_map(move |r| {
                        let v = ValueId { node: n, result: r };
                        ops.clone().into_iter().map(move |u| (v, u))
                    })
                })
                .filter(|&(v, u)| g.ty(v) == g.ty(u))
                .collect();
            let &(v, u) = pairs.get(i)?;
            let subst = HashMap::from([(v, Repl::Value(u))]);
            let all: Vec<usize> = (0..g.outputs().len()).collect();
            Some(rebuild(c, &subst, &all))
        })
    }

    fn text_pass(&mut self, make: fn(&str) -> Vec<String>) -> bool {
        let mut progress = false;
        let mut i = 0;
        while !self.stats.exhausted {
            let cands = make(&text::text_of(&self.best));
            let Some(t) = cands.get(i) else { break };
            let accepted = text::reparse(&self.best, t).is_some_and(|c| self.accept_if(c));
            if accepted {
                progress = true;
            } else {
                i += 1;
            }
        }
        progress
    }
}

/// What the reducer minimises, in order: ops, outputs, nodes, the sum of the
/// integer literals of the printed model (dims, attributes), its length.
fn size(c: &TestCase) -> (usize, usize, usize, u64, usize) {
    let t = text::text_of(c);
    let ints = text::int_tokens(&t)
        .iter()
        .fold(0u64, |a, t| a.saturating_add(t.value));
    (
        c.op_count(),
        c.graph.outputs().len(),
        c.graph.len(),
        ints,
        t.len(),
    )
}
