//! dlc's differential fuzzer, the engine behind `dlc fuzz` and `dlc reduce`.
//!
//! Every way of running a model must agree: [`check`] runs a [`TestCase`] on the
//! reference interpreter and on every JIT configuration ([`variants`]: bounds
//! checked, both GEMM micro-kernel tiers, one and two threads, each optimisation
//! level) and compares every output within the tolerance the random model
//! generator derives for it (`dlc_testgen::tolerances_for_values`). A panic
//! anywhere in dlc is caught and becomes a [`Finding`] like a wrong result or an
//! error the interpreter did not have.
//!
//! [`run_seed`] generates a case with `dlc_testgen` and checks it; [`reduce()`]
//! shrinks a failing case by delta debugging over nodes, outputs, attributes and
//! shapes to a smallest one with the same finding; [`write_case`] saves a case as
//! readable `.ir` text plus an `.npz` of its values.
//! [`target`] holds the bodies of the coverage-guided fuzz targets in `fuzz/`.
//!
//! ```
//! use dlc_fuzz::{VariantSet, check, run_seed, variants};
//! use dlc_testgen::{Family, GenConfig};
//! let vs = variants(VariantSet::Axes, None);
//! let out = run_seed(7, &GenConfig::only(Family::Elementwise), &vs);
//! assert!(out.report.finding.is_none(), "{:?}", out.report.finding);
//! assert_eq!(check(out.case.as_ref().unwrap(), &vs).agreed, vs.len());
//! ```
#![deny(missing_docs)]

mod campaign;
mod check;
mod panics;
pub mod reduce;
mod repro;
pub mod target;
mod variant;

pub use campaign::{Outcome, families, run_seed};
pub use check::{Finding, Kind, Report, TestCase, check, prepare};
pub use panics::catching;
pub use reduce::{Budget, Stats, reduce};
pub use repro::{npz_path, split_values, write_case};
pub use variant::{OPT_LEVELS, Variant, VariantSet, fault_from_name, tiers, variants};
