//! Facts of elementwise ops: interval arithmetic for ranges, Lipschitz bounds
//! and ulp counts for errors.

use dlc_ir::{BinaryOp, DType, UnaryOp};

use super::detmath::{exp, ln, ln_1p, tanh};
use super::{EPS, Fact, TINY, ULP_COMPOSITE, ULP_EXP, ULP_POW, ULP_RECIP, ULP_TRANSC};

/// The product interval of two ranges.
pub(crate) fn mul_range(a: &Fact, b: &Fact) -> (f64, f64) {
    let p = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi];
    let lo = p.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

/// `a + b` (elementwise, one rounding).
pub(crate) fn add(a: &Fact, b: &Fact) -> Fact {
    let (lo, hi) = (a.lo + b.lo, a.hi + b.hi);
    Fact::approx(lo, hi, a.err + b.err + EPS * lo.abs().max(hi.abs()))
}

/// `a * b` (elementwise, one rounding).
pub(crate) fn mul(a: &Fact, b: &Fact) -> Fact {
    let (lo, hi) = mul_range(a, b);
    let err = a.err * b.m() + b.err * a.m() + a.err * b.err + EPS * lo.abs().max(hi.abs());
    Fact::approx(lo, hi, err)
}

/// A smooth unary function with Lipschitz bound `lip` over the range, rounding
/// error `round` (absolute).
fn smooth(x: &Fact, (lo, hi): (f64, f64), lip: f64, round: f64) -> Fact {
    Fact::approx(lo, hi, lip * x.err + round)
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + exp(-x))
}

/// `erf(x)` within 1.5e-7 (Abramowitz and Stegun 7.1.26), for ranges.
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let y = 1.0 - poly * exp(-x * x);
    if x < 0.0 { -y } else { y }
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + ln_1p(exp(-x.abs()))
}

/// Facts of a unary op.
pub(crate) fn unary(u: UnaryOp, x: &Fact) -> Fact {
    let floor1 = |m: f64| m.max(1.0);
    match u {
        UnaryOp::Neg => Fact {
            lo: -x.hi,
            hi: -x.lo,
            ..*x
        },
        UnaryOp::Abs => {
            let lo = if x.lo <= 0.0 && x.hi >= 0.0 {
                0.0
            } else {
                x.lo.abs().min(x.hi.abs())
            };
            Fact {
                lo,
                hi: x.m(),
                ..*x
            }
        }
        UnaryOp::Relu => Fact {
            lo: x.lo.max(0.0),
            hi: x.hi.max(0.0),
            ..*x
        },
        UnaryOp::Not => *x,
        UnaryOp::Exp => {
            let (lo, hi) = x.map_up(exp);
            smooth(x, (lo, hi), hi, ULP_EXP * EPS * hi)
        }
        UnaryOp::Log => {
            let l = x.lo.max(TINY);
            let (lo, hi) = (ln(l), ln(x.hi.max(l)));
            smooth(
                x,
                (lo, hi),
                1.0 / l,
                ULP_TRANSC * EPS * floor1(lo.abs().max(hi.abs())),
            )
        }
        UnaryOp::Sqrt => {
            let l = x.lo.max(TINY);
            let (lo, hi) = (x.lo.max(0.0).sqrt(), x.hi.max(0.0).sqrt());
            smooth(x, (lo, hi), 0.5 / l.sqrt(), EPS * hi)
        }
        UnaryOp::Rsqrt => {
            let l = x.lo.max(TINY);
            let (lo, hi) = (1.0 / x.hi.max(l).sqrt(), 1.0 / l.sqrt());
            smooth(x, (lo, hi), 0.5 / (l * l.sqrt()), ULP_RECIP * EPS * hi)
        }
        UnaryOp::Sigmoid => smooth(x, x.map_up(sigmoid), 0.25, ULP_TRANSC * EPS),
        UnaryOp::Tanh => smooth(x, x.map_up(tanh), 1.0, ULP_TRANSC * EPS),
        UnaryOp::GeluErf | UnaryOp::GeluTanh => {
            // x·Φ(x) has its minimum -0.170 at x = -0.752; it increases on either side.
            let phi = |v: f64| 0.5 * v * (1.0 + tanh(v * 0.797_884_6 * (1.0 + 0.044_715 * v * v)));
            let (a, b) = (phi(x.lo), phi(x.hi));
            let lo = if x.lo < -0.752 && x.hi > -0.752 {
                -0.171
            } else {
                a.min(b) - 1e-3 * a.abs().min(b.abs())
            };
            let hi = a.max(b).max(0.0) * 1.001;
            smooth(x, (lo, hi), 1.13, ULP_COMPOSITE * EPS * floor1(x.m()))
        }
        UnaryOp::Erf => smooth(x, x.map_up(erf), 1.13, ULP_TRANSC * EPS),
        UnaryOp::Softplus => {
            let (lo, hi) = x.map_up(softplus);
            smooth(x, (lo, hi), 1.0, ULP_COMPOSITE * EPS * floor1(hi))
        }
    }
}

/// Facts of a binary op (f32, i64 or bool operands).
pub(crate) fn binary(b: BinaryOp, x: &Fact, y: &Fact, dtype: DType) -> Fact {
    let exact = x.exact && y.exact;
    if b.is_comparison() || b.is_logical() {
        return Fact {
            exact,
            ..Fact::exact(0.0, 1.0)
        };
    }
    if dtype != DType::F32 {
        let (lo, hi) = match b {
            BinaryOp::Add => (x.lo + y.lo, x.hi + y.hi),
            BinaryOp::Sub => (x.lo - y.hi, x.hi - y.lo),
            BinaryOp::Mul => mul_range(x, y),
            BinaryOp::Maximum => (x.lo.max(y.lo), x.hi.max(y.hi)),
            _ => (x.lo.min(y.lo), x.hi.min(y.hi)),
        };
        return Fact {
            exact,
            ..Fact::exact(lo, hi)
        };
    }
    match b {
        BinaryOp::Add => add(x, y),
        BinaryOp::Sub => add(
            x,
            &Fact {
                lo: -y.hi,
                hi: -y.lo,
                ..*y
            },
        ),
        BinaryOp::Mul => mul(x, y),
        BinaryOp::Div => {
            // 1/y is decreasing on either side of zero; |y| >= d where the range excludes it.
            let (inv, d) = if y.lo > 0.0 {
                (Fact::exact(1.0 / y.hi, 1.0 / y.lo), y.lo)
            } else if y.hi < 0.0 {
                (Fact::exact(1.0 / y.hi, 1.0 / y.lo), -y.hi)
            } else {
                (Fact::exact(-1.0 / TINY, 1.0 / TINY), TINY)
            };
            let (lo, hi) = mul_range(x, &inv);
            let m = lo.abs().max(hi.abs());
            let err = x.err / d + x.m() * y.err / (d * d) + ULP_RECIP * EPS * m;
            Fact::approx(lo, hi, err)
        }
        BinaryOp::Pow => {
            let base = x.lo.max(TINY);
            let ln = Fact::exact(ln(base), ln(x.hi.max(base)));
            let (tlo, thi) = mul_range(&ln, y);
            let (lo, hi) = (exp(tlo), exp(thi));
            let t = tlo.abs().max(thi.abs());
            let rel = y.m() * x.err / base + ln.m() * y.err + ULP_POW * EPS * (1.0 + t);
            Fact::approx(lo, hi, hi * rel)
        }
        BinaryOp::Maximum => Fact {
            lo: x.lo.max(y.lo),
            hi: x.hi.max(y.hi),
            err: x.err.max(y.err),
            exact,
        },
        _ => Fact {
            lo: x.lo.min(y.lo),
            hi: x.hi.min(y.hi),
            err: x.err.max(y.err),
            exact,
        },
    }
}

/// Facts of a cast.
pub(super) fn cast(x: &Fact, from: DType, to: DType) -> Fact {
    match (from, to) {
        (_, DType::Bool) => Fact {
            exact: x.exact,
            ..Fact::exact(0.0, 1.0)
        },
        (DType::F32, DType::I64) => Fact {
            exact: x.exact,
            ..Fact::exact(x.lo.trunc(), x.hi.trunc())
        },
        (DType::I64, DType::F32) => Fact {
            exact: x.exact && x.m() <= (1u64 << 24) as f64,
            ..*x
        },
        _ => *x,
    }
}

/// Whether an f64 attribute is exactly an f32 (so f32 and f64 backends agree).
pub(super) fn is_f32(v: f64) -> bool {
    (v as f32) as f64 == v
}
