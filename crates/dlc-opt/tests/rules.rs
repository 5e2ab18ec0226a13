//! Every rule of the table, on random instances of its left-hand side: the rule
//! must fire and change the result, the result must verify and keep the outputs'
//! types, and both sides must agree on the interpreter (optimised graph in f32
//! against the original in f64, within the testgen error model's tolerance for
//! the original graph, i.e. the bound any f32 evaluation of it must meet).

mod common;

use dlc_opt::rules::examples::Ex;
use dlc_opt::{OptLevel, OptOptions, RULES, optimize};

/// Random instances per rule.
const CASES: u64 = 16;

#[test]
fn rule_names_are_unique_and_patterns_parse() {
    let mut names: Vec<&str> = RULES.iter().map(|r| r.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), RULES.len());
    for r in RULES {
        let _ = r.rewrite();
    }
}

#[test]
fn every_rule_fires_on_its_examples_and_both_sides_agree() {
    let mut failures = vec![];
    for rule in RULES {
        for case in 0..CASES {
            let seed = case * 0x9E37_79B9 + rule.name.len() as u64;
            let mut ex = Ex::new(seed);
            let out = (rule.example)(&mut ex);
            let g = ex.finish(out);
            let opts = OptOptions {
                level: OptLevel::O2,
                only: Some(vec![rule.name.to_string()]),
                ..OptOptions::default()
            };
            let (o, report) = optimize(&g, &opts).expect("optimises");
            dlc_ir::verify(&o).expect("verifies");
            assert_eq!(g.ty(g.outputs()[0].value), o.ty(o.outputs()[0].value));
            if !report.changed.iter().any(|n| n == rule.name) {
                failures.push(format!(
                    "{} (seed {seed}): did not change the result\n{report}",
                    rule.name
                ));
                continue;
            }
            let (inputs, params) = dlc_testgen::random_values(&g, seed);
            if let Err(e) = common::agree(&g, &o, &inputs, &params) {
                failures.push(format!("{} (seed {seed}): {e}", rule.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn exact_rules_are_the_default_and_finite_math_needs_o2() {
    let o1 = OptOptions::default().rules();
    assert!(o1.iter().all(|r| r.exact));
    assert!(
        OptOptions::level(OptLevel::O2)
            .rules()
            .iter()
            .any(|r| !r.exact)
    );
    assert!(OptOptions::level(OptLevel::O0).rules().is_empty());
}
