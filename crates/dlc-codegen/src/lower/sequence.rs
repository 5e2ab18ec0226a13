//! Lowering of the sequence op family (see `crate::kernel::sequence`).

use dlc_ir::NodeId;

use super::Lower;
use crate::CodegenError;

/// Lowers one node of the family.
pub fn lower(cx: &mut Lower, id: NodeId) -> Result<(), CodegenError> {
    Err(CodegenError::Unsupported(cx.g.node(id).op.name()))
}
