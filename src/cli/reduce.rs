//! `dlc reduce`: shrink a case on which the interpreter and a JIT configuration
//! disagree to a smallest model that still disagrees, and save it as a repro.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use dlc::Error;
use dlc_codegen::Fault;

use super::case::{self, ConfigsArg, parse_duration, parse_fault};

/// Arguments of `dlc reduce`.
#[derive(Args, Debug)]
pub struct ReduceArgs {
    /// The case's model (`.ir`).
    case: PathBuf,
    /// Its values (.npz or .safetensors; default: the `.npz` beside the model, if
    /// any; missing inputs are random, missing parameters initialised).
    #[arg(long, value_name = "FILE")]
    inputs: Option<PathBuf>,
    /// Directory for the repro (default: the case's directory).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// JIT configurations to check: each setting once (axes) or all combinations.
    #[arg(long, value_enum, default_value_t = ConfigsArg::Axes)]
    configs: ConfigsArg,
    /// Time limit for the reduction.
    #[arg(long, value_parser = parse_duration, default_value = "300s", value_name = "TIME")]
    time: Duration,
    /// Test only: miscompile deliberately, to check that reduction shrinks the bug.
    #[arg(long, hide = true, value_parser = parse_fault)]
    inject_fault: Option<Fault>,
}

/// Runs `dlc reduce`. Exit code 1 when the case disagrees (a repro is written),
/// 0 when every configuration agrees (nothing to reduce).
pub fn run(a: &ReduceArgs) -> Result<ExitCode, Error> {
    let variants = dlc_fuzz::variants(a.configs.into(), a.inject_fault);
    let c = case::load(&a.case, a.inputs.as_deref())?;
    let report = dlc_fuzz::check(&c, &variants);
    if let Some(op) = report.unsupported {
        println!("the JIT does not support `{op}` yet: nothing to compare");
        return Ok(ExitCode::SUCCESS);
    }
    let Some(f) = report.finding else {
        println!(
            "{}: the interpreter and {} configurations agree: nothing to reduce",
            a.case.display(),
            report.agreed
        );
        return Ok(ExitCode::SUCCESS);
    };
    println!("{}: {}", a.case.display(), f.summary());
    let (small, sf, stats) = case::reduce(&c, &f, &variants, a.time);
    let dir = a.out.clone().unwrap_or_else(|| {
        a.case
            .parent()
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
    });
    let stem = format!(
        "{}-reduced",
        a.case
            .file_stem()
            .map_or("case".into(), |s| s.to_string_lossy())
    );
    let note = format!(
        "reduced from {} ({} ops) in {} checks{}",
        a.case.display(),
        c.op_count(),
        stats.checks,
        if stats.exhausted {
            " (budget exhausted)"
        } else {
            ""
        }
    );
    let (ir, cmd) = case::save(&dir, &stem, &small, &sf, &note, a.configs, a.inject_fault)?;
    println!(
        "reduced {} ops to {} in {} checks: {}",
        c.op_count(),
        small.op_count(),
        stats.checks,
        ir.display()
    );
    println!("  {}", sf.summary());
    println!("replay: {cmd}");
    Ok(ExitCode::from(1))
}
