//! Emitters of recurrent, grid-LSTM and attention kernels.

use super::builder::KernelBuilder;
use crate::kernel::{Kernel, SequenceOp};

/// Emits the body of a sequence kernel.
pub fn emit(_kb: &mut KernelBuilder, op: &SequenceOp, _k: &Kernel) {
    match *op {}
}
