//! Epilogue fusion: a matrix product's elementwise consumer and a layer norm of
//! its rows run inside the product's kernel. Random shapes through every GEMM
//! path (row-panel, packed, the native NT path, batched, column-split) against
//! the interpreter, normal and checked, one and two threads; and the cases
//! that must not fuse.

mod common;

use common::check;
use dlc_runtime::{CompiledModel, RuntimeOptions, Threading};
use dlc_tensor::Env;
use dlc_testgen::Case;
use proptest::prelude::*;

/// The consumer of `c = x @ w` (or of `x @ transpose(w)`, a PyTorch-layout weight).
const CONSUMERS: [&str; 6] = [
    "relu(c + b)",
    "gelu(c + b) * 0.5",
    "c + r",
    "sigmoid(c) * r + b",
    "c * s",
    "tanh(c - b) + c",
];

/// A model: `x [batch.., m, k] @ w [k, n]`, then `consumer`, then a layer norm
/// of the rows when `norm`.
fn model(
    batch: &[usize],
    (m, k, n): (usize, usize, usize),
    consumer: &str,
    norm: bool,
    nt: bool,
) -> String {
    let dims = |last: &[usize]| {
        let all: Vec<String> = batch.iter().chain(last).map(|d| d.to_string()).collect();
        all.join(", ")
    };
    let (w_shape, product) = if nt {
        (format!("{n}, {k}"), "x @ transpose(w, perm=[1, 0])")
    } else {
        (format!("{k}, {n}"), "x @ w")
    };
    let tail = if norm {
        "y0 = ".to_string() + consumer + "\n y = layernorm(y0, g, beta)\n"
    } else {
        "y = ".to_string() + consumer + "\n"
    };
    format!(
        "model m {{\n input x: f32[{}]\n param w: f32[{w_shape}] = uniform(-1, 1)\n \
         param b: f32[{n}] = uniform(-1, 1)\n input r: f32[{}]\n param s: f32[{m}, 1] = uniform(-1, 1)\n \
         param g: f32[{n}] = uniform(0.5, 1.5)\n param beta: f32[{n}] = uniform(-0.5, 0.5)\n \
         c = {product}\n {tail} output y\n}}\n",
        dims(&[m, k]),
        dims(&[m, n]),
    )
}

/// Names of the compiled kernels.
fn kernels(case: &Case, threads: usize) -> (Vec<String>, Env) {
    let opts = RuntimeOptions {
        threading: Threading {
            threads,
            min_split_us: 0.0,
        },
        ..RuntimeOptions::default()
    };
    let model = CompiledModel::new(&case.graph, &case.params, &opts).unwrap();
    let names = model
        .program()
        .lowered
        .kernels
        .iter()
        .map(|k| k.name.clone())
        .collect();
    (names, model.run(&case.inputs).unwrap())
}

/// Checks `src` against the interpreter (normal and checked), that two threads
/// give bit-identical results, and returns the kernel names.
fn check_all(src: &str) -> Vec<String> {
    let case = Case::parse(src, 11);
    check(&case, false).unwrap_or_else(|e| panic!("{e}"));
    check(&case, true).unwrap_or_else(|e| panic!("checked: {e}"));
    let (names, one) = kernels(&case, 1);
    let (_, two) = kernels(&case, 2);
    assert_eq!(one, two, "a thread split changed the results\n{src}");
    names
}

const SIZES: [usize; 9] = [1, 3, 7, 13, 16, 31, 64, 100, 257];

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn fused_consumers_match_the_interpreter(
        m in prop::sample::select(&SIZES[..]),
        k in prop::sample::select(&SIZES[..]),
        n in prop::sample::select(&SIZES[..]),
        batch in prop::sample::select(vec![vec![], vec![2], vec![2, 3]]),
        consumer in prop::sample::select(&CONSUMERS[..]),
        norm in any::<bool>(),
        nt in any::<bool>(),
    ) {
        let src = model(&batch, (m, k, n), consumer, norm, nt);
        let names = check_all(&src);
        // The consumer (and the norm, unless the product splits its columns
        // over threads) never gets a kernel of its own.
        prop_assert!(names[0].contains("matmul_"), "{names:?}\n{src}");
        let split_columns = m >= 16 && n >= 16 && k >= 16 && m < 24 && n >= 64;
        if !split_columns || !norm {
            prop_assert_eq!(names.len(), 1, "{:?}\n{}", names, src);
        }
    }
}

#[test]
fn every_gemm_path_fuses() {
    // Row-panel (small), packed with m ≤ MC, packed with several row blocks and
    // column blocks (n > NC), the native NT path, batched.
    for (batch, mkn, nt) in [
        (vec![], (5, 9, 11), false),
        (vec![], (48, 64, 80), false),
        (vec![], (150, 40, 1100), false),
        (vec![], (50, 128, 96), true),
        (vec![3], (20, 17, 33), false),
    ] {
        for consumer in CONSUMERS {
            for norm in [false, true] {
                let names = check_all(&model(&batch, mkn, consumer, norm, nt));
                assert_eq!(names.len(), 1, "{names:?}");
            }
        }
    }
}

#[test]
fn shared_or_reshaped_products_are_not_fused() {
    // The product is also an output; read by two consumers; reshaped first;
    // normalised over two axes; normalised while its columns are split over
    // threads (m = 18 < 24, n = 512).
    let cases = [
        "model m {\n input x: f32[32, 40]\n param w: f32[40, 24] = uniform(-1, 1)\n \
         c = x @ w\n y = relu(c)\n output c, y\n}\n",
        "model m {\n input x: f32[32, 40]\n param w: f32[40, 24] = uniform(-1, 1)\n \
         c = x @ w\n y = relu(c)\n z = sum(c, axis=1)\n output y, z\n}\n",
        "model m {\n input x: f32[32, 40]\n param w: f32[40, 24] = uniform(-1, 1)\n \
         c = reshape(x @ w, shape=[16, 48])\n y = relu(c)\n output y\n}\n",
        "model m {\n input x: f32[4, 32, 40]\n param w: f32[40, 24] = uniform(-1, 1)\n \
         param g: f32[32, 24] = ones\n param b: f32[32, 24] = zeros\n \
         y = layernorm(x @ w, g, b, axis=1)\n output y\n}\n",
        "model m {\n input x: f32[18, 40]\n param w: f32[40, 512] = uniform(-1, 1)\n \
         param g: f32[512] = ones\n param b: f32[512] = zeros\n \
         y = layernorm(x @ w, g, b)\n output y\n}\n",
    ];
    for src in cases {
        let names = check_all(src);
        assert!(names.len() >= 2, "{names:?}\n{src}");
    }
}
