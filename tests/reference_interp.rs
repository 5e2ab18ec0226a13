//! The interpreter against the PyTorch reference data, in f32 and in f64.
//!
//! Every file of `tests/reference` must become a case (see `common/reference.rs`)
//! and reproduce its stored outputs within the suggested forward tolerance
//! `|got - ref| <= 1e-5 + 1e-4 |ref|`. The worst allowance ratio per file is
//! printed (run with `--nocapture` to see it).

#[path = "common/reference.rs"]
mod reference;

use dlc_tensor::{Env, Tensor, Value, allowance_ratio};
use reference::{ATOL, Case, RTOL, worst_ratio};

fn widen(env: &Env) -> Env<f64> {
    env.iter().map(|(k, v)| (k.clone(), v.to_f64())).collect()
}

fn narrow(env: &Env<f64>) -> Env {
    env.iter()
        .map(|(k, v)| (k.clone(), v.to_f32()))
        .collect::<Env<f32>>()
}

#[test]
fn interpreter_matches_every_reference_file() {
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    let mut checked = 0;
    for loaded in reference::load_all() {
        let case = match loaded {
            Ok(case) => case,
            Err(skip) => {
                eprintln!("SKIP {}: {}", skip.file, skip.reason);
                skipped.push(skip.file);
                continue;
            }
        };
        let f32_run = dlc_interp::run::<f32>(&case.graph, &case.inputs, &case.params)
            .map_err(|e| e.to_string())
            .and_then(|got| worst_ratio(&case, &got));
        let f64_run =
            dlc_interp::run::<f64>(&case.graph, &widen(&case.inputs), &widen(&case.params))
                .map_err(|e| e.to_string())
                .and_then(|got| worst_ratio(&case, &narrow(&got)));
        match (&f32_run, &f64_run) {
            (Ok(r32), Ok(r64)) => eprintln!(
                "ok   {:<36} worst ratio f32 {r32:.4}  f64 {r64:.1e}  (unchecked: {})",
                case.file,
                unchecked_summary(&case)
            ),
            _ => {
                let msg = format!("{}: f32 {f32_run:?}; f64 {f64_run:?}", case.file);
                eprintln!("FAIL {msg}");
                failures.push(msg);
            }
        }
        checked += 1;
    }
    eprintln!(
        "{checked} reference files checked, {} skipped {skipped:?}",
        skipped.len()
    );
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
    assert!(skipped.is_empty(), "skipped files: {skipped:?}");
}

/// A short description of the keys left to the autodiff tests.
fn unchecked_summary(case: &Case) -> String {
    let grads = case
        .unchecked
        .iter()
        .filter(|k| k.starts_with("grad_"))
        .count();
    let sgd = case
        .unchecked
        .iter()
        .filter(|k| k.starts_with("sgd_"))
        .count();
    let mut s = format!("{grads} grad_*");
    if sgd > 0 {
        s += &format!(", {sgd} sgd_*");
    }
    s
}

#[test]
fn f64_results_match_the_f64_reference_almost_exactly() {
    // The reference was computed in f64 and rounded to f32, so the f64
    // interpreter (rounded the same way) must land within a few f32 ulps: a check
    // that the F-generic kernels really compute in F and follow the same formulas.
    for case in reference::load_all().into_iter().flatten() {
        let out = dlc_interp::run::<f64>(&case.graph, &widen(&case.inputs), &widen(&case.params))
            .unwrap();
        for (name, want) in &case.expected {
            if let (Value::Float(g), Value::Float(w)) = (&out[name], want) {
                let got: Tensor = Value::Float(g.mapv(|x| x as f32));
                let r = allowance_ratio(got.as_float().unwrap(), w, RTOL, ATOL).unwrap();
                assert!(r <= 0.01, "{} `{name}`: f64 ratio {r}", case.file);
            }
        }
    }
}
