//! Entry points for coverage-guided fuzzing: the bodies of the cargo-fuzz targets
//! in `fuzz/` (see `docs/fuzzing.md`). Each takes loosely structured input,
//! returns normally for anything dlc handles correctly — clean rejections
//! included — and panics, with a message saying what broke, on a bug. They live
//! here rather than in `fuzz/` so the workspace build and tests keep them compiling
//! and correct on the stable toolchain.

use dlc_ir::Graph;
use dlc_ir::syntax::{self, Dims};
use dlc_testgen::{Case, Family, GenConfig, random_values};

use crate::check::{Kind, TestCase, check};
use crate::variant::{VariantSet, variants};

/// The largest total element count (over every value of the graph) of a model
/// from text that [`pipeline_text`] runs. Larger models are skipped: they would
/// only make each fuzz iteration slower (the worst op, a convolution whose
/// weight and output are both this big, costs 2^24 multiply-adds).
pub const TEXT_NUMEL_LIMIT: usize = 1 << 12;

/// Parser target: `bytes` as `.ir` source. Anything may be rejected, but the
/// error must render; a source that parses must format idempotently to text
/// that parses again; a model that elaborates must print to canonical text that
/// elaborates back to an equal graph.
pub fn parse_bytes(bytes: &[u8]) {
    let Ok(source) = std::str::from_utf8(bytes) else {
        return;
    };
    let dims = Dims::new();
    let formatted = match syntax::format(source) {
        Err(d) => {
            let _ = d.render("fuzz.ir", source);
            return;
        }
        Ok(f) => f,
    };
    let again = syntax::format(&formatted)
        .unwrap_or_else(|d| panic!("formatted text does not parse:\n{formatted}\n{d:?}"));
    assert_eq!(formatted, again, "`dlc fmt` is not idempotent");
    let graph = match syntax::parse_graph(source, &dims) {
        Err(d) => {
            let _ = d.render("fuzz.ir", source);
            return;
        }
        Ok(g) => g,
    };
    let from_formatted = syntax::parse_graph(&formatted, &dims);
    assert!(
        matches!(&from_formatted, Ok(g) if *g == graph),
        "formatting changed the model:\n{formatted}"
    );
    let printed = syntax::print(&graph);
    let back = syntax::parse_graph(&printed, &dims)
        .unwrap_or_else(|d| panic!("printed text does not parse:\n{printed}\n{d:?}"));
    assert!(back == graph, "print/parse changed the model:\n{printed}");
}

/// Pipeline target on generated models: the case of `seed` with `ops` main ops
/// (1 to 6, taken modulo) from the families whose bits are set in `families`
/// (bit `i` is `Family::ALL[i]`; no bit set means all), run by the interpreter
/// and every JIT configuration ([`VariantSet::Axes`]). Panics on any finding.
pub fn pipeline_generated(seed: u64, families: u32, ops: u8) {
    let chosen: Vec<Family> = Family::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| families >> i & 1 == 1)
        .map(|(_, f)| *f)
        .collect();
    let cfg = if chosen.is_empty() {
        GenConfig::default()
    } else {
        GenConfig::default().with_families(&chosen)
    };
    let ops = 1 + usize::from(ops) % cfg.max_ops;
    let case = TestCase::from(Case::new(seed, ops, &cfg));
    let report = check(&case, &variants(VariantSet::Axes, None));
    if let Some(f) = report.finding {
        panic!(
            "seed {seed}, {ops} ops: {}\n{}",
            f.summary(),
            syntax::print(&case.graph)
        );
    }
}

/// Pipeline target on text: `source` as a model, with input and parameter values
/// drawn from `seed` the way the generator draws them, run by the interpreter
/// and every JIT configuration. Sources that do not elaborate, models over
/// [`TEXT_NUMEL_LIMIT`] elements, and models whose values the interpreter
/// rejects (e.g. an index the value drawing cannot know is an index) are
/// skipped; any other finding panics.
pub fn pipeline_text(source: &str, seed: u64) {
    let Ok(graph) = syntax::parse_graph(source, &Dims::new()) else {
        return;
    };
    if total_numel(&graph) > TEXT_NUMEL_LIMIT {
        return;
    }
    let (inputs, params) = random_values(&graph, seed);
    let case = TestCase {
        graph,
        inputs,
        params,
    };
    let report = check(&case, &variants(VariantSet::Axes, None));
    match report.finding {
        Some(f) if f.kind != Kind::Interp => {
            panic!("seed {seed}: {}\n{source}", f.summary())
        }
        _ => {}
    }
}

/// The sum of the element counts of every value in `graph`.
fn total_numel(graph: &Graph) -> usize {
    graph
        .node_ids()
        .flat_map(|n| graph.node(n).types.iter())
        .fold(0usize, |acc, t| acc.saturating_add(t.numel()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = "model m {\n  input x: f32[2, 3]\n  param w: f32[3, 4] = normal(0, 1)\n  y = relu(x @ w)\n  output y\n}\n";

    /// The targets accept what dlc handles: valid models, rejections, non-UTF-8.
    #[test]
    fn targets_pass_on_valid_and_rejected_input() {
        parse_bytes(MODEL.as_bytes());
        parse_bytes(b"model m { input x: f32[2] output");
        parse_bytes(&[0xff, 0xfe, 0]);
        pipeline_text(MODEL, 3);
        pipeline_text("not a model", 3);
        pipeline_generated(1, 0, 2);
        pipeline_generated(2, 1 << 12, 0);
    }

    /// Big text models are skipped rather than run.
    #[test]
    fn text_models_over_the_limit_are_skipped() {
        let g = syntax::parse_graph(
            "model m {\n  input x: f32[65, 64]\n  output x\n}\n",
            &Dims::new(),
        )
        .unwrap();
        assert!(total_numel(&g) > TEXT_NUMEL_LIMIT);
        assert!(total_numel(&syntax::parse_graph(MODEL, &Dims::new()).unwrap()) < TEXT_NUMEL_LIMIT);
    }
}
