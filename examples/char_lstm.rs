//! A character-level LSTM language model (ir/char_lstm.ir: embedding -> LSTM ->
//! linear, cross-entropy against the next character) trained with Adam on a
//! licence text from /usr/share/common-licenses (a short bundled text when that
//! is absent), then sampled from.
//!
//! Run with `cargo run --release --example char_lstm [-- STEPS [FILE]]`.

use std::time::Instant;

use dlc::ir::init::SplitMix64;
use dlc::{Env, Model, Optimizer, Options, TrainConfig, Trainer, Value};
use ndarray::{Array2, ArrayD};

/// Used when no licence text is installed.
const BUNDLED: &str = "Permission is hereby granted, free of charge, to any person \
obtaining a copy of this software and associated documentation files, to deal in the \
Software without restriction, including without limitation the rights to use, copy, \
modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and \
to permit persons to whom the Software is furnished to do so, subject to the following \
conditions: The above copyright notice and this permission notice shall be included in \
all copies or substantial portions of the Software. THE SOFTWARE IS PROVIDED AS IS, \
WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE \
WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT.";

/// The model's sequence length, batch and vocabulary size (its dim defaults).
const T: usize = 32;
const B: usize = 16;
const V: usize = 65;

/// Characters by id: the `V - 1` most frequent, then `?` for all others.
struct Vocab {
    chars: Vec<char>,
}

impl Vocab {
    fn new(text: &str) -> Vocab {
        let mut counts = std::collections::BTreeMap::new();
        for c in text.chars() {
            *counts.entry(c).or_insert(0usize) += 1;
        }
        let mut by_count: Vec<(char, usize)> = counts.into_iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut chars: Vec<char> = by_count.into_iter().map(|(c, _)| c).take(V - 1).collect();
        chars.resize(V - 1, '?');
        chars.push('?');
        Vocab { chars }
    }

    fn id(&self, c: char) -> i64 {
        self.chars.iter().position(|&x| x == c).unwrap_or(V - 1) as i64
    }
}

fn text() -> (String, String) {
    let arg = std::env::args().nth(2);
    let candidates = arg.into_iter().chain(
        ["MPL-2.0", "Apache-2.0", "GPL-3", "GPL-2"]
            .iter()
            .map(|f| format!("/usr/share/common-licenses/{f}")),
    );
    for path in candidates {
        if let Ok(t) = std::fs::read_to_string(&path) {
            return (t, path);
        }
    }
    (BUNDLED.to_string(), "the bundled text".to_string())
}

/// `B` random windows of `T + 1` characters as (input, next) pairs, `[T, B]`.
fn batch(ids: &[i64], rng: &mut SplitMix64) -> Env {
    let mut x = Array2::<i64>::zeros((T, B));
    let mut y = Array2::<i64>::zeros((T, B));
    for b in 0..B {
        let start = (rng.next_u64() % (ids.len() - T - 1) as u64) as usize;
        for t in 0..T {
            x[[t, b]] = ids[start + t];
            y[[t, b]] = ids[start + t + 1];
        }
    }
    Env::from([
        ("chars".to_string(), Value::Int(x.into_dyn())),
        ("next_chars".to_string(), Value::Int(y.into_dyn())),
    ])
}

fn main() -> Result<(), dlc::Error> {
    let steps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let (text, source) = text();
    let vocab = Vocab::new(&text);
    let ids: Vec<i64> = text.chars().map(|c| vocab.id(c)).collect();
    if ids.len() < T + 2 {
        return Err(dlc::Error::Data(format!("{source} is too short")));
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let model = Model::from_file(format!("{root}/ir/char_lstm.ir"))?;
    let cfg = TrainConfig {
        optimizer: Optimizer::adam(),
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&model, &Options::default().seed(1), B, &cfg)?;
    println!(
        "training on {source} ({} characters), {steps} steps of {B}x{T}, on the {}",
        ids.len(),
        match trainer.fallback() {
            None => "JIT".to_string(),
            Some(why) => format!("interpreter ({why})"),
        }
    );
    let mut rng = SplitMix64::new(7);
    let t = Instant::now();
    for step in 1..=steps {
        let m = trainer.step(batch(&ids, &mut rng), 3e-3)?;
        if step % 50 == 0 || step == 1 {
            println!(
                "step {step:>4}: loss {:.3} ({:.1} ms per step)",
                m.loss,
                t.elapsed().as_secs_f64() * 1e3 / step as f64
            );
        }
    }
    // Sample: run the model on the last T characters (one sequence), draw the
    // next character from its softmax at temperature 0.8, slide the window.
    let exe = model.compile(&Options::default().dim("B", 1).params(trainer.params()))?;
    let mut window: Vec<i64> = ids[..T].to_vec();
    let mut out: String = text.chars().take(T).collect();
    for _ in 0..300 {
        let x = ArrayD::from_shape_vec(vec![T, 1], window.clone()).expect("T ids");
        let inputs = Env::from([
            ("chars".to_string(), Value::Int(x.clone())),
            ("next_chars".to_string(), Value::Int(x)),
        ]);
        let logits = exe.run(&inputs)?;
        let logits = logits["logits"].as_float().expect("f32 logits");
        let last = logits.outer_iter().last().expect("T rows");
        let max = last.iter().cloned().fold(f32::MIN, f32::max);
        let w: Vec<f64> = last
            .iter()
            .map(|&l| (((l - max) / 0.8) as f64).exp())
            .collect();
        let mut u = rng.uniform() * w.iter().sum::<f64>();
        let next = w
            .iter()
            .position(|&p| {
                u -= p;
                u <= 0.0
            })
            .unwrap_or(V - 1);
        out.push(vocab.chars[next]);
        window.remove(0);
        window.push(next as i64);
    }
    println!("--- sample ---\n{out}\n---");
    Ok(())
}
