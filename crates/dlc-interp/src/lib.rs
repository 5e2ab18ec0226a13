//! dlc's reference interpreter: evaluates any graph on ndarray, in f32 or f64.
//!
//! It is the oracle every compiled kernel, rewrite and gradient is checked
//! against, so every op is written directly from its definition, favouring
//! obvious correctness over speed:
//!
//! - [`run`] evaluates a graph and returns its outputs by name;
//! - [`run_all`] returns the results of every node (for debugging and
//!   differential tests of intermediate values);
//! - both are generic over the [`Float`] type: `f32` (what the JIT computes) or
//!   `f64` (for finite-difference gradient checks).
//!
//! Inputs and parameters are checked against the graph before anything is
//! evaluated. Runtime failures a verified graph can still meet (an index or label
//! out of range) are errors, never panics; NaN and infinity propagate as in IEEE
//! arithmetic.
//!
//! The kernels live in one private module per op family: elementwise ops,
//! matrix products, convolutions, pooling, reductions and softmax, data
//! movement, normalisation, losses, recurrent layers (with the grid LSTM) and
//! attention; `eval` dispatches a node to its kernel.
//!
//! Semantics worth knowing beyond the op docs in [`dlc_ir::Op`]: softmax,
//! log-softmax and cross-entropy subtract the maximum; softplus is
//! `max(x, 0) + log1p(exp(-|x|))`; gelu uses `erf` from `libm`; reduce max/min,
//! `maximum`/`minimum`, clamp and max pooling propagate NaN; argmax takes the
//! first maximum (a NaN counts as the maximum); i64 add/sub/mul wrap; dropout
//! keeps element `i` (row-major) iff [`dlc_ir::init::dropout_keep`] says so,
//! scales kept values by `1/(1-p)` and writes exact zeros elsewhere; casts from
//! float to i64 truncate toward zero and saturate (NaN → 0).
#![deny(missing_docs)]

mod array;
mod attention;
mod backward;
mod conv;
mod elementwise;
mod eval;
mod float;
mod linalg;
mod loss;
mod norm;
mod pool;
mod recurrent;
mod recurrent_grad;
mod reduce;
mod shape;

use dlc_ir::{Graph, VerifyError};
use dlc_tensor::{Env, Value, ValueError};

pub use float::Float;

/// Why a graph could not be evaluated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InterpError {
    /// An input or parameter is missing, unknown, or of the wrong type (checked
    /// before anything is evaluated).
    #[error(transparent)]
    Value(#[from] ValueError),
    /// The graph breaks an invariant of [`dlc_ir::verify()`] (checked first).
    #[error(transparent)]
    Graph(#[from] VerifyError),
    /// An op failed on the values it received, e.g. an index out of range.
    #[error("{op} (node `{node}`): {message}")]
    Runtime {
        /// The op's name.
        op: &'static str,
        /// The name of the node's first result.
        node: String,
        /// What went wrong.
        message: String,
    },
}

/// Runs the graph forward; returns every graph output by its output name.
pub fn run<F: Float>(
    graph: &Graph,
    inputs: &Env<F>,
    params: &Env<F>,
) -> Result<Env<F>, InterpError> {
    let results = run_all(graph, inputs, params)?;
    let mut env = Env::new();
    for out in graph.outputs() {
        let value = results
            .get(out.value.node.index())
            .and_then(|r| r.get(out.value.result as usize))
            .ok_or_else(|| InterpError::Runtime {
                op: "output",
                node: out.name.clone(),
                message: format!("output refers to the missing value {}", out.value),
            })?;
        env.insert(out.name.clone(), value.clone());
    }
    Ok(env)
}

/// Like [`run`], but returns the results of every node (indexed by node index,
/// one [`Value`] per result).
pub fn run_all<F: Float>(
    graph: &Graph,
    inputs: &Env<F>,
    params: &Env<F>,
) -> Result<Vec<Vec<Value<F>>>, InterpError> {
    dlc_ir::verify(graph)?;
    dlc_tensor::check_inputs(graph, inputs)?;
    dlc_tensor::check_params(graph, params)?;
    let mut results: Vec<Vec<Value<F>>> = Vec::with_capacity(graph.len());
    for id in graph.node_ids() {
        let node = graph.node(id);
        let operands = graph.operands(id);
        // The verifier guarantees operands come from earlier nodes.
        let args: Vec<&Value<F>> = operands
            .iter()
            .map(|v| &results[v.node.index()][v.result as usize])
            .collect();
        let out = eval::eval_node(node, &args, inputs, params).map_err(|message| {
            InterpError::Runtime {
                op: node.op.name(),
                node: node.names.first().cloned().unwrap_or_default(),
                message,
            }
        })?;
        results.push(out);
    }
    Ok(results)
}

#[cfg(test)]
mod tests;
