//! Elementary functions from basic IEEE operations only (`+ - * /`, `sqrt`), so
//! the analysis, and the generator decisions that depend on it, give the same
//! results on every platform (the system `libm` may differ in the last ulp).
//! About 1e-15 relative accuracy, far more than estimates need.

const LN2: f64 = std::f64::consts::LN_2;

/// `2^k` for `|k| <= 1022`, exactly.
fn pow2(k: i64) -> f64 {
    f64::from_bits(((k.clamp(-1022, 1023) + 1023) as u64) << 52)
}

/// `e^x`.
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 709.0 {
        return f64::INFINITY;
    }
    if x < -708.0 {
        return 0.0;
    }
    let k = (x / LN2 + 0.5).floor();
    let r = x - k * LN2;
    // Taylor series of e^r for |r| <= ln2/2: 18 terms are exact to rounding.
    let (mut term, mut sum) = (1.0, 1.0);
    for i in 1..18 {
        term *= r / i as f64;
        sum += term;
    }
    sum * pow2(k as i64)
}

/// Natural logarithm (`-inf` at 0, NaN below).
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    // x = m·2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh((m-1)/(m+1)).
    let (mut m, mut e) = (x, 0i64);
    while m >= std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    while m < std::f64::consts::FRAC_1_SQRT_2 {
        m *= 2.0;
        e -= 1;
    }
    let t = (m - 1.0) / (m + 1.0);
    let (t2, mut p, mut sum) = (t * t, t, 0.0);
    for i in 0..30 {
        sum += p / (2 * i + 1) as f64;
        p *= t2;
    }
    2.0 * sum + e as f64 * LN2
}

/// Hyperbolic tangent.
pub fn tanh(x: f64) -> f64 {
    if x.abs() > 20.0 {
        return x.signum();
    }
    if x.abs() < 1e-4 {
        return x - x * x * x / 3.0;
    }
    let e = exp(2.0 * x);
    (e - 1.0) / (e + 1.0)
}

/// `e^x - 1`.
pub fn exp_m1(x: f64) -> f64 {
    if x.abs() < 1e-5 {
        x + 0.5 * x * x
    } else {
        exp(x) - 1.0
    }
}

/// `ln(1 + x)` for `x >= 0`.
pub fn ln_1p(x: f64) -> f64 {
    if x < 1e-8 { x } else { ln(1.0 + x) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_std() {
        for i in -400..400 {
            let x = i as f64 * 0.173;
            let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-300);
            assert!(rel(exp(x), x.exp()) < 1e-13, "exp {x}");
            assert!(
                rel(tanh(x), x.tanh()) < 1e-12 || (tanh(x) - x.tanh()).abs() < 1e-15,
                "tanh {x}"
            );
            let y = (i as f64 * 0.37).abs() + 1e-3;
            assert!(
                (ln(y) - y.ln()).abs() < 1e-13 * y.ln().abs().max(1.0),
                "ln {y}"
            );
        }
    }
}
