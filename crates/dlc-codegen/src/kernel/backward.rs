//! Kernel IR of the backward ops' own kernels.
//!
//! Backward ops lower mostly to GEMMs and copies (see `crate::lower::backward`);
//! these are the pieces in between: the patch matrix of a convolution weight
//! gradient, the pooling and gather gradients, the two row passes of the
//! attention gradient and the backward recurrence of rnn/lstm/gru. Each variant says what one index of its parallel loop
//! owns, so that splitting the loop over threads is race-free.

use dlc_ir::{CellKind, PoolKind};

use super::Window;

/// A kernel of the backward family.
#[derive(Clone, Debug, PartialEq)]
pub enum BackwardOp {
    /// The patch matrix of a convolution: `col[n, oh, ow, c, kh, kw] =
    /// x[n, c, oh·stride + kh·dilation − pad, ...]`, zero in the padding; input
    /// `x` (NCHW), output `col` `[n·oh·ow, c·kh·kw]`. Parallel over the `n · oh`
    /// output rows.
    Im2Col {
        /// Channels of `x`.
        c: usize,
        /// Extents (output: the positions covered), kernel, strides, padding
        /// and dilations.
        window: Window,
    },
    /// The gradient of pooling `planes` planes: inputs `x, dy`, output `dx`
    /// (zeroed, then each `dy` added to the first maximum of its window, or its
    /// share to every in-bounds cell of the window). Parallel over the planes.
    PoolGrad {
        /// Max, or average with its divisor rule.
        kind: PoolKind,
        /// Input height and width.
        input: [usize; 2],
        /// Output height and width.
        output: [usize; 2],
        /// Window height and width.
        kernel: [usize; 2],
        /// Strides.
        stride: [usize; 2],
        /// Padding before the first row/column.
        pad: [usize; 2],
    },
    /// `dx[p, idx[i], :] += dy[p, i, :]` into zeros, `dx` viewed as
    /// `[pre, size, post]`; inputs `dy, idx`. An index outside `0..size` raises
    /// `BAD_INDEX` and is skipped. Parallel over the `pre` slabs.
    ScatterAdd {
        /// Rows of the gathered axis in `dx`.
        size: usize,
        /// Number of indices.
        count: usize,
        /// Elements per row.
        post: usize,
    },
    /// Attention probabilities in place: each row `i` of scores `[rows, cols]`
    /// (per batch) becomes `softmax(scale · s)` over its first `keys(i)`
    /// columns (`min(i + 1, cols)` when causal, else all) and zero after them.
    /// Input and output the same buffer. Parallel over the `batch · rows` rows.
    AttentionProbs {
        /// Query rows per batch.
        rows: usize,
        /// Keys per row.
        cols: usize,
        /// Causal mask.
        causal: bool,
        /// Score scale.
        scale: f32,
    },
    /// The score gradient in place: `ds = scale · p · (dp − Σ_j p·dp)` per row of
    /// `cols`; inputs `p, dp`, output `ds` (the same buffer as `dp`). Parallel
    /// over the rows.
    AttentionScoreGrad {
        /// Keys per row.
        cols: usize,
        /// Score scale.
        scale: f32,
    },
    /// Backpropagation through time of rnn/lstm/gru, one batch row per
    /// parallel index. Inputs `gx [T·B, G·H]` and `gh [T·B, G·H]` (the input-
    /// and hidden-side pre-activations of every step, recomputed by GEMMs),
    /// `h_prev [T·B, H]` (the state entering each step), `c0` (LSTM), `w_hh`,
    /// `dy` (sequences), `dh_n`, `dc_n` (LSTM). Outputs the gate gradients
    /// `dgi [T·B, G·H]`, `dgh` (GRU only; otherwise `dgi` is also the hidden-side
    /// gradient), `dh0`, `dc0` (LSTM; both carry the state gradient during the
    /// loop) and, for the LSTM, scratch `c [(T+1)·B, H]` for the cell states
    /// (recomputed by an elementwise scan first).
    RecurrentBackward {
        /// Which cell.
        cell: CellKind,
        /// Whether `dy` (a gradient for every step's output) is an input.
        sequence: bool,
        /// Time steps (1 for a cell).
        steps: usize,
        /// Batch rows.
        batch: usize,
        /// Hidden units.
        hidden: usize,
    },
    /// Backpropagation through the grid LSTM, one batch row per parallel index
    /// (cells indexed `c = i·Wg + j`, rows of the `[M, ·]` buffers `c·B + b`).
    ///
    /// Inputs `x [M, F]`, `y [M, 2H]` (the forward pass's states), `wt [8H, 2H]`
    /// (the state rows of `w1 | w2`, transposed), `dy [M, 2H]`, `dh_vert,
    /// dm_vert [Wg, B, H]`, `dh_hor, dm_hor [Hg, B, H]`. Outputs: `gates [M, 8H]`
    /// (both directions' gate pre-activations on entry, kept by the forward
    /// kernel; their activations after a forward scan; the gate gradients on
    /// exit), `z [M, F+2H]` (each cell's input `[x, h1 from above, h2 from the
    /// left]`), scratch `m1 [(Hg+1)·Wg·B, H]` and `m2 [Hg·(Wg+1)·B, H]` (the
    /// memories, a zero border before the first row/column), `carry_v [Wg, B,
    /// 2H]` (per column, the direction-1 state gradients `dh | dm`) and `carry_h
    /// [B, 3H]` (the state part of `dz`, whose second half is the direction-2
    /// `dh`, then the direction-2 `dm`).
    GridLstmBackward {
        /// Grid rows `Hg`.
        rows: usize,
        /// Grid columns `Wg`.
        cols: usize,
        /// Batch rows `B`.
        batch: usize,
        /// Input features `F`.
        features: usize,
        /// Hidden units `H`.
        hidden: usize,
    },
}
