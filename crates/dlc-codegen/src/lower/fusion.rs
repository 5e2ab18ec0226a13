//! Fusion decisions: which elementwise nodes are computed inside their consumer's
//! loop, and which transposes are read by their matmul consumers as strided views.

use std::collections::HashSet;

use dlc_ir::{Graph, NodeId, Op, ValueId};

use crate::kernel::gemm_packed;

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
/// Slices are views too: see [`slice_views`].
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
    fused.extend(slice_views(g));
    fused
}

/// The slices that get no kernel: each is read in place (with strides and an
/// offset) by every user, which is an elementwise node or another such slice, so
/// the slices of a merged GEMM's result cost nothing. Not graph outputs.
fn slice_views(g: &Graph) -> HashSet<NodeId> {
    let outputs: HashSet<ValueId> = g.outputs().iter().map(|o| o.value).collect();
    let mut views = HashSet::new();
    for id in g.node_ids().rev() {
        let is_view = matches!(g.node(id).op, Op::Slice { .. })
            && !outputs.contains(&ValueId::first(id))
            && g.users(id)
                .all(|u| g.node(u).op.is_elementwise() || views.contains(&u));
        if is_view {
            views.insert(id);
        }
    }
    views
}

/// Whether `perm` swaps the last two axes and keeps the others in place.
pub fn swaps_last_two(perm: &[usize]) -> bool {
    let r = perm.len();
    r >= 2
        && perm[r - 2] == r - 1
        && perm[r - 1] == r - 2
        && perm[..r - 2].iter().enumerate().all(|(i, &p)| i == p)
}

/// The transposes that get no kernel: each swaps the last two axes, is not a
/// graph output, and is used only by matmuls, which read its operand through a
/// view with the row and column strides exchanged. The GEMM packing reads any
/// strides; the row-panel kernel of small products vectorises only over a B
/// with unit column stride, so a transposed B folds only into packed products.
pub fn folded_transposes(g: &Graph) -> HashSet<NodeId> {
    let outputs: HashSet<ValueId> = g.outputs().iter().map(|o| o.value).collect();
    let reads_well = |t: NodeId, user: NodeId| {
        let ops = g.operands(user);
        if !matches!(g.node(user).op, Op::MatMul) {
            return false;
        }
        if ops[1].node != t {
            return true;
        }
        let (a, b) = (&g.ty(ops[0]).shape, &g.ty(ops[1]).shape);
        gemm_packed(a[a.len() - 2], b[b.len() - 1], a[a.len() - 1])
    };
    g.node_ids()
        .filter(|&id| {
            matches!(&g.node(id).op, Op::Transpose { perm } if swaps_last_two(perm))
                && !outputs.contains(&ValueId::first(id))
                && g.users(id).all(|u| reads_well(id, u))
        })
        .collect()
}
