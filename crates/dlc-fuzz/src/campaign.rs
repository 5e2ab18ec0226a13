//! One fuzz case from a seed: generate, check, and summarise what it covered.

use std::collections::BTreeSet;

use dlc_testgen::{Case, Family, GenConfig};

use crate::check::{Finding, Kind, Report, TestCase, check};
use crate::panics::catching;
use crate::variant::Variant;

/// A generated case and what [`check`] made of it.
#[derive(Debug)]
pub struct Outcome {
    /// The seed it was generated from.
    pub seed: u64,
    /// The case (`None` when the generator itself panicked).
    pub case: Option<TestCase>,
    /// The op families of its ops.
    pub families: BTreeSet<Family>,
    /// The comparison.
    pub report: Report,
}

/// Generates the case of `seed` under `cfg` ([`Case::from_seed`]) and checks it
/// against `variants`. A panic of the generator is a finding too.
pub fn run_seed(seed: u64, cfg: &GenConfig, variants: &[Variant]) -> Outcome {
    let case = match catching(|| Case::from_seed(seed, cfg)) {
        Ok(c) => TestCase::from(c),
        Err(p) => {
            return Outcome {
                seed,
                case: None,
                families: BTreeSet::new(),
                report: Report {
                    finding: Some(Finding {
                        kind: Kind::Panic,
                        variant: "generator".into(),
                        message: p,
                        severity: f64::INFINITY,
                    }),
                    ..Report::default()
                },
            };
        }
    };
    let families = families(&case);
    let report = check(&case, variants);
    Outcome {
        seed,
        case: Some(case),
        families,
        report,
    }
}

/// The op families a case's ops belong to.
pub fn families(case: &TestCase) -> BTreeSet<Family> {
    let g = &case.graph;
    g.node_ids()
        .filter_map(|n| Family::of(&g.node(n).op))
        .collect()
}
