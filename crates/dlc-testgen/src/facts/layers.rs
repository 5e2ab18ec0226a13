//! Facts of linear maps, windows, reductions, softmax, normalisation and losses.

use dlc_ir::{Op, PoolKind, ReduceKind, TensorType, UnaryOp};

use super::{EPS, Fact, ULP_EXP, ULP_RECIP, ULP_TRANSC, add, ln, mul, unary};

/// A sum of `n` products `a_i * b_i` (a matmul or conv output, a sum reduction
/// with `b = 1`).
///
/// Range: `n·mid(a)·mid(b) ± 2·sqrt(n)·|a|·|b|`, clipped to the true bound `n·[a·b]`.
/// Error: the operands' errors carried through the sum, `e_a·(sqrt(n)·|b| + n·|mid b|)`
/// (independent errors grow as `sqrt(n)`, errors shared by all terms, such as an
/// offset, as `n` when `b` has a mean), plus f32 accumulation error
/// `eps·sqrt(n)·scale` with `scale = sqrt(n)·|a|·|b| + n·|mid a·mid b|`, the typical
/// magnitude of the partial sums.
pub(crate) fn lin(n: usize, a: &Fact, b: &Fact) -> Fact {
    let n = n.max(1) as f64;
    let sn = n.sqrt();
    let (plo, phi) = super::mul_range(a, b);
    let (tlo, thi) = (n * plo, n * phi);
    let center = n * a.mid() * b.mid();
    let dev = 2.0 * sn * a.m() * b.m();
    let lo = if tlo >= 0.0 {
        tlo
    } else {
        tlo.max(center - dev)
    };
    let hi = thi.min(center + dev);
    let scale = sn * a.m() * b.m() + n * (a.mid() * b.mid()).abs();
    let carried = a.err * (sn * b.m() + n * b.mid().abs())
        + b.err * (sn * a.m() + n * a.mid().abs())
        + n * a.err * b.err;
    let round = EPS * sn * scale + EPS * lo.abs().max(hi.abs());
    Fact::approx(lo, hi, carried + round)
}

/// The mean of `n` values: same range, error carried plus `eps·(sqrt(n) + 1)·|x|`.
pub(crate) fn mean(n: usize, x: &Fact) -> Fact {
    let f = Fact::approx(x.lo, x.hi, 0.0);
    f.reerr(x.err + EPS * ((n as f64).sqrt() + 1.0) * x.m())
}

/// Softmax over `n` values: in `[0, 1]`; error `2·e_x` carried (the Jacobian's
/// rows have absolute sum at most 2) plus [`softmax_round`].
pub(crate) fn softmax(n: usize, x: &Fact) -> Fact {
    Fact::approx(0.0, 1.0, 2.0 * x.err + softmax_round(n))
}

/// The rounding error of softmax probabilities over `n` values, absolute (and
/// relative to `p`): `x_j - max` is rounded by `eps·d_j` with `d_j = max - x_j`,
/// which moves `p_j` by `p_j·eps·d_j <= eps/e`, and the normaliser by
/// `eps·sum p_j d_j <= eps·ln n` (the mean gap of a softmax is at most its
/// entropy); exp adds 4 ulp, the sum `sqrt(n)` and the division 1.
pub(crate) fn softmax_round(n: usize) -> f64 {
    let n = n as f64;
    EPS * (0.37 + ln(n) + ULP_EXP + n.sqrt() + 1.0)
}

fn log_softmax(n: usize, x: &Fact) -> Fact {
    let (n, range) = (n as f64, x.hi - x.lo);
    let round = EPS * (ULP_EXP + ULP_TRANSC + n.sqrt() + 3.0 * (range + ln(n)));
    Fact::approx(-range - ln(n), 0.0, 2.0 * x.err + round)
}

pub(crate) fn neg(x: &Fact) -> Fact {
    Fact {
        lo: -x.hi,
        hi: -x.lo,
        ..*x
    }
}

fn scalar(v: f64) -> Fact {
    Fact::exact(v, v)
}

/// Normalisation by batch statistics over groups of `n` values (layernorm,
/// training batchnorm), before the affine part.
///
/// A group may be nearly constant (relu'd or broadcast data), so the worst-case
/// amplification of errors in `x - mean` is `A = 1/sqrt(eps)`, not `1/std`; the
/// normalised value is bounded by `sqrt(n - 1)`, and practically by 6.
fn normalize(n: usize, eps: f64, x: &Fact) -> Fact {
    let amp = 1.0 / eps.sqrt();
    let nf = n as f64;
    let zm = (nf - 1.0).sqrt().clamp(1.0, 6.0).min((x.hi - x.lo) * amp);
    let e_dev = 2.0 * x.err + EPS * (2.0 + nf.sqrt()) * x.m();
    let err = amp * e_dev * (1.0 + zm) + zm * EPS * (nf.sqrt() + ULP_RECIP + 2.0);
    Fact::approx(-zm, zm, err)
}

/// The batch variance (unbiased, as stored in running statistics).
fn batch_var(n: usize, x: &Fact) -> Fact {
    let nf = n as f64;
    let corr = nf / (nf - 1.0).max(1.0);
    let half = 0.5 * (x.hi - x.lo);
    let e_dev = 2.0 * x.err + EPS * (2.0 + nf.sqrt()) * x.m();
    let err = (2.0 * half * e_dev + EPS * (2.0 + nf.sqrt()) * half * half) * corr;
    Fact::approx(0.0, half * half * corr, err)
}

/// `(1 - momentum)·running + momentum·batch`.
fn blend(momentum: f64, running: &Fact, batch: &Fact) -> Fact {
    add(
        &mul(&scalar(1.0 - momentum), running),
        &mul(&scalar(momentum), batch),
    )
}

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

/// Facts of the ops in this module's scope, `None` for others.
pub(super) fn op_facts(
    op: &Op,
    a: &[Fact],
    tys: &[&TensorType],
    _out: &[TensorType],
) -> Option<Vec<Fact>> {
    let x = &a[0];
    let xs = &tys[0].shape;
    let bias = |f: Fact| if a.len() == 3 { add(&f, &a[2]) } else { f };
    let f = match op {
        Op::MatMul => lin(xs[xs.len() - 1], x, &a[1]),
        Op::Conv(c) => {
            let w = &tys[1].shape;
            let padded = c.padding.iter().any(|&(l, h)| l + h > 0);
            let src = if padded { x.with_zero() } else { *x };
            bias(lin(numel(&w[1..]), &src, &a[1]))
        }
        Op::ConvTranspose(c) => {
            let w = &tys[1].shape;
            let n = xs[1] / c.groups.max(1) * numel(&w[2..]);
            bias(lin(n, &x.with_zero(), &a[1]))
        }
        Op::Pool(p) => match p.kind {
            PoolKind::Max => *x,
            PoolKind::Avg { count_include_pad } => {
                let padded = p.padding.iter().any(|&(l, h)| l + h > 0);
                let src = if padded && count_include_pad {
                    x.with_zero()
                } else {
                    *x
                };
                mean(numel(&p.kernel), &src)
            }
        },
        Op::GlobalAvgPool => mean(numel(&xs[2..]), x),
        Op::Reduce { kind, axes, .. } => {
            let n = axes.iter().map(|&i| xs[i]).product();
            match kind {
                ReduceKind::Sum => lin(n, x, &scalar(1.0)),
                ReduceKind::Mean => mean(n, x),
                ReduceKind::Max | ReduceKind::Min => *x,
            }
        }
        Op::Softmax { axis } => softmax(xs[*axis], x),
        Op::LogSoftmax { axis } => log_softmax(xs[*axis], x),
        Op::LayerNorm { axis, eps } => {
            let z = normalize(numel(&xs[*axis..]), *eps, x);
            add(&mul(&z, &a[1]), &a[2])
        }
        Op::BatchNorm {
            eps,
            momentum,
            training,
        } => {
            let (gamma, beta, rmean, rvar) = (&a[1], &a[2], &a[3], &a[4]);
            if !training {
                let inv = unary(UnaryOp::Rsqrt, &add(rvar, &scalar(*eps)));
                let dev = add(x, &neg(rmean));
                return Some(vec![add(&mul(&dev, &mul(gamma, &inv)), beta)]);
            }
            let n = numel(xs) / xs[1];
            let z = normalize(n, *eps, x);
            let y = add(&mul(&z, gamma), beta);
            let m = blend(*momentum, rmean, &mean(n, x));
            let v = blend(*momentum, rvar, &batch_var(n, x));
            return Some(vec![y, m, v]);
        }
        Op::MseLoss => {
            let d = add(x, &neg(&a[1]));
            let dm = d.m();
            let sq = Fact::approx(0.0, dm * dm, 2.0 * dm * d.err + EPS * dm * dm);
            mean(numel(xs), &sq)
        }
        Op::CrossEntropy => {
            let (c, range) = (xs[1] as f64, x.hi - x.lo);
            let round = EPS * (ULP_EXP + ULP_TRANSC + c.sqrt() + 3.0 * (range + ln(c)));
            let row = Fact::approx(0.0, range + ln(c), 2.0 * x.err + round);
            mean(xs[0], &row)
        }
        _ => return None,
    };
    Some(vec![f])
}
