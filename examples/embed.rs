//! Embedding dlc as a JIT: compile a model once, then call it many times with
//! ndarray inputs from a Rust program — no Python, no files at run time.
//!
//! Run with `cargo run --release --example embed`.

use std::time::Instant;

use dlc::{Env, Model, Options, Value};
use ndarray::ArrayD;

fn main() -> Result<(), dlc::Error> {
    // The model text can come from a file or be embedded in the binary.
    let model = Model::from_source(
        "classifier.ir",
        "model classifier {
           dim    B = 1
           input  x: f32[B, 784]
           param  w1: f32[784, 128] = glorot_uniform
           param  b1: f32[128]      = zeros
           param  w2: f32[128, 10]  = glorot_uniform
           param  b2: f32[10]       = zeros
           probs  = softmax(relu(x @ w1 + b1) @ w2 + b2)
           output probs
         }",
    )?;
    let t = Instant::now();
    let exe = model.compile(&Options::default().dim("B", 1).threads(1))?;
    println!("compiled in {:.2} ms", t.elapsed().as_secs_f64() * 1e3);

    // A compiled model checks input names, dtypes and shapes on every call.
    let image = ArrayD::from_shape_fn(vec![1, 784], |ix| ((ix[1] % 28) as f32 / 28.0).sin());
    let inputs: Env = [("x".to_string(), Value::Float(image))]
        .into_iter()
        .collect();
    let outputs = exe.run(&inputs)?;
    let probs = outputs["probs"].as_float().expect("probabilities are f32");
    let (class, p) = probs
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .expect("ten classes");
    println!(
        "class {class} with probability {p:.3} (sum {:.6})",
        probs.sum()
    );

    // Many calls: a session reuses its memory, so this loop allocates nothing.
    let compiled = exe.compiled().expect("the default backend is the JIT");
    let mut session = compiled.session();
    let t = Instant::now();
    let n = 10_000;
    for _ in 0..n {
        session.run(&inputs)?;
    }
    println!(
        "{:.2} µs per call",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );

    // Wrong inputs are rejected with a clear message before any kernel runs.
    let bad: Env = [("x".to_string(), Value::Float(ArrayD::zeros(vec![2, 784])))]
        .into_iter()
        .collect();
    if let Err(e) = exe.run(&bad) {
        println!("rejected: {e}");
    }
    Ok(())
}
