//! The generator's contract: verified, deterministic graphs covering every op,
//! with finite, in-range values.

use std::collections::BTreeSet;
use std::time::Instant;

use dlc_ir::{BinaryOp, Graph, Op, UnaryOp, verify};
use dlc_tensor::Value;
use dlc_testgen::{
    Family, GenConfig, index_limit, random_graph, random_graph_with_ops, random_values,
};

/// A dense index per `Op` variant. The match is exhaustive on purpose: a new op
/// fails to compile here until the generator (and this list) know it.
fn variant(op: &Op) -> usize {
    match op {
        Op::Input => 0,
        Op::Param { .. } => 1,
        Op::Const { .. } => 2,
        Op::Unary(_) => 3,
        Op::Binary(_) => 4,
        Op::LeakyRelu { .. } => 5,
        Op::Elu { .. } => 6,
        Op::Clamp { .. } => 7,
        Op::Where => 8,
        Op::Cast { .. } => 9,
        Op::MatMul => 10,
        Op::Conv(_) => 11,
        Op::ConvTranspose(_) => 12,
        Op::Pool(_) => 13,
        Op::GlobalAvgPool => 14,
        Op::Reduce { .. } => 15,
        Op::ArgMax { .. } => 16,
        Op::Softmax { .. } => 17,
        Op::LogSoftmax { .. } => 18,
        Op::Reshape { .. } => 19,
        Op::Transpose { .. } => 20,
        Op::BroadcastTo { .. } => 21,
        Op::Concat { .. } => 22,
        Op::Slice { .. } => 23,
        Op::Gather { .. } => 24,
        Op::OneHot { .. } => 25,
        Op::BatchNorm { .. } => 26,
        Op::LayerNorm { .. } => 27,
        Op::Dropout { .. } => 28,
        Op::MseLoss => 29,
        Op::CrossEntropy => 30,
        Op::Recurrent { .. } => 31,
        Op::GridLstm => 32,
        Op::Attention { .. } => 33,
        Op::MultiHeadAttention { .. } => 34,
        Op::ConvWeightGrad { .. } => 35,
        Op::PoolGrad(_) => 36,
        Op::GatherGrad { .. } => 37,
        Op::RecurrentGrad { .. } => 38,
        Op::GridLstmGrad => 39,
        Op::AttentionGrad { .. } => 40,
    }
}
const VARIANTS: usize = 41;

fn ops(g: &Graph) -> impl Iterator<Item = &Op> {
    g.node_ids().map(|id| &g.node(id).op)
}

#[test]
fn ten_thousand_graphs_verify_and_are_deterministic() {
    let cfg = GenConfig::default();
    let start = Instant::now();
    let mut nodes = 0;
    for seed in 0..10_000u64 {
        let g = random_graph(seed, &cfg);
        if let Err(e) = verify(&g) {
            panic!("seed {seed}: {e}");
        }
        assert!(!g.outputs().is_empty() && g.outputs().len() <= cfg.max_outputs);
        nodes += g.len();
        assert_eq!(
            g,
            random_graph(seed, &cfg),
            "seed {seed} is not deterministic"
        );
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "10000 graphs (x2) in {secs:.2}s: {:.0} graphs/s, {:.1} nodes/graph",
        20_000.0 / secs,
        nodes as f64 / 10_000.0
    );
}

#[test]
fn every_family_op_and_elementwise_kind_appears() {
    let cfg = GenConfig::default();
    let (mut fams, mut vars, mut un, mut bin) = (
        BTreeSet::new(),
        BTreeSet::new(),
        BTreeSet::new(),
        BTreeSet::new(),
    );
    for seed in 0..3_000u64 {
        let g = random_graph(seed, &cfg);
        for op in ops(&g) {
            fams.extend(Family::of(op));
            vars.insert(variant(op));
            match op {
                Op::Unary(u) => {
                    un.insert(*u);
                }
                Op::Binary(b) => {
                    bin.insert(*b);
                }
                _ => {}
            }
        }
    }
    let missing: Vec<_> = Family::ALL.iter().filter(|f| !fams.contains(f)).collect();
    assert!(missing.is_empty(), "families never produced: {missing:?}");
    let missing: Vec<_> = (0..VARIANTS).filter(|v| !vars.contains(v)).collect();
    assert!(
        missing.is_empty(),
        "op variants never produced: {missing:?}"
    );
    let missing: Vec<_> = UnaryOp::ALL.iter().filter(|u| !un.contains(u)).collect();
    assert!(missing.is_empty(), "unary ops never produced: {missing:?}");
    let missing: Vec<_> = BinaryOp::ALL.iter().filter(|b| !bin.contains(b)).collect();
    assert!(missing.is_empty(), "binary ops never produced: {missing:?}");
}

#[test]
fn single_family_configs_produce_their_family() {
    for f in Family::ALL {
        let cfg = GenConfig::only(f);
        let hits = (0..200u64)
            .filter(|&seed| {
                let g = random_graph(seed, &cfg);
                verify(&g).unwrap();
                ops(&g).any(|op| Family::of(op) == Some(f))
            })
            .count();
        assert!(
            hits >= 190,
            "{f}: only {hits} of 200 graphs contain a {f} op"
        );
    }
}

#[test]
fn values_are_finite_typed_and_in_range() {
    let cfg = GenConfig::default();
    for seed in 0..2_000u64 {
        let g = random_graph(seed, &cfg);
        let (inputs, params) = random_values(&g, seed);
        dlc_tensor::check_inputs(&g, &inputs).unwrap();
        dlc_tensor::check_params(&g, &params).unwrap();
        assert_eq!((inputs.clone(), params.clone()), random_values(&g, seed));
        for v in inputs.values().chain(params.values()) {
            if let Value::Float(a) = v {
                assert!(a.iter().all(|x| x.is_finite()), "seed {seed}");
            }
        }
        for id in g.inputs() {
            let v = dlc_ir::ValueId::first(id);
            if let (Some(limit), Value::Int(a)) = (index_limit(&g, v), &inputs[g.value_name(v)]) {
                assert!(
                    a.iter().all(|&i| (0..limit as i64).contains(&i)),
                    "seed {seed}"
                );
            }
        }
    }
}

#[test]
fn fewer_ops_give_a_prefix() {
    let cfg = GenConfig::default();
    for seed in 0..300u64 {
        let (a, b) = (
            random_graph_with_ops(seed, &cfg, 3),
            random_graph_with_ops(seed, &cfg, 4),
        );
        assert!(a.len() <= b.len(), "seed {seed}");
        for (x, y) in a.node_ids().zip(b.node_ids()) {
            assert_eq!(a.node(x), b.node(y), "seed {seed}");
            assert_eq!(a.operands(x), b.operands(y), "seed {seed}");
        }
    }
}

#[test]
fn generation_speed() {
    let cfg = GenConfig::default();
    let start = Instant::now();
    let mut values = 0.0;
    for seed in 0..2_000u64 {
        let g = random_graph(seed, &cfg);
        let (inputs, _) = random_values(&g, seed);
        values += inputs.len() as f64;
    }
    let t = start.elapsed().as_secs_f64();
    let graphs = Instant::now();
    for seed in 0..2_000u64 {
        std::hint::black_box(random_graph(seed, &cfg));
    }
    let g = graphs.elapsed().as_secs_f64();
    eprintln!(
        "generation: {:.0} graphs/s; with random_values: {:.0} cases/s ({:.1} inputs/case)",
        2_000.0 / g,
        2_000.0 / t,
        values / 2_000.0
    );
}

#[cfg(feature = "proptest")]
mod strategy {
    use dlc_testgen::{Case, GenConfig, arb_case, tolerances};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn arb_case_yields_verified_graphs_with_values(case in arb_case(GenConfig::default())) {
            let Case { seed, ops, graph, inputs, params } = case;
            dlc_ir::verify(&graph).unwrap();
            dlc_tensor::check_inputs(&graph, &inputs).unwrap();
            dlc_tensor::check_params(&graph, &params).unwrap();
            prop_assert_eq!(&graph, &dlc_testgen::random_graph_with_ops(seed, &GenConfig::default(), ops));
            for (_, tol) in tolerances(&graph) {
                prop_assert!(tol.atol.is_finite() && tol.rtol.is_finite() && tol.rtol <= 1e-2);
            }
        }
    }
}
