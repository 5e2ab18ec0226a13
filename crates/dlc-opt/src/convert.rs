//! Graph → e-graph, and an extracted choice of e-nodes → graph.
//!
//! Sources (inputs, parameters, constants) become [`Tensor::Source`] leaves; ops
//! become named nodes when the language has one (attributes as a leading attribute
//! child) and opaque nodes otherwise; an op with several results becomes a tuple
//! class read by one `get` per result. The way back emits every original input and
//! parameter first, in their original order and with their names, so the
//! optimised graph binds the same inputs and parameters; values that survive
//! unchanged keep their names, and the outputs keep their names and order.

use std::collections::HashMap;

use dlc_ir::{BuildError, Graph, NodeId, Op, Output, ValueId};
use egg::{Id, Language};

use crate::analysis::{SourceInfo, TensorGraph};
use crate::build::Builder;
use crate::lang::{Attr, Tensor};

/// An original graph inside an e-graph.
pub struct Loaded {
    /// The e-class of every value of the original graph.
    pub values: HashMap<ValueId, Id>,
    /// The e-class of every graph output, in output order.
    pub roots: Vec<Id>,
    /// For every original node, the e-node it became and its class (to reuse names).
    pub nodes: Vec<(NodeId, Tensor, Id)>,
}

/// Adds `graph` to `egraph`.
pub fn load(graph: &Graph, egraph: &mut TensorGraph) -> Loaded {
    let mut values: HashMap<ValueId, Id> = HashMap::new();
    let mut nodes = Vec::with_capacity(graph.len());
    for id in graph.node_ids() {
        let n = graph.node(id);
        let operands: Vec<Id> = graph.operands(id).iter().map(|v| values[v]).collect();
        let node = if n.op.is_source() {
            let k = egraph.analysis.add_source(SourceInfo {
                op: n.op.clone(),
                ty: n.types[0].clone(),
                original: Some(id),
            });
            Tensor::Source(k)
        } else {
            let attr = Builder { egraph }.attr(n.op.clone());
            Tensor::named(&n.op, attr, &operands).unwrap_or_else(|| {
                Tensor::Other(egraph.analysis.intern_op(n.op.clone()), operands.clone())
            })
        };
        let class = egraph.add(node.clone());
        nodes.push((id, node, class));
        if n.types.len() == 1 {
            values.insert(ValueId::first(id), class);
        } else {
            for r in 0..n.types.len() {
                let index = egraph.add(Tensor::Attr(Attr::Index(r as u32)));
                let get = egraph.add(Tensor::Get([index, class]));
                values.insert(
                    ValueId {
                        node: id,
                        result: r as u32,
                    },
                    get,
                );
            }
        }
    }
    let roots = graph.outputs().iter().map(|o| values[&o.value]).collect();
    Loaded {
        values,
        roots,
        nodes,
    }
}

/// Rebuilds a graph from a choice of one e-node per reachable class.
///
/// `choice` must be acyclic from the roots (the extractor guarantees it).
pub fn rebuild(
    original: &Graph,
    egraph: &TensorGraph,
    loaded: &Loaded,
    choice: &HashMap<Id, Tensor>,
) -> Result<Graph, BuildError> {
    let mut g = Graph::new(original.name.clone());
    // Original names by (class, chosen node): reused when the same node survives.
    let mut names: HashMap<(Id, &Tensor), Vec<String>> = HashMap::new();
    for (id, node, class) in &loaded.nodes {
        names
            .entry((egraph.find(*class), node))
            .or_insert_with(|| original.node(*id).names.clone());
    }
    let mut done: HashMap<Id, ValueId> = HashMap::new();
    for id in original.node_ids() {
        let n = original.node(id);
        if matches!(n.op, Op::Input | Op::Param { .. }) {
            let v = g.add_source(n.op.clone(), n.names[0].clone(), n.types[0].clone(), n.span)?;
            done.insert(egraph.find(loaded.values[&ValueId::first(id)]), v);
        }
    }
    for &root in &loaded.roots {
        emit(&mut g, egraph, choice, &names, &mut done, egraph.find(root))?;
    }
    let outputs = original
        .outputs()
        .iter()
        .zip(&loaded.roots)
        .map(|(o, &r)| Output {
            name: o.name.clone(),
            value: done[&egraph.find(r)],
        })
        .collect();
    g.set_outputs(outputs);
    Ok(g)
}

/// Emits the class `root` and everything it needs, iteratively (graphs may be deep).
fn emit(
    g: &mut Graph,
    egraph: &TensorGraph,
    choice: &HashMap<Id, Tensor>,
    names: &HashMap<(Id, &Tensor), Vec<String>>,
    done: &mut HashMap<Id, ValueId>,
    root: Id,
) -> Result<(), BuildError> {
    let mut stack = vec![(root, false)];
    while let Some((class, expanded)) = stack.pop() {
        if done.contains_key(&class) {
            continue;
        }
        let node = &choice[&class];
        let operands: Vec<Id> = node.operands().iter().map(|&c| egraph.find(c)).collect();
        if !expanded {
            stack.push((class, true));
            stack.extend(
                operands
                    .iter()
                    .filter(|c| !done.contains_key(c))
                    .map(|&c| (c, false)),
            );
            continue;
        }
        let args: Vec<ValueId> = operands.iter().map(|c| done[c]).collect();
        let value = match node {
            Tensor::Get([index, _]) => {
                let Some(Attr::Index(i)) = egraph[*index].data.attr else {
                    unreachable!("a get's first child is an index")
                };
                ValueId {
                    node: args[0].node,
                    result: i,
                }
            }
            Tensor::Source(k) => {
                let s = egraph.analysis.source(*k);
                let name = s
                    .original
                    .and_then(|_| names.get(&(class, node))?.first().cloned());
                add_source(g, s.op.clone(), name, s.ty.clone())?
            }
            _ => {
                let attr = node.children().first().map(|&c| &egraph[c].data);
                let op = egraph
                    .analysis
                    .node_op(node, attr)
                    .expect("chosen op nodes are typed, so their op is known");
                let id = match names.get(&(class, node)) {
                    Some(n) => match g.add_op(op.clone(), &args, n.clone(), None) {
                        Err(BuildError::DuplicateName(_)) => g.add_anon(op, &args)?,
                        r => r?,
                    },
                    None => g.add_anon(op, &args)?,
                };
                ValueId::first(id)
            }
        };
        done.insert(class, value);
    }
    Ok(())
}

/// Adds a constant source under `name` (a fresh name when absent or taken).
fn add_source(
    g: &mut Graph,
    op: Op,
    name: Option<String>,
    ty: dlc_ir::TensorType,
) -> Result<ValueId, BuildError> {
    let fresh = |g: &Graph| {
        (g.len()..)
            .map(|i| format!("_c{i}"))
            .find(|n| g.lookup(n).is_none())
            .expect("some name is free")
    };
    let name = match name.filter(|n| !n.is_empty() && g.lookup(n).is_none()) {
        Some(n) => n,
        None => fresh(g),
    };
    g.add_source(op, name, ty, None)
}
