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
