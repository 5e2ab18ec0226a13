//! Test cases for `dlc fuzz` and `dlc reduce`: loading a saved case, reducing a
//! finding, and writing the original and reduced cases with replay commands.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ValueEnum;
use dlc::{Dims, Env, Error, Model};
use dlc_codegen::Fault;
use dlc_fuzz::{Budget, Finding, Kind, Stats, TestCase, Variant, VariantSet};
use dlc_tensor::ValueError;

/// `--configs` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConfigsArg {
    /// Each setting of each axis at least once.
    Axes,
    /// The full cross product of the axes.
    All,
}

impl From<ConfigsArg> for VariantSet {
    fn from(c: ConfigsArg) -> VariantSet {
        match c {
            ConfigsArg::Axes => VariantSet::Axes,
            ConfigsArg::All => VariantSet::All,
        }
    }
}

/// Parses `60s`, `10m`, `1h`, `500ms` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 60s, 10m, 1h)"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{s}` (use ms, s, m or h)"
            ));
        }
    };
    if !secs.is_finite() || secs > 1e9 {
        return Err(format!("`{s}` is too long"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a fault name for the hidden `--inject-fault`.
pub fn parse_fault(s: &str) -> Result<Fault, String> {
    dlc_fuzz::fault_from_name(s).ok_or_else(|| {
        let known: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
        format!("unknown fault `{s}` (known: {})", known.join(", "))
    })
}

/// Loads a saved case: the model, and values from `npz` or else the `.npz`
/// beside the model if there is one. Missing inputs get random values and
/// missing parameters their initialisers (seed 0).
pub fn load(ir: &Path, npz: Option<&Path>) -> Result<TestCase, Error> {
    let graph = Model::from_file(ir)?.graph(&Dims::new())?;
    let beside = dlc_fuzz::npz_path(ir);
    let npz: Option<PathBuf> = npz
        .map(Path::to_path_buf)
        .or_else(|| beside.exists().then_some(beside));
    let values = match &npz {
        Some(p) => dlc::read_tensors(p)?,
        None => Env::new(),
    };
    let (mut inputs, params, unknown) = dlc_fuzz::split_values(&graph, values);
    if let Some(name) = unknown.into_iter().next() {
        let known: Vec<String> = graph
            .inputs()
            .chain(graph.params())
            .map(|id| graph.node(id).names[0].clone())
            .collect();
        return Err(ValueError::Unknown {
            what: "input or parameter",
            name,
            known: known.join(", "),
        }
        .into());
    }
    for (name, v) in dlc_testgen::random_values(&graph, 0).0 {
        inputs.entry(name).or_insert(v);
    }
    let params = dlc_tensor::init_params(&graph, 0, &params)?;
    dlc_tensor::check_inputs(&graph, &inputs)?;
    Ok(TestCase {
        graph,
        inputs,
        params,
    })
}

/// Shrinks `case` (which shows `finding`), re-running only the configuration
/// the finding showed in.
pub fn reduce(
    case: &TestCase,
    finding: &Finding,
    variants: &[Variant],
    time: Duration,
) -> (TestCase, Finding, Stats) {
    let only: Vec<Variant> = variants
        .iter()
        .filter(|v| v.name == finding.variant)
        .cloned()
        .collect();
    let budget = Budget {
        time,
        ..Budget::default()
    };
    dlc_fuzz::reduce(case, finding, budget, &mut |c| {
        dlc_fuzz::check(c, &only).finding
    })
}

/// The command that replays a saved case with the same configurations.
pub fn replay_command(ir: &Path, configs: ConfigsArg, fault: Option<Fault>) -> String {
    let mut cmd = format!("dlc fuzz --replay {}", ir.display());
    if configs == ConfigsArg::All {
        cmd.push_str(" --configs all");
    }
    if let Some(f) = fault {
        cmd.push_str(&format!(" --inject-fault {}", f.name()));
    }
    cmd
}

/// Saves a case with a header naming the finding and the replay command; returns
/// the `.ir` path and the command.
pub fn save(
    dir: &Path,
    stem: &str,
    case: &TestCase,
    finding: &Finding,
    note: &str,
    configs: ConfigsArg,
    fault: Option<Fault>,
) -> Result<(PathBuf, String), Error> {
    let ir = dir.join(format!("{stem}.ir"));
    let cmd = replay_command(&ir, configs, fault);
    let header = vec![
        format!("dlc fuzz finding: {}", finding.summary()),
        note.to_string(),
        format!(
            "{} ops; values (inputs and parameters) in {}",
            case.op_count(),
            dlc_fuzz::npz_path(&ir).display()
        ),
        format!("replay: {cmd}"),
    ];
    dlc_fuzz::write_case(dir, stem, case, &header)?;
    Ok((ir, cmd))
}

/// Whether a finding can be reduced (it has a case and is not a generator panic).
pub fn reducible(f: &Finding) -> bool {
    !(f.kind == Kind::Panic && f.variant == "generator")
}
