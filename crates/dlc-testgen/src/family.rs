//! Op families: the unit of coverage for property tests and `dlc fuzz --ops`.

use dlc_ir::Op;

/// A family of related ops that the generator can be asked to exercise.
///
/// Each generation step picks one family from [`GenConfig::families`](crate::GenConfig)
/// and emits one "main" op of that family (plus whatever small helper ops it
/// needs to keep values in range, e.g. `abs(x) + 0.5` before a `log`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// Unary and binary elementwise ops (comparisons, logical ops, `where`),
    /// `leaky_relu`, `elu`, `clamp`, `cast`, all with numpy broadcasting.
    Elementwise,
    /// `matmul`, including batched products with broadcast batch dims.
    MatMul,
    /// `conv1d`/`conv2d`: stride, asymmetric padding, dilation, groups, depthwise.
    Conv,
    /// `conv_transpose1d`/`conv_transpose2d`: stride, cropping, output padding,
    /// dilation, groups.
    ConvTranspose,
    /// Max and average pooling (both `count_include_pad` modes), global average pooling.
    Pool,
    /// `sum`/`mean`/`max`/`min` over axis subsets with and without keepdim; `argmax`.
    Reduce,
    /// `softmax`, `log_softmax`.
    Softmax,
    /// `reshape`, `transpose`, `broadcast_to`, `concat`, `slice` (with steps).
    Layout,
    /// `gather` (embedding lookups included), `one_hot`.
    Gather,
    /// `batchnorm` (inference and training forms), `layernorm`.
    Norm,
    /// `mse_loss`, `cross_entropy`.
    Loss,
    /// Seeded `dropout`, training and inference.
    Dropout,
    /// `rnn`/`lstm`/`gru` over sequences and as single cells.
    Recurrent,
    /// The 2-D grid LSTM.
    GridLstm,
    /// Scaled dot-product attention (causal or not) and multi-head attention.
    Attention,
    /// The backward ops autodiff emits: convolution weight gradients, pooling and
    /// gather gradients, backpropagation through recurrent layers, the grid LSTM
    /// and attention.
    Backward,
}

impl Family {
    /// Every family, in a fixed order.
    pub const ALL: [Family; 16] = [
        Family::Elementwise,
        Family::MatMul,
        Family::Conv,
        Family::ConvTranspose,
        Family::Pool,
        Family::Reduce,
        Family::Softmax,
        Family::Layout,
        Family::Gather,
        Family::Norm,
        Family::Loss,
        Family::Dropout,
        Family::Recurrent,
        Family::GridLstm,
        Family::Attention,
        Family::Backward,
    ];

    /// The family's name as used on the command line (`dlc fuzz --ops conv,pool`).
    pub fn name(self) -> &'static str {
        match self {
            Family::Elementwise => "elementwise",
            Family::MatMul => "matmul",
            Family::Conv => "conv",
            Family::ConvTranspose => "conv_transpose",
            Family::Pool => "pool",
            Family::Reduce => "reduce",
            Family::Softmax => "softmax",
            Family::Layout => "layout",
            Family::Gather => "gather",
            Family::Norm => "norm",
            Family::Loss => "loss",
            Family::Dropout => "dropout",
            Family::Recurrent => "recurrent",
            Family::GridLstm => "grid_lstm",
            Family::Attention => "attention",
            Family::Backward => "backward",
        }
    }

    /// Parses a family name (the inverse of [`Family::name`]).
    pub fn from_name(name: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The family an op belongs to, or `None` for sources (inputs, parameters, constants).
    pub fn of(op: &Op) -> Option<Family> {
        Some(match op {
            Op::Input | Op::Param { .. } | Op::Const { .. } => return None,
            Op::Unary(_)
            | Op::Binary(_)
            | Op::LeakyRelu { .. }
            | Op::Elu { .. }
            | Op::Clamp { .. }
            | Op::Where
            | Op::Cast { .. } => Family::Elementwise,
            Op::MatMul => Family::MatMul,
            Op::Conv(_) => Family::Conv,
            Op::ConvTranspose(_) => Family::ConvTranspose,
            Op::Pool(_) | Op::GlobalAvgPool => Family::Pool,
            Op::Reduce { .. } | Op::ArgMax { .. } => Family::Reduce,
            Op::Softmax { .. } | Op::LogSoftmax { .. } => Family::Softmax,
            Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::BroadcastTo { .. }
            | Op::Concat { .. }
            | Op::Slice { .. } => Family::Layout,
            Op::Gather { .. } | Op::OneHot { .. } => Family::Gather,
            Op::BatchNorm { .. } | Op::LayerNorm { .. } => Family::Norm,
            Op::MseLoss | Op::CrossEntropy => Family::Loss,
            Op::Dropout { .. } => Family::Dropout,
            Op::Recurrent { .. } => Family::Recurrent,
            Op::GridLstm => Family::GridLstm,
            Op::Attention { .. } | Op::MultiHeadAttention { .. } => Family::Attention,
            Op::ConvWeightGrad { .. }
            | Op::PoolGrad(_)
            | Op::GatherGrad { .. }
            | Op::RecurrentGrad { .. }
            | Op::GridLstmGrad
            | Op::AttentionGrad { .. } => Family::Backward,
        })
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Family::ALL {
            assert_eq!(Family::from_name(f.name()), Some(f));
        }
        assert_eq!(Family::from_name("nope"), None);
    }
}
