//! Fusion decisions: which elementwise nodes are computed inside their consumer's loop.

use std::collections::HashSet;

use dlc_ir::{Graph, NodeId, Op, ValueId};

/// Whether lowering may fold a node into the leaf reads or the expression of an
/// elementwise consumer.
fn fusible(op: &Op) -> bool {
    op.is_elementwise() || matches!(op, Op::BroadcastTo { .. })
}

/// The nodes that are inlined into their (single) elementwise consumer instead of
/// getting a kernel and a buffer of their own.
///
/// A node is inlined when it is elementwise (or a broadcast), is not a graph
/// output, all its uses are by one elementwise node, and it has as many elements
/// as that consumer (so nothing is recomputed; broadcasts only change strides).
pub fn fused_nodes(g: &Graph) -> HashSet<NodeId> {
    let outputs: HashSet<ValueId> = g.outputs().iter().map(|o| o.value).collect();
    let mut fused = HashSet::new();
    for id in g.node_ids() {
        let node = g.node(id);
        if !fusible(&node.op) || outputs.contains(&ValueId::first(id)) {
            continue;
        }
        let mut users: Vec<NodeId> = g.users(id).collect();
        users.dedup();
        let [user] = users[..] else { continue };
        let user_node = g.node(user);
        let same_size = node.types[0].numel() == user_node.types[0].numel();
        let broadcast = matches!(node.op, Op::BroadcastTo { .. });
        if user_node.op.is_elementwise() && (same_size || broadcast) {
            fused.insert(id);
        }
    }
    fused
}
