//! The typed dataflow graph every stage consumes and produces.
//!
//! Nodes are ops with their attributes, result names and result types; edges carry
//! values from a producer's result to a consumer's operand slot. Node indices are a
//! topological order: a node is only ever added after all of its operands, and
//! transforms build new graphs rather than delete nodes. The verifier checks this.

use std::collections::HashMap;
use std::fmt;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::infer::{TypeError, infer};
use crate::op::Op;
use crate::span::Span;
use crate::types::TensorType;

/// Identifies a node of a [`Graph`].
pub type NodeId = NodeIndex<u32>;

/// One result of one node: the unit of dataflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId {
    /// The producing node.
    pub node: NodeId,
    /// Which of its results.
    pub result: u32,
}

impl ValueId {
    /// The first (often only) result of `node`.
    pub fn first(node: NodeId) -> ValueId {
        ValueId { node, result: 0 }
    }
}

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}.{}", self.node.index(), self.result)
    }
}

/// A node: an op, the names of its results and their types.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What the node computes.
    pub op: Op,
    /// One name per result (unique within the graph).
    pub names: Vec<String>,
    /// One type per result.
    pub types: Vec<TensorType>,
    /// Where the node came from in the source text, if anywhere.
    pub span: Option<Span>,
}

/// An edge: which result of the source feeds which operand slot of the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    /// Result index of the producer.
    pub result: u32,
    /// Operand position in the consumer.
    pub operand: u32,
}

/// A named output of the graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The name users see (and that `.npz` outputs are keyed by).
    pub name: String,
    /// The value returned.
    pub value: ValueId,
}

/// A model: a typed dataflow graph with named inputs, parameters and outputs.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// The model's name.
    pub name: String,
    graph: DiGraph<Node, Edge, u32>,
    outputs: Vec<Output>,
    by_name: HashMap<String, ValueId>,
}

/// Why a node could not be added to a graph.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BuildError {
    /// The op does not accept its operands.
    #[error(transparent)]
    Type(#[from] TypeError),
    /// A result name is already taken.
    #[error("`{0}` is defined twice")]
    DuplicateName(String),
    /// The number of names does not match the number of results.
    #[error("{op} returns {results} value(s), but {names} name(s) were given")]
    NameCount {
        /// The op.
        op: &'static str,
        /// Results the op produces.
        results: usize,
        /// Names given.
        names: usize,
    },
    /// An operand refers to a value that does not exist.
    #[error("operand {0} does not exist")]
    DanglingOperand(ValueId),
}

impl Graph {
    /// An empty graph called `name`.
    pub fn new(name: impl Into<String>) -> Graph {
        Graph {
            name: name.into(),
            ..Graph::default()
        }
    }

    /// Adds a source node (input, parameter or constant) of a declared type.
    pub fn add_source(
        &mut self,
        op: Op,
        name: impl Into<String>,
        ty: TensorType,
        span: Option<Span>,
    ) -> Result<ValueId, BuildError> {
        debug_assert!(op.is_source());
        self.push(op, vec![], vec![name.into()], vec![ty], span)
            .map(ValueId::first)
    }

    /// Adds an op node: infers its result types from the operands.
    pub fn add_op(
        &mut self,
        op: Op,
        operands: &[ValueId],
        names: Vec<String>,
        span: Option<Span>,
    ) -> Result<NodeId, BuildError> {
        let mut types = Vec::with_capacity(operands.len());
        for &v in operands {
            types.push(
                self.try_ty(v)
                    .ok_or(BuildError::DanglingOperand(v))?
                    .clone(),
            );
        }
        let results = infer(&op, &types)?;
        self.push(op, operands.to_vec(), names, results, span)
    }

    /// Adds an op node with generated names (`_N`) for its results.
    pub fn add_anon(&mut self, op: Op, operands: &[ValueId]) -> Result<NodeId, BuildError> {
        let n = self.graph.node_count();
        let names = (0..results_hint(&op))
            .map(|i| self.fresh_name(n, i))
            .collect();
        match self.add_op(op.clone(), operands, names, None) {
            Err(BuildError::NameCount { results, .. }) => {
                let names = (0..results).map(|i| self.fresh_name(n, i)).collect();
                self.add_op(op, operands, names, None)
            }
            r => r,
        }
    }

    /// A name of the form `_N` (or `_N_i` for later results) not yet taken.
    fn fresh_name(&self, node: usize, result: usize) -> String {
        let base = if result == 0 {
            format!("_{node}")
        } else {
            format!("_{node}_{result}")
        };
        let mut name = base.clone();
        let mut k = 0;
        while self.by_name.contains_key(&name) {
            k += 1;
            name = format!("{base}__{k}");
        }
        name
    }

    fn push(
        &mut self,
        op: Op,
        operands: Vec<ValueId>,
        names: Vec<String>,
        types: Vec<TensorType>,
        span: Option<Span>,
    ) -> Result<NodeId, BuildError> {
        if names.len() != types.len() {
            return Err(BuildError::NameCount {
                op: op.name(),
                results: types.len(),
                names: names.len(),
            });
        }
        for (i, n) in names.iter().enumerate() {
            if self.by_name.contains_key(n) || names[..i].contains(n) {
                return Err(BuildError::DuplicateName(n.clone()));
            }
        }
        let id = self.graph.add_node(Node {
            op,
            names: names.clone(),
            types,
            span,
        });
        for (i, n) in names.into_iter().enumerate() {
            self.by_name.insert(
                n,
                ValueId {
                    node: id,
                    result: i as u32,
                },
            );
        }
        for (slot, v) in operands.into_iter().enumerate() {
            self.graph.add_edge(
                v.node,
                id,
                Edge {
                    result: v.result,
                    operand: slot as u32,
                },
            );
        }
        Ok(id)
    }

    /// Marks a value as a graph output under `name`.
    pub fn add_output(&mut self, name: impl Into<String>, value: ValueId) {
        self.outputs.push(Output {
            name: name.into(),
            value,
        });
    }

    /// Replaces the output list.
    pub fn set_outputs(&mut self, outputs: Vec<Output>) {
        self.outputs = outputs;
    }

    /// The graph's outputs in order.
    pub fn outputs(&self) -> &[Output] {
        &self.outputs
    }

    /// The node with id `id`.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.graph[id]
    }

    /// Renames a value (names stay unique).
    pub fn rename(&mut self, v: ValueId, name: impl Into<String>) -> Result<(), BuildError> {
        let name = name.into();
        if let Some(&other) = self.by_name.get(&name) {
            return if other == v {
                Ok(())
            } else {
                Err(BuildError::DuplicateName(name))
            };
        }
        let old = std::mem::replace(
            &mut self.graph[v.node].names[v.result as usize],
            name.clone(),
        );
        self.by_name.remove(&old);
        self.by_name.insert(name, v);
        Ok(())
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// All node ids in topological (= insertion) order.
    pub fn node_ids(&self) -> impl DoubleEndedIterator<Item = NodeId> + ExactSizeIterator + '_ {
        self.graph.node_indices()
    }

    /// The operands of a node, in operand order.
    pub fn operands(&self, id: NodeId) -> Vec<ValueId> {
        let mut ops: Vec<(u32, ValueId)> = self
            .graph
            .edges_directed(id, Direction::Incoming)
            .map(|e| {
                (
                    e.weight().operand,
                    ValueId {
                        node: e.source(),
                        result: e.weight().result,
                    },
                )
            })
            .collect();
        ops.sort_by_key(|(slot, _)| *slot);
        ops.into_iter().map(|(_, v)| v).collect()
    }

    /// The nodes that consume any result of `id` (may repeat when used twice).
    pub fn users(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.graph
            .edges_directed(id, Direction::Outgoing)
            .map(|e| e.target())
    }

    /// Number of uses of a value by nodes (graph outputs not counted).
    pub fn use_count(&self, v: ValueId) -> usize {
        self.graph
            .edges_directed(v.node, Direction::Outgoing)
            .filter(|e| e.weight().result == v.result)
            .count()
    }

    /// The type of a value.
    ///
    /// # Panics
    /// If the value does not belong to this graph.
    pub fn ty(&self, v: ValueId) -> &TensorType {
        &self.graph[v.node].types[v.result as usize]
    }

    /// The type of a value, or `None` if it is not in this graph.
    pub fn try_ty(&self, v: ValueId) -> Option<&TensorType> {
        self.graph
            .node_weight(v.node)
            .and_then(|n| n.types.get(v.result as usize))
    }

    /// The name of a value.
    pub fn value_name(&self, v: ValueId) -> &str {
        &self.graph[v.node].names[v.result as usize]
    }

    /// Looks a value up by name.
    pub fn lookup(&self, name: &str) -> Option<ValueId> {
        self.by_name.get(name).copied()
    }

    /// The runtime inputs, in declaration order.
    pub fn inputs(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.node_ids()
            .filter(|&n| matches!(self.graph[n].op, Op::Input))
    }

    /// The parameters, in declaration order.
    pub fn params(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.node_ids()
            .filter(|&n| matches!(self.graph[n].op, Op::Param { .. }))
    }

    /// The underlying petgraph graph (read-only), for algorithms and dumps.
    pub fn petgraph(&self) -> &DiGraph<Node, Edge, u32> {
        &self.graph
    }
}

/// How many results an op produces, for ops whose count does not depend on operands.
fn results_hint(op: &Op) -> usize {
    match op {
        Op::BatchNorm { training: true, .. } => 3,
        Op::Recurrent { cell, sequence } => *sequence as usize + 1 + cell.has_cell_state() as usize,
        Op::GridLstm => 5,
        _ => 1,
    }
}

/// Structural equality: same nodes (ops, names, types, operands) in the same order
/// and the same outputs. Spans are ignored.
impl PartialEq for Graph {
    fn eq(&self, other: &Graph) -> bool {
        self.name == other.name
            && self.outputs == other.outputs
            && self.len() == other.len()
            && self.node_ids().zip(other.node_ids()).all(|(a, b)| {
                let (na, nb) = (self.node(a), other.node(b));
                na.op == nb.op
                    && na.names == nb.names
                    && na.types == nb.types
                    && self.operands(a) == other.operands(b)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{BinaryOp, UnaryOp};
    use crate::types::TensorType;

    #[test]
    fn build_query_and_compare() {
        let mut g = Graph::new("m");
        let x = g
            .add_source(Op::Input, "x", TensorType::f32([2, 3]), None)
            .unwrap();
        let b = g
            .add_source(Op::Input, "b", TensorType::f32([3]), None)
            .unwrap();
        let s = g
            .add_op(Op::Binary(BinaryOp::Add), &[x, b], vec!["s".into()], None)
            .unwrap();
        let r = g
            .add_anon(Op::Unary(UnaryOp::Relu), &[ValueId::first(s)])
            .unwrap();
        g.add_output("y", ValueId::first(r));
        assert_eq!(g.operands(s), vec![x, b]);
        assert_eq!(g.value_name(ValueId::first(r)), "_3");
        assert_eq!(g.ty(ValueId::first(r)).shape, vec![2, 3]);
        assert_eq!(g.use_count(x), 1);
        assert_eq!(g.inputs().count(), 2);
        assert_eq!(g.clone(), g);
        assert!(matches!(
            g.add_op(Op::Unary(UnaryOp::Exp), &[x], vec!["s".into()], None),
            Err(BuildError::DuplicateName(_))
        ));
    }
}
