//! The extraction integer program: it finds sharing greedy extraction cannot,
//! never returns anything dearer than greedy, never returns a cycle, and stays
//! within its limits.

mod common;

use std::time::Duration;

use dlc_ir::Op;
use dlc_opt::{Extractor, IlpLimits, IlpOutcome, Limits, OptLevel, OptOptions, Report, optimize};
use dlc_testgen::{Case, GenConfig};

fn parse(src: &str) -> dlc_ir::Graph {
    dlc_ir::syntax::parse_graph(src, &Default::default()).unwrap()
}

/// Options with `extractor` and `ilp`, and time limits long enough never to be
/// what stops a run (so results are deterministic even on a loaded machine).
fn with(extractor: Extractor, ilp: IlpLimits) -> OptOptions {
    OptOptions {
        extractor,
        limits: Limits {
            ilp: IlpLimits {
                time: Duration::from_secs(20),
                ..ilp
            },
            time: Duration::from_secs(20),
            ..Limits::default()
        },
        ..OptOptions::level(OptLevel::O2)
    }
}

fn matmuls(g: &dlc_ir::Graph) -> usize {
    g.node_ids()
        .filter(|&id| matches!(g.node(id).op, Op::MatMul))
        .count()
}

/// `k` products `(x_i · b) · c` with `x_i` of 8 rows and `b`, `c` 64×64 inputs.
/// Each alone is cheaper as written (`x_i·(b·c)` adds a 64³ product), but from
/// three products on, computing `b·c` once and sharing it is cheaper: a choice
/// of all `k` classes at once, which no single-class switch finds.
fn shared_chain(k: usize) -> String {
    let mut s = String::from("model chain {\n input b: f32[64, 64]\n input c: f32[64, 64]\n");
    for i in 0..k {
        s += &format!(" input x{i}: f32[8, 64]\n y{i} = (x{i} @ b) @ c\n");
    }
    let outs: Vec<String> = (0..k).map(|i| format!("y{i}")).collect();
    s + &format!(" output {}\n}}\n", outs.join(", "))
}

fn solved(r: &Report) -> (bool, bool) {
    match &r.ilp {
        Some(IlpOutcome::Solved {
            optimal, improved, ..
        }) => (*optimal, *improved),
        other => panic!("the ILP did not solve: {other:?}\n{r}"),
    }
}

#[test]
fn ilp_shares_a_product_greedy_extraction_duplicates() {
    let g = parse(&shared_chain(16));
    let (greedy, gr) = optimize(&g, &with(Extractor::Greedy, IlpLimits::default())).unwrap();
    let (ilp, ir) = optimize(&g, &with(Extractor::Ilp, IlpLimits::default())).unwrap();
    assert!(gr.ilp.is_none());
    assert_eq!(solved(&ir), (true, true), "{ir}");
    assert_eq!(matmuls(&greedy), 32, "{gr}");
    assert_eq!(matmuls(&ilp), 17, "{ir}");
    assert!(ir.cost_after < 0.75 * gr.cost_after, "{gr}\n{ir}");
    let (inputs, params) = dlc_testgen::random_values(&g, 3);
    common::agree(&g, &ilp, &inputs, &params).unwrap();
}

/// With two products sharing is dearer, and the ILP proves greedy's answer optimal.
#[test]
fn ilp_keeps_greedy_when_it_is_optimal() {
    let g = parse(&shared_chain(2));
    let (o, r) = optimize(&g, &with(Extractor::Ilp, IlpLimits::default())).unwrap();
    assert_eq!(solved(&r), (true, false), "{r}");
    assert_eq!(matmuls(&o), 4);
}

/// `t(t(a·b))`: the e-graph holds the cycle `a·b = t(t(a·b))`, two transposes
/// far cheaper than the 256³ product; the order constraints must exclude it.
#[test]
fn ilp_never_extracts_a_cycle() {
    let g = parse(
        "model m {\n input a: f32[256, 256]\n input b: f32[256, 256]\n\
         y = transpose(transpose(a @ b))\n z = relu(relu(y))\n output z\n}\n",
    );
    let (o, r) = optimize(&g, &with(Extractor::Ilp, IlpLimits::default())).unwrap();
    assert!(solved(&r).0, "{r}");
    assert_eq!(matmuls(&o), 1);
    let (inputs, params) = dlc_testgen::random_values(&g, 5);
    common::agree(&g, &o, &inputs, &params).unwrap();
}

#[test]
fn a_program_over_the_variable_limit_is_skipped_and_greedy_stands() {
    let g = parse(&shared_chain(16));
    let tiny = IlpLimits {
        variables: 10,
        ..IlpLimits::default()
    };
    let (o, r) = optimize(&g, &with(Extractor::Ilp, tiny)).unwrap();
    assert!(
        matches!(r.ilp, Some(IlpOutcome::TooLarge { variables }) if variables > 10),
        "{r}"
    );
    assert_eq!(matmuls(&o), 32);
}

/// Auto runs the program on small graphs even without sharing groups.
#[test]
fn auto_runs_the_program_on_small_graphs() {
    let g = parse(&shared_chain(16));
    let (o, r) = optimize(&g, &OptOptions::level(OptLevel::O2)).unwrap();
    assert_eq!(solved(&r), (true, true), "{r}");
    assert_eq!(matmuls(&o), 17);
}

/// On random graphs the ILP result is never dearer than greedy's, is
/// deterministic, and computes the same values.
#[test]
fn ilp_is_never_worse_than_greedy_on_random_graphs() {
    let cfg = GenConfig::default();
    let mut failures = vec![];
    for seed in 0..150 {
        let case = Case::from_seed(seed, &cfg);
        let greedy = with(Extractor::Greedy, IlpLimits::default());
        let ilp = with(Extractor::Ilp, IlpLimits::default());
        let (_, gr) = optimize(&case.graph, &greedy).expect("optimises");
        let (o, r) = optimize(&case.graph, &ilp).expect("optimises");
        let (again, _) = optimize(&case.graph, &ilp).expect("optimises");
        assert_eq!(
            dlc_ir::syntax::print(&o),
            dlc_ir::syntax::print(&again),
            "seed {seed}"
        );
        if r.cost_after > gr.cost_after * (1.0 + 1e-9) {
            failures.push(format!("seed {seed}: {r}\nvs greedy {gr}"));
        }
        if !matches!(r.ilp, Some(IlpOutcome::Solved { .. })) {
            failures.push(format!("seed {seed}: {r}"));
        }
        if let Err(e) = common::agree(&case.graph, &o, &case.inputs, &case.params) {
            failures.push(format!("seed {seed}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
