//! The graph verifier: checks the invariants every stage relies on.

use std::collections::HashSet;

use crate::graph::Graph;
use crate::infer::infer;
use crate::op::{ConstValue, Op};
use crate::types::{DType, check_shape};

/// A broken graph invariant (a bug in whichever stage built the graph).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid graph `{graph}`: node {node} ({op}): {message}")]
pub struct VerifyError {
    /// The graph's name.
    pub graph: String,
    /// Index of the offending node.
    pub node: usize,
    /// The node's op name.
    pub op: &'static str,
    /// What is wrong.
    pub message: String,
}

/// Checks that `g` is well formed:
///
/// - node order is topological (every operand comes from an earlier node);
/// - operand counts and types agree with shape inference, result types are stored;
/// - sources have no operands, constants hold as many values as their type needs;
/// - result names are unique and non-empty, outputs refer to existing values;
/// - every shape is within dlc's limits.
pub fn verify(g: &Graph) -> Result<(), VerifyError> {
    let mut names = HashSet::new();
    for id in g.node_ids() {
        let node = g.node(id);
        let err = |message: String| VerifyError {
            graph: g.name.clone(),
            node: id.index(),
            op: node.op.name(),
            message,
        };
        let operands = g.operands(id);
        for v in &operands {
            if v.node.index() >= id.index() {
                return Err(err(format!(
                    "operand {v} does not come from an earlier node"
                )));
            }
            if g.try_ty(*v).is_none() {
                return Err(err(format!("operand {v} does not exist")));
            }
        }
        if node.names.len() != node.types.len() {
            return Err(err("names and types differ in number".into()));
        }
        for n in &node.names {
            if n.is_empty() || !names.insert(n.clone()) {
                return Err(err(format!("result name `{n}` is empty or not unique")));
            }
        }
        for t in &node.types {
            check_shape(&t.shape).map_err(|e| err(format!("type {t}: {e}")))?;
        }
        if node.op.is_source() {
            if !operands.is_empty() || node.types.len() != 1 {
                return Err(err("a source has operands or several results".into()));
            }
            if let Op::Const { value } = &node.op {
                let t = &node.types[0];
                let dtype_ok = matches!(
                    (value, t.dtype),
                    (ConstValue::Float(_), DType::F32)
                        | (ConstValue::Int(_), DType::I64)
                        | (ConstValue::Bool(_), DType::Bool)
                );
                if !dtype_ok || value.len() != t.numel() {
                    return Err(err(format!(
                        "constant holds {} values for type {t}",
                        value.len()
                    )));
                }
            }
            continue;
        }
        let arg_types: Vec<_> = operands.iter().map(|&v| g.ty(v).clone()).collect();
        let inferred = infer(&node.op, &arg_types).map_err(|e| err(e.to_string()))?;
        if inferred != node.types {
            return Err(err(format!(
                "stored result types {:?} differ from inferred {:?}",
                node.types, inferred
            )));
        }
    }
    for out in g.outputs() {
        if g.try_ty(out.value).is_none() {
            return Err(VerifyError {
                graph: g.name.clone(),
                node: out.value.node.index(),
                op: "output",
                message: format!("output `{}` refers to a missing value", out.name),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::ValueId;
    use crate::op::UnaryOp;
    use crate::types::TensorType;

    #[test]
    fn well_formed_graph_verifies() {
        let mut g = Graph::new("m");
        let x = g
            .add_source(Op::Input, "x", TensorType::f32([3]), None)
            .unwrap();
        let y = g.add_anon(Op::Unary(UnaryOp::Tanh), &[x]).unwrap();
        g.add_output("y", ValueId::first(y));
        verify(&g).unwrap();
    }

    #[test]
    fn bad_constant_is_caught() {
        let mut g = Graph::new("m");
        g.add_source(
            Op::Const {
                value: ConstValue::Float(vec![1.0]),
            },
            "c",
            TensorType::f32([2]),
            None,
        )
        .unwrap();
        assert!(verify(&g).unwrap_err().message.contains("constant"));
    }
}
