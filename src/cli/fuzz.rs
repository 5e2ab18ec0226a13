//! `dlc fuzz`: differential fuzzing of random models, interpreter against every
//! JIT configuration; findings are reduced and saved as replayable repros.

mod guard;
mod report;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use dlc::Error;
use dlc_codegen::Fault;
use dlc_fuzz::{Finding, Outcome, Variant};
use dlc_testgen::{Family, GenConfig};

use super::case::{self, ConfigsArg, parse_duration, parse_fault};
use report::{Progress, Saved, Tally};

/// Arguments of `dlc fuzz`.
#[derive(Args, Debug)]
pub struct FuzzArgs {
    /// First seed; case i uses seed S+i (default: from the clock, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Fuzz for this long: 90s, 10m, 1h (default 60s unless --cases is given).
    #[arg(long, value_parser = parse_duration, conflicts_with = "cases")]
    time: Option<Duration>,
    /// Fuzz this many cases.
    #[arg(long)]
    cases: Option<u64>,
    /// Op families to draw from, comma-separated (default: all). Known: elementwise,
    /// matmul, conv, conv_transpose, pool, reduce, softmax, layout, gather, norm,
    /// loss, dropout, recurrent, grid_lstm, attention, backward.
    #[arg(long, value_delimiter = ',', value_parser = parse_family, value_name = "FAMILIES")]
    ops: Vec<Family>,
    /// Directory for findings (original case, reduced repro, replay command).
    #[arg(long, default_value = "fuzz-out", value_name = "DIR")]
    out: PathBuf,
    /// Most main ops per model.
    #[arg(long, default_value_t = 6, value_name = "N")]
    max_ops: usize,
    /// Largest fresh dimension.
    #[arg(long, default_value_t = 31, value_name = "N")]
    max_dim: usize,
    /// JIT configurations: each setting once (axes) or the full cross product (all).
    #[arg(long, value_enum, default_value_t = ConfigsArg::Axes)]
    configs: ConfigsArg,
    /// Save findings without reducing them.
    #[arg(long)]
    no_reduce: bool,
    /// Time limit for reducing one finding.
    #[arg(long, value_parser = parse_duration, default_value = "120s", value_name = "TIME")]
    reduce_time: Duration,
    /// Stop after this many distinct findings.
    #[arg(long, default_value_t = 10, value_name = "N")]
    max_findings: usize,
    /// A case running longer than this is reported as a hang and ends the run.
    #[arg(long, value_parser = parse_duration, default_value = "300s", value_name = "TIME")]
    case_timeout: Duration,
    /// Replay a saved case (`.ir`; values from the `.npz` beside it or --inputs) on
    /// every configuration instead of fuzzing. Exit code 1 if any disagrees.
    #[arg(long, value_name = "CASE.ir", conflicts_with_all = ["seed", "time", "cases", "ops"])]
    replay: Option<PathBuf>,
    /// Values for --replay (.npz or .safetensors).
    #[arg(long, value_name = "FILE", requires = "replay")]
    inputs: Option<PathBuf>,
    /// Test only: miscompile deliberately, to check that fuzzing catches it.
    #[arg(long, hide = true, value_parser = parse_fault)]
    inject_fault: Option<Fault>,
}

fn parse_family(s: &str) -> Result<Family, String> {
    Family::from_name(s.trim()).ok_or_else(|| {
        let known: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
        format!("unknown op family `{s}` (known: {})", known.join(", "))
    })
}

/// Runs `dlc fuzz`.
pub fn run(a: &FuzzArgs) -> Result<ExitCode, Error> {
    let variants = dlc_fuzz::variants(a.configs.into(), a.inject_fault);
    if let Some(path) = &a.replay {
        return replay(a, path, &variants);
    }
    let seed = a.seed.unwrap_or_else(clock_seed);
    let families = if a.ops.is_empty() {
        Family::ALL.to_vec()
    } else {
        a.ops.clone()
    };
    let cfg = GenConfig::default()
        .with_families(&families)
        .with_max_ops(a.max_ops)
        .with_max_dim(a.max_dim);
    let limit = match (a.cases, a.time) {
        (Some(n), _) => Limit::Cases(n),
        (None, t) => Limit::Time(t.unwrap_or(Duration::from_secs(60))),
    };
    print_header(seed, &variants, &families);
    guard::install(a.case_timeout);
    let start = Instant::now();
    let mut tally = Tally::new(&families);
    let progress = Progress::new(limit_len(&limit));
    let mut keys: BTreeSet<String> = BTreeSet::new();
    let mut saved: Vec<Saved> = Vec::new();
    for i in 0u64.. {
        if limit.reached(i, start) || keys.len() >= a.max_findings {
            break;
        }
        let s = seed.wrapping_add(i);
        guard::begin(&format!(
            " while running case seed {s}; replay it with: {}",
            seed_command(a, s)
        ));
        let out = dlc_fuzz::run_seed(s, &cfg, &variants);
        guard::end();
        tally.add(&out);
        if let Some(f) = out.report.finding.clone() {
            let fresh = keys.insert(f.key());
            let item = progress.suspend(|| handle(a, &out, &f, fresh, &variants))?;
            saved.push(item);
        }
        progress.update(&tally, start.elapsed(), keys.len());
    }
    progress.finish();
    report::summary(&tally, start.elapsed(), seed, &variants, &saved);
    Ok(if saved.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Saves a finding: the original case, and unless it repeats an earlier finding
/// (or --no-reduce), its reduction.
fn handle(
    a: &FuzzArgs,
    out: &Outcome,
    f: &Finding,
    fresh: bool,
    variants: &[Variant],
) -> Result<Saved, Error> {
    let dir = a
        .out
        .join(format!("{}-{}-s{}", f.kind.name(), f.variant, out.seed));
    eprintln!("\nfinding: seed {}: {}", out.seed, f.summary());
    let mut item = Saved {
        seed: out.seed,
        finding: f.clone(),
        dir: dir.clone(),
        repro: None,
        duplicate: !fresh,
    };
    let Some(c) = out.case.as_ref().filter(|_| case::reducible(f)) else {
        eprintln!("  replay: {}", seed_command(a, out.seed));
        return Ok(item);
    };
    let note = format!(
        "generated by: {} (the original case)",
        seed_command(a, out.seed)
    );
    let (ir, _) = case::save(&dir, "case", c, f, &note, a.configs, a.inject_fault)?;
    eprintln!("  case:   {} ({} ops)", ir.display(), c.op_count());
    if !fresh || a.no_reduce {
        if !fresh {
            eprintln!("  (same kind as an earlier finding: not reduced)");
        }
        return Ok(item);
    }
    let (small, sf, stats) = case::reduce(c, f, variants, a.reduce_time);
    let note = format!(
        "reduced from seed {} ({} ops) in {} checks{}",
        out.seed,
        c.op_count(),
        stats.checks,
        if stats.exhausted {
            " (budget exhausted)"
        } else {
            ""
        }
    );
    let (ir, cmd) = case::save(&dir, "repro", &small, &sf, &note, a.configs, a.inject_fault)?;
    eprintln!("  repro:  {} ({} ops)", ir.display(), small.op_count());
    eprintln!("  replay: {cmd}");
    item.repro = Some((ir, small.op_count()));
    Ok(item)
}

fn replay(a: &FuzzArgs, path: &std::path::Path, variants: &[Variant]) -> Result<ExitCode, Error> {
    let c = case::load(path, a.inputs.as_deref())?;
    let r = dlc_fuzz::check(&c, variants);
    if let Some(op) = r.unsupported {
        println!(
            "{}: skipped: the JIT does not support `{op}` yet",
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    match r.finding {
        None => {
            let names: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
            println!(
                "{}: {} ops; the interpreter and {} configurations agree ({})",
                path.display(),
                c.op_count(),
                r.agreed,
                names.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(f) => {
            println!("{}: {}", path.display(), f.summary());
            for line in f.message.lines().skip(1) {
                println!("  {line}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// The command that regenerates and checks exactly the case of seed `s`.
fn seed_command(a: &FuzzArgs, s: u64) -> String {
    let mut cmd = format!("dlc fuzz --seed {s} --cases 1");
    if !a.ops.is_empty() {
        let f: Vec<&str> = a.ops.iter().map(|f| f.name()).collect();
        cmd.push_str(&format!(" --ops {}", f.join(",")));
    }
    if a.max_ops != 6 {
        cmd.push_str(&format!(" --max-ops {}", a.max_ops));
    }
    if a.max_dim != 31 {
        cmd.push_str(&format!(" --max-dim {}", a.max_dim));
    }
    if a.configs == ConfigsArg::All {
        cmd.push_str(" --configs all");
    }
    if let Some(f) = a.inject_fault {
        cmd.push_str(&format!(" --inject-fault {}", f.name()));
    }
    cmd
}

fn print_header(seed: u64, variants: &[Variant], families: &[Family]) {
    let names: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
    let tier = dlc_codegen::emit::gemm::native::detect()
        .map_or("none on this CPU (portable only)".to_string(), |k| {
            k.name.to_string()
        });
    let fams: Vec<&str> = families.iter().map(|f| f.name()).collect();
    eprintln!("dlc fuzz: seed {seed}");
    eprintln!(
        "  configurations: {} (native GEMM tier: {tier})",
        names.join(", ")
    );
    eprintln!("  families: {}", fams.join(", "));
}

fn clock_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t % 1_000_000_007
}

enum Limit {
    Cases(u64),
    Time(Duration),
}

impl Limit {
    fn reached(&self, done: u64, start: Instant) -> bool {
        match *self {
            Limit::Cases(n) => done >= n,
            Limit::Time(t) => start.elapsed() >= t,
        }
    }
}

fn limit_len(l: &Limit) -> Option<u64> {
    match *l {
        Limit::Cases(n) => Some(n),
        Limit::Time(_) => None,
    }
}
