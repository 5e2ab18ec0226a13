//! Kernel IR of convolutions and pooling.
//!
//! Layouts are NCHW and every kernel is 2-D: a 1-D op has height 1 (input,
//! output and kernel height 1, stride and dilation 1, no padding). Spatial
//! attributes are `[height, width]` pairs.
//!
//! Each parallel index owns a disjoint set of output elements: one run of
//! output rows of one plane (pooling) or of one block of output channels of one
//! image (convolutions). A transposed convolution splits each of its row phases
//! (rows `r, r + stride, ...`) into the same number of runs.

use dlc_ir::PoolKind;

use super::{Activation, Blocking};

/// The most output channels a block of the native direct convolution computes.
pub const NATIVE_CONV_MAX_BLOCK: usize = 12;

/// ymm vectors of 8 output columns per block of the native direct convolution
/// with `ob` output channels: as many as fit the 16 registers with `ob × nv`
/// accumulators, `nv` input vectors and one broadcast weight, at most 3.
pub fn native_conv_vectors(ob: usize) -> usize {
    (1..=3).rev().find(|&nv| ob * nv + nv < 16).unwrap_or(1)
}

/// The largest weight tensor (bytes) the native direct convolution copies into
/// its scratch, block-interleaved, so that a tap's weights for the block's
/// output channels are adjacent (one pointer for every broadcast).
pub const NATIVE_CONV_PACK_MAX: usize = 64 * 1024;

impl SpatialOp {
    /// The largest block output (`oc_block · oh · ow · 4` bytes) a convolution
    /// keeps in its scratch to pool it (see `SpatialOp::Conv::pool`): L1-sized.
    pub const POOL_FUSE_MAX: usize = 32 * 1024;

    /// The register tile of the native direct convolution with `ob` output
    /// channels over output rows `width` columns wide: `(nv, nr)`, `nv` ymm vectors
    /// of 8 columns (as many as fit the 16 registers with `ob × nv` accumulators,
    /// `nv` input vectors and one broadcast weight, at most 3, and no more than the
    /// row holds) × `nr` output rows, up to 3 while the `ob × nv × nr`
    /// accumulators, the smaller of the `ob` broadcasts and the `nv × nr` input
    /// vectors, and one more register fit 15 (with all 16 in use the compiler
    /// spilled an accumulator: LeNet's second conv as 4 × 1 × 3 ran 1.3× slower
    /// than 8 × 1 × 1). The rows of a tile share every weight broadcast.
    pub fn native_conv_tile(ob: usize, width: usize) -> (usize, usize) {
        let nv = native_conv_vectors(ob).min((width / 8).max(1));
        let nr = (1..=3)
            .rev()
            .find(|&nr| ob * nv * nr + ob.min(nv * nr) < 15)
            .unwrap_or(1);
        (nv, nr)
    }

    /// Elements of a direct kernel's per-thread scratch: the packed weights
    /// ([`SpatialOp::packed_weights`]), then for a pooled convolution the
    /// block's conv output `[oc_block, oh, ow]`.
    pub fn scratch_elems(&self) -> usize {
        let packed = self.packed_weights().unwrap_or(0);
        match *self {
            SpatialOp::Conv {
                oc_block,
                pool,
                window,
                gemm: None,
                ..
            } if pool > 1 => packed + oc_block * window.output[0] * window.output[1],
            _ => packed,
        }
    }

    /// Elements of the block-interleaved weight copy of a direct convolution
    /// (`c_out · c_in/groups · kh · kw`), when it fits
    /// [`NATIVE_CONV_PACK_MAX`]; the native tier packs its weights there.
    pub fn packed_weights(&self) -> Option<usize> {
        match *self {
            SpatialOp::Conv {
                c_in,
                c_out,
                groups,
                window,
                gemm: None,
                ..
            } => {
                let n = c_out * (c_in / groups) * window.kernel[0] * window.kernel[1];
                (4 * n <= NATIVE_CONV_PACK_MAX).then_some(n)
            }
            _ => None,
        }
    }
}

/// The geometry of a 2-D window op over NCHW images, as `[height, width]` pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Input height and width.
    pub input: [usize; 2],
    /// Output height and width (the positions covered).
    pub output: [usize; 2],
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Strides.
    pub stride: [usize; 2],
    /// Padding before the first row/column.
    pub pad: [usize; 2],
    /// Distances between kernel taps.
    pub dilation: [usize; 2],
}

/// A convolution, transposed convolution or pooling kernel.
#[derive(Clone, Debug, PartialEq)]
pub enum SpatialOp {
    /// `out[n, o] = act(bias[o] + Σ w ⋆ x)`; inputs `x, w[, bias]`, output contiguous NCHW.
    ///
    /// Weights are OIHW `[c_out, c_in/groups, kh, kw]` for a convolution and IOHW
    /// `[c_in, c_out/groups, kh, kw]` for a transposed convolution, which scatters
    /// input `i` through tap `k` to output `i·stride + k·dilation − pad`.
    Conv {
        /// Batch size.
        n: usize,
        /// Input channels.
        c_in: usize,
        /// Output channels.
        c_out: usize,
        /// Channel groups (dividing both channel counts).
        groups: usize,
        /// Output channels computed together (dividing `c_out / groups`).
        oc_block: usize,
        /// Runs the output rows are split into; the parallel loop runs over the
        /// `n · c_out / oc_block · row_chunks` (image, channel block, run) triples.
        row_chunks: usize,
        /// Extents, kernel, strides, padding (transposed: rows/columns
        /// cropped) and dilations.
        window: Window,
        /// A transposed convolution (IOHW weights).
        transposed: bool,
        /// Whether input 2 is a bias `[c_out]`.
        bias: bool,
        /// Activation applied at the store.
        activation: Activation,
        /// Max pooling of `pool × pool` windows at stride `pool` (no padding,
        /// direct kernels only) applied to the result before it is stored (1:
        /// none): the output is `[n, c_out, oh / pool, ow / pool]`. Each
        /// block's conv rows go to the scratch first ([`SpatialOp::POOL_FUSE_MAX`] bytes
        /// at most).
        pool: usize,
        /// `Some` when the convolution runs as implicit GEMMs through the packed
        /// micro-kernels (per image and group, `C[og, oh·ow] = W[og, cg·kh·kw] ·
        /// im2col(x)`), with this blocking (`kc` a multiple of `kh·kw`); then the
        /// parallel loop runs over `n · groups · ⌈oh·ow / GEMM_NR_MAX⌉` (image,
        /// group, column panel) triples and `oc_block`/`row_chunks` are unused.
        gemm: Option<Blocking>,
    },
    /// Max (padding never wins) or average pooling of `planes` (= N·C) planes; input `x`.
    Pool {
        /// Max, or average with its divisor rule.
        kind: PoolKind,
        /// Number of independent planes.
        planes: usize,
        /// Runs the output rows are split into; the parallel loop runs over the
        /// `planes · row_chunks` (plane, run) pairs.
        row_chunks: usize,
        /// Extents, window, strides and padding before the first row/column
        /// (dilation 1).
        window: Window,
    },
}
