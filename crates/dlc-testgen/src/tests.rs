//! Internal checks of the error analysis over generated graphs.

use crate::build::{build_counting, op_count};
use crate::facts::analyze;
use crate::{GenConfig, random_graph};

/// Few steps need a retry on small fresh operands (a main op over the element or
/// work budget, or refused as ill-conditioned), which would lose chain structure.
#[test]
fn few_steps_are_retried() {
    let cfg = GenConfig::default();
    let (mut refused, mut retried, mut ops) = (0, 0, 0);
    for seed in 0..3_000u64 {
        let n = op_count(seed, &cfg);
        let (_, a, b) = build_counting(seed, &cfg, n);
        (refused, retried, ops) = (refused + a, retried + b, ops + n);
    }
    eprintln!("{ops} steps: {retried} attempts retried, {refused} ops refused as ill-conditioned");
    assert!(
        retried * 10 < ops,
        "{retried} of {ops} step attempts retried"
    );
}

/// Every value of every generated graph has a finite range and error, and
/// magnitudes stay far from f32 overflow: with inputs in [-2, 2], no op can
/// produce a NaN or an infinity.
#[test]
fn facts_are_finite_and_moderate() {
    let cfg = GenConfig::default();
    for seed in 0..3_000u64 {
        let g = random_graph(seed, &cfg);
        let facts = analyze(&g);
        for id in g.node_ids() {
            for (r, f) in facts[id.index()].iter().enumerate() {
                let what = format!(
                    "seed {seed}: node {} ({}) result {r}: {f:?}",
                    id.index(),
                    g.node(id).op.name()
                );
                assert!(
                    f.lo.is_finite() && f.hi.is_finite() && f.err.is_finite(),
                    "{what}"
                );
                assert!(f.lo <= f.hi && f.err >= 0.0, "{what}");
                assert!(f.m() < 1e12, "{what}");
            }
        }
    }
}

/// For values drawn by `random_values`, the value-aware tolerances are the
/// generator's own.
#[test]
fn value_tolerances_match_for_generated_values() {
    let cfg = GenConfig::default();
    for seed in 0..300u64 {
        let case = crate::Case::from_seed(seed, &cfg);
        assert_eq!(
            crate::tolerances_for_values(&case.graph, &case.inputs, &case.params),
            crate::tolerances(&case.graph),
            "seed {seed}"
        );
    }
}
