//! Hand-written JIT tests on small graphs with known results.

use dlc_runtime::{CompiledModel, RuntimeOptions};
use dlc_tensor::{Env, Value};
use ndarray::ArrayD;

fn run(src: &str, inputs: &[(&str, Vec<usize>, Vec<f32>)]) -> Env {
    let g = dlc_ir::syntax::parse_graph(src, &Default::default()).unwrap();
    let params = dlc_tensor::init_params(&g, 0, &Env::new()).unwrap();
    let model = CompiledModel::new(&g, &params, &RuntimeOptions::default()).unwrap();
    let env: Env = inputs
        .iter()
        .map(|(n, s, v)| {
            (
                n.to_string(),
                Value::Float(ArrayD::from_shape_vec(s.clone(), v.clone()).unwrap()),
            )
        })
        .collect();
    model.run(&env).unwrap()
}

#[test]
fn add_broadcast() {
    let out = run(
        "model m {\n input a: f32[2, 3]\n input b: f32[3]\n y = a + b\n output y\n}\n",
        &[
            ("a", vec![2, 3], vec![1., 2., 3., 4., 5., 6.]),
            ("b", vec![3], vec![10., 20., 30.]),
        ],
    );
    assert_eq!(
        out["y"].as_float().unwrap().as_slice().unwrap(),
        &[11., 22., 33., 14., 25., 36.]
    );
}
