//! What `dlc fuzz` shows: a progress line while it runs, a summary at the end.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use dlc_fuzz::{Finding, Outcome, Variant};
use dlc_testgen::Family;
use indicatif::{ProgressBar, ProgressStyle};

/// A finding as saved on disk.
pub struct Saved {
    /// The case's seed.
    pub seed: u64,
    /// What was found.
    pub finding: Finding,
    /// Where the case was written.
    pub dir: PathBuf,
    /// The reduced repro and its op count, if reduced.
    pub repro: Option<(PathBuf, usize)>,
    /// Whether an earlier finding had the same key.
    pub duplicate: bool,
}

/// Counts over the campaign.
pub struct Tally {
    /// Cases run.
    pub cases: u64,
    /// Cases containing each family.
    pub families: BTreeMap<Family, u64>,
    /// Ops generated.
    pub ops: u64,
    /// Cases skipped because the JIT lacks an op, by op.
    pub unsupported: BTreeMap<&'static str, u64>,
    /// Configurations that ran and agreed, summed over cases.
    pub agreed: u64,
}

impl Tally {
    /// An empty tally over the requested families.
    pub fn new(families: &[Family]) -> Tally {
        Tally {
            cases: 0,
            families: families.iter().map(|&f| (f, 0)).collect(),
            ops: 0,
            unsupported: BTreeMap::new(),
            agreed: 0,
        }
    }

    /// Counts one case.
    pub fn add(&mut self, o: &Outcome) {
        self.cases += 1;
        for f in &o.families {
            *self.families.entry(*f).or_default() += 1;
        }
        self.ops += o.case.as_ref().map_or(0, |c| c.op_count() as u64);
        if let Some(op) = o.report.unsupported {
            *self.unsupported.entry(op).or_default() += 1;
        }
        self.agreed += o.report.agreed as u64;
    }

    fn covered(&self) -> usize {
        self.families.values().filter(|&&n| n > 0).count()
    }
}

/// The progress line (drawn only on a terminal).
pub struct Progress(ProgressBar);

impl Progress {
    /// A bar for `len` cases, or a spinner for a time limit.
    pub fn new(len: Option<u64>) -> Progress {
        let bar = match len {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let template = match len {
            Some(_) => "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
            None => "{spinner} [{elapsed_precise}] {msg}",
        };
        bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress(bar)
    }

    /// Redraws with the current counts.
    pub fn update(&self, t: &Tally, elapsed: Duration, findings: usize) {
        self.0.set_position(t.cases);
        self.0.set_message(format!(
            "{} cases, {:.1}/s, families {}/{}, {} findings",
            t.cases,
            t.cases as f64 / elapsed.as_secs_f64().max(1e-9),
            t.covered(),
            t.families.len(),
            findings
        ));
    }

    /// Runs `f` with the line hidden (for printing findings).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.0.suspend(f)
    }

    /// Removes the line.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Prints the end-of-run summary to stdout.
pub fn summary(t: &Tally, elapsed: Duration, seed: u64, variants: &[Variant], saved: &[Saved]) {
    let secs = elapsed.as_secs_f64();
    let last = seed.wrapping_add(t.cases.saturating_sub(1));
    println!(
        "dlc fuzz: {} cases in {secs:.1} s ({:.1} cases/s), seeds {seed}..={last}, {} ops",
        t.cases,
        t.cases as f64 / secs.max(1e-9),
        t.ops
    );
    let names: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
    println!(
        "  configurations: {} ({} runs agreed with the interpreter)",
        names.join(", "),
        t.agreed
    );
    let fams: Vec<String> = t
        .families
        .iter()
        .map(|(f, n)| format!("{} {n}", f.name()))
        .collect();
    println!(
        "  cases per family ({}/{} covered): {}",
        t.covered(),
        t.families.len(),
        fams.join(", ")
    );
    for (op, n) in &t.unsupported {
        println!("  note: skipped {n} cases: the JIT does not support `{op}` yet");
    }
    let distinct = saved.iter().filter(|s| !s.duplicate).count();
    println!("  findings: {} ({distinct} distinct)", saved.len());
    for s in saved {
        let what = match &s.repro {
            Some((p, ops)) => format!("repro {} ({ops} ops)", p.display()),
            None if s.duplicate => format!("case in {} (duplicate)", s.dir.display()),
            None => format!("case in {}", s.dir.display()),
        };
        println!("    seed {}: {}\n      {what}", s.seed, s.finding.summary());
    }
}
