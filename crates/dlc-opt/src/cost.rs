//! The cost model: estimated seconds per run of one node on dlc's JIT backend.
//!
//! A node costs `overhead + flops / throughput + bytes / bandwidth`, where:
//!
//! - `overhead` is the per-kernel cost of a launch (the call through the kernel
//!   table, splitting over threads, the arena pointers) — paid by every op that
//!   becomes its own kernel;
//! - `flops / throughput` uses the throughput of the kernel family: the packed GEMM
//!   for matmul/conv/attention, vectorised loops for elementwise math;
//! - `bytes / bandwidth` counts the operands read and the result written.
//!
//! Elementwise ops are fused into their consumer's loop by lowering, so they pay
//! neither the overhead nor the bytes, only their arithmetic; so do slices, which
//! an elementwise consumer reads in place. Sources, attributes and `get` are free.
//! A node whose operands depend on no model input (weights, constants, values
//! computed from them) is computed once when the parameters are set, not on every
//! run (dlc-runtime's prelude), so it costs [`PARAM_ONLY_FACTOR`] of its price:
//! this is what makes the GEMM merge's concatenation of weights worth it. The constants are the reference machine's (one core of the
//! benchmark host in `PEERS.md`: DRAM about 16 GB/s, the JIT's GEMM about 30 GFLOP/s
//! at moderate sizes) — what matters for extraction is their ratios.

use std::collections::HashSet;

use dlc_ir::{BinaryOp, NodeId, Op, TensorType, UnaryOp};
use egg::Language;

use crate::analysis::{TensorAnalysis, TensorGraph};
use crate::lang::{NodeOp, Tensor};

/// Seconds per kernel launch.
pub const KERNEL_OVERHEAD: f64 = 0.5e-6;
/// GEMM-family throughput in flop/s.
pub const GEMM_FLOPS: f64 = 30e9;
/// Vectorised elementwise throughput in element operations per second.
pub const ELEMENTWISE_OPS: f64 = 8e9;
/// Memory bandwidth in bytes per second.
pub const BANDWIDTH: f64 = 16e9;
/// The share of a parameter-only node's cost paid per run (it is computed once
/// per parameter change; not zero, so that cheaper ways to compute it still win).
pub const PARAM_ONLY_FACTOR: f64 = 1e-3;

/// The estimated cost in seconds of one e-node, its class's result types `out`.
pub fn node_cost(egraph: &TensorGraph, node: &Tensor, out: &[TensorType]) -> f64 {
    let an: &TensorAnalysis = &egraph.analysis;
    let op = match node.node_op() {
        NodeOp::NotAnOp(_) => return 0.0,
        _ => {
            let attr = node.children().first().map(|&c| &egraph[c].data);
            match an.node_op(node, attr) {
                Some(op) => op,
                None => return f64::INFINITY,
            }
        }
    };
    let ins: Vec<&TensorType> = node
        .operands()
        .iter()
        .filter_map(|&c| egraph[c].data.ty())
        .collect();
    let param_only =
        an.amortise_params && node.operands().iter().all(|&c| egraph[c].data.input_free);
    amortised(op_cost(&op, &ins, out), param_only)
}

/// The per-run share of `cost` for a node computed once if `param_only`.
fn amortised(cost: f64, param_only: bool) -> f64 {
    if param_only {
        cost * PARAM_ONLY_FACTOR
    } else {
        cost
    }
}

/// The cost of `op` with operand types `ins` and result types `out`.
pub fn op_cost(op: &Op, ins: &[&TensorType], out: &[TensorType]) -> f64 {
    let bytes_in: usize = ins.iter().map(|t| t.size_bytes()).sum();
    let bytes_out: usize = out.iter().map(|t| t.size_bytes()).sum();
    let numel_out: usize = out.iter().map(|t| t.numel()).sum();
    let moved = (bytes_in + bytes_out) as f64 / BANDWIDTH;
    if op.is_elementwise() {
        let weight = match op {
            Op::Unary(u) if !matches!(u, UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Relu) => 8.0,
            Op::Binary(BinaryOp::Div | BinaryOp::Pow) => 4.0,
            _ => 1.0,
        };
        return numel_out as f64 * weight / ELEMENTWISE_OPS;
    }
    if let Op::Slice { .. } = op {
        // Read in place by its consumer: a quarter of an elementwise op for the
        // strided loads (not zero, so that slicing never looks free).
        return numel_out as f64 * 0.25 / ELEMENTWISE_OPS;
    }
    let gemm = |flops: f64| KERNEL_OVERHEAD + flops / GEMM_FLOPS + moved;
    match op {
        Op::MatMul => {
            let k = ins[0].shape[ins[0].rank() - 1] as f64;
            gemm(2.0 * k * numel_out as f64)
        }
        Op::Conv(_) => {
            let per_out: usize = ins[1].shape[1..].iter().product();
            gemm(2.0 * per_out as f64 * numel_out as f64)
        }
        Op::Attention { .. } => {
            let (q, k) = (ins[0], ins[1]);
            let e = q.shape[q.rank() - 1] as f64;
            let s = k.shape[k.rank() - 2] as f64;
            let l = q.shape[q.rank() - 2] as f64;
            let heads = (q.numel() as f64) / (l * e);
            // Two products per (query, key) pair plus the softmax; no L×S intermediate.
            gemm(heads * l * s * (4.0 * e + 8.0))
        }
        // A reshape is a copy at most; treat it as half a copy so that cancelling
        // a pair of them is always preferred but never beats real work.
        Op::Reshape { .. } => KERNEL_OVERHEAD * 0.5 + 0.5 * moved,
        _ => KERNEL_OVERHEAD + moved + numel_out as f64 / ELEMENTWISE_OPS,
    }
}

/// The estimated cost of a whole graph: every non-source node once, nodes that
/// depend on no input at their amortised share if `amortise_params`.
pub fn graph_cost(graph: &dlc_ir::Graph, amortise_params: bool) -> f64 {
    let mut input_free: HashSet<NodeId> = HashSet::new();
    let mut total = 0.0;
    for id in graph.node_ids() {
        let n = graph.node(id);
        let operands = graph.operands(id);
        let param_only = operands.iter().all(|v| input_free.contains(&v.node));
        if param_only && !matches!(n.op, Op::Input) {
            input_free.insert(id);
        }
        if n.op.is_source() {
            continue;
        }
        let ins: Vec<&TensorType> = operands.iter().map(|&v| graph.ty(v)).collect();
        total += amortised(
            op_cost(&n.op, &ins, &n.types),
            amortise_params && param_only,
        );
    }
    total
}
