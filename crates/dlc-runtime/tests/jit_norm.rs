//! The JIT's gather, one-hot, normalisation and loss kernels against the
//! interpreter: random graphs per family, hand-picked shapes that reach every
//! code path (chunked statistics, channel groups, thread splits), run-time
//! errors. (The PyTorch reference files run through the JIT in the top-level
//! `tests/reference_jit.rs`.)

mod common;

use common::check;
use dlc_runtime::{CompiledModel, RunError, RuntimeOptions, Threading};
use dlc_tensor::{Env, Value};
use dlc_testgen::{Case, Family, GenConfig};
use ndarray::ArrayD;
use proptest::prelude::*;

macro_rules! family_test {
    ($name:ident, $family:expr) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]
            #[test]
            fn $name(case in dlc_testgen::arb_case(GenConfig::only($family))) {
                check(&case, false)?;
            }
        }
    };
}

family_test!(gather, Family::Gather);
family_test!(norm, Family::Norm);
family_test!(loss, Family::Loss);

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]
    /// Checked mode (every access bounds-checked) finds no violation.
    #[test]
    fn checked_mode(case in dlc_testgen::arb_case(GenConfig::default().with_families(&[
        Family::Gather, Family::Norm, Family::Loss,
    ]))) {
        check(&case, true)?;
    }
}

fn run(case: &Case, threading: Threading) -> Env {
    let opts = RuntimeOptions {
        threading,
        ..RuntimeOptions::default()
    };
    let model = CompiledModel::new(&case.graph, &case.params, &opts).unwrap();
    model.run(&case.inputs).unwrap()
}

/// Checks against the interpreter (normal and checked mode), and that splitting
/// every kernel over two threads gives bit-identical results.
fn check_all(src: &str) {
    let case = Case::parse(src, 7);
    check(&case, false).unwrap();
    check(&case, true).unwrap();
    let single = run(&case, Threading::single());
    let split = run(
        &case,
        Threading {
            threads: 2,
            min_split_us: 0.0,
        },
    );
    assert_eq!(single, split, "a thread split changed the results");
}

#[test]
fn layernorm_long_rows_use_chunked_statistics() {
    // Rows of 9000 = 2 chunks of 4096 + 808; rows of 4096 = exactly one chunk.
    check_all(
        "model m {\n input x: f32[3, 9000]\n param g: f32[9000] = uniform(0.5, 1.5)\n \
         param b: f32[9000] = uniform(-0.5, 0.5)\n y = layernorm(x, g, b, axis=1)\n output y\n}\n",
    );
    check_all(
        "model m {\n input x: f32[5, 2, 2048]\n param g: f32[2, 2048] = ones\n \
         param b: f32[2, 2048] = zeros\n y = layernorm(x, g, b, axis=1, eps=1e-3)\n output y\n}\n",
    );
}

#[test]
fn batchnorm_training_paths() {
    // inner > 1 with runs longer than a chunk; inner == 1 with 16-, 4- and 1-wide
    // channel groups; a thin inner of 3.
    for (shape, c) in [("3, 2, 70, 73", 2), ("37, 23", 23), ("9, 5, 3", 5)] {
        check_all(&format!(
            "model m {{\n input x: f32[{shape}]\n param g: f32[{c}] = uniform(0.5, 1.5)\n \
             param b: f32[{c}] = uniform(-0.5, 0.5)\n param rm: f32[{c}] = uniform(-1, 1)\n \
             param rv: f32[{c}] = uniform(0.5, 2)\n \
             y, m, v = batchnorm(x, g, b, rm, rv, training=true, momentum=0.1)\n output y, m, v\n}}\n"
        ));
        check_all(&format!(
            "model m {{\n input x: f32[{shape}]\n param g: f32[{c}] = uniform(0.5, 1.5)\n \
             param b: f32[{c}] = uniform(-0.5, 0.5)\n param rm: f32[{c}] = uniform(-1, 1)\n \
             param rv: f32[{c}] = uniform(0.5, 2)\n y = batchnorm(x, g, b, rm, rv)\n output y\n}}\n"
        ));
    }
}

#[test]
fn losses_over_many_blocks_and_rows() {
    check_all(
        "model m {\n input p: f32[300, 400]\n input t: f32[300, 400]\n l = mse_loss(p, t)\n output l\n}\n",
    );
    check_all(
        "model m {\n input x: f32[513, 37]\n input y: i64[513]\n l = cross_entropy(x, y)\n output l\n}\n",
    );
    check_all(
        "model m {\n input x: f32[1, 3]\n input y: i64[1]\n l = cross_entropy(x, y)\n output l\n}\n",
    );
}

#[test]
fn gathers_of_every_dtype_and_axis() {
    check_all(
        "model m {\n param e: f32[50, 37] = uniform(-1, 1)\n input i: i64[4, 9]\n y = embedding(e, i)\n output y\n}\n",
    );
    check_all(
        "model m {\n input x: f32[6, 11, 5]\n input i: i64[7]\n y = gather(x, i, axis=1)\n \
         z = gather(x, i, axis=2)\n output y, z\n}\n",
    );
    check_all(
        "model m {\n input x: f32[6, 11]\n input i: i64[3]\n b = x > 0.0\n k = cast(x, to=i64)\n \
         y = gather(b, i, axis=0)\n z = gather(k, i, axis=0)\n output y, z\n}\n",
    );
    check_all("model m {\n input i: i64[5, 3]\n y = one_hot(i, depth=21)\n output y\n}\n");
}

fn run_with(src: &str, inputs: Vec<(&str, Value<f32>)>) -> Result<Env, RunError> {
    let g = dlc_ir::syntax::parse_graph(src, &Default::default()).unwrap();
    let params = dlc_tensor::init_params(&g, 0, &Env::new()).unwrap();
    for checked in [false, true] {
        let mut opts = RuntimeOptions::default();
        opts.codegen.checked = checked;
        let model = CompiledModel::new(&g, &params, &opts).unwrap();
        let env: Env = inputs
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect();
        let out = model.run(&env);
        if checked {
            return out;
        }
        out?;
    }
    unreachable!()
}

fn ints(shape: &[usize], v: Vec<i64>) -> Value<f32> {
    Value::Int(ArrayD::from_shape_vec(shape.to_vec(), v).unwrap())
}

fn floats(shape: &[usize], v: Vec<f32>) -> Value<f32> {
    Value::Float(ArrayD::from_shape_vec(shape.to_vec(), v).unwrap())
}

fn assert_kernel_error(r: Result<Env, RunError>, what: &str) {
    match r {
        Err(RunError::Kernel { message, .. }) => assert!(message.contains(what), "{message}"),
        other => panic!("expected a kernel error, got {other:?}"),
    }
}

#[test]
fn bad_gather_index_is_a_run_error() {
    let src = "model m {\n param e: f32[10, 4] = uniform(-1, 1)\n input i: i64[3]\n y = embedding(e, i)\n output y\n}\n";
    assert!(run_with(src, vec![("i", ints(&[3], vec![0, 9, 3]))]).is_ok());
    for bad in [10, -1, i64::MIN, i64::MAX] {
        let r = run_with(src, vec![("i", ints(&[3], vec![0, bad, 3]))]);
        assert_kernel_error(r, "index");
    }
}

#[test]
fn bad_label_is_a_run_error() {
    let src = "model m {\n input x: f32[2, 3]\n input y: i64[2]\n l = cross_entropy(x, y)\n output l\n}\n";
    let x = floats(&[2, 3], vec![1.0, 2.0, 3.0, 0.0, 0.0, 0.0]);
    let out = run_with(src, vec![("x", x.clone()), ("y", ints(&[2], vec![2, 0]))]).unwrap();
    let want = ((1.0f32.exp() + 2.0f32.exp() + 3.0f32.exp()).ln() - 3.0 + 3.0f32.ln()) / 2.0;
    let got = out["l"].as_float().unwrap()[[]];
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    for bad in [3, -1, i64::MAX] {
        let r = run_with(src, vec![("x", x.clone()), ("y", ints(&[2], vec![0, bad]))]);
        assert_kernel_error(r, "label");
    }
}

#[test]
fn one_hot_out_of_range_is_a_zero_row() {
    let src = "model m {\n input i: i64[4]\n y = one_hot(i, depth=3)\n output y\n}\n";
    let out = run_with(src, vec![("i", ints(&[4], vec![2, -1, 3, 0]))]).unwrap();
    let y = out["y"].as_float().unwrap();
    let want = [0., 0., 1., 0., 0., 0., 0., 0., 0., 1., 0., 0.];
    assert_eq!(y.as_slice().unwrap(), &want);
}
