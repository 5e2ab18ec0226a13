//! Kernel IR of recurrent layers, the grid LSTM and attention.
//!
//! Each of these ops lowers to GEMMs for the parts that have no sequential
//! dependence (input projections, the output projection) and one kernel here
//! that loops over time steps, grid cells or key blocks. The loops are real
//! loops: code size does not depend on the sequence length.

use dlc_ir::CellKind;

use super::MatView;

/// A recurrent, grid-LSTM or attention kernel.
#[derive(Clone, Debug, PartialEq)]
pub enum SequenceOp {
    /// The recurrence of an rnn/lstm/gru layer, one batch row per parallel index.
    ///
    /// Inputs: `gx [T, B, G*H]` (`x W_ihᵀ + b_ih`, gate blocks in PyTorch order),
    /// `h0 [B, H]`, (`c0 [B, H]`,) `w_hh [G*H, H]`, `b_hh [G*H]`.
    /// Outputs, sequence form: `y [T, B, H]`, `h_n`, (`c_n`); the state lives in
    /// `h_n`/`c_n` between steps. Cell form (`T = 1`): `h1`, (`c1`). Last, a
    /// scratch `[B, G*H]` for one step's `h W_hhᵀ + b_hh`.
    Recurrent {
        /// Which cell.
        cell: CellKind,
        /// Sequence form (writes `y`) or a single step.
        sequence: bool,
        /// Time steps `T` (1 for the cell form).
        steps: usize,
        /// Batch size `B`.
        batch: usize,
        /// Hidden size `H`.
        hidden: usize,
    },
    /// The 2-D grid LSTM, one batch row per parallel index; cells in row-major order.
    ///
    /// Inputs: `gx1, gx2 [Hg, Wg, B, 4H]` (`x · w_d[..F] + b_d`), `w1, w2 [F+2H, 4H]`.
    /// Outputs: `y [Hg, Wg, B, 2H]`, `h_vert, m_vert [Wg, B, H]`, `h_hor, m_hor
    /// [Hg, B, H]`, and a scratch `[B, 2, 4H]` for one cell's gates (`[M, 2, 4H]`
    /// for every cell `M = Hg·Wg·B` when `keep_gates`). While the
    /// grid is swept, the direction-1 state of column `j` lives in
    /// `h_vert[j]`/`m_vert[j]` and the direction-2 state of row `i` in
    /// `h_hor[i]`/`m_hor[i]`.
    GridLstm {
        /// Grid rows `Hg`.
        rows: usize,
        /// Grid columns `Wg`.
        cols: usize,
        /// Batch size `B`.
        batch: usize,
        /// Input features `F` (the state rows of `w_d` start at row `F`).
        features: usize,
        /// Hidden size `H`.
        hidden: usize,
        /// Keep every cell's gate pre-activations (for the backward pass).
        keep_gates: bool,
    },
    /// `o = softmax(q kᵀ · scale) v` per batch index, streaming over key blocks
    /// (running maximum and sum per query row), so no `L × S` matrix is stored.
    ///
    /// Inputs `q, k, v`; output `o`; the thread's scratch holds one query
    /// block's working set ([`SequenceOp::scratch_bytes`]). Every view has
    /// column stride 1; each (batch index, block of `ATTENTION_QUERY_BLOCK`
    /// query rows) is one parallel index, batch indices flattened over `batch`.
    Attention {
        /// Batch dims (for multi-head attention `[N, heads]`).
        batch: Vec<usize>,
        /// Query rows `L`.
        queries: usize,
        /// Key rows `S`.
        keys: usize,
        /// Query/key width `E`.
        depth: usize,
        /// Value width `Ev`.
        value_depth: usize,
        /// Score scale.
        scale: f32,
        /// Query `i` attends key `j` only when `j <= i`.
        causal: bool,
        /// Views of `q`, `k`, `v` (inputs 0-2) and `o` (output 0).
        views: Box<[MatView; 4]>,
    },
}

impl SequenceOp {
    /// Keys scored per block of the attention's online softmax.
    pub const ATTENTION_KEY_BLOCK: usize = 64;

    /// Query rows per parallel index of the attention (divides the key block,
    /// so every query row of a block has a visible key in every key block a
    /// causal mask leaves).
    pub const ATTENTION_QUERY_BLOCK: usize = 32;

    /// Bytes of private scratch memory each calling thread needs: for the
    /// attention, one query block's scaled transposed queries (`E × QB`), its
    /// scores or weights against one key block (`KB × QB`, keys major), and its
    /// running maxima, sums and rescale factors (`3 × QB`).
    pub fn scratch_bytes(&self) -> usize {
        match self {
            SequenceOp::Attention { depth, .. } => {
                4 * Self::ATTENTION_QUERY_BLOCK * (depth + Self::ATTENTION_KEY_BLOCK + 3)
            }
            _ => 0,
        }
    }
}
