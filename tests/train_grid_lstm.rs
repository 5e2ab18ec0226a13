//! Training a grid-LSTM classifier runs on the JIT (its gradient op is
//! lowered: no interpreter fallback), the JIT's steps follow the
//! interpreter's, and the loss falls on a learnable task.

use dlc::{Backend, Env, Model, Optimizer, Options, TrainConfig, Trainer, Value};
use ndarray::{Array1, Array4};

/// A grid LSTM read out by the mean of its per-cell states, then a linear
/// classifier (hidden size 7, so no dimension is a multiple of four).
const SRC: &str = "model grid_classifier {
  dim HG = 3
  dim WG = 4
  dim B = 4
  dim F = 5
  input x: f32[HG, WG, B, F]
  input labels: i64[B]
  param w1: f32[19, 28] = glorot_uniform
  param b1: f32[28] = zeros
  param w2: f32[19, 28] = glorot_uniform
  param b2: f32[28] = zeros
  param fc_w: f32[2, 14] = glorot_uniform
  param fc_b: f32[2] = zeros
  y, hv, mv, hh, mh = grid_lstm(x, w1, b1, w2, b2)
  summary = mean(y, axis=[0, 1])
  logits = linear(summary, fc_w, fc_b)
  loss = cross_entropy(logits, labels)
  output logits, loss
}";

/// Batch `k`: deterministic inputs in `[-1, 1)`; the label says whether the
/// first feature summed over the grid is positive.
fn batch(k: usize) -> Env {
    let mut x = Array4::<f32>::zeros((3, 4, 4, 5));
    for (n, v) in x.iter_mut().enumerate() {
        let h = (n as u64 + 1 + 1000 * k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        *v = (h >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
    }
    let labels =
        Array1::from_iter((0..4).map(|b| (x.slice(ndarray::s![.., .., b, 0]).sum() > 0.0) as i64));
    Env::from([
        ("x".to_string(), Value::Float(x.into_dyn())),
        ("labels".to_string(), Value::Int(labels.into_dyn())),
    ])
}

fn trainer(backend: Backend) -> Trainer {
    let model = Model::from_source("grid_classifier", SRC).unwrap();
    let cfg = TrainConfig {
        optimizer: Optimizer::adam(),
        ..TrainConfig::default()
    };
    let opts = Options::default().seed(3).backend(backend);
    Trainer::new(&model, &opts, 4, &cfg).unwrap()
}

/// The step compiles on the JIT, and 20 Adam steps on the JIT track the
/// interpreter's (same seed, same batches): every loss within 1e-3 relative
/// (f32 rounding through 20 updates of a 7-step backpropagation; the
/// reference gradients match to 2e-4) and the loss falls.
#[test]
fn grid_lstm_trains_on_the_jit() {
    let mut jit = trainer(Backend::Jit);
    assert_eq!(jit.backend(), Backend::Jit, "{:?}", jit.fallback());
    assert_eq!(jit.fallback(), None);
    let mut interp = trainer(Backend::Interp);
    let mut losses = Vec::new();
    for k in 0..20 {
        let a = jit.step(batch(k % 4), 0.01).unwrap().loss;
        let b = interp.step(batch(k % 4), 0.01).unwrap().loss;
        assert!(
            (a - b).abs() <= 1e-3 * b.abs(),
            "step {k}: JIT loss {a}, interpreter {b}"
        );
        losses.push(a);
    }
    let (first, last) = (
        losses[..4].iter().sum::<f64>(),
        losses[16..].iter().sum::<f64>(),
    );
    assert!(last < 0.8 * first, "the loss did not fall: {losses:?}");
}
