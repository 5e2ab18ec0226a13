//! The `dlc` command end to end: every subcommand on the bundled models, and
//! bad input of every kind getting a clear message and exit code 2, never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn dlc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dlc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the dlc binary runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs `dlc` and asserts success; returns stdout.
fn ok(args: &[&str]) -> String {
    let o = dlc(args);
    let (out, err) = text(&o);
    assert!(
        o.status.success(),
        "dlc {args:?} failed ({:?}):\n{out}\n{err}",
        o.status
    );
    out
}

/// Runs `dlc`, asserts exit code 2 and no panic; returns stderr.
fn fails(args: &[&str]) -> String {
    let o = dlc(args);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "dlc {args:?}:\n{out}\n{err}");
    assert!(!err.contains("panicked"), "dlc {args:?} panicked:\n{err}");
    err
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dlc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn write(name: &str, bytes: &[u8]) -> String {
    let p = scratch(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

fn models() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("ir"))
        .unwrap()
        .map(|e| format!("ir/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|p| p.ends_with(".ir"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_bundled_model_checks_and_is_formatted() {
    for m in models() {
        let out = ok(&["check", &m]);
        assert!(out.contains("outputs:"), "{m}: {out}");
        ok(&["fmt", &m, "--check"]);
    }
}

#[test]
fn every_bundled_model_runs_on_the_jit_and_matches_the_interpreter() {
    for m in models() {
        let jit = scratch(&format!("{}.jit.npz", m.replace('/', "_")));
        let interp = scratch(&format!("{}.interp.npz", m.replace('/', "_")));
        ok(&["run", &m, "--random-inputs", "--out", jit.to_str().unwrap()]);
        ok(&[
            "run",
            &m,
            "--random-inputs",
            "--backend",
            "interp",
            "--out",
            interp.to_str().unwrap(),
        ]);
        let (a, b) = (
            dlc::read_tensors(&jit).unwrap(),
            dlc::read_tensors(&interp).unwrap(),
        );
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (name, got) in &a {
            // The bundled models chain at most a few hundred accumulations per value;
            // 1e-3 relative (plus an absolute floor for values near 0) is ~100x the
            // f32 rounding error such chains produce, and far below any real bug.
            let (g, w) = (got.as_float(), b[name].as_float());
            if let (Some(g), Some(w)) = (g, w) {
                let r = dlc_tensor::allowance_ratio(g, w, 1e-3, 1e-4);
                assert!(
                    matches!(r, Some(r) if r <= 1.0),
                    "{m}: output {name} differs (ratio {r:?})"
                );
            } else {
                assert_eq!(got, &b[name], "{m}: output {name}");
            }
        }
    }
}

#[test]
fn run_reads_inputs_and_params_and_writes_outputs() {
    let inputs = scratch("mlp_in.npz");
    let params = scratch("mlp_params.safetensors");
    let out = scratch("mlp_out.npz");
    let exe = dlc::Model::from_file(Path::new(env!("CARGO_MANIFEST_DIR")).join("ir/mlp.ir"))
        .unwrap()
        .compile(
            &dlc::Options::default()
                .dim("B", 3)
                .backend(dlc::Backend::Interp),
        )
        .unwrap();
    dlc::write_npz(&inputs, &exe.random_inputs(1)).unwrap();
    dlc::write_safetensors(&params, &exe.params()).unwrap();
    let stdout = ok(&[
        "run",
        "ir/mlp.ir",
        "--dim",
        "B=3",
        "--inputs",
        inputs.to_str().unwrap(),
        "--params",
        params.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(stdout.contains("logits: f32[3, 10]"), "{stdout}");
    let got = dlc::read_tensors(&out).unwrap();
    let want = exe.run(&exe.random_inputs(1)).unwrap();
    let r = dlc_tensor::allowance_ratio(
        got["logits"].as_float().unwrap(),
        want["logits"].as_float().unwrap(),
        1e-4,
        1e-5,
    );
    assert!(matches!(r, Some(r) if r <= 1.0), "{r:?}");
}

#[test]
fn compile_reports_kernels_memory_and_phases() {
    let out = ok(&["compile", "ir/lenet5.ir", "--emit", "kernels"]);
    for needle in ["kernels", "arena", "Cranelift", "total"] {
        assert!(out.contains(needle), "missing `{needle}` in:\n{out}");
    }
    let asm = ok(&["compile", "ir/mlp.ir", "--dim", "B=1", "--emit", "asm"]);
    assert!(asm.contains("ret"), "{asm}");
    let clif = ok(&[
        "compile",
        "ir/mlp.ir",
        "--dim",
        "B=1",
        "--emit",
        "clif",
        "--emit",
        "graph",
    ]);
    assert!(
        clif.contains("function") && clif.contains("model mlp"),
        "{clif}"
    );
}

#[test]
fn explain_reports_rules_costs_and_the_extractor() {
    let model = "benches/opt/lstm_cell_primitives.ir";
    let ilp = ok(&["compile", model, "-O2", "--explain", "--extract", "ilp"]);
    for needle in [
        "matmul-merge",
        "changed the result",
        "estimated cost",
        "extraction: ILP",
    ] {
        assert!(ilp.contains(needle), "missing `{needle}` in:\n{ilp}");
    }
    let greedy = ok(&["compile", model, "-O2", "--explain", "--extract", "greedy"]);
    assert!(!greedy.contains("extraction:"), "{greedy}");
    let err = fails(&["compile", model, "--extract", "best"]);
    assert!(err.contains("greedy") && err.contains("ilp"), "{err}");
}

#[test]
fn isa_portable_and_native_tiers_agree() {
    // A GEMM large enough for the packed loop nest and its micro-kernel.
    let outs: Vec<_> = ["native", "portable"]
        .iter()
        .map(|isa| {
            let out = scratch(&format!("w1b_{isa}.npz"));
            ok(&[
                "run",
                "benches/workloads/w1b.ir",
                "--random-inputs",
                "--isa",
                isa,
                "--out",
                out.to_str().unwrap(),
            ]);
            dlc::read_tensors(&out).unwrap()
        })
        .collect();
    // K = 256 products summed in a different order by each tier: a few ulps of
    // the row's magnitude (inputs are O(1), so |c| is O(16)).
    let r = dlc_tensor::allowance_ratio(
        outs[0]["c"].as_float().unwrap(),
        outs[1]["c"].as_float().unwrap(),
        1e-5,
        1e-4,
    );
    assert!(matches!(r, Some(r) if r <= 1.0), "{r:?}");
    fails(&["run", "ir/mlp.ir", "--random-inputs", "--isa", "avx512"]);
}

#[test]
fn bench_reports_a_median() {
    let out = ok(&[
        "bench",
        "ir/mlp.ir",
        "--dim",
        "B=1",
        "--runs",
        "5",
        "--warmup",
        "1",
    ]);
    assert!(out.contains("median"), "{out}");
}

#[test]
fn syntax_errors_point_at_line_and_column() {
    let f = write(
        "syntax.ir",
        b"model m {\n  input x: f32[2, 3]\n  y = relu(x +)\n  output y\n}\n",
    );
    let err = fails(&["check", &f]);
    assert!(err.contains(":3:"), "{err}");
    assert!(err.contains("expected"), "{err}");
}

#[test]
fn shape_errors_name_the_op_and_both_shapes() {
    let f = write(
        "shape.ir",
        b"model m {\n  input a: f32[2, 3]\n  input b: f32[4]\n  y = a * b\n  output y\n}\n",
    );
    let err = fails(&["check", &f]);
    assert!(
        err.contains("mul") && err.contains("[2, 3]") && err.contains("[4]"),
        "{err}"
    );
}

#[test]
fn bad_files_get_clear_errors() {
    let err = fails(&["check", "no/such/model.ir"]);
    assert!(err.contains("no/such/model.ir"), "{err}");
    let empty = write("empty.ir", b"");
    fails(&["check", &empty]);
    let binary = write("binary.ir", b"model m {\n  input x: f32[\xff\xfe]\n}\n");
    let err = fails(&["check", &binary]);
    assert!(err.contains("UTF-8") && err.contains(":2:"), "{err}");
    let unbound = write(
        "unbound.ir",
        b"model m {\n  dim B\n  input x: f32[B]\n  output x\n}\n",
    );
    let err = fails(&["check", &unbound]);
    assert!(err.contains("--dim B="), "{err}");
    let huge = write(
        "huge.ir",
        b"model m {\n  input x: f32[100000, 100000, 1000]\n  output x\n}\n",
    );
    let err = fails(&["check", &huge]);
    assert!(err.contains("limit") || err.contains("exceeds"), "{err}");
    fails(&["check", "ir/mlp.ir", "--dim", "B=0"]);
    fails(&["check", "ir/mlp.ir", "--dim", "B"]);
}

#[test]
fn bad_inputs_are_rejected_before_running() {
    let missing = fails(&["run", "ir/mlp.ir", "--inputs", "/nonexistent/in.npz"]);
    assert!(missing.contains("/nonexistent/in.npz"), "{missing}");
    let exe = dlc::Model::from_file(Path::new(env!("CARGO_MANIFEST_DIR")).join("ir/mlp.ir"))
        .unwrap()
        .compile(
            &dlc::Options::default()
                .dim("B", 2)
                .backend(dlc::Backend::Interp),
        )
        .unwrap();
    let good = exe.random_inputs(0);
    // Wrong shape: B=2 inputs for the default B=32.
    let f = scratch("wrong_shape.npz");
    dlc::write_npz(&f, &good).unwrap();
    let err = fails(&["run", "ir/mlp.ir", "--inputs", f.to_str().unwrap()]);
    assert!(
        err.contains("f32[2, 784]") && err.contains("f32[32, 784]"),
        "{err}"
    );
    // Missing input.
    let mut partial = good.clone();
    partial.remove("labels");
    let f = scratch("partial.npz");
    dlc::write_npz(&f, &partial).unwrap();
    let err = fails(&[
        "run",
        "ir/mlp.ir",
        "--dim",
        "B=2",
        "--inputs",
        f.to_str().unwrap(),
    ]);
    assert!(err.contains("labels"), "{err}");
    // Wrong dtype.
    let mut wrong = good.clone();
    let x = wrong["x"].as_float().unwrap().clone();
    wrong.insert("labels".into(), dlc::Value::Float(x));
    let f = scratch("dtype.npz");
    dlc::write_npz(&f, &wrong).unwrap();
    let err = fails(&[
        "run",
        "ir/mlp.ir",
        "--dim",
        "B=2",
        "--inputs",
        f.to_str().unwrap(),
    ]);
    assert!(err.contains("labels") && err.contains("i64"), "{err}");
    // Not an npz at all.
    let f = write("garbage.npz", b"this is not a zip archive");
    fails(&["run", "ir/mlp.ir", "--inputs", &f]);
}

#[test]
fn out_of_range_labels_are_a_run_time_error_not_a_crash() {
    let exe = dlc::Model::from_file(Path::new(env!("CARGO_MANIFEST_DIR")).join("ir/mlp.ir"))
        .unwrap()
        .compile(
            &dlc::Options::default()
                .dim("B", 2)
                .backend(dlc::Backend::Interp),
        )
        .unwrap();
    let mut inputs = exe.random_inputs(0);
    inputs.insert(
        "labels".into(),
        dlc::Value::Int(ndarray::ArrayD::from_elem(vec![2], 99)),
    );
    let f = scratch("labels.npz");
    dlc::write_npz(&f, &inputs).unwrap();
    for backend in ["jit", "interp"] {
        let err = fails(&[
            "run",
            "ir/mlp.ir",
            "--dim",
            "B=2",
            "--backend",
            backend,
            "--inputs",
            f.to_str().unwrap(),
        ]);
        assert!(err.contains("label"), "{backend}: {err}");
    }
}

#[test]
fn help_shows_examples() {
    let out = ok(&["--help"]);
    assert!(
        out.contains("Examples:") && out.contains("dlc run"),
        "{out}"
    );
}
