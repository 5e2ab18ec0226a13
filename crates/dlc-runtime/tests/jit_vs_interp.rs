//! The JIT against the reference interpreter on random graphs, per op family.

mod common;

use common::check;
use dlc_testgen::{Family, GenConfig};
use proptest::prelude::*;

fn family_config(f: Family) -> GenConfig {
    GenConfig::only(f)
}

macro_rules! family_test {
    ($name:ident, $family:expr) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]
            #[test]
            fn $name(case in dlc_testgen::arb_case(family_config($family))) {
                check(&case, false)?;
            }
        }
    };
}

family_test!(elementwise, Family::Elementwise);
family_test!(reduce, Family::Reduce);
family_test!(softmax, Family::Softmax);
family_test!(layout, Family::Layout);
family_test!(matmul, Family::MatMul);

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]
    /// Checked mode (every access bounds-checked) on mixed graphs finds no violation.
    #[test]
    fn checked_mode_mixed(case in dlc_testgen::arb_case(GenConfig::default().with_families(&[
        Family::Elementwise, Family::Reduce, Family::Softmax, Family::Layout, Family::MatMul,
    ]))) {
        check(&case, true)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]
    /// The backward ops autodiff emits (convolution weight, pooling, gather,
    /// recurrent, grid-LSTM and attention gradients), normal and checked mode. Each output
    /// is held to the generator's error-model tolerance (`dlc_testgen::tolerance`):
    /// the weight gradients are sums of `N·P` products (`lin`), the recurrent
    /// gradients grow linearly with the number of steps — the JIT sums in a
    /// different order (GEMM blocking, f32x4 lanes) and recomputes activations
    /// with its vectorised exp/tanh, both inside that model's rounding budget.
    #[test]
    fn backward(case in dlc_testgen::arb_case(family_config(Family::Backward)), checked in any::<bool>()) {
        check(&case, checked)?;
    }
}
