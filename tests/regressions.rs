//! Every repro under `tests/regressions/` (a case `dlc fuzz` once found, with its
//! values in the `.npz` beside it when it has one) replays clean: the interpreter
//! and every JIT configuration agree (`dlc fuzz --replay`, exit code 0).

use std::path::Path;
use std::process::Command;

#[test]
fn every_saved_repro_replays_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/regressions exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ir"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no repros in {}", dir.display());
    let mut failures = Vec::new();
    for f in &files {
        let o = Command::new(env!("CARGO_BIN_EXE_dlc"))
            .args(["fuzz", "--replay", f.to_str().unwrap(), "--configs", "all"])
            .output()
            .expect("the dlc binary runs");
        if o.status.code() != Some(0) {
            failures.push(format!(
                "{}: exit {:?}\n{}{}",
                f.display(),
                o.status.code(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
