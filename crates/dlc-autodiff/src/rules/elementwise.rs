//! Elementwise ops: the derivative times the cotangent, summed back to each
//! operand's shape where the op broadcast it.
//!
//! Conventions follow PyTorch at the kinks: `relu'(0) = 0`, `abs'(0) = 0`,
//! `maximum`/`minimum` split the gradient evenly on ties, `clamp` passes it
//! where `min <= x <= max`.

use std::f64::consts::PI;

use dlc_ir::{BinaryOp as B, Op, UnaryOp as U, ValueId};

use super::Node;
use crate::tape::{R, Tape};

/// Gradients of an elementwise node.
pub(super) fn vjp(t: &mut Tape, n: &Node) -> R<Vec<Option<ValueId>>> {
    let dy = n.dy()?;
    let x = n.args[0];
    let y = n.outs[0];
    let g = match &n.op {
        Op::Unary(u) => unary(t, *u, x, y, dy)?,
        Op::Binary(b) => return binary(t, n, *b, dy),
        Op::LeakyRelu { alpha } => {
            let pos = t.cmp_scalar(B::Gt, x, 0.0)?;
            let neg = t.scale(dy, *alpha)?;
            t.select(pos, dy, neg)?
        }
        Op::Elu { alpha } => {
            // For x <= 0, y = alpha (e^x - 1), so dy/dx = y + alpha.
            let pos = t.cmp_scalar(B::Gt, x, 0.0)?;
            let a = t.scalar(*alpha)?;
            let d = t.add(y, a)?;
            let neg = t.mul(dy, d)?;
            t.select(pos, dy, neg)?
        }
        Op::Clamp { min, max } => {
            let mut inside: Option<ValueId> = None;
            if *min > f64::NEG_INFINITY {
                inside = Some(t.cmp_scalar(B::Ge, x, *min)?);
            }
            if *max < f64::INFINITY {
                let le = t.cmp_scalar(B::Le, x, *max)?;
                inside = Some(match inside {
                    Some(ge) => t.bin(B::And, ge, le)?,
                    None => le,
                });
            }
            match inside {
                Some(m) => t.mask(m, dy)?,
                None => dy,
            }
        }
        Op::Where => {
            let c = n.args[0];
            let mut out = vec![None; 3];
            for (i, slot) in out.iter_mut().enumerate().skip(1) {
                if n.need[i] {
                    let z = t.scalar(0.0)?;
                    let g = if i == 1 {
                        t.select(c, dy, z)?
                    } else {
                        t.select(c, z, dy)?
                    };
                    let s = t.shape(n.args[i]);
                    *slot = Some(t.sum_to(g, &s)?);
                }
            }
            return Ok(out);
        }
        Op::Cast { .. } => dy,
        Op::Dropout { p, seed, training } => {
            if *training {
                let op = Op::Dropout {
                    p: *p,
                    seed: *seed,
                    training: true,
                };
                t.op(op, &[dy])?
            } else {
                dy
            }
        }
        other => unreachable!("{} is not elementwise", other.name()),
    };
    Ok(n.only(0, g))
}

/// `dy · f'(x)` for a unary `f`, using the result `y` where it is cheaper.
fn unary(t: &mut Tape, u: U, x: ValueId, y: ValueId, dy: ValueId) -> R<ValueId> {
    Ok(match u {
        U::Neg => t.neg(dy)?,
        U::Abs => {
            let pos = t.cmp_scalar(B::Gt, x, 0.0)?;
            let neg = t.cmp_scalar(B::Lt, x, 0.0)?;
            let ndy = t.neg(dy)?;
            let inner = t.mask(neg, ndy)?;
            t.select(pos, dy, inner)?
        }
        U::Relu => {
            // relu(x) > 0 exactly when x > 0: testing the result leaves the
            // pre-activation with one use, so it can stay in a GEMM epilogue.
            let pos = t.cmp_scalar(B::Gt, y, 0.0)?;
            t.mask(pos, dy)?
        }
        U::Exp => t.mul(dy, y)?,
        U::Log => t.div(dy, x)?,
        U::Sqrt => {
            let two_y = t.scale(y, 2.0)?;
            t.div(dy, two_y)?
        }
        U::Rsqrt => {
            // d/dx x^(-1/2) = -y^3 / 2
            let y2 = t.mul(y, y)?;
            let y3 = t.mul(y2, y)?;
            let d = t.mul(dy, y3)?;
            t.scale(d, -0.5)?
        }
        U::Sigmoid => {
            let y2 = t.mul(y, y)?;
            let d = t.sub(y, y2)?;
            t.mul(dy, d)?
        }
        U::Tanh => {
            let y2 = t.mul(y, y)?;
            let one = t.scalar(1.0)?;
            let d = t.sub(one, y2)?;
            t.mul(dy, d)?
        }
        U::Softplus => {
            let s = t.un(U::Sigmoid, x)?;
            t.mul(dy, s)?
        }
        U::Erf => {
            // 2/sqrt(pi) exp(-x^2)
            let x2 = t.mul(x, x)?;
            let nx2 = t.neg(x2)?;
            let e = t.un(U::Exp, nx2)?;
            let d = t.scale(e, 2.0 / PI.sqrt())?;
            t.mul(dy, d)?
        }
        U::GeluErf => {
            // Φ(x) + x φ(x) = ½(1 + erf(x/√2)) + x exp(-x²/2)/√(2π)
            let xs = t.scale(x, std::f64::consts::FRAC_1_SQRT_2)?;
            let erf = t.un(U::Erf, xs)?;
            let one = t.scalar(1.0)?;
            let cdf = t.add(one, erf)?;
            let cdf = t.scale(cdf, 0.5)?;
            let x2 = t.mul(x, x)?;
            let h = t.scale(x2, -0.5)?;
            let e = t.un(U::Exp, h)?;
            let pdf = t.scale(e, 1.0 / (2.0 * PI).sqrt())?;
            let xpdf = t.mul(x, pdf)?;
            let d = t.add(cdf, xpdf)?;
            t.mul(dy, d)?
        }
        U::GeluTanh => {
            // u = k(x + c x³), th = tanh(u):
            // d = ½(1 + th) + ½ x (1 - th²) k (1 + 3c x²)
            let (k, c) = ((2.0 / PI).sqrt(), 0.044715);
            let x2 = t.mul(x, x)?;
            let x3 = t.mul(x2, x)?;
            let cx3 = t.scale(x3, c)?;
            let inner = t.add(x, cx3)?;
            let u = t.scale(inner, k)?;
            let th = t.un(U::Tanh, u)?;
            let one = t.scalar(1.0)?;
            let a = t.add(one, th)?;
            let a = t.scale(a, 0.5)?;
            let th2 = t.mul(th, th)?;
            let sech2 = t.sub(one, th2)?;
            let c3x2 = t.scale(x2, 3.0 * c)?;
            let du = t.add(one, c3x2)?;
            let du = t.scale(du, 0.5 * k)?;
            let b = t.mul(sech2, du)?;
            let b = t.mul(x, b)?;
            let d = t.add(a, b)?;
            t.mul(dy, d)?
        }
        U::Not => unreachable!("`not` has no f32 operand"),
    })
}

/// Gradients of a binary op, each summed back to its operand's shape.
fn binary(t: &mut Tape, n: &Node, b: B, dy: ValueId) -> R<Vec<Option<ValueId>>> {
    let (a, c) = (n.args[0], n.args[1]);
    let y = n.outs[0];
    let mut out = vec![None, None];
    for (i, slot) in out.iter_mut().enumerate() {
        if !n.need[i] {
            continue;
        }
        let g = match (b, i) {
            (B::Add, _) | (B::Sub, 0) => dy,
            (B::Sub, _) => t.neg(dy)?,
            (B::Mul, 0) => t.mul(dy, c)?,
            (B::Mul, _) => t.mul(dy, a)?,
            (B::Div, 0) => t.div(dy, c)?,
            (B::Div, _) => {
                // d(a/c)/dc = -(a/c)/c
                let q = t.div(y, c)?;
                let d = t.mul(dy, q)?;
                t.neg(d)?
            }
            (B::Pow, 0) => {
                let one = t.scalar(1.0)?;
                let e = t.sub(c, one)?;
                let p = t.bin(B::Pow, a, e)?;
                let d = t.mul(c, p)?;
                t.mul(dy, d)?
            }
            (B::Pow, _) => {
                let l = t.un(U::Log, a)?;
                let d = t.mul(y, l)?;
                t.mul(dy, d)?
            }
            (B::Maximum | B::Minimum, _) => {
                // The operand that wins gets dy; ties split it evenly.
                let wins = match (b, i) {
                    (B::Maximum, 0) | (B::Minimum, 1) => B::Gt,
                    _ => B::Lt,
                };
                let w = t.bin(wins, a, c)?;
                let tie = t.bin(B::Eq, a, c)?;
                let half = t.scale(dy, 0.5)?;
                let on_tie = t.mask(tie, half)?;
                t.select(w, dy, on_tie)?
            }
            _ => unreachable!("comparisons and logical ops carry no gradient"),
        };
        let s = t.shape(n.args[i]);
        *slot = Some(t.sum_to(g, &s)?);
    }
    Ok(out)
}
