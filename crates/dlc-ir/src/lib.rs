//! dlc's intermediate representation.
//!
//! - [`types`]: dtypes, tensor types, broadcasting and shape limits;
//! - [`op`]: the operator set with typed attributes;
//! - [`infer`]: type and shape inference for every op;
//! - [`graph`]: the typed petgraph dataflow graph;
//! - [`verify`]: the graph invariants;
//! - [`init`]: parameter initialisers and the deterministic random stream;
//! - [`syntax`]: the `.ir` text language: lexer, parser, elaboration to a graph,
//!   the canonical printer, the source formatter and diagnostics.
//!
//! This crate depends on no other dlc crate.
#![deny(missing_docs)]

pub mod graph;
pub mod infer;
mod infer_grad;
pub mod init;
pub mod op;
pub mod span;
pub mod syntax;
pub mod types;
pub mod verify;

pub use graph::{BuildError, Graph, Node, NodeId, Output, ValueId};
pub use infer::{TypeError, infer};
pub use init::Init;
pub use op::{
    BinaryOp, CellKind, ConstValue, ConvAttrs, ConvTransposeAttrs, Op, PoolAttrs, PoolKind,
    ReduceKind, SliceRange, UnaryOp,
};
pub use span::Span;
pub use types::{DType, TensorType};
pub use verify::{VerifyError, verify};
