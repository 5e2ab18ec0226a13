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
        check_product(m, k, n);
    }
}

/// The unpacked kernel for small products: row counts around its four-row
/// blocks, and column counts that end in each strip width, in the overlapping
/// last strip (5, 10, 13, 49, 50) or in scalar columns (1, 2, 3).
#[test]
fn small_gemm_odd_sizes_both_tiers() {
    for m in [1, 3, 4, 5, 7, 9, 13] {
        for n in [1, 2, 3, 4, 5, 8, 10, 13, 49, 50] {
            for k in [1, 7, 13] {
                check_product(m, k, n);
            }
        }
    }
}

/// `a @ b` for `[m, k] × [k, n]` equals a naive product exactly, on both tiers,
/// normal and checked, on one thread and split over two (splitting even the
/// smallest product).
fn check_product(m: usize, k: usize, n: usize) {
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
    let env: Env = [("a", vec![m, k], a), ("b", vec![k, n], b)]
        .into_iter()
        .map(|(name, shape, data)| {
            let value = Value::Float(ArrayD::from_shape_vec(shape, data).unwrap());
            (name.to_string(), value)
        })
        .collect();
    for portable in [false, true] {
        for checked in [true, false] {
            for threads in [1, 2] {
                let mut opts = RuntimeOptions::default();
                opts.codegen.portable = portable;
                opts.codegen.checked = checked;
                opts.threading = dlc_runtime::Threading {
                    threads,
                    min_split_us: 0.0,
                };
                let model = CompiledModel::new(&g, &Env::new(), &opts).unwrap();
                let case = format!("{m}x{k}x{n} portable={portable} checked={checked}");
                let out = model
                    .run(&env)
                    .unwrap_or_else(|e| panic!("{case} threads={threads}: {e}"));
                let got = out["c"].as_float().unwrap();
                assert_eq!(got.as_slice().unwrap(), &want[..], "{case}");
            }
        }
    }
}

/// Linear layers `relu(x @ transpose(w) + b)` with the weight in PyTorch
/// layout: few rows of `x` take the native tier's unpacked NT route (depth
/// tails, one and several row panels, split over two threads), more rows or
/// thin-and-wide products the packed GEMM. Results equal the interpreter's
/// exactly (integer inputs), on both tiers, normal and checked.
#[test]
fn linear_layers_with_pytorch_weights() {
    for &(m, k, n) in &[
        (16, 16, 16),
        (17, 19, 23),
        (50, 128, 1024),
        (100, 33, 29),
        (20, 40, 70),
        (300, 130, 20),
    ] {
        let src = format!(
            "model m {{\n input x: f32[{m}, {k}]\n input w: f32[{n}, {k}]\n input b: f32[{n}]\n\
             y = relu(x @ transpose(w) + b)\n output y\n}}\n"
        );
        let g = dlc_ir::syntax::parse_graph(&src, &Default::default()).unwrap();
        let env = exact_inputs(&g);
        let want = dlc_interp::run::<f32>(&g, &env, &Env::new()).unwrap();
        for portable in [false, true] {
            for checked in [true, false] {
                for threads in [1, 2] {
                    let mut opts = RuntimeOptions::default();
                    opts.codegen.portable = portable;
                    opts.codegen.checked = checked;
                    opts.threading = dlc_runtime::Threading {
                        threads,
                        min_split_us: 0.0,
                    };
                    let model = CompiledModel::new(&g, &Env::new(), &opts).unwrap();
                    let got = model.run(&env).unwrap();
                    assert_eq!(
                        got["y"], want["y"],
                        "{m}x{k}x{n} portable={portable} checked={checked} threads={threads}"
                    );
                }
            }
        }
    }
}

/// Single rows against a row-major B take the GEMV kernel (whole rows of B per
/// pass): one pass; a first and a last pass; first, middle and last passes;
/// depth tails of every length; columns ending in a full step or leaving a
/// remainder for the strip kernel (vectors, the overlapping last strip). Exact
/// against a naive product.
#[test]
fn gemv_single_rows() {
    for k in [8, 9, 15, 16, 17, 24, 31, 100] {
        for n in [16, 17, 20, 33, 64, 100] {
            check_product(1, k, n);
        }
    }
    // A four-row block and a single row after it.
    check_product(5, 40, 37);
}

/// The GEMV kernel's finishing pass applies the bias and the activation, also
/// for batched single rows; results equal the interpreter's exactly.
#[test]
fn gemv_with_bias_activation_and_batch() {
    for (batch, k, n) in [(1, 8, 16), (1, 30, 40), (3, 17, 35), (2, 64, 19)] {
        let src = format!(
            "model m {{\n input x: f32[{batch}, 1, {k}]\n input w: f32[{k}, {n}]\n input b: f32[{n}]\n\
             y = relu(x @ w + b)\n output y\n}}\n"
        );
        let g = dlc_ir::syntax::parse_graph(&src, &Default::default()).unwrap();
        let env = exact_inputs(&g);
        let want = dlc_interp::run::<f32>(&g, &env, &Env::new()).unwrap();
        for (config, opts) in tiers_normal_and_checked() {
            let model = CompiledModel::new(&g, &Env::new(), &opts).unwrap();
            let got = model.run(&env).unwrap();
            assert_eq!(got["y"], want["y"], "{batch}x1x{k}x{n} {config}");
        }
    }
}

/// Both micro-kernel tiers, each normal and checked, named for messages.
fn tiers_normal_and_checked() -> impl Iterator<Item = (String, RuntimeOptions)> {
    [false, true].into_iter().flat_map(|portable| {
        [true, false].into_iter().map(move |checked| {
            let mut opts = RuntimeOptions::default();
            opts.codegen.portable = portable;
            opts.codegen.checked = checked;
            (format!("portable={portable} checked={checked}"), opts)
        })
    })
}

/// Integer-valued inputs (products and sums stay exact in f32).
fn exact_inputs(g: &dlc_ir::Graph) -> Env {
    g.inputs()
        .map(|id| {
            let v = dlc_ir::ValueId::first(id);
            let ty = g.ty(v);
            let data = (0..ty.numel()).map(|i| ((i * 7 % 11) as f32) - 5.0);
            (
                g.value_name(v).to_string(),
                Value::Float(ArrayD::from_shape_vec(ty.shape.clone(), data.collect()).unwrap()),
            )
        })
        .collect()
}

/// Transposes read only by matmuls become strided operands (no copy kernel);
/// one also used elsewhere keeps its kernel, and so does a transposed B of a
/// small product. Results equal the interpreter's
/// exactly, on both tiers, normal and checked, for packed and small products.
#[test]
fn transposed_matmul_operands_are_views() {
    for &(m, k, n) in &[(3, 5, 7), (64, 784, 70), (100, 31, 257)] {
        let src = format!(
            "model m {{\n input a: f32[{k}, {m}]\n input b: f32[{n}, {k}]\n\
             input x: f32[3, {m}, {k}]\n input y: f32[3, {n}, {k}]\n\
             at = transpose(a)\n bt = transpose(b)\n c = at @ bt\n\
             yt = transpose(y, perm=[0, 2, 1])\n e = x @ yt\n\
             f = bt + 1.0\n g = bt @ transpose(c)\n output c, e, f, g\n}}\n"
        );
        let g = dlc_ir::syntax::parse_graph(&src, &Default::default()).unwrap();
        let env = exact_inputs(&g);
        let want = dlc_interp::run::<f32>(&g, &env, &Env::new()).unwrap();
        for (config, opts) in tiers_normal_and_checked() {
            let model = CompiledModel::new(&g, &Env::new(), &opts).unwrap();
            let copies: Vec<&str> = model
                .program()
                .lowered
                .kernels
                .iter()
                .map(|k| k.name.as_str())
                .filter(|name| name.ends_with("transpose"))
                .collect();
            // `bt` is also added to, so it is copied; a transposed B of a
            // product too small for the packed GEMM is copied too (the
            // row-panel kernel vectorises only over unit-stride columns).
            let expected = if m.min(k).min(n) >= 16 { 1 } else { 3 };
            assert_eq!(copies.len(), expected, "{m}x{k}x{n}: {copies:?}");
            let got = model.run(&env).unwrap();
            for name in ["c", "e", "f", "g"] {
                assert_eq!(got[name], want[name], "{name}: {m}x{k}x{n} {config}");
            }
        }
    }
}

/// Softmax over contiguous rows runs natively on AVX2 machines: it agrees
/// with the Cranelift tier on every row length around the 8-lane chunks
/// (masked tails), in normal and checked mode, including rows with a NaN
/// and rows with a +inf or all -inf (`inf - inf` makes the row's sum NaN, so
/// every element of those rows is NaN).
/// Both tiers compute each `exp(x - max)` with the same operations; only the
/// order of the row sum differs, so elements agree within `2·len·ε` relative.
#[test]
fn softmax_rows_agree_across_tiers() {
    for len in [1, 2, 7, 8, 9, 15, 16, 17, 31, 100, 1000] {
        let rows = 5;
        let src = format!(
            "model m {{\n input x: f32[{rows}, {len}]\n y = softmax(x, axis=-1)\n output y\n}}\n"
        );
        let g = dlc_ir::syntax::parse_graph(&src, &Default::default()).unwrap();
        let mut x: Vec<f32> = (0..rows * len)
            .map(|i| (i * 37 % 101) as f32 * 0.09 - 4.5)
            .collect();
        x[len + len / 2] = f32::NAN;
        x[2 * len + len / 3] = f32::INFINITY;
        x[3 * len..4 * len].fill(f32::NEG_INFINITY);
        let env: Env = [(
            "x".to_string(),
            Value::Float(ArrayD::from_shape_vec(vec![rows, len], x).unwrap()),
        )]
        .into_iter()
        .collect();
        let outputs: Vec<Vec<f32>> = [(false, false), (false, true), (true, false)]
            .into_iter()
            .map(|(portable, checked)| {
                let mut opts = RuntimeOptions::default();
                opts.codegen.portable = portable;
                opts.codegen.checked = checked;
                let model = CompiledModel::new(&g, &Env::new(), &opts).unwrap();
                let y = model.run(&env).unwrap().remove("y").unwrap();
                y.as_float().unwrap().iter().copied().collect()
            })
            .collect();
        let tol = 2.0 * len as f32 * f32::EPSILON;
        for other in &outputs[1..] {
            for (i, (&a, &b)) in outputs[0].iter().zip(other).enumerate() {
                let same = (a.is_nan() && b.is_nan())
                    || (a - b).abs() <= tol * b.abs().max(f32::MIN_POSITIVE);
                assert!(same, "len {len}, element {i}: {a} vs {b}");
            }
        }
        let y = &outputs[0];
        assert!(
            y[len..2 * len].iter().all(|v| v.is_nan()),
            "a NaN row is NaN"
        );
        assert!(
            y[3 * len..4 * len].iter().all(|v| v.is_nan()),
            "an all -inf row is NaN"
        );
        assert!(
            y[2 * len..3 * len].iter().all(|v| v.is_nan()),
            "a +inf row is NaN"
        );
        let sum: f32 = y[..len].iter().sum();
        assert!(
            (sum - 1.0).abs() <= tol,
            "len {len}: a finite row sums to {sum}"
        );
    }
}
