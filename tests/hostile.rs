//! The hostile-input corpus: every file under `tests/hostile/` is something a
//! user (or an attacker) might feed `dlc`. Each must be rejected with exit code 2
//! and a clear message — never a panic, an abort, a crash or a hang.
//!
//! A file's expectations are `#` comment lines at its top (or, for files that
//! cannot hold comments — empty, binary, `.npz` — in a sidecar `<file>.expect`):
//!
//! ```text
//! # hostile: what the file tests
//! # args: run tests/hostile/npz/model.ir --inputs {file}   (default: check {file})
//! # expect: a substring of stderr
//! ```
//!
//! `tools/gen_hostile.py` wrote the corpus; edit it there and re-run it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Support files that are not hostile themselves.
const SUPPORT: &[&str] = &["npz/model.ir"];
/// Longer than any rejection should take, even in a debug build.
const TIMEOUT: Duration = Duration::from_secs(60);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn corpus() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("tests/hostile exists") {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_none_or(|e| e != "expect") {
                out.push(p);
            }
        }
    }
    let base = root().join("tests/hostile");
    let mut v = Vec::new();
    walk(&base, &mut v);
    v.retain(|p| {
        let rel = p
            .strip_prefix(&base)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        !SUPPORT.contains(&rel.as_str())
    });
    v.sort();
    v
}

struct Expect {
    args: String,
    expect: String,
}

fn expectations(file: &Path) -> Result<Expect, String> {
    let sidecar = PathBuf::from(format!("{}.expect", file.display()));
    let bytes =
        std::fs::read(if sidecar.exists() { &sidecar } else { file }).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&bytes);
    let field = |key: &str| {
        text.lines()
            .take_while(|l| l.starts_with('#'))
            .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
            .map(str::to_string)
    };
    Ok(Expect {
        args: field("args").unwrap_or_else(|| "check {file}".into()),
        expect: field("expect").ok_or("no `# expect:` line")?,
    })
}

/// Runs one file; `Err` describes what went wrong.
fn run(file: &Path) -> Result<(), String> {
    let e = expectations(file)?;
    let rel = file.strip_prefix(root()).unwrap().display().to_string();
    let args: Vec<String> = e
        .args
        .split_whitespace()
        .map(|a| a.replace("{file}", &rel))
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dlc"))
        .args(&args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut { stderr }, &mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("hang: no answer after {TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let err = reader.join().unwrap();
    let head: String = err.chars().take(600).collect();
    if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
        return Err(format!("panic:\n{head}"));
    }
    match status.code() {
        Some(2) => {}
        Some(c) => return Err(format!("exit code {c} (want 2):\n{head}")),
        None => return Err(format!("killed by a signal ({status:?}):\n{head}")),
    }
    if !err.contains(&e.expect) {
        return Err(format!("stderr lacks `{}`:\n{head}", e.expect));
    }
    Ok(())
}

#[test]
fn every_hostile_input_is_rejected_cleanly() {
    let files = corpus();
    assert!(files.len() >= 100, "only {} hostile files", files.len());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(f) = files.get(i) else { break };
                    if let Err(e) = run(f) {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{}: {e}", f.display()));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} hostile files misbehaved:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

/// Every op of the op table has a file with an invalid attribute
/// (`tests/hostile/attr_<op>.ir`): a new op needs one too (tools/gen_hostile.py).
#[test]
fn every_op_has_an_invalid_attribute_file() {
    let missing: Vec<&str> = dlc_ir::syntax::table::OPS
        .iter()
        .map(|o| o.name)
        .filter(|op| !root().join(format!("tests/hostile/attr_{op}.ir")).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "no tests/hostile/attr_<op>.ir for: {}",
        missing.join(", ")
    );
}
