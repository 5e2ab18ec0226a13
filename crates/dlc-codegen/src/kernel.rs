//! The kernel IR: what lowering produces and the emitters consume.
//!
//! A [`Kernel`] is one JIT-compiled function. It reads and writes whole
//! [`Buffer`]s named by [`BufId`]; every shape, stride and offset it needs is a
//! constant here, so the generated code has no shape arithmetic at run time.
//! Each kernel may be split over threads along one outer loop of extent
//! [`Kernel::parallel`]: the compiled function receives a sub-range of it.

use dlc_ir::{BinaryOp, CellKind, DType, NodeId, ReduceKind, UnaryOp};

/// Identifies a buffer of a [`crate::Program`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufId(pub u32);

impl BufId {
    /// The buffer's index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where a buffer's memory comes from at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferKind {
    /// The caller's input array `i` (read-only).
    Input(usize),
    /// Parameter storage owned by the compiled model (the graph's `i`-th parameter).
    Param(usize),
    /// Constant storage owned by the compiled model, filled from the graph's constant.
    Const(NodeId),
    /// The caller's output array `i`.
    Output(usize),
    /// A region of the arena, placed by the memory planner.
    Temp,
}

/// A contiguous block of memory that kernels read and write.
#[derive(Clone, Debug, PartialEq)]
pub struct Buffer {
    /// Where its memory comes from.
    pub kind: BufferKind,
    /// Element type.
    pub dtype: DType,
    /// Number of elements.
    pub len: usize,
    /// A readable name (the graph value it holds) for dumps.
    pub name: String,
}

impl Buffer {
    /// Size in bytes.
    pub fn bytes(&self) -> usize {
        self.len * self.dtype.size_bytes()
    }
}

/// One compiled function: its computation, its buffers and how it may be split.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// A readable, unique name (`k3_add_relu`).
    pub name: String,
    /// What it computes.
    pub op: KernelOp,
    /// Buffers read, in the order the emitter expects.
    pub inputs: Vec<BufId>,
    /// Buffers written.
    pub outputs: Vec<BufId>,
    /// Extent of the outer loop that may be split over threads (1 = not splittable).
    pub parallel: usize,
    /// Estimated floating-point operations (for reports and threading decisions).
    pub flops: f64,
    /// Estimated bytes moved.
    pub bytes: f64,
    /// The graph nodes this kernel computes.
    pub nodes: Vec<NodeId>,
    /// Pairs `(input position, output position)` whose buffers may be the same
    /// memory (the kernel reads each element before writing the same element).
    pub in_place: Vec<(usize, usize)>,
}

/// The computation of a kernel.
#[derive(Clone, Debug, PartialEq)]
pub enum KernelOp {
    /// A fused elementwise expression over a broadcast iteration space.
    Elementwise(ElemKernel),
    /// Reduce `[outer, len, inner]` over the middle axis to `[outer, inner]`.
    Reduce {
        /// How values combine (mean divides the sum by `len`).
        kind: ReduceKind,
        /// Product of the dims before the reduced run.
        outer: usize,
        /// Product of the reduced dims.
        len: usize,
        /// Product of the dims after the reduced run.
        inner: usize,
    },
    /// Index of the maximum of `[outer, len, inner]` along the middle axis (i64 output).
    ArgMax {
        /// Dims before the axis.
        outer: usize,
        /// The axis length.
        len: usize,
        /// Dims after the axis.
        inner: usize,
    },
    /// Softmax (or log-softmax) of `[outer, len, inner]` along the middle axis.
    Softmax {
        /// Dims before the axis.
        outer: usize,
        /// The axis length.
        len: usize,
        /// Dims after the axis.
        inner: usize,
        /// Log-softmax instead of softmax.
        log: bool,
    },
    /// Layer normalisation of `rows` rows of `cols`; inputs `x, gamma, beta`.
    LayerNorm {
        /// Number of rows.
        rows: usize,
        /// Normalised length.
        cols: usize,
        /// Added to the variance.
        eps: f32,
    },
    /// A strided copy (transpose, slice, broadcast, concat piece).
    Copy(CopyKernel),
    /// `out[o, c, i] = x[o, idx[c], i]` with `x` viewed as `[outer, axis_len, inner]`.
    Gather {
        /// Dims before the axis.
        outer: usize,
        /// Length of the indexed axis.
        axis_len: usize,
        /// Number of indices.
        count: usize,
        /// Dims after the axis (elements copied per index).
        inner: usize,
        /// Element type of `x`.
        dtype: DType,
    },
    /// One-hot rows of `depth` for `count` i64 indices.
    OneHot {
        /// Number of indices.
        count: usize,
        /// Row length.
        depth: usize,
    },
    /// (Batched) matrix product with arbitrary operand strides and an optional bias row.
    MatMul(MatMulKernel),
    /// Direct or implicit-GEMM convolution.
    Conv(ConvKernel),
    /// Transposed convolution.
    ConvTranspose(ConvKernel),
    /// Max or average pooling.
    Pool(PoolKernel),
    /// Batch normalisation of `[n, c, inner]`; inputs `x, gamma, beta, mean, var`.
    BatchNorm {
        /// Batch size.
        n: usize,
        /// Channels.
        c: usize,
        /// Product of the spatial dims.
        inner: usize,
        /// Added to the variance.
        eps: f32,
        /// Running-statistics momentum.
        momentum: f32,
        /// Training form (batch statistics; three outputs).
        training: bool,
    },
    /// `mean((pred - target)^2)` over `len` elements.
    MseLoss {
        /// Element count.
        len: usize,
    },
    /// Mean softmax cross-entropy of `[n, c]` logits against i64 labels.
    CrossEntropy {
        /// Batch size.
        n: usize,
        /// Classes.
        c: usize,
    },
    /// The recurrence of an rnn/lstm/gru over precomputed input projections.
    Recurrent(RecurrentKernel),
    /// The 2-D grid LSTM.
    GridLstm {
        /// Grid height.
        rows: usize,
        /// Grid width.
        cols: usize,
        /// Batch.
        batch: usize,
        /// Input features.
        features: usize,
        /// Hidden size.
        hidden: usize,
    },
    /// Scaled dot-product attention with strided operands.
    Attention(AttentionKernel),
}

/// A read of one kernel input inside an elementwise expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Leaf {
    /// Position in [`Kernel::inputs`].
    pub input: usize,
    /// Element stride per iteration dim (0 where the input is broadcast).
    pub strides: Vec<usize>,
    /// Element type stored in the buffer.
    pub dtype: DType,
}

/// One node of an elementwise expression (operands refer to earlier nodes).
#[derive(Clone, Debug, PartialEq)]
pub enum ElemNode {
    /// The value of a leaf at the current index.
    Leaf(usize),
    /// A scalar constant.
    Const(f64, DType),
    /// Unary op.
    Unary(UnaryOp, usize),
    /// Binary op.
    Binary(BinaryOp, usize, usize),
    /// Leaky ReLU with slope `alpha`.
    LeakyRelu(f64, usize),
    /// ELU with scale `alpha`.
    Elu(f64, usize),
    /// Clamp to `[min, max]`.
    Clamp(f64, f64, usize),
    /// Select `a` where `cond` else `b`.
    Where(usize, usize, usize),
    /// Conversion to a dtype.
    Cast(DType, usize),
    /// Inverted dropout of the node with probability `p` and mask seed.
    Dropout {
        /// Drop probability.
        p: f32,
        /// Mask seed.
        seed: u64,
        /// The operand node.
        x: usize,
    },
}

/// A fused elementwise kernel: one loop nest computing `nodes.last()`.
#[derive(Clone, Debug, PartialEq)]
pub struct ElemKernel {
    /// The iteration shape (adjacent dims already collapsed where possible).
    pub shape: Vec<usize>,
    /// The reads.
    pub leaves: Vec<Leaf>,
    /// The expression, in dependency order; the last node is stored.
    pub nodes: Vec<ElemNode>,
    /// The dtype of every node.
    pub dtypes: Vec<DType>,
}

/// A strided copy: `dst[dst_offset + Σ i_d dst_strides[d]] = src[src_offset + Σ i_d src_strides[d]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct CopyKernel {
    /// The iteration shape.
    pub shape: Vec<usize>,
    /// Source element strides per iteration dim.
    pub src_strides: Vec<usize>,
    /// Source element offset.
    pub src_offset: usize,
    /// Destination element strides per iteration dim.
    pub dst_strides: Vec<usize>,
    /// Destination element offset.
    pub dst_offset: usize,
    /// Element type.
    pub dtype: DType,
}

/// A 2-D operand view inside a buffer: `x[b, r, c] = buf[offset + Σ b_d batch_strides[d] + r*row + c*col]`.
#[derive(Clone, Debug, PartialEq)]
pub struct MatView {
    /// Element offset of the first element.
    pub offset: usize,
    /// Element stride between rows.
    pub row_stride: usize,
    /// Element stride between columns.
    pub col_stride: usize,
    /// Element stride per batch dim (0 where broadcast).
    pub batch_strides: Vec<usize>,
}

/// Activation applied in a matmul/conv epilogue.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// None.
    Identity,
    /// ReLU.
    Relu,
}

/// `C[b] = A[b] (m×k) · B[b] (k×n) (+ bias[j]) (activation)`; C is contiguous `[batch.., m, n]`.
#[derive(Clone, Debug, PartialEq)]
pub struct MatMulKernel {
    /// Batch dims of the output.
    pub batch: Vec<usize>,
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// The contracted length.
    pub k: usize,
    /// View of A (input 0).
    pub a: MatView,
    /// View of B (input 1).
    pub b: MatView,
    /// Element offset into input 2 of a bias row added to every row of C.
    pub bias: Option<usize>,
    /// Activation applied to C.
    pub activation: Activation,
}

/// A convolution or transposed convolution over 1 or 2 spatial dims (1-D uses a height of 1).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvKernel {
    /// Batch.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Input spatial size `[h, w]`.
    pub input: [usize; 2],
    /// Output spatial size `[h, w]`.
    pub output: [usize; 2],
    /// Kernel size `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride.
    pub stride: [usize; 2],
    /// Padding before `[top, left]` (after-padding follows from the output size).
    pub pad: [usize; 2],
    /// Dilation.
    pub dilation: [usize; 2],
    /// Channel groups.
    pub groups: usize,
    /// Whether input 2 is a bias.
    pub bias: bool,
    /// Activation applied to the result.
    pub activation: Activation,
}

/// Max/average pooling of `[n*c, h, w]`.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolKernel {
    /// Batch × channels.
    pub planes: usize,
    /// Input `[h, w]`.
    pub input: [usize; 2],
    /// Output `[h, w]`.
    pub output: [usize; 2],
    /// Window.
    pub kernel: [usize; 2],
    /// Stride.
    pub stride: [usize; 2],
    /// Padding before `[top, left]`.
    pub pad: [usize; 2],
    /// `None` for max pooling, `Some(count_include_pad)` for average pooling.
    pub avg: Option<bool>,
}

/// The time loop of a recurrent layer.
///
/// Inputs: `xproj [T, B, G*H]` (= x W_ihᵀ + b_ih, precomputed by a matmul kernel),
/// `h0 [B, H]`, (`c0 [B, H]`), `w_hh [G*H, H]`, `b_hh [G*H]`.
/// Outputs: `y [T, B, H]` (sequence form only), `h_n`, (`c_n`).
#[derive(Clone, Debug, PartialEq)]
pub struct RecurrentKernel {
    /// The cell.
    pub cell: CellKind,
    /// Time steps (1 for a cell op).
    pub steps: usize,
    /// Batch.
    pub batch: usize,
    /// Hidden size.
    pub hidden: usize,
    /// Whether `y` is an output.
    pub sequence: bool,
}

/// A strided 3-D view `[batch, rows, cols]` for attention operands.
#[derive(Clone, Debug, PartialEq)]
pub struct AttnView {
    /// Element offset.
    pub offset: usize,
    /// Stride per batch dim.
    pub batch_strides: Vec<usize>,
    /// Stride between rows (sequence positions).
    pub row_stride: usize,
}

/// Scaled dot-product attention `softmax(q kᵀ · scale + mask) v` per batch.
///
/// Inputs `q, k, v`, output `o`; feature columns are contiguous in every view.
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionKernel {
    /// Batch dims (their product is the parallel extent).
    pub batch: Vec<usize>,
    /// Query length.
    pub l: usize,
    /// Key length.
    pub s: usize,
    /// Query/key feature size.
    pub e: usize,
    /// Value feature size.
    pub ev: usize,
    /// Causal mask.
    pub causal: bool,
    /// Score scale.
    pub scale: f32,
    /// Query view.
    pub q: AttnView,
    /// Key view.
    pub k: AttnView,
    /// Value view.
    pub v: AttnView,
    /// Output view.
    pub o: AttnView,
}
