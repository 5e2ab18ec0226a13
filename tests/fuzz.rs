//! `dlc fuzz` and `dlc reduce` end to end. The centrepiece: a miscompilation
//! injected behind the hidden `--inject-fault` switch (f32 `sub` emitted as
//! `add`) must be caught by fuzzing and reduced to a repro of at most 3 ops.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn dlc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dlc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the dlc binary runs")
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dlc-fuzz-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Ops (non-source nodes) of a saved case.
fn ops(ir: &Path) -> usize {
    let g = dlc::Model::from_file(ir)
        .unwrap()
        .graph(&dlc::Dims::new())
        .unwrap();
    g.node_ids().filter(|&n| !g.node(n).op.is_source()).count()
}

fn find(dir: &Path, file: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().join(file))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no {file} under {}", dir.display()))
}

#[test]
fn fuzzing_catches_an_injected_miscompilation_and_reduces_it() {
    let out = scratch("fault");
    let o = dlc(&[
        "fuzz",
        "--seed",
        "1",
        "--cases",
        "200",
        "--ops",
        "elementwise",
        "--inject-fault",
        "sub-as-add",
        "--max-findings",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("findings: 1") && text.contains("mismatch"),
        "{}",
        show(&o)
    );
    // The automatic reduction: at most 3 ops, and still a `sub`.
    let repro = find(&out, "repro.ir");
    let src = std::fs::read_to_string(&repro).unwrap();
    assert!(ops(&repro) <= 3, "{src}");
    assert!(
        src.contains("sub(") && src.contains("# replay: dlc fuzz --replay"),
        "{src}"
    );
    // Replays: the bug shows with the fault and not without it.
    let r = repro.to_str().unwrap();
    let o = dlc(&["fuzz", "--replay", r, "--inject-fault", "sub-as-add"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let o = dlc(&["fuzz", "--replay", r]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // `dlc reduce` on the original case shrinks it the same way.
    let case = find(&out, "case.ir");
    assert!(ops(&case) > 3, "the original case is already small");
    let o = dlc(&[
        "reduce",
        case.to_str().unwrap(),
        "--inject-fault",
        "sub-as-add",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let reduced = case.with_file_name("case-reduced.ir");
    assert!(ops(&reduced) <= 3, "{}", show(&o));
}

#[test]
fn a_clean_run_exits_zero_with_a_summary() {
    let out = scratch("clean");
    let o = dlc(&[
        "fuzz",
        "--seed",
        "7",
        "--cases",
        "25",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "25 cases",
        "cases/s",
        "findings: 0",
        "configurations: checked",
    ] {
        assert!(text.contains(needle), "missing `{needle}`:\n{}", show(&o));
    }
}

#[test]
fn reducing_an_agreeing_case_reports_nothing_to_reduce() {
    let o = dlc(&["reduce", "tests/filetests/math.ir"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing to reduce"));
}

#[test]
fn bad_arguments_are_rejected() {
    let o = dlc(&["fuzz", "--ops", "elementwise,nosuch"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown op family `nosuch`"));
    let o = dlc(&["fuzz", "--time", "5 fortnights"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let o = dlc(&["fuzz", "--replay", "no/such/case.ir"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let o = dlc(&["reduce", "tests/hostile/syntax_bad_char.ir"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
}
