//! The `.ir` text language: lexer, parser, elaboration to a [`Graph`], the
//! canonical printer, the source formatter and diagnostics.
//!
//! ```
//! use dlc_ir::syntax::{self, Dims};
//!
//! let src = "model m {\n  dim B = 2\n  input x: f32[B, 3]\n  y = relu(x) * 0.5\n  output y\n}\n";
//! let g = syntax::parse_graph(src, &Dims::new()).unwrap();
//! let text = syntax::print(&g);
//! assert_eq!(syntax::parse_graph(&text, &Dims::new()).unwrap(), g);
//! ```
//!
//! The grammar, typing rules and op reference are in `docs/ir.md`.

pub mod ast;
pub mod attrs;
mod comments;
pub mod diagnostic;
pub mod elaborate;
pub mod format;
pub mod lexer;
mod lower;
mod lower_grad;
pub mod parser;
pub mod printer;
pub mod table;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use lower::default_attention_scale;

use crate::graph::Graph;

/// Named-dimension bindings, e.g. `B=64`.
pub type Dims = std::collections::BTreeMap<String, usize>;

/// Parses one model (one model per file).
pub fn parse(source: &str) -> Result<ast::Model, Diagnostics> {
    parser::parse_model(source).map_err(Diagnostics)
}

/// Elaborates a parsed model to a typed graph, binding named dims from `dims`
/// (over the model's defaults). The result passes [`crate::verify()`].
pub fn elaborate(model: &ast::Model, dims: &Dims) -> Result<Graph, Diagnostics> {
    elaborate::elaborate_model(model, dims)
}

/// Parses and elaborates.
pub fn parse_graph(source: &str, dims: &Dims) -> Result<Graph, Diagnostics> {
    elaborate(&parse(source)?, dims)
}

/// Prints a graph as canonical `.ir` text that parses back to an equal graph.
pub fn print(graph: &Graph) -> String {
    printer::print_graph(graph)
}

/// Re-prints source text with canonical spacing, keeping comments, named dims and
/// infix expressions (`dlc fmt`). Idempotent.
pub fn format(source: &str) -> Result<String, Diagnostics> {
    Ok(format::format_model(&parse(source)?))
}
