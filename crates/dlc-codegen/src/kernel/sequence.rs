//! Kernel IR of recurrent layers, the grid LSTM and attention.

/// A recurrent, grid-LSTM or attention kernel.
#[derive(Clone, Debug, PartialEq)]
pub enum SequenceOp {}
