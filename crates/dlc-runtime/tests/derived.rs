//! Values computed from parameters alone run once (the prelude), and again after
//! every parameter change: `set_param`, `set_params` and `commit_updates`.

use dlc_runtime::{CompiledModel, RuntimeOptions};
use dlc_tensor::{Env, Value};
use ndarray::ArrayD;

/// `wc = concat(w1 * 2, w2)` and `exp(c)` depend on no input; `x·wc` does.
const MODEL: &str = "model m {
  input x: f32[2, 3]
  param w1: f32[3, 2] = ones
  param w2: f32[3, 2] = zeros
  param v: f32[3] = zeros
  const c: f32 = 0.5
  wc = concat(w1 * 2.0, w2, axis=1)
  y = (x @ wc) * exp(c)
  v_new = v + sum(x, axis=0)
  w2_new = w2 + 1.0
  output y, v_new, w2_new
}";

fn graph() -> dlc_ir::Graph {
    dlc_ir::syntax::parse_graph(MODEL, &Default::default()).unwrap()
}

fn tensor(shape: &[usize], values: &[f32]) -> Value<f32> {
    Value::Float(ArrayD::from_shape_vec(shape.to_vec(), values.to_vec()).unwrap())
}

fn inputs() -> Env {
    [("x".to_string(), tensor(&[2, 3], &[1., 2., 3., 4., 5., 6.]))]
        .into_iter()
        .collect()
}

/// The model's `y` on the interpreter with parameters `params`.
fn reference(params: &Env) -> Vec<f32> {
    let out = dlc_interp::run::<f32>(&graph(), &inputs(), params).unwrap();
    out["y"].as_float().unwrap().iter().copied().collect()
}

fn run_y(m: &CompiledModel) -> Vec<f32> {
    let out = m.run(&inputs()).unwrap();
    out["y"].as_float().unwrap().iter().copied().collect()
}

/// Both within 1e-6 relative: the same f32 operations in another order at most.
fn assert_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-6 * w.abs().max(1.0),
            "{got:?} vs {want:?}"
        );
    }
}

#[test]
fn parameter_only_values_are_computed_once_and_refreshed() {
    let g = graph();
    let params = dlc_tensor::init_params(&g, 0, &Env::new()).unwrap();
    let mut m = CompiledModel::new(&g, &params, &RuntimeOptions::default()).unwrap();
    let prelude = m.prelude().expect("the concat and exp(c) are hoisted");
    assert!(
        prelude
            .lowered
            .kernels
            .iter()
            .any(|k| k.name.contains("concat"))
    );
    assert!(
        !m.program()
            .lowered
            .kernels
            .iter()
            .any(|k| k.name.contains("concat")),
        "the main program does not concatenate weights"
    );
    // Hidden values are not parameters of the model.
    let mut names: Vec<String> = m.params().into_keys().collect();
    names.sort();
    assert_eq!(names, ["v", "w1", "w2"]);
    assert_close(&run_y(&m), &reference(&params));

    // set_param recomputes the derived values.
    let w1 = tensor(&[3, 2], &[1., -1., 0.5, 2., 3., -2.]);
    m.set_param("w1", &w1).unwrap();
    let mut p = params.clone();
    p.insert("w1".into(), w1);
    assert_close(&run_y(&m), &reference(&p));

    // So does a committed training step (w2 += 1), but not an uncommitted one.
    m.bind_updates(&[
        ("v".to_string(), "v_new".to_string()),
        ("w2".to_string(), "w2_new".to_string()),
    ])
    .unwrap();
    m.run_staged(&inputs()).unwrap();
    assert_close(&run_y(&m), &reference(&p));
    m.commit_updates();
    p.insert("w2".into(), tensor(&[3, 2], &[1.; 6]));
    assert_close(&run_y(&m), &reference(&p));
    m.run_staged(&inputs()).unwrap();
    m.commit_updates();
    p.insert("w2".into(), tensor(&[3, 2], &[2.; 6]));
    assert_close(&run_y(&m), &reference(&p));
}

/// `set_params` writes several parameters and refreshes once; a bad entry
/// (unknown name or wrong shape) is rejected before anything is written.
#[test]
fn set_params_is_all_or_nothing() {
    let g = graph();
    let params = dlc_tensor::init_params(&g, 0, &Env::new()).unwrap();
    let mut m = CompiledModel::new(&g, &params, &RuntimeOptions::default()).unwrap();
    let w1 = tensor(&[3, 2], &[1., -1., 0.5, 2., 3., -2.]);
    let w2 = tensor(&[3, 2], &[0.25; 6]);
    m.set_params([("w1", &w1), ("w2", &w2)]).unwrap();
    let mut p = params.clone();
    p.insert("w1".into(), w1.clone());
    p.insert("w2".into(), w2);
    assert_close(&run_y(&m), &reference(&p));

    let zeros = tensor(&[3, 2], &[0.; 6]);
    let unknown = m.set_params([("w1", &zeros), ("w9", &zeros)]).unwrap_err();
    assert!(unknown.to_string().contains("w9"), "{unknown}");
    let wrong = tensor(&[2, 3], &[0.; 6]);
    let shape = m.set_params([("w2", &zeros), ("w1", &wrong)]).unwrap_err();
    assert!(shape.to_string().contains("w1"), "{shape}");
    assert_eq!(m.params()["w1"], w1);
    assert_close(&run_y(&m), &reference(&p));
}

#[test]
fn views_of_parameters_are_not_hoisted() {
    let src = "model m {
      input x: f32[4, 8]
      param w: f32[8, 8] = ones
      param b: f32[8] = zeros
      y = x @ w + broadcast_to(reshape(b, shape=[1, 8]), shape=[4, 8])
      output y
    }";
    let g = dlc_ir::syntax::parse_graph(src, &Default::default()).unwrap();
    let params = dlc_tensor::init_params(&g, 0, &Env::new()).unwrap();
    let m = CompiledModel::new(&g, &params, &RuntimeOptions::default()).unwrap();
    assert!(
        m.prelude().is_none(),
        "a transpose read by a matmul is a view"
    );
}
