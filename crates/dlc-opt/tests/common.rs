//! Shared checks: evaluate a graph and its optimised form and compare.

use dlc_ir::Graph;
use dlc_tensor::Env;

/// The inputs and parameters as f64.
fn widen(env: &Env) -> Env<f64> {
    env.iter().map(|(k, v)| (k.clone(), v.to_f64())).collect()
}

/// Checks that `optimised`, evaluated in f32 by the interpreter, agrees with
/// `original` evaluated in f64, within the tolerances the testgen error model
/// derives for `original` (the bound any f32 evaluation of it must meet).
pub fn agree(
    original: &Graph,
    optimised: &Graph,
    inputs: &Env,
    params: &Env,
) -> Result<(), String> {
    let want = dlc_interp::run::<f64>(original, &widen(inputs), &widen(params))
        .map_err(|e| format!("original: {e}"))?;
    let got =
        dlc_interp::run::<f32>(optimised, inputs, params).map_err(|e| format!("optimised: {e}"))?;
    compare(original, &got, &want, inputs, params)
}

/// Compares outputs by name with the original graph's tolerances.
pub fn compare(
    original: &Graph,
    got: &Env,
    want: &Env<f64>,
    inputs: &Env,
    params: &Env,
) -> Result<(), String> {
    for (name, tol) in dlc_testgen::tolerances_for_values(original, inputs, params) {
        let g = got.get(&name).ok_or(format!("missing output {name}"))?;
        tol.check(g, &want[&name].to_f32())
            .map_err(|e| format!("output {name}: {e}"))?;
    }
    Ok(())
}
