//! In-place parameter updates: `bind_updates`, `run_staged`, `commit_updates`.

use dlc_runtime::{CompiledModel, RunError, RuntimeOptions};
use dlc_tensor::{Env, Value};
use ndarray::ArrayD;

const STEP: &str = "model m {
  input x: f32[3]
  param w: f32[3] = ones
  param s: f32[] = zeros
  y = sum(w * x)
  w_new = w - x
  s_new = s + y
  output y, w_new, s_new
}";

fn model() -> CompiledModel {
    let g = dlc_ir::syntax::parse_graph(STEP, &Default::default()).unwrap();
    let params = dlc_tensor::init_params(&g, 0, &Env::new()).unwrap();
    CompiledModel::new(&g, &params, &RuntimeOptions::default()).unwrap()
}

fn input(x: [f32; 3]) -> Env {
    let x = ArrayD::from_shape_vec(vec![3], x.to_vec()).unwrap();
    [("x".to_string(), Value::Float(x))].into_iter().collect()
}

fn floats(env: &Env, name: &str) -> Vec<f32> {
    env[name].as_float().unwrap().iter().copied().collect()
}

fn bind(m: &mut CompiledModel, pairs: &[(&str, &str)]) -> Result<(), RunError> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(p, o)| (p.to_string(), o.to_string()))
        .collect();
    m.bind_updates(&pairs)
}

#[test]
fn staged_updates_apply_only_on_commit() {
    let mut m = model();
    bind(&mut m, &[("w", "w_new"), ("s", "s_new")]).unwrap();
    let out = m.run_staged(&input([1.0, 2.0, 3.0])).unwrap();
    assert_eq!(floats(&out, "y"), [6.0]);
    assert!(
        !out.contains_key("w_new"),
        "staged outputs are not returned"
    );
    assert_eq!(
        floats(&m.params(), "w"),
        [1.0, 1.0, 1.0],
        "not yet committed"
    );
    m.commit_updates();
    assert_eq!(floats(&m.params(), "w"), [0.0, -1.0, -2.0]);
    assert_eq!(floats(&m.params(), "s"), [6.0]);
    // A second step reads the committed values; a second commit is a no-op.
    let out = m.run_staged(&input([1.0, 1.0, 1.0])).unwrap();
    assert_eq!(floats(&out, "y"), [-3.0]);
    m.commit_updates();
    m.commit_updates();
    assert_eq!(floats(&m.params(), "w"), [-1.0, -2.0, -3.0]);
    assert_eq!(floats(&m.params(), "s"), [3.0]);
    // An uncommitted step is dropped by the next one.
    m.run_staged(&input([5.0, 5.0, 5.0])).unwrap();
    m.run_staged(&input([0.0, 0.0, 0.0])).unwrap();
    m.commit_updates();
    assert_eq!(floats(&m.params(), "w"), [-1.0, -2.0, -3.0]);
    // A failed run (bad input) leaves nothing to commit.
    assert!(m.run_staged(&Env::new()).is_err());
    m.commit_updates();
    assert_eq!(floats(&m.params(), "w"), [-1.0, -2.0, -3.0]);
    // `run` still returns every output and updates nothing.
    let out = m.run(&input([1.0, 1.0, 1.0])).unwrap();
    assert_eq!(floats(&out, "w_new"), [-2.0, -3.0, -4.0]);
    assert_eq!(floats(&m.params(), "w"), [-1.0, -2.0, -3.0]);
}

#[test]
fn bad_update_bindings_are_refused() {
    let mut m = model();
    let msg = |r: Result<(), RunError>| r.unwrap_err().to_string();
    assert!(msg(bind(&mut m, &[("v", "w_new")])).contains("unknown parameter `v`"));
    assert!(msg(bind(&mut m, &[("w", "z")])).contains("unknown output `z`"));
    assert!(msg(bind(&mut m, &[("w", "s_new")])).contains("output `s_new` of type f32[]"));
    assert!(msg(bind(&mut m, &[("w", "w_new"), ("w", "w_new")])).contains("a second update"));
}
