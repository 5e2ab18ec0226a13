//! The JIT against the reference interpreter on random graphs, per op family.

use dlc_runtime::{CompiledModel, RuntimeOptions};
use dlc_testgen::{Case, Family, GenConfig, tolerance};
use proptest::prelude::*;

/// Compiles and runs a case (optionally in checked mode) and compares every
/// output with the interpreter, within the generator's per-output tolerance.
fn check(case: &Case, checked: bool) -> Result<(), TestCaseError> {
    let mut opts = RuntimeOptions::default();
    opts.codegen.checked = checked;
    let model = CompiledModel::new(&case.graph, &case.params, &opts).map_err(|e| {
        TestCaseError::fail(format!(
            "compile: {e}\n{}",
            dlc_ir::syntax::print(&case.graph)
        ))
    })?;
    let got = model.run(&case.inputs).map_err(|e| {
        TestCaseError::fail(format!("run: {e}\n{}", dlc_ir::syntax::print(&case.graph)))
    })?;
    let want = dlc_interp::run::<f32>(&case.graph, &case.inputs, &case.params)
        .map_err(|e| TestCaseError::fail(format!("interp: {e}")))?;
    for out in case.graph.outputs() {
        let tol = tolerance(&case.graph, out.value);
        if let Err(msg) = tol.check(&got[&out.name], &want[&out.name]) {
            return Err(TestCaseError::fail(format!(
                "output `{}`: {msg}\n{}",
                out.name,
                dlc_ir::syntax::print(&case.graph)
            )));
        }
    }
    Ok(())
}

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
