//! Shared helpers of the JIT integration tests.

use dlc_runtime::{CompiledModel, RuntimeOptions};
use dlc_testgen::{Case, tolerance};
use proptest::prelude::*;

/// Compiles and runs a case (optionally in checked mode) and compares every
/// output with the interpreter, within the generator's per-output tolerance.
pub fn check(case: &Case, checked: bool) -> Result<(), TestCaseError> {
    let mut opts = RuntimeOptions::default();
    opts.codegen.checked = checked;
    check_opts(case, &opts)
}

/// Compiles a case with `opts`, runs it and compares every output with the
/// interpreter, within the generator's per-output tolerance.
pub fn check_opts(case: &Case, opts: &RuntimeOptions) -> Result<(), TestCaseError> {
    let model = CompiledModel::new(&case.graph, &case.params, opts).map_err(|e| {
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
