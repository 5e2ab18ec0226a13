//! Print/parse round trip at the top level: `elaborate(parse(print(g))) == g`.
//!
//! Covers every example model in `ir/`, random graphs from `dlc_testgen` (every op
//! family, anonymous `_N` names) and randomly built chains of elementwise,
//! reduction and shape ops. (The exhaustive per-Op cases with non-default
//! attributes live in `crates/dlc-ir/tests/roundtrip_ops.rs`.)

use dlc_ir::op::{BinaryOp, Op, ReduceKind, UnaryOp};
use dlc_ir::syntax::{self, Dims};
use dlc_ir::types::TensorType;
use dlc_ir::{Graph, ValueId};
use proptest::prelude::*;

fn assert_roundtrip(g: &Graph) {
    let text = syntax::print(g);
    let back = syntax::parse_graph(&text, &Dims::new())
        .unwrap_or_else(|d| panic!("{text}\n{}", d.render("printed.ir", &text)));
    assert_eq!(&back, g, "round trip changed the graph:\n{text}");
}

#[test]
fn example_models_round_trip() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ir");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ir") {
            let src = std::fs::read_to_string(&path).unwrap();
            let g = syntax::parse_graph(&src, &Dims::new()).unwrap();
            assert_roundtrip(&g);
            n += 1;
        }
    }
    assert!(n >= 12);
}

/// A random chain of ops over a `[rows, cols]` input, built with `add_anon`.
fn chain(rows: usize, cols: usize, steps: &[(u8, u8)]) -> Graph {
    let mut g = Graph::new("chain");
    let x = g
        .add_source(Op::Input, "x", TensorType::f32([rows, cols]), None)
        .unwrap();
    let mut vals = vec![x];
    for &(kind, pick) in steps {
        let a = vals[pick as usize % vals.len()];
        let b = vals[(pick as usize / 3) % vals.len()];
        let rank = g.ty(a).rank();
        let op = match kind % 8 {
            0 => Op::Unary(UnaryOp::ALL[pick as usize % 9]),
            1 => Op::Binary(
                [
                    BinaryOp::Add,
                    BinaryOp::Sub,
                    BinaryOp::Mul,
                    BinaryOp::Maximum,
                ][pick as usize % 4],
            ),
            2 if rank > 0 => Op::Softmax {
                axis: pick as usize % rank,
            },
            3 if rank > 0 => Op::Reduce {
                kind: ReduceKind::Sum,
                axes: vec![pick as usize % rank],
                keepdim: pick % 2 == 0,
            },
            4 => Op::LeakyRelu {
                alpha: f64::from(pick) / 7.0,
            },
            5 if rank == 2 => Op::Transpose { perm: vec![1, 0] },
            6 => Op::Dropout {
                p: 0.25,
                seed: u64::from(pick),
                training: pick % 2 == 1,
            },
            _ => Op::Clamp {
                min: -f64::from(pick),
                max: f64::INFINITY,
            },
        };
        let operands: Vec<ValueId> = if matches!(op, Op::Binary(_)) {
            vec![a, b]
        } else {
            vec![a]
        };
        if let Ok(n) = g.add_anon(op, &operands) {
            vals.push(ValueId::first(n));
        }
    }
    let last = *vals.last().unwrap();
    g.add_output("out", last);
    g.add_output("x", x);
    g
}

proptest! {
    #[test]
    fn random_chains_round_trip(
        rows in 1usize..4,
        cols in 1usize..4,
        steps in prop::collection::vec((any::<u8>(), any::<u8>()), 0..24),
    ) {
        let g = chain(rows, cols, &steps);
        dlc_ir::verify(&g).unwrap();
        assert_roundtrip(&g);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_testgen_graphs_round_trip(seed in any::<u64>()) {
        let g = dlc_testgen::random_graph(seed, &dlc_testgen::GenConfig::default());
        assert_roundtrip(&g);
    }
}
