//! The Cranelift JIT against the PyTorch reference data: every forward case of
//! `tests/reference` compiled and run, within the suggested forward tolerance
//! `|got - ref| <= 1e-5 + 1e-4 |ref|`, in normal and in checked mode.

#[path = "common/reference.rs"]
mod reference;

use dlc_runtime::{CompiledModel, RuntimeOptions};
use reference::worst_ratio;

fn run_all(checked: bool) {
    let mut failures = Vec::new();
    let mut opts = RuntimeOptions::default();
    opts.codegen.checked = checked;
    for case in reference::load_all() {
        let case =
            case.unwrap_or_else(|skip| panic!("{} cannot be loaded: {}", skip.file, skip.reason));
        let result = CompiledModel::new(&case.graph, &case.params, &opts)
            .map_err(|e| e.to_string())
            .and_then(|m| m.run(&case.inputs).map_err(|e| e.to_string()))
            .and_then(|got| worst_ratio(&case, &got));
        match result {
            Ok(r) => eprintln!("ok   {:<36} worst ratio {r:.4}", case.file),
            Err(e) => {
                eprintln!("FAIL {}: {e}", case.file);
                failures.push(format!("{}: {e}", case.file));
            }
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

#[test]
fn jit_matches_every_reference_file() {
    run_all(false);
}

#[test]
fn checked_jit_matches_every_reference_file() {
    run_all(true);
}
