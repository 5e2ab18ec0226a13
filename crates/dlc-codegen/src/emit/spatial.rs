//! Emitters of convolution and pooling kernels.

use super::builder::KernelBuilder;
use crate::kernel::{Kernel, SpatialOp};

/// Emits the body of a spatial kernel.
pub fn emit(_kb: &mut KernelBuilder, op: &SpatialOp, _k: &Kernel) {
    match *op {}
}
