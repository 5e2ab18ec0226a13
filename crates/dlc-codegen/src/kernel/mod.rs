//! The kernel IR: what lowering produces and the emitters consume.
//!
//! A [`Kernel`] is one JIT-compiled function. It reads and writes whole
//! [`Buffer`]s named by [`BufId`]; every shape, stride and offset it needs is a
//! constant here, so the generated code has no shape arithmetic at run time.
//! Each kernel may be split over threads along one outer loop of extent
//! [`Kernel::parallel`]: the compiled function receives a sub-range of it.

mod backward;
mod epilogue;
mod norm;
mod sequence;
mod spatial;

use dlc_ir::{BinaryOp, DType, NodeId, ReduceKind, UnaryOp};

pub use backward::BackwardOp;
pub use epilogue::{Epilogue, RowNorm};
pub use norm::NormOp;
pub use sequence::SequenceOp;
pub use spatial::{
    NATIVE_CONV_MAX_BLOCK, NATIVE_CONV_PACK_MAX, SpatialOp, Window, native_conv_vectors,
};

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
    /// A strided copy (transpose, slice, broadcast, concat piece).
    Copy(CopyKernel),
    /// (Batched) matrix product with arbitrary operand strides and an optional bias row.
    MatMul(MatMulKernel),
    /// Gather, one-hot, normalisation and loss kernels.
    Norm(NormOp),
    /// Convolution, transposed convolution and pooling kernels.
    Spatial(SpatialOp),
    /// Recurrent, grid-LSTM and attention kernels.
    Sequence(SequenceOp),
    /// The backward ops' own kernels (patch matrices, pooling and gather
    /// gradients, attention gradient rows, backpropagation through time).
    Backward(BackwardOp),
}

impl KernelOp {
    /// Bytes of private scratch memory each calling thread needs (packing buffers).
    pub fn scratch_bytes(&self) -> usize {
        match self {
            KernelOp::MatMul(m) => m.scratch_bytes(),
            KernelOp::Spatial(SpatialOp::Conv { gemm: Some(b), .. }) => b.scratch_bytes(),
            KernelOp::Spatial(op) => 4 * op.scratch_elems(),
            KernelOp::Sequence(s) => s.scratch_bytes(),
            _ => 0,
        }
    }
}

/// A read of one kernel input inside an elementwise expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Leaf {
    /// Position in [`Kernel::inputs`].
    pub input: usize,
    /// Element stride per iteration dim (0 where the input is broadcast).
    pub strides: Vec<usize>,
    /// Element offset of the first element read (non-zero for a slice read in place).
    pub offset: usize,
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

/// Cache blocking of the packed GEMM (BLIS-style loops `jc → pc → ic → jr → ir`).
///
/// `kc × nr` floats of a packed B panel stay in L1 (16/32 KiB at kc 256, nr 16/32),
/// the `mc × kc` packed A block in L2 (72 KiB), the `kc × nc` packed B block in
/// L2/L3 (1 MiB); see docs/kernels.md for the measurements behind the choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocking {
    /// Rows of A per block (a multiple of every tier's `MR`).
    pub mc: usize,
    /// Depth of a block.
    pub kc: usize,
    /// Columns of B per block (a multiple of every tier's `NR`).
    pub nc: usize,
}

impl Blocking {
    /// Per-thread scratch of a packed GEMM: packed A block, packed B block, one edge tile.
    pub fn scratch_bytes(&self) -> usize {
        4 * (self.mc * self.kc + self.kc * self.nc + GEMM_MR * GEMM_NR_MAX)
    }
}

/// Rows of every GEMM micro-kernel tile.
pub const GEMM_MR: usize = 6;
/// The widest micro-kernel tile of any tier (sizes scratch for all of them).
pub const GEMM_NR_MAX: usize = 32;

/// Whether the packed, cache-blocked GEMM runs an `m×k · k×n` product (else
/// the row-panel kernel, cheaper for thin or tiny products).
pub fn gemm_packed(m: usize, n: usize, k: usize) -> bool {
    m >= 16 && n >= 16 && k >= 16
}

impl MatMulKernel {
    /// Whether the packed, cache-blocked GEMM runs this product ([`gemm_packed`]).
    pub fn packed(&self) -> bool {
        gemm_packed(self.m, self.n, self.k)
    }

    /// Whether the parallel loop splits columns (thin, wide products) rather than rows.
    pub fn split_columns(&self) -> bool {
        self.m < 4 * GEMM_MR && self.n >= 4 * GEMM_NR_MAX
    }

    /// The extent of the parallel loop: row panels of `GEMM_MR`, column panels of
    /// `GEMM_NR_MAX`, or (unpacked) rows.
    pub fn parallel(&self) -> usize {
        if !self.packed() {
            self.batch.iter().product::<usize>() * self.m
        } else if self.split_columns() {
            self.n.div_ceil(GEMM_NR_MAX)
        } else {
            self.m.div_ceil(GEMM_MR)
        }
    }

    /// Argument index of C: the first after A, B, the bias and the epilogue's inputs.
    pub fn c_arg(&self) -> usize {
        2 + self.bias.is_some() as usize + self.epilogue.as_ref().map_or(0, |e| e.inputs)
    }

    /// Block sizes for this product.
    pub fn blocking(&self) -> Blocking {
        let round = |x: usize, q: usize| x.div_ceil(q) * q;
        Blocking {
            mc: round(self.m, GEMM_MR).min(72),
            kc: self.k.min(256),
            nc: round(self.n, GEMM_NR_MAX).min(1024),
        }
    }

    /// Per-thread scratch: packed A block, packed B block, one edge tile.
    pub fn scratch_bytes(&self) -> usize {
        if !self.packed() {
            return 0;
        }
        self.blocking().scratch_bytes()
    }
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
    /// Consumers of C fused into this kernel (applied after the bias and activation).
    pub epilogue: Option<Box<Epilogue>>,
}
