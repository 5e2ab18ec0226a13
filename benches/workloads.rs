//! The reference workloads of PEERS.md (W1–W9, one `.ir` file each in
//! `benches/workloads/`), compiled by dlc and timed with
//! criterion, one thread and two. Run: `cargo bench --bench workloads [-- FILTER]`.
//! Results and the peer figures are recorded in BENCHMARKS.md.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dlc::{Env, Model, Options, TrainConfig, Trainer, Value};

mod common;

use common::workloads;

fn bench(c: &mut Criterion) {
    for w in workloads() {
        let model = Model::from_source(&w.id, &w.source).expect("workload parses");
        let mut group = c.benchmark_group(&w.id);
        group.sample_size(20);
        if let Some(f) = w.flops {
            group.throughput(Throughput::Elements(f));
        }
        for threads in [1, 2] {
            let exe = model
                .compile(&Options::default().threads(threads))
                .expect("workload compiles");
            let inputs: Env = exe.random_inputs(1);
            let compiled = exe.compiled().expect("JIT");
            let mut session = compiled.session();
            group.bench_function(BenchmarkId::new("dlc", format!("{threads}t")), |b| {
                b.iter(|| {
                    session.run(&inputs).expect("workload runs");
                })
            });
        }
        group.finish();
    }
}

/// Compile time of the W3a LSTM (W8b): parse, elaborate and JIT-compile.
fn compile_time(c: &mut Criterion) {
    let lstm = workloads()
        .into_iter()
        .find(|w| w.id.eq_ignore_ascii_case("W3a"))
        .expect("W3a");
    let mut group = c.benchmark_group("W8b");
    group.sample_size(20);
    group.bench_function("dlc compile", |b| {
        b.iter(|| {
            Model::from_source("W3a", &lstm.source)
                .and_then(|m| m.compile(&Options::default()))
                .expect("compiles")
        })
    });
    group.finish();
}

/// W4's model: MLP 784-512-256-10, ReLU, softmax cross-entropy, batch 64.
const W4: &str = "model w4 {
  dim B = 64
  input x: f32[B, 784]
  input labels: i64[B]
  param w1: f32[784, 512] = glorot_uniform
  param b1: f32[512] = zeros
  param w2: f32[512, 256] = glorot_uniform
  param b2: f32[256] = zeros
  param w3: f32[256, 10] = glorot_uniform
  param b3: f32[10] = zeros
  h1 = relu(x @ w1 + b1)
  h2 = relu(h1 @ w2 + b2)
  loss = cross_entropy(h2 @ w3 + b3, labels)
  output loss
}";

/// W4: one SGD training step (forward, backward, update of every parameter)
/// through `dlc::Trainer`, one thread and two; W8a: compiling that step.
fn train_step(c: &mut Criterion) {
    let model = Model::from_source("W4", W4).expect("W4 parses");
    let cfg = TrainConfig::default();
    let mut inputs = Env::new();
    let x = ndarray::Array2::from_shape_fn((64, 784), |(i, j)| ((i * 7 + j) % 13) as f32 / 13.0);
    inputs.insert("x".into(), Value::Float(x.into_dyn()));
    let labels = ndarray::Array1::from_shape_fn(64, |i| (i % 10) as i64);
    inputs.insert("labels".into(), Value::Int(labels.into_dyn()));
    let mut group = c.benchmark_group("W4");
    group.sample_size(20);
    for threads in [1, 2] {
        let opts = Options::default().threads(threads);
        let mut trainer = Trainer::new(&model, &opts, 64, &cfg).expect("W4 compiles");
        group.bench_function(BenchmarkId::new("dlc", format!("{threads}t")), |b| {
            b.iter(|| trainer.step(inputs.clone(), 0.01).expect("W4 steps"))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("W8a");
    group.sample_size(10);
    group.bench_function("dlc compile", |b| {
        b.iter(|| Trainer::new(&model, &Options::default(), 64, &cfg).expect("W4 compiles"))
    });
    group.finish();
}

criterion_group!(benches, bench, compile_time, train_step);
criterion_main!(benches);
