//! Comparison tolerances derived from the error analysis of a graph.

use dlc_ir::{DType, Graph, ValueId};
use dlc_tensor::{Env, Tensor, Value, allowance_ratio};

use crate::facts::{Fact, analyze, analyze_with};

/// The margin between the estimated error of a value and the tolerance it gets.
///
/// The estimates are typical-case bounds (e.g. `sqrt(n)` growth of independent
/// rounding errors) and both sides of a comparison may err, in opposite directions;
/// 8 covers that without admitting errors of a different order.
pub const SAFETY: f64 = 8.0;

/// How closely two computations of a value must agree:
/// `|got - want| <= atol + rtol·|want|` elementwise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tol {
    /// Relative part: [`SAFETY`] × estimated error / estimated magnitude.
    pub rtol: f32,
    /// Absolute part: [`SAFETY`] × estimated error.
    pub atol: f32,
}

impl Tol {
    /// Bit-exact agreement: integer and boolean values, and f32 values every backend
    /// computes identically (selected, never rounded).
    pub const EXACT: Tol = Tol {
        rtol: 0.0,
        atol: 0.0,
    };

    /// Whether `got` is within the tolerance of `want` (NaN only matches NaN).
    pub fn allows(&self, got: f32, want: f32) -> bool {
        if got.is_nan() || want.is_nan() {
            return got.is_nan() && want.is_nan();
        }
        got == want || (got - want).abs() <= self.atol + self.rtol * want.abs()
    }

    /// Compares two values: same dtype and shape; floats within the tolerance,
    /// integers and booleans equal. The error names the worst element.
    pub fn check(&self, got: &Tensor, want: &Tensor) -> Result<(), String> {
        if got.ty() != want.ty() {
            return Err(format!("type {} differs from {}", got.ty(), want.ty()));
        }
        match (got, want) {
            (Value::Float(g), Value::Float(w)) => {
                match allowance_ratio(g, w, self.rtol, self.atol) {
                    Some(r) if r <= 1.0 => Ok(()),
                    _ => {
                        let (i, (gv, wv)) = g
                            .iter()
                            .zip(w.iter())
                            .enumerate()
                            .find(|(_, (a, b))| !self.allows(**a, **b))
                            .expect("a failing comparison has a failing element");
                        Err(format!(
                            "element {i}: got {gv}, want {wv} (|diff| {} > atol {} + rtol {} * |want|)",
                            (gv - wv).abs(),
                            self.atol,
                            self.rtol
                        ))
                    }
                }
            }
            _ if got == want => Ok(()),
            _ => Err("integer or boolean values differ".to_string()),
        }
    }

    fn from_fact(dtype: DType, f: &Fact) -> Tol {
        if dtype != DType::F32 || f.exact {
            return Tol::EXACT;
        }
        let m = f.m();
        Tol {
            rtol: if m > 0.0 { SAFETY * f.err / m } else { 0.0 } as f32,
            atol: (SAFETY * f.err) as f32,
        }
    }
}

/// The tolerance for comparing `output` (any value of `graph`) between two
/// implementations (f32 JIT, f32 or f64 interpreter, optimised or not), for inputs
/// and parameters from [`random_values`](crate::random_values).
///
/// It is [`SAFETY`] times the error estimated by propagating, in topological order,
/// a practical range and an absolute error bound through every op; the rules per op
/// are listed in the crate documentation. Integer, boolean and exactly-selected f32
/// values get [`Tol::EXACT`].
///
/// To compare an optimised graph against the original, take the tolerances of the
/// original graph (the optimised one computes the same values with a different
/// rounding history, within the same error model).
pub fn tolerance(graph: &Graph, output: ValueId) -> Tol {
    let facts = analyze(graph);
    Tol::from_fact(
        graph.ty(output).dtype,
        &facts[output.node.index()][output.result as usize],
    )
}

/// The tolerance of every graph output, by output name, in output order.
pub fn tolerances(graph: &Graph) -> Vec<(String, Tol)> {
    let facts = analyze(graph);
    graph
        .outputs()
        .iter()
        .map(|o| {
            let f = &facts[o.value.node.index()][o.value.result as usize];
            (o.name.clone(), Tol::from_fact(graph.ty(o.value).dtype, f))
        })
        .collect()
}

/// Like [`tolerances`], for inputs and parameters that may not come from
/// [`random_values`](crate::random_values) (a saved or reduced test case): each
/// source's range is widened to cover its given values (non-finite elements
/// aside), so values beyond the generator's ranges get proportionate tolerances.
/// For values drawn by `random_values` the result equals [`tolerances`].
pub fn tolerances_for_values(graph: &Graph, inputs: &Env, params: &Env) -> Vec<(String, Tol)> {
    let facts = analyze_with(graph, |id, default| {
        let name = &graph.node(id).names[0];
        match inputs.get(name).or_else(|| params.get(name)) {
            Some(v) => default.union(&value_range(v)),
            None => default,
        }
    });
    graph
        .outputs()
        .iter()
        .map(|o| {
            let f = &facts[o.value.node.index()][o.value.result as usize];
            (o.name.clone(), Tol::from_fact(graph.ty(o.value).dtype, f))
        })
        .collect()
}

/// The exact range of a value's finite elements (booleans as 0 and 1).
fn value_range(v: &Tensor) -> Fact {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut see = |x: f64| {
        if x.is_finite() {
            lo = lo.min(x);
            hi = hi.max(x);
        }
    };
    match v {
        Value::Float(a) => a.iter().for_each(|&x| see(x as f64)),
        Value::Int(a) => a.iter().for_each(|&x| see(x as f64)),
        Value::Bool(a) => a.iter().for_each(|&x| see(x as u8 as f64)),
    }
    if lo > hi {
        Fact::exact(0.0, 0.0)
    } else {
        Fact::exact(lo, hi)
    }
}
