//! Kernel IR of convolutions and pooling.

/// A convolution, transposed convolution or pooling kernel.
#[derive(Clone, Debug, PartialEq)]
pub enum SpatialOp {}
