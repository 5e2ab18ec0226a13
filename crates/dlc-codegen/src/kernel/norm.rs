//! Kernel IR of gathers, one-hot encodings, normalisations and losses.
//!
//! Every variant names its inputs and outputs in [`crate::Kernel::inputs`] and
//! [`crate::Kernel::outputs`] order and says what one index of the parallel loop
//! owns, so that splitting the loop over threads is race-free.

use dlc_ir::DType;

/// A gather, one-hot, normalisation or loss kernel.
#[derive(Clone, Debug, PartialEq)]
pub enum NormOp {
    /// `out[o, c, i] = x[o, idx[c], i]` with `x` viewed as `[outer, axis_len, inner]`;
    /// inputs `x, idx`. An index outside `0..axis_len` raises `BAD_INDEX` (and
    /// reads index 0 instead). Parallel over the `outer × count` rows.
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
    /// `out[n, d] = (idx[n] == d) as f32` (a zero row for an index outside
    /// `0..depth`); input `idx`. Parallel over the `count` rows.
    OneHot {
        /// Number of indices.
        count: usize,
        /// Row length.
        depth: usize,
    },
    /// Batch normalisation of `x` viewed as `[outer, channels, inner]` over axis 1;
    /// inputs `x, gamma, beta, running mean, running var`.
    ///
    /// Inference (`momentum: None`) writes `y = (x - mean[c]) / sqrt(var[c] + eps)
    /// · gamma[c] + beta[c]` with the running statistics, in parallel over the
    /// `outer × channels` rows (over `outer` when `inner == 1`). Training writes
    /// `y` normalised with each channel's batch mean and biased variance, then the
    /// new running mean and variance (`(1 - momentum)·running + momentum·batch`,
    /// the variance unbiased by `M / (M - 1)`), in parallel over the channels.
    BatchNorm {
        /// The batch dim.
        outer: usize,
        /// The channel dim (axis 1).
        channels: usize,
        /// Product of the dims after the channels.
        inner: usize,
        /// Added to the variance.
        eps: f32,
        /// The training form's running-statistics momentum.
        momentum: Option<f32>,
    },
    /// Layer normalisation of `x` viewed as `[rows, len]` along `len`; inputs
    /// `x, gamma, beta` (`[len]` each), output `y`. Parallel over the rows.
    LayerNorm {
        /// Number of rows.
        rows: usize,
        /// Row length (the product of the normalised dims).
        len: usize,
        /// Added to the variance.
        eps: f32,
    },
    /// `out[b] = Σ_{i in block b} (p[i] - t[i])² / divisor` over blocks of `block`
    /// elements of `len`; inputs `p, t`. Parallel over the blocks.
    SquaredError {
        /// Number of elements.
        len: usize,
        /// Elements per block (the last block may be shorter).
        block: usize,
        /// Divides each block's sum.
        divisor: f32,
    },
    /// `out[n] = max_c x[n] - x[n, label[n]] + log Σ_c exp(x[n, c] - max_c x[n])`,
    /// the cross-entropy of each row of logits `[rows, classes]`; inputs `x, labels`.
    /// A label outside `0..classes` raises `BAD_LABEL`. Parallel over the rows.
    CrossEntropyRows {
        /// Number of rows.
        rows: usize,
        /// Number of classes.
        classes: usize,
    },
}
