//! The GEMM merge is extracted where it pays: an LSTM cell written gate by gate
//! from primitives becomes two GEMMs (one per shared input) against
//! concatenations of parameters, which cost nothing per run (the runtime computes
//! them once), read through slices.

mod common;

use dlc_ir::Op;
use dlc_opt::{OptLevel, OptOptions, optimize};

const LSTM: &str = include_str!("../../../benches/opt/lstm_cell_primitives.ir");

fn count(g: &dlc_ir::Graph, f: impl Fn(&Op) -> bool) -> usize {
    g.node_ids().filter(|&id| f(&g.node(id).op)).count()
}

#[test]
fn lstm_gate_gemms_merge_into_one_per_input() {
    let g = dlc_ir::syntax::parse_graph(LSTM, &Default::default()).unwrap();
    assert_eq!(count(&g, |op| matches!(op, Op::MatMul)), 8);
    let (o, report) = optimize(&g, &OptOptions::level(OptLevel::O2)).unwrap();
    assert!(
        report.changed.iter().any(|r| r == "matmul-merge"),
        "{report}"
    );
    assert!(report.cost_after < report.cost_before, "{report}");
    assert_eq!(count(&o, |op| matches!(op, Op::MatMul)), 2, "{report}");
    let (inputs, params) = dlc_testgen::random_values(&g, 7);
    common::agree(&g, &o, &inputs, &params).unwrap();
}

/// In a training step the parameters change on every run, so their
/// concatenation would be paid every time: without amortised parameters the
/// merge does not pay and the eight products stay.
#[test]
fn merge_is_not_bought_when_parameters_change_every_run() {
    let g = dlc_ir::syntax::parse_graph(LSTM, &Default::default()).unwrap();
    let opts = OptOptions {
        amortise_params: false,
        ..OptOptions::level(OptLevel::O2)
    };
    let (o, report) = optimize(&g, &opts).unwrap();
    assert_eq!(count(&o, |op| matches!(op, Op::MatMul)), 8, "{report}");
}
