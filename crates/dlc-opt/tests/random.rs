//! `-O2` against `-O0` on random dlc-testgen graphs: the optimised graph must verify,
//! keep inputs, parameters and outputs, and compute the same values (interpreter
//! on many cases, the JIT on fewer), within the testgen error model's tolerance
//! for the original graph. A pathological graph must stop at a limit and still be
//! correct.

mod common;

use dlc_opt::{Limits, OptLevel, OptOptions, optimize};
use dlc_testgen::{Case, GenConfig};

fn o2() -> OptOptions {
    OptOptions::level(OptLevel::O2)
}

fn same_interface(a: &dlc_ir::Graph, b: &dlc_ir::Graph) {
    let names =
        |g: &dlc_ir::Graph, ids: Vec<dlc_ir::NodeId>| -> Vec<(String, dlc_ir::TensorType)> {
            ids.into_iter()
                .map(|n| (g.node(n).names[0].clone(), g.node(n).types[0].clone()))
                .collect()
        };
    assert_eq!(
        names(a, a.inputs().collect()),
        names(b, b.inputs().collect())
    );
    assert_eq!(
        names(a, a.params().collect()),
        names(b, b.params().collect())
    );
    let outs = |g: &dlc_ir::Graph| -> Vec<(String, dlc_ir::TensorType)> {
        g.outputs()
            .iter()
            .map(|o| (o.name.clone(), g.ty(o.value).clone()))
            .collect()
    };
    assert_eq!(outs(a), outs(b));
}

#[test]
fn o2_agrees_with_o0_on_the_interpreter() {
    let cfg = GenConfig::default();
    let mut failures = vec![];
    for seed in 0..300 {
        let case = Case::from_seed(seed, &cfg);
        let (o, _) = optimize(&case.graph, &o2()).expect("optimises");
        same_interface(&case.graph, &o);
        if let Err(e) = common::agree(&case.graph, &o, &case.inputs, &case.params) {
            failures.push(format!("seed {seed}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn o2_agrees_with_o0_on_the_jit() {
    let cfg = GenConfig::default();
    for seed in 1000..1040 {
        let case = Case::from_seed(seed, &cfg);
        let (o, _) = optimize(&case.graph, &o2()).expect("optimises");
        let opts = dlc_runtime::RuntimeOptions::default();
        let Ok(model) = dlc_runtime::CompiledModel::new(&o, &case.params, &opts) else {
            // Ops the JIT does not lower fail the same way unoptimised.
            assert!(dlc_runtime::CompiledModel::new(&case.graph, &case.params, &opts).is_err());
            continue;
        };
        let got = model.run(&case.inputs).expect("runs");
        let widen = |e: &dlc_tensor::Env| -> dlc_tensor::Env<f64> {
            e.iter().map(|(k, v)| (k.clone(), v.to_f64())).collect()
        };
        let want = dlc_interp::run::<f64>(&case.graph, &widen(&case.inputs), &widen(&case.params))
            .expect("original runs");
        common::compare(&case.graph, &got, &want, &case.inputs, &case.params)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}

#[test]
fn a_pathological_chain_hits_a_limit_and_stays_correct() {
    // 400 ops in runs of sixteen: a transpose, seven matmuls, a transpose, six matmuls
    // and an add. Re-association lets every sub-interval of a run become an e-class
    // (cubic in the run length) and transposes move through the matmuls, so saturation
    // needs far more than the node limit. The weight is scaled by 0.1 so values shrink instead of overflowing.
    let mut g = dlc_ir::Graph::new("chain");
    let f = |s: &[usize]| dlc_ir::TensorType::f32(s);
    let x = g
        .add_source(dlc_ir::Op::Input, "x", f(&[8, 8]), None)
        .unwrap();
    let w0 = g
        .add_source(dlc_ir::Op::Input, "w", f(&[8, 8]), None)
        .unwrap();
    let tenth = dlc_ir::Op::Const {
        value: dlc_ir::ConstValue::Float(vec![0.1]),
    };
    let k = g.add_source(tenth, "k", f(&[]), None).unwrap();
    let w = dlc_ir::ValueId::first(
        g.add_anon(dlc_ir::Op::Binary(dlc_ir::BinaryOp::Mul), &[w0, k])
            .unwrap(),
    );
    let mut v = x;
    for i in 0..400 {
        let op = match i % 16 {
            0 | 8 => dlc_ir::Op::Transpose { perm: vec![1, 0] },
            15 => dlc_ir::Op::Binary(dlc_ir::BinaryOp::Add),
            _ => dlc_ir::Op::MatMul,
        };
        let args = if i % 8 == 0 { vec![v] } else { vec![v, w] };
        v = dlc_ir::ValueId::first(g.add_anon(op, &args).unwrap());
    }
    g.add_output("y", v);
    let opts = OptOptions {
        limits: Limits {
            nodes: 2_000,
            ..Limits::default()
        },
        ..o2()
    };
    let (o, report) = optimize(&g, &opts).expect("optimises");
    assert_ne!(report.stop, "saturated", "{report}");
    assert!(report.total < std::time::Duration::from_secs(1), "{report}");
    let (inputs, params) = dlc_testgen::random_values(&g, 7);
    common::agree(&g, &o, &inputs, &params).unwrap();
}

#[test]
fn results_are_deterministic() {
    let cfg = GenConfig::default();
    for seed in 0..40 {
        let case = Case::from_seed(seed, &cfg);
        let opts = OptOptions {
            limits: Limits {
                time: std::time::Duration::from_secs(60),
                ..Limits::default()
            },
            ..o2()
        };
        let (a, ra) = optimize(&case.graph, &opts).unwrap();
        let (b, rb) = optimize(&case.graph, &opts).unwrap();
        assert!(a == b && ra.applied == rb.applied, "seed {seed}");
    }
}
