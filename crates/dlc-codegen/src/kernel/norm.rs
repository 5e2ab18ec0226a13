//! Kernel IR of gathers, one-hot encodings, normalisations and losses.

use dlc_ir::DType;

/// A gather, one-hot, normalisation or loss kernel.
#[derive(Clone, Debug, PartialEq)]
pub enum NormOp {
    /// `out[o, c, i] = x[o, idx[c], i]` with `x` viewed as `[outer, axis_len, inner]`;
    /// inputs `x, idx`. An index outside `0..axis_len` raises `BAD_INDEX`.
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
}
