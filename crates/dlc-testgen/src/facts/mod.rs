//! What is known about every value of a graph: a practical range, an estimate of
//! the absolute floating-point error an f32 implementation may carry, and whether
//! every backend computes it bit-identically.
//!
//! One analysis serves both the generator (which keeps operands of `log`, `exp`,
//! `div`, ... in their safe domains and magnitudes bounded) and [`tolerance`]
//! (which turns the error estimate of an output into a comparison tolerance).
//! The per-op rules are in this module (elementwise), [`layers`] (linear maps,
//! windows, reductions, normalisation, losses) and [`seq`] (recurrent layers and
//! attention); the crate documentation explains the model.
//!
//! [`tolerance`]: crate::tolerance

mod detmath;
mod elementwise;
mod grad;
mod layers;
mod seq;

use detmath::exp_m1;
pub(crate) use detmath::ln;
pub(crate) use elementwise::{add, binary, mul, mul_range, unary};
use elementwise::{cast, is_f32};

use dlc_ir::init::fans;
use dlc_ir::{ConstValue, Graph, Init, NodeId, Op, TensorType};

/// One unit in the last place of an f32 near 1 (2^-23).
pub(crate) const EPS: f64 = f32::EPSILON as f64;

/// Error of vectorised polynomial `exp`, in ulps (relative).
pub(crate) const ULP_EXP: f64 = 4.0;
/// Error of `log`, `tanh`, `sigmoid`, in ulps of `max(|result|, 1)`.
pub(crate) const ULP_TRANSC: f64 = 4.0;
/// Error of `gelu` (both forms) and `softplus`: composites of two approximations.
pub(crate) const ULP_COMPOSITE: f64 = 8.0;
/// Error of `rsqrt` and division (reciprocal estimate plus Newton step), relative.
pub(crate) const ULP_RECIP: f64 = 2.0;
/// Error of `pow` (`exp(b * log a)`), relative, before the amplification by `|b log a|`.
pub(crate) const ULP_POW: f64 = 8.0;

/// The smallest operand magnitude assumed where a domain excludes zero (a foreign
/// graph may not keep operands away from it; the resulting estimates are huge, not NaN).
const TINY: f64 = 1e-6;

/// Range, error estimate and exactness of one value.
///
/// `lo..=hi` is a *practical* range: exact interval arithmetic for elementwise ops,
/// but sums of `n` products are bounded by `n·mean + 2·sqrt(n)·max|term|` rather than
/// the worst case, and later ops treat that range as if it were true. Exact values
/// (sources and values selected from them) have true ranges, and so do values the
/// generator makes positive (`c + abs(x)`, ...), which is what keeps `log`, `sqrt`
/// and denominators safe. For i64 and bool values the range is the true integer
/// range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Fact {
    /// Lower end of the practical range.
    pub lo: f64,
    /// Upper end of the practical range.
    pub hi: f64,
    /// Estimated absolute error of an f32 implementation against exact arithmetic.
    pub err: f64,
    /// Every backend (f32 or f64) computes the value bit-identically: it is a source
    /// or obtained from sources by value-selecting ops only (neg, abs, relu, max,
    /// min, clamp to f32 bounds, layout, gather, max pooling, casts of small ints).
    pub exact: bool,
}

impl Fact {
    /// An exactly known range (sources, integers, booleans).
    pub fn exact(lo: f64, hi: f64) -> Fact {
        Fact {
            lo,
            hi,
            err: 0.0,
            exact: true,
        }
    }

    /// A computed value with a rounding error `err`.
    pub fn approx(lo: f64, hi: f64, err: f64) -> Fact {
        Fact {
            lo: lo.min(hi),
            hi: hi.max(lo),
            err,
            exact: false,
        }
    }

    /// The largest magnitude in the range.
    pub fn m(&self) -> f64 {
        self.lo.abs().max(self.hi.abs())
    }

    /// The midpoint, taken as the mean of the value's elements.
    pub fn mid(&self) -> f64 {
        0.5 * (self.lo + self.hi)
    }

    /// The union of two ranges, the larger error, exact if both are.
    pub fn union(&self, o: &Fact) -> Fact {
        Fact {
            lo: self.lo.min(o.lo),
            hi: self.hi.max(o.hi),
            err: self.err.max(o.err),
            exact: self.exact && o.exact,
        }
    }

    /// The range widened to include zero (padding).
    pub fn with_zero(&self) -> Fact {
        Fact {
            lo: self.lo.min(0.0),
            hi: self.hi.max(0.0),
            ..*self
        }
    }

    /// The same range, no longer exact, with error `err`.
    pub fn reerr(&self, err: f64) -> Fact {
        Fact::approx(self.lo, self.hi, err)
    }

    /// Applies a monotone non-decreasing function to the range.
    fn map_up(&self, f: impl Fn(f64) -> f64) -> (f64, f64) {
        (f(self.lo), f(self.hi))
    }
}

/// The facts of every result of an op node, from the facts of its operands.
pub(crate) fn op_facts(
    op: &Op,
    args: &[Fact],
    tys: &[&TensorType],
    out: &[TensorType],
) -> Vec<Fact> {
    let x = args.first().copied().unwrap_or(Fact::exact(0.0, 0.0));
    let one = |f: Fact| vec![f];
    match op {
        Op::Input | Op::Param { .. } | Op::Const { .. } => unreachable!("sources have no op facts"),
        Op::Unary(u) => one(unary(*u, &x)),
        Op::Binary(b) => one(binary(*b, &x, &args[1], tys[0].dtype)),
        Op::LeakyRelu { alpha } => {
            let f = |v: f64| if v > 0.0 { v } else { alpha * v };
            let c = [f(x.lo), f(x.hi), 0.0];
            let (lo, hi) = (
                c.iter().copied().fold(f64::INFINITY, f64::min),
                c.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            );
            let exact = x.exact && (*alpha == 1.0 || x.lo >= 0.0);
            let e = alpha.abs().max(1.0) * x.err + EPS * lo.abs().max(hi.abs());
            one(Fact {
                exact,
                ..Fact::approx(lo, hi, e)
            })
        }
        Op::Elu { alpha } => {
            let f = |v: f64| if v > 0.0 { v } else { alpha * exp_m1(v) };
            let c = [f(x.lo), f(x.hi), 0.0];
            let (lo, hi) = (
                c.iter().copied().fold(f64::INFINITY, f64::min),
                c.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            );
            let e = alpha.abs().max(1.0) * x.err + ULP_EXP * EPS * alpha.abs().max(1.0);
            one(Fact::approx(lo, hi, e))
        }
        Op::Clamp { min, max } => one(Fact {
            lo: x.lo.clamp(*min, max.max(*min)),
            hi: x.hi.clamp(*min, max.max(*min)),
            err: x.err,
            exact: x.exact && is_f32(*min) && is_f32(*max),
        }),
        Op::Where => one(Fact {
            exact: args[0].exact && args[1].exact && args[2].exact,
            ..args[1].union(&args[2])
        }),
        Op::Cast { to } => one(cast(&x, tys[0].dtype, *to)),
        Op::Dropout { p, training, .. } => {
            if !training || *p == 0.0 {
                one(x)
            } else {
                let s = 1.0 / (1.0 - p);
                let f = Fact::approx((x.lo * s).min(0.0), (x.hi * s).max(0.0), 0.0);
                one(f.reerr(x.err * s + EPS * f.m()))
            }
        }
        Op::Reshape { .. } | Op::Transpose { .. } | Op::BroadcastTo { .. } | Op::Slice { .. } => {
            one(x)
        }
        Op::Concat { .. } => one(args.iter().fold(x, |a, b| a.union(b))),
        Op::Gather { .. } => one(Fact {
            exact: x.exact && args[1].exact,
            ..x
        }),
        Op::OneHot { .. } => one(Fact {
            exact: x.exact,
            ..Fact::exact(0.0, 1.0)
        }),
        Op::ArgMax { axis, .. } => one(Fact {
            exact: x.exact,
            ..Fact::exact(0.0, (tys[0].shape[*axis] - 1) as f64)
        }),
        _ => layers::op_facts(op, args, tys, out)
            .or_else(|| seq::op_facts(op, args, tys, out))
            .or_else(|| grad::op_facts(op, args, tys, out))
            .expect("every op has a facts rule"),
    }
}

/// The range of a parameter's initial values (practical: 5 standard deviations for
/// normal initialisers).
pub(crate) fn init_fact(init: &Init, shape: &[usize]) -> Fact {
    let (fan_in, fan_out) = fans(shape);
    let sym = |a: f64| Fact::exact(-a, a);
    match *init {
        Init::Zeros => Fact::exact(0.0, 0.0),
        Init::Ones => Fact::exact(1.0, 1.0),
        Init::Constant(v) => Fact::exact(v, v),
        Init::Uniform { lo, hi } => Fact::exact(lo, hi),
        Init::Normal { mean, std } => Fact::exact(mean - 5.0 * std, mean + 5.0 * std),
        Init::GlorotUniform => sym((6.0 / (fan_in + fan_out) as f64).sqrt()),
        Init::GlorotNormal => sym(5.0 * (2.0 / (fan_in + fan_out) as f64).sqrt()),
        Init::HeNormal => sym(5.0 * (2.0 / fan_in.max(1) as f64).sqrt()),
    }
}

/// The range of a constant's values.
pub(crate) fn const_fact(value: &ConstValue) -> Fact {
    let v = value.to_f64();
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if v.is_empty() {
        Fact::exact(0.0, 0.0)
    } else {
        Fact::exact(lo, hi)
    }
}

/// The facts of every result of every node of a graph, indexed by node index.
///
/// Sources get the ranges [`random_values`](crate::random_values) draws from.
pub(crate) fn analyze(g: &Graph) -> Vec<Vec<Fact>> {
    let mut facts: Vec<Vec<Fact>> = Vec::with_capacity(g.len());
    for id in g.node_ids() {
        let f = node_facts(g, id, &facts);
        facts.push(f);
    }
    facts
}

/// Like [`analyze`], with source facts widened by `widen(node, default)`: how
/// tolerances for given input and parameter values are derived.
pub(crate) fn analyze_with(g: &Graph, widen: impl Fn(NodeId, Fact) -> Fact) -> Vec<Vec<Fact>> {
    let mut facts: Vec<Vec<Fact>> = Vec::with_capacity(g.len());
    for id in g.node_ids() {
        let mut f = node_facts(g, id, &facts);
        if g.node(id).op.is_source() {
            f[0] = widen(id, f[0]);
        }
        facts.push(f);
    }
    facts
}

/// The facts of one node given those of all earlier nodes.
pub(crate) fn node_facts(g: &Graph, id: NodeId, facts: &[Vec<Fact>]) -> Vec<Fact> {
    let node = g.node(id);
    match &node.op {
        Op::Input => vec![crate::values::input_fact(g, id)],
        Op::Param { init } => vec![init_fact(init, &node.types[0].shape)],
        Op::Const { value } => vec![const_fact(value)],
        op => {
            let operands = g.operands(id);
            let args: Vec<Fact> = operands
                .iter()
                .map(|v| facts[v.node.index()][v.result as usize])
                .collect();
            let tys: Vec<&TensorType> = operands.iter().map(|&v| g.ty(v)).collect();
            op_facts(op, &args, &tys, &node.types)
        }
    }
}
