//! The operator set: one enum variant per op family, attributes as typed fields.
//!
//! Axes and paddings stored here are always normalised (non-negative, resolved
//! against the operand's rank); the surface syntax's conveniences (negative axes,
//! `causal=true`, `-1` in reshape) are resolved when the graph is elaborated.

use crate::init::Init;
use crate::types::DType;

/// Elementwise ops of one operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `|x|`
    Abs,
    /// `max(x, 0)`
    Relu,
    /// `exp(x)`
    Exp,
    /// Natural logarithm.
    Log,
    /// Square root.
    Sqrt,
    /// `1 / sqrt(x)`
    Rsqrt,
    /// `1 / (1 + exp(-x))`
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// `x * Φ(x)` with the exact normal CDF (erf form).
    GeluErf,
    /// `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
    GeluTanh,
    /// `log(1 + exp(x))`, computed without overflow.
    Softplus,
    /// Logical not (bool only).
    Not,
    /// The error function `erf(x)` (used by the exact GELU's gradient).
    Erf,
}

impl UnaryOp {
    /// Every unary op, in a fixed order (for tables and generators).
    pub const ALL: [UnaryOp; 14] = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Relu,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Rsqrt,
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
        UnaryOp::GeluErf,
        UnaryOp::GeluTanh,
        UnaryOp::Softplus,
        UnaryOp::Not,
        UnaryOp::Erf,
    ];

    /// The op's name in `.ir` text.
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Relu => "relu",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Tanh => "tanh",
            UnaryOp::GeluErf => "gelu",
            UnaryOp::GeluTanh => "gelu_tanh",
            UnaryOp::Softplus => "softplus",
            UnaryOp::Not => "not",
            UnaryOp::Erf => "erf",
        }
    }
}

/// Elementwise ops of two operands, with numpy broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `a ^ b` (powf)
    Pow,
    /// Elementwise maximum.
    Maximum,
    /// Elementwise minimum.
    Minimum,
    /// `a == b` → bool
    Eq,
    /// `a != b` → bool
    Ne,
    /// `a < b` → bool
    Lt,
    /// `a <= b` → bool
    Le,
    /// `a > b` → bool
    Gt,
    /// `a >= b` → bool
    Ge,
    /// Logical and (bool only).
    And,
    /// Logical or (bool only).
    Or,
}

impl BinaryOp {
    /// Every binary op, in a fixed order.
    pub const ALL: [BinaryOp; 15] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Gt,
        BinaryOp::Ge,
        BinaryOp::And,
        BinaryOp::Or,
    ];

    /// The op's name in `.ir` text.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Eq => "eq",
            BinaryOp::Ne => "ne",
            BinaryOp::Lt => "lt",
            BinaryOp::Le => "le",
            BinaryOp::Gt => "gt",
            BinaryOp::Ge => "ge",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
        }
    }

    /// Whether the op compares and yields bool.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
        )
    }

    /// Whether the op is a logical connective on bools.
    pub fn is_logical(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or)
    }
}

/// How a reduction combines elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReduceKind {
    /// Sum.
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
}

impl ReduceKind {
    /// The op's name in `.ir` text.
    pub fn name(self) -> &'static str {
        match self {
            ReduceKind::Sum => "sum",
            ReduceKind::Mean => "mean",
            ReduceKind::Max => "max",
            ReduceKind::Min => "min",
        }
    }
}

/// Attributes of a convolution over `spatial` dims (1 for conv1d, 2 for conv2d).
///
/// Operands: `x [N, C, *spatial]`, `w [O, C/groups, *kernel]`, optional `b [O]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConvAttrs {
    /// Stride per spatial dim.
    pub stride: Vec<usize>,
    /// `(before, after)` zero padding per spatial dim.
    pub padding: Vec<(usize, usize)>,
    /// Dilation per spatial dim.
    pub dilation: Vec<usize>,
    /// Number of channel groups (C and O are both divisible by it).
    pub groups: usize,
}

/// Attributes of a transposed convolution (the gradient of conv w.r.t. its input).
///
/// Operands: `x [N, Cin, *spatial]`, `w [Cin, Cout/groups, *kernel]` (IOHW), optional `b [Cout]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConvTransposeAttrs {
    /// Stride per spatial dim.
    pub stride: Vec<usize>,
    /// Rows/cols cropped from each border, `(before, after)` per spatial dim.
    pub padding: Vec<(usize, usize)>,
    /// Extra rows/cols added at the bottom/right of the output.
    pub output_padding: Vec<usize>,
    /// Dilation per spatial dim.
    pub dilation: Vec<usize>,
    /// Number of channel groups.
    pub groups: usize,
}

/// Which pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// Maximum over the window (padding never wins).
    Max,
    /// Average over the window; `count_include_pad` chooses the divisor at borders.
    Avg {
        /// Divide by the full window size (true) or by the in-bounds count (false).
        count_include_pad: bool,
    },
}

/// Attributes of a windowed pooling over the trailing spatial dims of `[N, C, *spatial]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolAttrs {
    /// Max or average.
    pub kind: PoolKind,
    /// Window size per spatial dim.
    pub kernel: Vec<usize>,
    /// Stride per spatial dim.
    pub stride: Vec<usize>,
    /// `(before, after)` padding per spatial dim.
    pub padding: Vec<(usize, usize)>,
}

/// One axis of a strided slice: `start..end` by `step` (normalised: `start < end <= dim`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SliceRange {
    /// First index taken.
    pub start: usize,
    /// One past the last index that may be taken.
    pub end: usize,
    /// Distance between taken indices (at least 1).
    pub step: usize,
}

impl SliceRange {
    /// Number of indices taken.
    pub fn len(&self) -> usize {
        (self.end - self.start).div_ceil(self.step)
    }

    /// Whether no index is taken (never true for a verified graph).
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// The recurrent cell of an `rnn`, `lstm` or `gru` op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CellKind {
    /// `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`; one gate block.
    Rnn,
    /// Gates i, f, g, o (PyTorch order); state (h, c).
    Lstm,
    /// Gates r, z, n (PyTorch order, `r` multiplies `W_hn h + b_hn`).
    Gru,
}

impl CellKind {
    /// Number of stacked gate blocks in the weights (1, 4, 3).
    pub fn gates(self) -> usize {
        match self {
            CellKind::Rnn => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    /// Whether the cell carries a second state (the LSTM's `c`).
    pub fn has_cell_state(self) -> bool {
        self == CellKind::Lstm
    }

    /// Base name in `.ir` text (`rnn`, `lstm`, `gru`).
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Rnn => "rnn",
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
        }
    }
}

/// Every operation a graph node can perform.
///
/// Operand order and result lists are documented per variant; shape inference for
/// each lives in [`crate::infer`].
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A runtime input. No operands.
    Input,
    /// A trainable parameter with its initialiser. No operands.
    Param {
        /// How the parameter is initialised when no value is loaded.
        init: Init,
    },
    /// A literal tensor. No operands.
    Const {
        /// The values in row-major order (cast to the node's dtype).
        value: ConstValue,
    },
    /// Elementwise unary op.
    Unary(UnaryOp),
    /// Elementwise binary op with broadcasting.
    Binary(BinaryOp),
    /// `leaky_relu(x, alpha)`: `x` if positive else `alpha * x`.
    LeakyRelu {
        /// Slope for negative inputs.
        alpha: f64,
    },
    /// `elu(x, alpha)`: `x` if positive else `alpha * (exp(x) - 1)`.
    Elu {
        /// Scale of the negative branch.
        alpha: f64,
    },
    /// `clamp(x, min, max)`.
    Clamp {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// `where(cond, a, b)`: elementwise select with broadcasting over all three.
    Where,
    /// Converts the element type.
    Cast {
        /// Target dtype.
        to: DType,
    },
    /// Numpy matmul on operands of rank >= 2 (leading dims broadcast).
    MatMul,
    /// Convolution; operands `x, w[, b]`.
    Conv(ConvAttrs),
    /// Transposed convolution; operands `x, w[, b]`.
    ConvTranspose(ConvTransposeAttrs),
    /// Max or average pooling.
    Pool(PoolAttrs),
    /// Mean over all spatial dims of `[N, C, *spatial]`, keeping them as size 1.
    GlobalAvgPool,
    /// Reduction over `axes` (sorted, distinct; all axes when it lists every axis).
    Reduce {
        /// How elements combine.
        kind: ReduceKind,
        /// Reduced axes.
        axes: Vec<usize>,
        /// Keep reduced axes as size 1.
        keepdim: bool,
    },
    /// Index of the maximum along `axis` (i64; first index on ties).
    ArgMax {
        /// Reduced axis.
        axis: usize,
        /// Keep the reduced axis as size 1.
        keepdim: bool,
    },
    /// Softmax along `axis`.
    Softmax {
        /// Normalised axis.
        axis: usize,
    },
    /// Log-softmax along `axis`.
    LogSoftmax {
        /// Normalised axis.
        axis: usize,
    },
    /// Same elements, new shape (row-major order kept).
    Reshape {
        /// The new shape.
        shape: Vec<usize>,
    },
    /// Permutes dims: output dim `i` is input dim `perm[i]`.
    Transpose {
        /// The permutation.
        perm: Vec<usize>,
    },
    /// Broadcasts to a larger shape (numpy rules).
    BroadcastTo {
        /// The target shape.
        shape: Vec<usize>,
    },
    /// Joins operands along `axis` (variadic, at least one operand).
    Concat {
        /// The joined axis.
        axis: usize,
    },
    /// Strided slice, one range per axis.
    Slice {
        /// Range per axis.
        ranges: Vec<SliceRange>,
    },
    /// `gather(x, indices)` along `axis`: out shape `x[:axis] + indices + x[axis+1:]`.
    Gather {
        /// The indexed axis of `x`.
        axis: usize,
    },
    /// One-hot encoding of i64 indices into f32 `[..., depth]` (out-of-range rows are zero).
    OneHot {
        /// Number of classes.
        depth: usize,
    },
    /// Batch normalisation over channel axis 1; operands `x, gamma, beta, mean, var`.
    ///
    /// Inference uses the running statistics (one result). Training uses batch
    /// statistics and yields three results: `y`, updated running mean and variance.
    BatchNorm {
        /// Added to the variance.
        eps: f64,
        /// Running-statistics momentum (training only).
        momentum: f64,
        /// Training form.
        training: bool,
    },
    /// Layer normalisation over dims `axis..`; operands `x, gamma, beta` (shape `x[axis..]`).
    LayerNorm {
        /// First normalised axis.
        axis: usize,
        /// Added to the variance.
        eps: f64,
    },
    /// Inverted dropout with a counter-based mask: identity unless `training`.
    Dropout {
        /// Probability of zeroing an element.
        p: f64,
        /// Mask seed: the same seed gives the same mask on every backend.
        seed: u64,
        /// Apply the mask (training) or pass through (inference).
        training: bool,
    },
    /// `mean((pred - target)^2)` → scalar.
    MseLoss,
    /// Mean softmax cross-entropy of logits `[N, C]` against i64 labels `[N]` → scalar.
    CrossEntropy,
    /// A recurrent layer over a sequence or a single step.
    ///
    /// Operands: `x, h0, [c0,] w_ih, w_hh, b_ih, b_hh` with PyTorch layouts
    /// (`w_ih [G*H, I]`, `w_hh [G*H, H]`). Sequence form: `x [T, B, I]` →
    /// `y [T, B, H], h_n [B, H][, c_n [B, H]]`. Cell form: `x [B, I]` → `h1[, c1]`.
    Recurrent {
        /// Which cell.
        cell: CellKind,
        /// Whole sequence (true) or a single step (false).
        sequence: bool,
    },
    /// 2-D grid LSTM; operands `x [Hg, Wg, B, F], w1 [F+2H, 4H], b1 [4H], w2, b2`.
    ///
    /// Results: `y [Hg, Wg, B, 2H]`, `h_vert, m_vert [Wg, B, H]`, `h_hor, m_hor [Hg, B, H]`.
    GridLstm,
    /// Scaled dot-product attention; operands `q [.., L, E], k [.., S, E], v [.., S, Ev]`.
    Attention {
        /// Query `i` attends key `j` only when `j <= i`.
        causal: bool,
        /// Score scale (default `1/sqrt(E)`).
        scale: f64,
    },
    /// Multi-head attention with PyTorch's layout; operands
    /// `query [L, N, E], key [S, N, E], value [S, N, E], in_w [3E, E], in_b [3E], out_w [E, E], out_b [E]`.
    MultiHeadAttention {
        /// Number of heads (divides E).
        heads: usize,
        /// Causal mask.
        causal: bool,
    },
    /// The gradient of a convolution w.r.t. its weight; operands `x [N, C, *spatial]`
    /// and `dy [N, O, *out]` (`out` at most the convolution's output extent).
    ///
    /// `dw[o, c, u] = Σ_{n,p} dy[n, o, p] · x[n, g(o)·C/groups + c, p·stride + u·dilation − pad]`,
    /// result `[O, C/groups, *kernel]`. Also the weight gradient of a transposed
    /// convolution, with the roles of `x` and `dy` exchanged.
    ConvWeightGrad {
        /// The convolution's attributes.
        conv: ConvAttrs,
        /// The kernel's spatial extent.
        kernel: Vec<usize>,
    },
    /// The gradient of pooling w.r.t. its input; operands `x`, `dy` (shaped like the
    /// pooling's result) → `dx` shaped like `x`. Max pooling routes each `dy` to the
    /// first maximum of its window; average pooling spreads it over the window.
    PoolGrad(PoolAttrs),
    /// The gradient of `gather` w.r.t. its data (a scatter-add); operands
    /// `dy, indices` → `dx` with `size` entries along `axis`, summing repeated indices.
    GatherGrad {
        /// The gathered axis.
        axis: usize,
        /// The size of that axis in the gathered tensor.
        size: usize,
    },
    /// Backpropagation through a recurrent layer (through time for sequences).
    ///
    /// Operands: the forward operands `x, h0, [c0,] w_ih, w_hh, b_ih, b_hh`, then the
    /// gradients of the forward results (`dy` for sequences, `dh_n`, `dc_n` for the
    /// LSTM). Results: the gradients of the forward operands, in order.
    RecurrentGrad {
        /// Which cell.
        cell: CellKind,
        /// Whole sequence (true) or a single step (false).
        sequence: bool,
    },
    /// Backpropagation through the grid LSTM; operands `x, w1, b1, w2, b2`, then the
    /// gradients of its five results; results the gradients of `x, w1, b1, w2, b2`.
    GridLstmGrad,
    /// The gradient of attention; operands `q, k, v, dout` → `dq, dk, dv`.
    AttentionGrad {
        /// Query `i` attends key `j` only when `j <= i`.
        causal: bool,
        /// Score scale.
        scale: f64,
    },
}

/// The data of a [`Op::Const`] node, row-major.
#[derive(Clone, Debug, PartialEq)]
pub enum ConstValue {
    /// Floating values (held in f64 so printing round-trips exactly).
    Float(Vec<f64>),
    /// Integer values.
    Int(Vec<i64>),
    /// Boolean values.
    Bool(Vec<bool>),
}

impl ConstValue {
    /// Number of values held.
    pub fn len(&self) -> usize {
        match self {
            ConstValue::Float(v) => v.len(),
            ConstValue::Int(v) => v.len(),
            ConstValue::Bool(v) => v.len(),
        }
    }

    /// Whether no value is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f64 (ints converted, bools as 0/1).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            ConstValue::Float(v) => v.clone(),
            ConstValue::Int(v) => v.iter().map(|&x| x as f64).collect(),
            ConstValue::Bool(v) => v.iter().map(|&x| x as u8 as f64).collect(),
        }
    }
}

impl Op {
    /// A short, stable name for the op family (used in reports, errors and the printer).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Param { .. } => "param",
            Op::Const { .. } => "const",
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::LeakyRelu { .. } => "leaky_relu",
            Op::Elu { .. } => "elu",
            Op::Clamp { .. } => "clamp",
            Op::Where => "where",
            Op::Cast { .. } => "cast",
            Op::MatMul => "matmul",
            Op::Conv(c) if c.stride.len() == 1 => "conv1d",
            Op::Conv(_) => "conv2d",
            Op::ConvTranspose(c) if c.stride.len() == 1 => "conv_transpose1d",
            Op::ConvTranspose(_) => "conv_transpose2d",
            Op::Pool(p) => match (p.kind, p.kernel.len()) {
                (PoolKind::Max, 1) => "max_pool1d",
                (PoolKind::Max, _) => "max_pool2d",
                (_, 1) => "avg_pool1d",
                _ => "avg_pool2d",
            },
            Op::GlobalAvgPool => "global_avg_pool",
            Op::Reduce { kind, .. } => kind.name(),
            Op::ArgMax { .. } => "argmax",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::Reshape { .. } => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::BroadcastTo { .. } => "broadcast_to",
            Op::Concat { .. } => "concat",
            Op::Slice { .. } => "slice",
            Op::Gather { .. } => "gather",
            Op::OneHot { .. } => "one_hot",
            Op::BatchNorm { .. } => "batchnorm",
            Op::LayerNorm { .. } => "layernorm",
            Op::Dropout { .. } => "dropout",
            Op::MseLoss => "mse_loss",
            Op::CrossEntropy => "cross_entropy",
            Op::Recurrent { cell, sequence } => match (cell, sequence) {
                (CellKind::Rnn, true) => "rnn",
                (CellKind::Lstm, true) => "lstm",
                (CellKind::Gru, true) => "gru",
                (CellKind::Rnn, false) => "rnn_cell",
                (CellKind::Lstm, false) => "lstm_cell",
                (CellKind::Gru, false) => "gru_cell",
            },
            Op::GridLstm => "grid_lstm",
            Op::Attention { .. } => "attention",
            Op::MultiHeadAttention { .. } => "multihead_attention",
            Op::ConvWeightGrad { conv, .. } if conv.stride.len() == 1 => "conv1d_weight_grad",
            Op::ConvWeightGrad { .. } => "conv2d_weight_grad",
            Op::PoolGrad(p) => match (p.kind, p.kernel.len()) {
                (PoolKind::Max, 1) => "max_pool1d_grad",
                (PoolKind::Max, _) => "max_pool2d_grad",
                (_, 1) => "avg_pool1d_grad",
                _ => "avg_pool2d_grad",
            },
            Op::GatherGrad { .. } => "gather_grad",
            Op::RecurrentGrad { cell, sequence } => match (cell, sequence) {
                (CellKind::Rnn, true) => "rnn_grad",
                (CellKind::Lstm, true) => "lstm_grad",
                (CellKind::Gru, true) => "gru_grad",
                (CellKind::Rnn, false) => "rnn_cell_grad",
                (CellKind::Lstm, false) => "lstm_cell_grad",
                (CellKind::Gru, false) => "gru_cell_grad",
            },
            Op::GridLstmGrad => "grid_lstm_grad",
            Op::AttentionGrad { .. } => "attention_grad",
        }
    }

    /// Whether the node is a graph source (input, parameter or constant).
    pub fn is_source(&self) -> bool {
        matches!(self, Op::Input | Op::Param { .. } | Op::Const { .. })
    }

    /// Whether the op is elementwise (one output element from the same-index input elements,
    /// after broadcasting): these fuse into one loop.
    pub fn is_elementwise(&self) -> bool {
        matches!(
            self,
            Op::Unary(_)
                | Op::Binary(_)
                | Op::LeakyRelu { .. }
                | Op::Elu { .. }
                | Op::Clamp { .. }
                | Op::Where
                | Op::Cast { .. }
        ) || matches!(
            self,
            Op::Dropout {
                training: false,
                ..
            }
        )
    }
}
