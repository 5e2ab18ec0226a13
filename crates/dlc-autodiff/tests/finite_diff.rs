//! Finite-difference checks of every VJP rule, in f64 on the reference
//! interpreter, as property tests over random graphs of each op family.
//!
//! For a random graph from `dlc-testgen`, the loss is `L = Σ_k sum(o_k · w_k)`
//! over its f32 outputs `o_k`, with random fixed weights `w_k` (extra inputs), so
//! every element of every output takes part and no structural cancellation (a
//! softmax row summing to 1) hides a wrong gradient. For each f32 parameter and
//! input `p` that `L` depends on differentiably, the analytic directional
//! derivative `⟨∇_p L, d⟩` along a random direction `d` (uniform in `[-1, 1]` per
//! element) is compared with the central difference
//! `(L(p + h·d) − L(p − h·d)) / 2h`, `h = 1e-6`, all evaluated in f64.
//!
//! # Tolerance
//!
//! `|fd − analytic| <= 1e-6 · S + 2 · e_L / h`, where
//!
//! - `S = Σ_i |∂L/∂p_i · d_i|` is the scale of the directional derivative. The
//!   central difference's truncation error is `h²/6 · φ'''` (`≈ 1e-13` times the
//!   curvature scale here), and the backward graph's own f64 rounding is about
//!   `2^-29` of the f32 error the generator allows (<= 1e-3 relative), about
//!   `2e-12`; `1e-6` leaves a wide margin over both while a wrong rule (a missing
//!   term, a wrong sign, a wrong axis) is off by O(1) of `S`.
//! - `e_L = Σ_k Σ |w_k| · atol_k · 2^-29` bounds the f64 rounding error of `L`:
//!   `atol_k` is the generator's f32 tolerance of output `k` (8 × its error
//!   model), and f64 carries 29 more bits; plus `terms · ε64 · Σ|o_k · w_k|`
//!   for the final sum (exact outputs have `atol = 0`). The difference quotient
//!   divides two such errors by `2h`.
//!
//! Observed on the 1,800 checks of a run: the median error is 4e-6 of the
//! tolerance, the largest 3% of it; scaling one rule's derivative by 1.01 fails.
//!
//! A kink (relu at 0, a max tie, a clamp bound) within `h` of a point makes the
//! central difference meaningless there; when the check fails at `h` it is
//! retried once at `h / 16` (with its larger rounding allowance) and passes if
//! that agrees: a straddled kink moves with `h`, a wrong rule does not.

use dlc_ir::init::SplitMix64;
use dlc_ir::{BinaryOp, DType, Graph, Op, ReduceKind, UnaryOp, ValueId};
use dlc_tensor::{Env, Value};
use dlc_testgen::{Case, Family, GenConfig, tolerance};
use ndarray::ArrayD;
use proptest::prelude::*;

/// The central-difference step.
const H: f64 = 1e-6;
/// The relative part of the tolerance (see the module docs).
const RTOL: f64 = 1e-6;

/// The case's graph with the weighted loss `fd_loss` (and `fd_abs`, the sum of
/// its terms' magnitudes), its inputs with the weights, the f64 error bound of
/// the outputs' contribution and the number of terms.
fn with_loss(case: &Case) -> (Graph, Env<f64>, f64, usize) {
    let mut g = case.graph.clone();
    let mut rng = SplitMix64::new(case.seed ^ 0x5eed_f00d);
    let mut inputs: Env<f64> = case
        .inputs
        .iter()
        .map(|(k, v)| (k.clone(), v.to_f64()))
        .collect();
    let (mut loss, mut abs): (Option<ValueId>, Option<ValueId>) = (None, None);
    let (mut err, mut terms) = (0.0, 0);
    let outs: Vec<ValueId> = g.outputs().iter().map(|o| o.value).collect();
    for (k, o) in outs.into_iter().enumerate() {
        let ty = g.ty(o).clone();
        if ty.dtype != DType::F32 {
            continue;
        }
        let name = format!("fd_w{k}");
        let w = g
            .add_source(Op::Input, name.clone(), ty.clone(), None)
            .unwrap();
        let data: Vec<f64> = (0..ty.numel()).map(|_| 2.0 * rng.uniform() - 1.0).collect();
        let atol = tolerance(&case.graph, o).atol as f64;
        err += data.iter().map(|w| w.abs() * atol).sum::<f64>() * 2f64.powi(-29);
        let arr = ArrayD::from_shape_vec(ty.shape.clone(), data).unwrap();
        inputs.insert(name, Value::Float(arr));
        terms += ty.numel();
        let p = anon(&mut g, Op::Binary(BinaryOp::Mul), &[o, w]);
        let a = anon(&mut g, Op::Unary(UnaryOp::Abs), &[p]);
        for (acc, v) in [(&mut loss, p), (&mut abs, a)] {
            let s = total(&mut g, v);
            *acc = Some(match *acc {
                Some(l) => anon(&mut g, Op::Binary(BinaryOp::Add), &[l, s]),
                None => s,
            });
        }
    }
    if let (Some(l), Some(a)) = (loss, abs) {
        g.rename(l, "fd_loss").unwrap();
        g.add_output("fd_loss", l);
        g.add_output("fd_abs", a);
    }
    (g, inputs, err, terms)
}

/// The sum of every element of `v`.
fn total(g: &mut Graph, v: ValueId) -> ValueId {
    let rank = g.ty(v).rank();
    if rank == 0 {
        return v;
    }
    let op = Op::Reduce {
        kind: ReduceKind::Sum,
        axes: (0..rank).collect(),
        keepdim: false,
    };
    anon(g, op, &[v])
}

fn anon(g: &mut Graph, op: Op, args: &[ValueId]) -> ValueId {
    ValueId::first(g.add_anon(op, args).unwrap())
}

/// The f32 parameters and inputs of the original graph.
fn candidates(g: &Graph) -> Vec<String> {
    g.params()
        .chain(g.inputs())
        .filter(|&n| g.node(n).types[0].dtype == DType::F32)
        .map(|n| g.node(n).names[0].clone())
        .collect()
}

/// Evaluates `fd_loss` with `env[name]` replaced by `base + s·dir`.
fn loss_at(
    g: &Graph,
    inputs: &Env<f64>,
    params: &Env<f64>,
    name: &str,
    base: &ArrayD<f64>,
    dir: &ArrayD<f64>,
    s: f64,
) -> f64 {
    let moved = Value::Float(base + &(dir * s));
    let (mut i, mut p) = (inputs.clone(), params.clone());
    if p.contains_key(name) {
        p.insert(name.to_string(), moved);
    } else {
        i.insert(name.to_string(), moved);
    }
    let out = dlc_interp::run::<f64>(g, &i, &p).expect("the forward graph runs");
    out["fd_loss"].as_float().unwrap().iter().sum()
}

/// Checks every differentiable parameter and input of the case; returns how
/// many were checked.
fn check(case: &Case) -> Result<usize, TestCaseError> {
    let (g, inputs, err, terms) = with_loss(case);
    if g.lookup("fd_loss").is_none() {
        return Ok(0); // no f32 output
    }
    let params: Env<f64> = case
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.to_f64()))
        .collect();
    let base = dlc_interp::run::<f64>(&g, &inputs, &params)
        .map_err(|e| fail(case, &format!("the forward graph fails: {e}")))?;
    let abs: f64 = base["fd_abs"].as_float().unwrap().sum();
    // Summing the terms rounds by at most (terms - 1) ulp of their magnitude.
    let err = err + terms as f64 * f64::EPSILON * abs;
    let mut wrt = Vec::new();
    for name in candidates(&case.graph) {
        match dlc_autodiff::grad(&g, "fd_loss", &[&name]) {
            Ok(_) => wrt.push(name),
            Err(
                dlc_autodiff::AutodiffError::NotDifferentiable { .. }
                | dlc_autodiff::AutodiffError::Unused { .. },
            ) => {}
            Err(e) => return Err(fail(case, &format!("grad wrt `{name}`: {e}"))),
        }
    }
    let names: Vec<&str> = wrt.iter().map(String::as_str).collect();
    let dg =
        dlc_autodiff::grad(&g, "fd_loss", &names).map_err(|e| fail(case, &format!("grad: {e}")))?;
    let grads = dlc_interp::run::<f64>(&dg, &inputs, &params)
        .map_err(|e| fail(case, &format!("the gradient graph fails: {e}")))?;
    let mut rng = SplitMix64::new(case.seed ^ 0xd1ec_7105);
    for name in &wrt {
        let gr = grads[&format!("grad_{name}")].as_float().unwrap();
        let base = inputs
            .get(name)
            .or_else(|| params.get(name))
            .and_then(Value::as_float)
            .unwrap();
        let dir = base.mapv(|_| 2.0 * rng.uniform() - 1.0);
        let analytic: f64 = (gr * &dir).sum();
        let scale: f64 = gr.iter().zip(&dir).map(|(a, b)| (a * b).abs()).sum();
        let mut last = String::new();
        let ok = [H, H / 16.0].iter().any(|&h| {
            let up = loss_at(&g, &inputs, &params, name, base, &dir, h);
            let down = loss_at(&g, &inputs, &params, name, base, &dir, -h);
            let fd = (up - down) / (2.0 * h);
            let tol = RTOL * scale + 2.0 * err / h;
            last = format!(
                "h {h:e}: finite difference {fd:e}, analytic {analytic:e}, \
                 |diff| {:e} > tol {tol:e} (scale {scale:e})",
                (fd - analytic).abs()
            );
            if std::env::var("FD_DEBUG").is_ok() {
                eprintln!(
                    "FDDBG {name} ratio {:e} scale {scale:e} errterm {:e}",
                    (fd - analytic).abs() / tol,
                    2.0 * err / h
                );
            }
            (fd - analytic).abs() <= tol
        });
        if !ok {
            return Err(fail(case, &format!("gradient of `{name}`: {last}")));
        }
    }
    Ok(wrt.len())
}

fn fail(case: &Case, msg: &str) -> TestCaseError {
    TestCaseError::fail(format!(
        "seed {} ops {}: {msg}\n{}",
        case.seed,
        case.ops,
        dlc_ir::syntax::print(&case.graph)
    ))
}

/// Small graphs: the interpreter runs each forward pass twice per checked value.
fn config(f: Family) -> GenConfig {
    GenConfig::only(f)
        .with_max_ops(3)
        .with_max_numel(1 << 12)
        .with_max_work(1 << 16)
}

macro_rules! family_test {
    ($name:ident, $family:expr) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]
            #[test]
            fn $name(case in dlc_testgen::arb_case(config($family))) {
                check(&case)?;
            }
        }
    };
}

/// The property tests pass vacuously on a graph with nothing to differentiate:
/// make sure every family yields gradients to check.
#[test]
fn every_family_has_gradients_to_check() {
    for f in Family::ALL.into_iter().filter(|&f| f != Family::Backward) {
        let checked: usize = (0..16)
            .map(|seed| check(&Case::from_seed(seed, &config(f))).unwrap())
            .sum();
        assert!(checked >= 8, "{}: only {checked} values checked", f.name());
    }
}

family_test!(elementwise, Family::Elementwise);
family_test!(matmul, Family::MatMul);
family_test!(conv, Family::Conv);
family_test!(conv_transpose, Family::ConvTranspose);
family_test!(pool, Family::Pool);
family_test!(reduce, Family::Reduce);
family_test!(softmax, Family::Softmax);
family_test!(layout, Family::Layout);
family_test!(gather, Family::Gather);
family_test!(norm, Family::Norm);
family_test!(loss, Family::Loss);
family_test!(dropout, Family::Dropout);
family_test!(recurrent, Family::Recurrent);
family_test!(grid_lstm, Family::GridLstm);
family_test!(attention, Family::Attention);

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]
    /// Mixed graphs: gradients through chains of different families.
    #[test]
    fn mixed(case in dlc_testgen::arb_case(GenConfig::default().with_max_ops(4)
        .with_max_numel(1 << 12).with_max_work(1 << 16)
        .with_families(&[Family::Elementwise, Family::MatMul, Family::Conv, Family::Pool,
            Family::Reduce, Family::Softmax, Family::Layout, Family::Norm, Family::Loss]))) {
        check(&case)?;
    }

    /// Through a backward op a gradient is an error that names it, never a panic.
    #[test]
    fn backward_ops_are_not_differentiated(case in dlc_testgen::arb_case(config(Family::Backward))) {
        let (g, ..) = with_loss(&case);
        if g.lookup("fd_loss").is_none() {
            return Ok(());
        }
        for name in candidates(&case.graph) {
            if let Err(e) = dlc_autodiff::grad(&g, "fd_loss", &[&name]) {
                let ok = matches!(e, dlc_autodiff::AutodiffError::NotDifferentiable { .. }
                    | dlc_autodiff::AutodiffError::Unused { .. });
                prop_assert!(ok, "unexpected error: {e}");
            }
        }
    }
}
