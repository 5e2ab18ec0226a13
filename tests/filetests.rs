//! `.ir` file tests, in the style of Cranelift's runtests: each file under
//! `tests/filetests/` is a model whose comments give inputs and expected outputs.
//!
//! ```text
//! # in  x: [[1, -2], [3, 4]]
//! # out y: [[1, 0], [3, 4]]
//! ```
//!
//! Values are nested lists in the IR's literal syntax (row-major; their element
//! count must match the declared type; `true`/`false` for bool, integers for i64,
//! `inf`/`nan` allowed). Every file runs on the interpreter and on the JIT (also in
//! checked mode); both must match the expectations within `|got - want| <=
//! 1e-5 + 1e-5·|want|` (floats are printed to 9 significant digits, so this only
//! admits f32 rounding). Inputs not given get deterministic random values.
//!
//! Bless: `DLC_BLESS=1 cargo test --test filetests` rewrites every `# out` line
//! with the interpreter's results (review the diff before committing).

use std::path::{Path, PathBuf};

use dlc::{Backend, Env, Executable, Model, Options, Value};
use dlc_ir::DType;
use ndarray::ArrayD;

fn files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/filetests");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("tests/filetests exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ir"))
        .collect();
    v.sort();
    v
}

/// Parses a nested-list literal into its flat values.
fn parse_values(text: &str) -> Result<Vec<String>, String> {
    let mut depth = 0i32;
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' => {}
            c if c.is_whitespace() => {}
            c => {
                cur.push(c);
                continue;
            }
        }
        if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        if depth < 0 {
            return Err(format!("unbalanced brackets in `{text}`"));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    if depth != 0 {
        return Err(format!("unbalanced brackets in `{text}`"));
    }
    Ok(out)
}

fn to_value(text: &str, ty: &dlc_ir::TensorType) -> Result<Value, String> {
    let items = parse_values(text)?;
    if items.len() != ty.numel() {
        return Err(format!("{} values for type {ty}", items.len()));
    }
    let shape = ty.shape.clone();
    let bad = |s: &String| format!("`{s}` is not a {}", ty.dtype);
    Ok(match ty.dtype {
        DType::F32 => {
            let v: Result<Vec<f32>, _> = items
                .iter()
                .map(|s| s.parse::<f32>().map_err(|_| bad(s)))
                .collect();
            Value::Float(ArrayD::from_shape_vec(shape, v?).unwrap())
        }
        DType::I64 => {
            let v: Result<Vec<i64>, _> = items
                .iter()
                .map(|s| s.parse::<i64>().map_err(|_| bad(s)))
                .collect();
            Value::Int(ArrayD::from_shape_vec(shape, v?).unwrap())
        }
        DType::Bool => {
            let v: Result<Vec<bool>, _> = items
                .iter()
                .map(|s| s.parse::<bool>().map_err(|_| bad(s)))
                .collect();
            Value::Bool(ArrayD::from_shape_vec(shape, v?).unwrap())
        }
    })
}

/// Formats a value as a nested list (the inverse of `to_value`).
fn format_value(v: &Value) -> String {
    fn nest(shape: &[usize], items: &[String]) -> String {
        match shape {
            [] => items[0].clone(),
            [n, rest @ ..] => {
                let step = items.len() / n;
                let parts: Vec<String> = (0..*n)
                    .map(|i| nest(rest, &items[i * step..(i + 1) * step]))
                    .collect();
                format!("[{}]", parts.join(", "))
            }
        }
    }
    let items: Vec<String> = match v {
        Value::Float(a) => a.iter().map(|x| format!("{}", Sig9(*x))).collect(),
        Value::Int(a) => a.iter().map(|x| x.to_string()).collect(),
        Value::Bool(a) => a.iter().map(|x| x.to_string()).collect(),
    };
    nest(v.shape(), &items)
}

/// An f32 printed with 9 significant digits (round-trips exactly), trimmed.
struct Sig9(f32);

impl std::fmt::Display for Sig9 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let x = self.0;
        if x.is_nan() {
            return f.write_str("nan");
        }
        if x.is_infinite() {
            return f.write_str(if x > 0.0 { "inf" } else { "-inf" });
        }
        // Rust's shortest representation round-trips and is usually short.
        write!(f, "{x:?}")
    }
}

struct FileTest {
    model: Model,
    ins: Vec<(String, String)>,
    outs: Vec<(String, String)>,
}

fn load(path: &Path) -> Result<FileTest, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let model =
        Model::from_source(&path.display().to_string(), &text).map_err(|e| e.to_string())?;
    let mut ins = Vec::new();
    let mut outs = Vec::new();
    for line in text.lines() {
        let l = line.trim_start();
        for (tag, list) in [("# in ", &mut ins), ("# out ", &mut outs)] {
            if let Some(rest) = l.strip_prefix(tag) {
                let (name, value) = rest
                    .split_once(':')
                    .ok_or_else(|| format!("`{l}`: expected `name: value`"))?;
                list.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
    }
    Ok(FileTest { model, ins, outs })
}

fn inputs(t: &FileTest, exe: &Executable) -> Result<Env, String> {
    let mut env = exe.random_inputs(0);
    for (name, text) in &t.ins {
        let v = exe
            .graph()
            .lookup(name)
            .ok_or_else(|| format!("no input `{name}`"))?;
        env.insert(name.clone(), to_value(text, exe.graph().ty(v))?);
    }
    Ok(env)
}

fn close(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Float(g), Value::Float(w)) => {
            g.shape() == w.shape()
                && g.iter().zip(w.iter()).all(|(&a, &b)| {
                    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-5 + 1e-5 * b.abs()
                })
        }
        _ => got == want,
    }
}

fn run_file(path: &Path, bless: bool) -> Result<(), String> {
    let t = load(path)?;
    let interp = t
        .model
        .compile(&Options::default().backend(Backend::Interp))
        .map_err(|e| e.to_string())?;
    let env = inputs(&t, &interp)?;
    let reference = interp.run(&env).map_err(|e| e.to_string())?;
    if bless {
        let mut text = std::fs::read_to_string(path).unwrap();
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("# out "))
            .collect();
        let mut blessed: Vec<String> = kept.iter().map(|s| s.to_string()).collect();
        for out in interp.graph().outputs() {
            blessed.push(format!(
                "# out {}: {}",
                out.name,
                format_value(&reference[&out.name])
            ));
        }
        text = blessed.join("\n") + "\n";
        std::fs::write(path, text).unwrap();
        return Ok(());
    }
    if t.outs.is_empty() {
        return Err("no `# out` lines (run with DLC_BLESS=1)".into());
    }
    for checked in [false, true] {
        let jit = t
            .model
            .compile(&Options::default().checked(checked))
            .map_err(|e| e.to_string())?;
        let got = jit.run(&env).map_err(|e| e.to_string())?;
        for (name, text) in &t.outs {
            let v = interp
                .graph()
                .lookup(name)
                .and_then(|_| reference.get(name))
                .ok_or_else(|| format!("no output `{name}`"))?;
            let want = to_value(text, &v.ty())?;
            if !close(v, &want) {
                return Err(format!(
                    "interpreter: `{name}` = {} but the file expects {text}",
                    format_value(v)
                ));
            }
            if !close(&got[name], &want) {
                return Err(format!(
                    "JIT (checked {checked}): `{name}` = {} but the file expects {text}",
                    format_value(&got[name])
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn every_file_test_passes_on_both_backends() {
    let bless = std::env::var_os("DLC_BLESS").is_some();
    let mut failures = Vec::new();
    let files = files();
    assert!(!files.is_empty(), "no file tests found");
    for f in &files {
        if let Err(e) = run_file(f, bless) {
            failures.push(format!("{}: {e}", f.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn literals_round_trip() {
    let ty = dlc_ir::TensorType::f32([2, 2]);
    let v = to_value("[[1, -2.5], [inf, 3e-8]]", &ty).unwrap();
    assert_eq!(to_value(&format_value(&v), &ty).unwrap(), v);
    assert!(to_value("[[1, 2], [3]]", &ty).is_err());
}
