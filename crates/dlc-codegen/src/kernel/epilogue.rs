//! Work a matrix product applies to its own result before any other kernel
//! reads it: the elementwise consumer of the product and a layer normalisation
//! of its rows, fused into the product's kernel by lowering.

use super::ElemKernel;

/// What a [`super::MatMulKernel`] applies to every finished row of C, in
/// order: the elementwise expression, then the row normalisation.
///
/// Its inputs follow the product's own (A, B and the bias, if any) in
/// [`super::Kernel::inputs`]; C stays the first argument after the inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Epilogue {
    /// Number of kernel inputs the epilogue adds.
    pub inputs: usize,
    /// An elementwise expression whose result replaces C. Its iteration shape
    /// is C's shape as the consumer saw it (last dim `n`, the others
    /// multiplying to `batch × m`); its leaves index kernel inputs, except
    /// leaf `c_leaf`, which reads C itself (its `input` is not used).
    pub elem: Option<ElemKernel>,
    /// The leaf of `elem` that reads C (with C's contiguous strides).
    pub c_leaf: usize,
    /// A layer normalisation of each row of `n` elements.
    pub norm: Option<RowNorm>,
}

/// `y = (x - mean) / sqrt(var + eps) · gamma + beta` along each row of C.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowNorm {
    /// Argument index of `gamma` (`[n]`).
    pub gamma: usize,
    /// Argument index of `beta` (`[n]`).
    pub beta: usize,
    /// Added to the variance.
    pub eps: f32,
}
