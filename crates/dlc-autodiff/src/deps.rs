//! Which values depend on the differentiated ones, and through which edges a
//! gradient can flow.
//!
//! A gradient flows along an edge when the operand and the result are both f32
//! and the op is differentiable in that operand ([`differentiable`]). A value
//! *depends* on a source when any path leads there, and *depends
//! differentiably* when a path of such edges does: a loss that depends on a
//! parameter only through, say, `argmax` has no gradient, and that is an error.

use dlc_ir::{DType, Graph, NodeId, Op, ValueId};

/// Whether the op passes gradients from its f32 results to operand `i` (when
/// that operand is f32). Ops with no f32 result never do; every op with f32
/// results and operands is differentiable (almost everywhere) in them.
pub(crate) fn differentiable(op: &Op, i: usize) -> bool {
    match op {
        Op::Cast { to } => *to == DType::F32,
        Op::ArgMax { .. } => false,
        Op::Binary(b) => !b.is_comparison() && !b.is_logical(),
        // The condition is bool; only the branches carry gradients.
        Op::Where => i > 0,
        // Backward ops are not differentiated again (no second derivatives).
        Op::ConvWeightGrad { .. }
        | Op::PoolGrad(_)
        | Op::GatherGrad { .. }
        | Op::RecurrentGrad { .. }
        | Op::GridLstmGrad
        | Op::AttentionGrad { .. } => false,
        _ => true,
    }
}

/// Whether operand `i` of `op` influences result `r` (a training batch norm's
/// running statistics only feed its updated statistics; its `gamma` and `beta`
/// only its output).
pub(crate) fn affects(op: &Op, i: usize, r: usize) -> bool {
    match op {
        Op::BatchNorm { training: true, .. } => match i {
            0 => true,
            1 | 2 => r == 0,
            _ => r == i - 2,
        },
        _ => true,
    }
}

/// Whether a node's op is a backward op (which autodiff cannot differentiate).
pub(crate) fn is_backward(op: &Op) -> bool {
    matches!(
        op,
        Op::ConvWeightGrad { .. }
            | Op::PoolGrad(_)
            | Op::GatherGrad { .. }
            | Op::RecurrentGrad { .. }
            | Op::GridLstmGrad
            | Op::AttentionGrad { .. }
    )
}

/// Per value (node index, result): any dependence, differentiable dependence.
pub(crate) struct Deps {
    pub any: Vec<Vec<bool>>,
    pub diff: Vec<Vec<bool>>,
}

impl Deps {
    /// The dependence of every value on the values `from`.
    pub fn of(g: &Graph, from: &[ValueId]) -> Deps {
        let mut any: Vec<Vec<bool>> = Vec::with_capacity(g.len());
        let mut diff: Vec<Vec<bool>> = Vec::with_capacity(g.len());
        for id in g.node_ids() {
            let node = g.node(id);
            let n = node.types.len();
            let ops = g.operands(id);
            let (mut a, mut d) = (vec![false; n], vec![false; n]);
            for (i, v) in ops.iter().enumerate() {
                let (va, vd) = (
                    any[v.node.index()][v.result as usize],
                    diff[v.node.index()][v.result as usize],
                );
                let edge = vd && g.ty(*v).dtype == DType::F32 && differentiable(&node.op, i);
                for r in 0..n {
                    a[r] |= va;
                    d[r] |= edge && affects(&node.op, i, r) && node.types[r].dtype == DType::F32;
                }
            }
            for r in 0..n {
                let v = ValueId {
                    node: id,
                    result: r as u32,
                };
                if from.contains(&v) {
                    a[r] = true;
                    d[r] = node.types[r].dtype == DType::F32;
                }
            }
            any.push(a);
            diff.push(d);
        }
        Deps { any, diff }
    }

    /// Whether `v` depends on the sources at all.
    pub fn any(&self, v: ValueId) -> bool {
        self.any[v.node.index()][v.result as usize]
    }

    /// Whether `v` depends on the sources differentiably.
    pub fn diff(&self, v: ValueId) -> bool {
        self.diff[v.node.index()][v.result as usize]
    }

    /// Walking back from `of` along dependent values, the first node where the
    /// dependence stops being differentiable: the op that blocks the gradient.
    pub fn blocker(&self, g: &Graph, of: ValueId) -> Option<NodeId> {
        let mut stack = vec![of.node];
        let mut seen = vec![false; g.len()];
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut seen[id.index()], true) {
                continue;
            }
            let node = g.node(id);
            for (i, v) in g.operands(id).into_iter().enumerate() {
                if !self.any(v) {
                    continue;
                }
                let flows =
                    self.diff(v) && g.ty(v).dtype == DType::F32 && differentiable(&node.op, i);
                if self.diff(v) && !flows {
                    return Some(id);
                }
                stack.push(v.node);
            }
        }
        None
    }
}
