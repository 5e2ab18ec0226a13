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

/// Packed GEMM on odd sizes, both micro-kernel tiers, normal and checked mode,
/// against a naive product (exact inputs keep the sums exact in f32).
#[test]
fn packed_gemm_odd_sizes_both_tiers() {
    for &(m, k, n) in &[
        (16, 16, 16),
        (17, 19, 23),
        (31, 300, 40),
        (100, 257, 13 + 16),
        (6, 64, 70),
        (257, 31, 100),
    ] {
        let src = format!(
            "model m {{\n input a: f32[{m}, {k}]\n input b: f32[{k}, {n}]\n c = a @ b\n output c\n}}\n"
        );
        let g = dlc_ir::syntax::parse_graph(&src, &Default::default()).unwrap();
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 11) as f32) - 5.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 7) as f32) - 3.0).collect();
        let mut want = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                want[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        let env: Env = [
            (
                "a".to_string(),
                Value::Float(ArrayD::from_shape_vec(vec![m, k], a.clone()).unwrap()),
            ),
            (
                "b".to_string(),
                Value::Float(ArrayD::from_shape_vec(vec![k, n], b.clone()).unwrap()),
            ),
        ]
        .into_iter()
        .collect();
        for portable in [false, true] {
            for checked in [true, false] {
                let mut opts = RuntimeOptions::default();
                opts.codegen.portable = portable;
                opts.codegen.checked = checked;
                let model = CompiledModel::new(&g, &Env::new(), &opts).unwrap();
                let out = model.run(&env).unwrap_or_else(|e| {
                    panic!("{m}x{k}x{n} portable={portable} checked={checked}: {e}")
                });
                assert_eq!(
                    out["c"].as_float().unwrap().as_slice().unwrap(),
                    &want[..],
                    "{m}x{k}x{n} portable={portable}"
                );
            }
        }
    }
}
