//! Emitters of gather, one-hot, normalisation and loss kernels.

use super::builder::KernelBuilder;
use crate::kernel::{Kernel, NormOp};

/// Emits the body of a norm-family kernel.
pub fn emit(_kb: &mut KernelBuilder, op: &NormOp, _k: &Kernel) {
    match *op {
        NormOp::Gather { .. } => unimplemented!("gather emitter"),
    }
}
