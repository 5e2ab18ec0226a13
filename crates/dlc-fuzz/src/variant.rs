//! The ways the JIT can run a model: every configuration the fuzzer compares
//! against the interpreter, as data.

use dlc_codegen::{CodegenOptions, Fault};
use dlc_runtime::{RuntimeOptions, Threading};

/// One JIT configuration, compared against the interpreter.
#[derive(Clone, Debug)]
pub struct Variant {
    /// A short name for reports (`checked`, `portable`, `threads2`, ...).
    pub name: String,
    /// The dlc optimisation level the graph is compiled at (see [`OPT_LEVELS`]).
    pub opt_level: u8,
    /// Code generation and threading.
    pub options: RuntimeOptions,
}

/// Which configurations to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VariantSet {
    /// Each value of each axis at least once (few compiles per case). The
    /// bounds-checked configuration comes first, so an out-of-bounds access is
    /// reported by it before an unchecked one could crash the process.
    #[default]
    Axes,
    /// The full cross product of the axes (tiers × threads × checked ×
    /// Cranelift optimisation × dlc optimisation levels).
    All,
}

/// The dlc optimisation levels (graph-level, before codegen: `-O0`, `-O1`, `-O2`),
/// applied by [`crate::check::prepare`].
pub const OPT_LEVELS: &[u8] = &[0, 1, 2];

/// The GEMM micro-kernel tiers this machine has: `portable` always, `native` when
/// the CPU supports a natively compiled micro-kernel.
pub fn tiers() -> Vec<(&'static str, bool)> {
    let mut t = vec![("portable", true)];
    if dlc_codegen::emit::gemm::native::detect().is_some() {
        t.insert(0, ("native", false));
    }
    t
}

/// Threading that splits every splittable kernel over `threads` threads (no
/// minimum size), so that small fuzz cases exercise the parallel split.
fn threading(threads: usize) -> Threading {
    Threading {
        threads,
        min_split_us: 0.0,
    }
}

fn variant(
    name: String,
    opt_level: u8,
    portable: bool,
    threads: usize,
    checked: bool,
    optimize: bool,
) -> Variant {
    Variant {
        name,
        opt_level,
        options: RuntimeOptions {
            codegen: CodegenOptions {
                portable,
                checked,
                optimize,
                ..CodegenOptions::default()
            },
            threading: threading(threads),
        },
    }
}

/// The configurations of `set` on this machine, with `fault` injected into each
/// (test only; `None` in normal use).
pub fn variants(set: VariantSet, fault: Option<Fault>) -> Vec<Variant> {
    let tiers = tiers();
    let best = tiers[0].1;
    let mut out = Vec::new();
    match set {
        VariantSet::Axes => {
            out.push(variant("checked".into(), 0, true, 2, true, true));
            out.push(variant("default".into(), 0, best, 1, false, true));
            if !best {
                out.push(variant("portable".into(), 0, true, 1, false, true));
            }
            out.push(variant("threads2".into(), 0, best, 2, false, true));
            // The other dlc optimisation levels once each, on the default configuration.
            for &o in &OPT_LEVELS[1..] {
                out.push(variant(format!("default-O{o}"), o, best, 1, false, true));
            }
        }
        VariantSet::All => {
            for &o in OPT_LEVELS {
                for &(tier, portable) in &tiers {
                    for threads in [1, 2] {
                        for checked in [true, false] {
                            for optimize in [true, false] {
                                let name = format!(
                                    "O{o}-{tier}-t{threads}{}{}",
                                    if checked { "-checked" } else { "" },
                                    if optimize { "" } else { "-clif0" }
                                );
                                out.push(variant(name, o, portable, threads, checked, optimize));
                            }
                        }
                    }
                }
            }
            // Bounds-checked configurations first (see `VariantSet::Axes`).
            out.sort_by_key(|v| !v.options.codegen.checked);
        }
    }
    for v in &mut out {
        v.options.codegen.fault = fault;
    }
    out
}

/// Parses a fault name (`sub-as-add`).
pub fn fault_from_name(name: &str) -> Option<Fault> {
    Fault::ALL.into_iter().find(|f| f.name() == name)
}
