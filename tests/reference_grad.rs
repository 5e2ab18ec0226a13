//! Autodiff against the PyTorch reference data: for every file of
//! `tests/reference`, the loss `L = Σ_k sum(out_k · R_k)` is appended to the
//! case's graph, `dlc_autodiff::grad` differentiates it with respect to every
//! input and parameter that has a `grad_<name>` key, and the gradients computed
//! by the interpreter (f32 and f64) and by the JIT (normal and checked mode) must
//! match within the suggested gradient tolerance
//! `|got - ref| <= 1e-3 |ref| + 1e-3 max|ref|`. `mlp2_train_step`'s `sgd_*` keys
//! (one SGD step, lr 0.1) are checked through the interpreter on the training
//! step graph. Every file's gradient graph compiles on the JIT (the grid
//! LSTM's gradient included); none is skipped.

#[path = "common/reference.rs"]
mod reference;

use dlc_ir::{BinaryOp, Graph, Op, ReduceKind, ValueId};
use dlc_runtime::{CompiledModel, RuntimeOptions};
use dlc_tensor::{Env, Tensor, Value};
use reference::Case;

/// A case's graph with the reference loss, its gradients, and the reference data.
struct GradCase {
    file: String,
    graph: Graph,
    inputs: Env,
    params: Env,
    /// Output name (`grad_<name>`) → reference gradient.
    want: Env,
}

/// The R weights of output `key` (`out` → `R`, `out_y` → `R_y`); None when absent.
fn r_key(key: &str) -> Option<String> {
    if key == "out" {
        Some("R".into())
    } else {
        key.strip_prefix("out_").map(|s| format!("R_{s}"))
    }
}

fn grad_case(case: Case) -> Result<GradCase, String> {
    let data = dlc_tensor::read_npz(&reference::reference_dir().join(&case.file))
        .map_err(|e| e.to_string())?;
    let mut g = case.graph.clone();
    let mut inputs = case.inputs.clone();
    let mut terms: Vec<ValueId> = Vec::new();
    let outs: Vec<(String, ValueId)> = g
        .outputs()
        .iter()
        .map(|o| (o.name.clone(), o.value))
        .collect();
    for (name, v) in outs {
        let Some(rk) = r_key(&name) else { continue };
        let Some(r) = data.get(&rk) else { continue };
        let rv = g
            .add_source(Op::Input, format!("__{rk}"), r.ty(), None)
            .map_err(|e| e.to_string())?;
        inputs.insert(format!("__{rk}"), r.clone());
        let p = g.add_anon(Op::Binary(BinaryOp::Mul), &[v, rv]).unwrap();
        let rank = g.ty(v).rank();
        let s = g
            .add_anon(
                Op::Reduce {
                    kind: ReduceKind::Sum,
                    axes: (0..rank).collect(),
                    keepdim: false,
                },
                &[ValueId::first(p)],
            )
            .unwrap();
        terms.push(ValueId::first(s));
    }
    let mut loss = terms[0];
    for &t in &terms[1..] {
        loss = ValueId::first(g.add_anon(Op::Binary(BinaryOp::Add), &[loss, t]).unwrap());
    }
    g.rename(loss, "__loss").unwrap();
    let mut wrt = Vec::new();
    let mut want = Env::new();
    for (key, value) in &data {
        if let Some(name) = key.strip_prefix("grad_") {
            wrt.push(name.to_string());
            want.insert(key.clone(), value.clone());
        }
    }
    let names: Vec<&str> = wrt.iter().map(String::as_str).collect();
    let graph = dlc_autodiff::grad(&g, "__loss", &names).map_err(|e| e.to_string())?;
    Ok(GradCase {
        file: case.file,
        graph,
        inputs,
        params: case.params,
        want,
    })
}

fn all_cases() -> Vec<GradCase> {
    reference::load_all()
        .into_iter()
        .map(|c| {
            let c = c.unwrap_or_else(|s| panic!("{}: {}", s.file, s.reason));
            let file = c.file.clone();
            grad_case(c).unwrap_or_else(|e| panic!("{file}: {e}"))
        })
        .filter(|c| !c.want.is_empty())
        .collect()
}

/// The worst ratio of error to the gradient allowance over a case's gradients.
fn worst(c: &GradCase, got: &Env) -> Result<f64, String> {
    let mut worst = 0.0f64;
    for (key, want) in &c.want {
        let got = got.get(key).ok_or_else(|| format!("`{key}` missing"))?;
        let (Value::Float(g), Value::Float(w)) = (got, want) else {
            return Err(format!("`{key}` is not float"));
        };
        if g.shape() != w.shape() {
            return Err(format!("`{key}`: shape {:?} vs {:?}", g.shape(), w.shape()));
        }
        let scale = w.iter().fold(0.0f64, |m, &x| m.max(x.abs() as f64));
        for (&a, &b) in g.iter().zip(w) {
            let (a, b) = (a as f64, b as f64);
            let allow = 1e-3 * b.abs() + 1e-3 * scale + 1e-30;
            let r = (a - b).abs() / allow;
            if r.is_nan() || r > 1.0 {
                return Err(format!("`{key}` off by {r:.2} allowances ({a} vs {b})"));
            }
            worst = worst.max(r);
        }
    }
    Ok(worst)
}

fn widen(env: &Env) -> Env<f64> {
    env.iter().map(|(k, v)| (k.clone(), v.to_f64())).collect()
}

fn narrow(env: &Env<f64>) -> Env {
    env.iter().map(|(k, v)| (k.clone(), v.to_f32())).collect()
}

#[test]
fn interpreter_gradients_match_every_reference_file() {
    let mut failures = Vec::new();
    let cases = all_cases();
    for c in &cases {
        let r32 = dlc_interp::run::<f32>(&c.graph, &c.inputs, &c.params)
            .map_err(|e| e.to_string())
            .and_then(|got| worst(c, &got));
        let r64 = dlc_interp::run::<f64>(&c.graph, &widen(&c.inputs), &widen(&c.params))
            .map_err(|e| e.to_string())
            .and_then(|got| worst(c, &narrow(&got)));
        match (&r32, &r64) {
            (Ok(a), Ok(b)) => eprintln!(
                "ok   {:<36} {} grads, worst ratio f32 {a:.4} f64 {b:.1e}",
                c.file,
                c.want.len()
            ),
            _ => failures.push(format!("{}: f32 {r32:?}; f64 {r64:?}", c.file)),
        }
    }
    eprintln!("{} files with gradients checked", cases.len());
    assert!(
        cases.len() >= 70,
        "only {} files have gradients",
        cases.len()
    );
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

fn jit(checked: bool) {
    let mut opts = RuntimeOptions::default();
    opts.codegen.checked = checked;
    let mut failures = Vec::new();
    let cases = all_cases();
    for c in &cases {
        let r = CompiledModel::new(&c.graph, &c.params, &opts)
            .map_err(|e| e.to_string())
            .and_then(|m| m.run(&c.inputs).map_err(|e| e.to_string()))
            .and_then(|got| worst(c, &got));
        match r {
            Ok(r) => eprintln!("ok   {:<36} worst ratio {r:.4}", c.file),
            Err(e) => failures.push(format!("{}: {e}", c.file)),
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

#[test]
fn jit_gradients_match_every_reference_file() {
    jit(false);
}

#[test]
fn checked_jit_gradients_match_every_reference_file() {
    jit(true);
}

/// The parameters after one SGD step (lr 0.1) of `mlp2_train_step`.
fn sgd_want() -> (Case, Env) {
    let case = reference::load(&reference::reference_dir().join("mlp2_train_step.npz"))
        .unwrap_or_else(|s| panic!("{}", s.reason));
    let data =
        dlc_tensor::read_npz(&reference::reference_dir().join("mlp2_train_step.npz")).unwrap();
    let want: Env = data
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("sgd_").map(|p| (p.to_string(), v.clone())))
        .collect();
    assert_eq!(want.len(), 4);
    (case, want)
}

fn check_params(got: &Env, want: &Env) {
    for (name, w) in want {
        let (Value::Float(g), Value::Float(w)) = (&got[name], w) else {
            panic!("{name} not float")
        };
        for (&a, &b) in g.iter().zip(w) {
            assert!(
                (a - b).abs() <= 1e-5 + 1e-4 * b.abs(),
                "sgd_{name}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn mlp2_sgd_step_matches_through_the_interpreter() {
    let (case, want) = sgd_want();
    // `out` names a graph output, not a value: name the loss value so that
    // `training_step` can look it up.
    let mut g = case.graph.clone();
    let out = g.outputs().iter().find(|o| o.name == "out").unwrap().value;
    g.rename(out, "__loss").unwrap();
    let step =
        dlc_autodiff::training_step(&g, "__loss", &[], &dlc_autodiff::Optimizer::sgd()).unwrap();
    let mut inputs = case.inputs.clone();
    inputs.insert(
        step.lr.clone(),
        Tensor::Float(ndarray::arr0(0.1f32).into_dyn()),
    );
    let mut params = case.params.clone();
    for s in &step.state {
        let ty = step.graph.ty(step.graph.lookup(s).unwrap()).clone();
        params.insert(s.clone(), Value::Float(ndarray::ArrayD::zeros(ty.shape)));
    }
    let all = dlc_interp::run_all::<f32>(&step.graph, &inputs, &params).unwrap();
    let got: Env = step
        .updates
        .iter()
        .map(|u| {
            let v = &all[u.value.node.index()][u.value.result as usize];
            (u.param.clone(), v.clone())
        })
        .collect();
    check_params(&got, &want);
}
