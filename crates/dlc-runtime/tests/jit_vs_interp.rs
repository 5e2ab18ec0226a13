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

/// Slices read in place by elementwise kernels: a step along the innermost
/// axis, a step along an outer one, a chain of slices, each in normal and
/// checked mode. (A strided innermost view was once loaded as one f32x4.)
#[test]
fn slices_read_in_place_by_elementwise_kernels() {
    for src in [
        "model m {\n input x: f32[31, 1, 31, 8]\n \
         s = slice(x, axis=[0, 2, 3], start=[16, 26, 0], end=[31, 29, 1], step=[1, 3, 3])\n \
         y = s * 0.25\n output y\n}\n",
        "model m {\n input x: f32[6, 20]\n s = slice(x, axis=[1], start=[1], end=[20], step=[2])\n \
         y = relu(s) + s\n output y\n}\n",
        "model m {\n input x: f32[9, 16]\n s = slice(x, axis=[0], start=[1], end=[9], step=[3])\n \
         t = slice(s, axis=[1], start=[4], end=[12])\n y = exp(t)\n output y\n}\n",
    ] {
        let case = dlc_testgen::Case::parse(src, 3);
        check(&case, false).unwrap();
        check(&case, true).unwrap();
    }
}
