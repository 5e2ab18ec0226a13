//! Deliberate miscompilations, for testing the differential fuzzer (`dlc fuzz`)
//! and its reducer: a known bug they must catch and shrink.
//!
//! Nothing here runs unless [`CodegenOptions::fault`](crate::CodegenOptions::fault)
//! is set, which only the hidden `--inject-fault` flag of `dlc fuzz` and
//! `dlc reduce` (and tests) do.

use crate::kernel::{ElemNode, KernelOp};
use crate::{Kernel, Lowered};
use dlc_ir::{BinaryOp, DType};

/// A deliberate miscompilation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Emits f32 elementwise `sub` as `add`.
    SubAsAdd,
}

impl Fault {
    /// Every fault, for the command line.
    pub const ALL: [Fault; 1] = [Fault::SubAsAdd];

    /// The fault's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::SubAsAdd => "sub-as-add",
        }
    }
}

/// Applies `fault` to the lowered kernels.
pub(crate) fn inject(lowered: &mut Lowered, fault: Fault) {
    for k in &mut lowered.kernels {
        apply(k, fault);
    }
}

fn apply(k: &mut Kernel, fault: Fault) {
    let KernelOp::Elementwise(e) = &mut k.op else {
        return;
    };
    for (node, dtype) in e.nodes.iter_mut().zip(&e.dtypes) {
        if let (Fault::SubAsAdd, &ElemNode::Binary(BinaryOp::Sub, a, b), DType::F32) =
            (fault, &*node, dtype)
        {
            *node = ElemNode::Binary(BinaryOp::Add, a, b);
        }
    }
}
