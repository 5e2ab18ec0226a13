//! The vector-Jacobian products, one module per op family.
//!
//! A rule receives the forward node (operands, results), the cotangents of its
//! results (`None` where no gradient arrives) and which operands need a
//! gradient; it appends the nodes computing those gradients and returns one per
//! operand (`None` where not needed). Rules use existing ops wherever they
//! express the math well and the dedicated backward ops where they cannot
//! (recurrences, attention, the convolution weight gradient, pooling, gather).

mod elementwise;
mod layers;
mod norm;
mod seq;
mod shape;

use dlc_ir::{NodeId, Op, ValueId};

use crate::AutodiffError;
use crate::tape::{R, Tape};

/// One forward node being differentiated.
pub(crate) struct Node {
    /// The forward op.
    pub op: Op,
    /// Its operands.
    pub args: Vec<ValueId>,
    /// Its results.
    pub outs: Vec<ValueId>,
    /// The cotangent of each result, if any arrives.
    pub dys: Vec<Option<ValueId>>,
    /// Which operands need a gradient.
    pub need: Vec<bool>,
}

impl Node {
    /// The cotangent of result `r`, or zeros of its shape.
    pub fn dy_or_zeros(&self, t: &mut Tape, r: usize) -> R<ValueId> {
        match self.dys[r] {
            Some(d) => Ok(d),
            None => {
                let s = t.shape(self.outs[r]);
                t.zeros(&s)
            }
        }
    }

    /// The cotangent of the first result (rules of single-result ops are only
    /// called when it exists).
    pub fn dy(&self) -> R<ValueId> {
        self.dys[0]
            .ok_or_else(|| AutodiffError::Internal(format!("{}: no cotangent", self.op.name())))
    }

    /// A gradient list with `g` for operand `i` when needed.
    pub fn only(&self, i: usize, g: ValueId) -> Vec<Option<ValueId>> {
        let mut out = vec![None; self.args.len()];
        if self.need[i] {
            out[i] = Some(g);
        }
        out
    }
}

/// The gradients of `node`'s operands (see the module docs).
pub(crate) fn vjp(t: &mut Tape, id: NodeId, n: &Node) -> R<Vec<Option<ValueId>>> {
    let _ = id;
    match &n.op {
        Op::Unary(_)
        | Op::Binary(_)
        | Op::LeakyRelu { .. }
        | Op::Elu { .. }
        | Op::Clamp { .. }
        | Op::Where
        | Op::Cast { .. }
        | Op::Dropout { .. } => elementwise::vjp(t, n),
        Op::MatMul | Op::Conv(_) | Op::ConvTranspose(_) | Op::Pool(_) | Op::GlobalAvgPool => {
            layers::vjp(t, n)
        }
        Op::Reduce { .. }
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::BroadcastTo { .. }
        | Op::Concat { .. }
        | Op::Slice { .. }
        | Op::Gather { .. } => shape::vjp(t, n),
        Op::BatchNorm { .. } | Op::LayerNorm { .. } | Op::MseLoss | Op::CrossEntropy => {
            norm::vjp(t, n)
        }
        Op::Recurrent { .. }
        | Op::GridLstm
        | Op::Attention { .. }
        | Op::MultiHeadAttention { .. } => seq::vjp(t, n),
        other => Err(AutodiffError::Internal(format!(
            "no gradient rule for `{}`",
            other.name()
        ))),
    }
}
