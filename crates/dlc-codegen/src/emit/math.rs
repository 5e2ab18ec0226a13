//! Vectorised f32 math, emitted inline as Cranelift IR for f32x4 (or scalar f32).
//!
//! Every function handles ±inf, NaN, overflow and underflow like libm; measured
//! errors over dense sweeps are in docs/math.md (test `math_accuracy`).
//!
//! - `exp`, `log`, `tanh`: the Cephes single-precision algorithms (S. L. Moshier),
//!   range reduction plus minimax polynomials, with FMA.
//! - `erf`/`erfc`: polynomials fitted by `tools/fit_erf.py` (erf = x·P(x²) for
//!   |x| < 1, erfc = exp(-x²)·Q(1/x) beyond, with x² split exactly by FMA).
//! - `sigmoid`, `softplus`, GELU: composed so no branch cancels catastrophically
//!   (e.g. GELU-tanh as x·sigmoid(2u), since ½(1 + tanh u) = sigmoid(2u)).

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{Endianness, InstBuilder, MemFlagsData, Value, types};

use super::builder::KernelBuilder;

/// Whether values are f32x4 vectors or f32 scalars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lanes {
    /// f32x4 (true) or f32 (false).
    pub vector: bool,
}

impl Lanes {
    fn int_ty(self) -> types::Type {
        if self.vector {
            types::I32X4
        } else {
            types::I32
        }
    }
    fn float_ty(self) -> types::Type {
        if self.vector {
            types::F32X4
        } else {
            types::F32
        }
    }
}

fn bitcast_flags() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

impl KernelBuilder<'_> {
    /// A float constant in the lane shape.
    pub fn fconst(&mut self, l: Lanes, v: f32) -> Value {
        self.f32c(v, l.vector)
    }

    /// An i32 constant in the lane shape.
    fn iconst32(&mut self, l: Lanes, v: i32) -> Value {
        let s = self.b.ins().iconst(types::I32, v as i64);
        if l.vector {
            self.b.ins().splat(types::I32X4, s)
        } else {
            s
        }
    }

    /// Reinterprets float lanes as i32 lanes.
    pub fn to_bits(&mut self, l: Lanes, x: Value) -> Value {
        self.b.ins().bitcast(l.int_ty(), bitcast_flags(), x)
    }

    /// Reinterprets i32 lanes as float lanes.
    pub fn from_bits(&mut self, l: Lanes, x: Value) -> Value {
        self.b.ins().bitcast(l.float_ty(), bitcast_flags(), x)
    }

    /// A float comparison producing a lane mask (i32x4) or an i8 truth value.
    pub fn fcmp(&mut self, cc: FloatCC, a: Value, b: Value) -> Value {
        self.b.ins().fcmp(cc, a, b)
    }

    /// `mask ? a : b` per lane, for a mask from [`KernelBuilder::fcmp`].
    pub fn select_mask(&mut self, l: Lanes, mask: Value, a: Value, b: Value) -> Value {
        if l.vector {
            let ty = self.b.func.dfg.value_type(a);
            let m = if self.b.func.dfg.value_type(mask) == ty {
                mask
            } else {
                self.b.ins().bitcast(ty, bitcast_flags(), mask)
            };
            self.b.ins().bitselect(m, a, b)
        } else {
            self.b.ins().select(mask, a, b)
        }
    }

    /// `x` clamped to `[lo, hi]`, a NaN `x` passed through. Written as the
    /// compare-and-select patterns that x86-64 lowers to one `minps`/`maxps`
    /// each (Cranelift's `fmin`/`fmax` order signed zeros and NaNs like IEEE
    /// and take about eight instructions each).
    pub fn clamp_keep_nan(&mut self, l: Lanes, x: Value, lo: Value, hi: Value) -> Value {
        let above = self.fcmp(FloatCC::LessThan, hi, x);
        let x = self.select_mask(l, above, hi, x);
        let below = self.fcmp(FloatCC::LessThan, x, lo);
        self.select_mask(l, below, lo, x)
    }

    /// Horner evaluation of a polynomial (coefficients highest degree first) with FMA.
    pub fn poly(&mut self, l: Lanes, x: Value, coefs: &[f32]) -> Value {
        let mut acc = self.fconst(l, coefs[0]);
        for &c in &coefs[1..] {
            let c = self.fconst(l, c);
            acc = self.b.ins().fma(acc, x, c);
        }
        acc
    }

    /// `|x|`.
    pub fn fabs(&mut self, x: Value) -> Value {
        self.b.ins().fabs(x)
    }

    /// `x` with the sign of `s`.
    fn copysign(&mut self, l: Lanes, x: Value, s: Value) -> Value {
        let xb = self.to_bits(l, x);
        let sb = self.to_bits(l, s);
        let mag = self.iconst32(l, 0x7fff_ffff);
        let sign = self.iconst32(l, i32::MIN);
        let xb = self.b.ins().band(xb, mag);
        let sb = self.b.ins().band(sb, sign);
        let r = self.b.ins().bor(xb, sb);
        self.from_bits(l, r)
    }

    /// `2^n` for integer lanes `n` in `[-126, 127]`, as floats.
    fn pow2i(&mut self, l: Lanes, n: Value) -> Value {
        let bias = self.iconst32(l, 127);
        let biased = self.b.ins().iadd(n, bias);
        let bits = self.b.ins().ishl_imm_s(biased, 23);
        self.from_bits(l, bits)
    }

    /// `e^x` (Cephes expf with FMA; max error ~1 ulp).
    pub fn exp(&mut self, l: Lanes, x: Value) -> Value {
        let hi = self.fconst(l, 89.0);
        let lo = self.fconst(l, -104.0);
        let x = self.clamp_keep_nan(l, x, lo, hi);
        let log2e = self.fconst(l, std::f32::consts::LOG2_E);
        let t = self.b.ins().fmul(x, log2e);
        // n = round-to-nearest-even(t) by adding and subtracting 1.5·2^23
        // (exact for |t| < 2^22); the integer n is then the low bits of t + 1.5·2^23.
        let magic = self.fconst(l, 12_582_912.0);
        let shifted = self.b.ins().fadd(t, magic);
        let n = self.b.ins().fsub(shifted, magic);
        let neg_n = self.b.ins().fneg(n);
        let c1 = self.fconst(l, 0.693_359_4);
        let c2 = self.fconst(l, -2.121_944_4e-4);
        let r = self.b.ins().fma(neg_n, c1, x);
        let r = self.b.ins().fma(neg_n, c2, r);
        let p = self.poly(
            l,
            r,
            &[
                1.987_569_1e-4,
                1.398_199_9e-3,
                8.333_452e-3,
                4.166_579_6e-2,
                1.666_666_5e-1,
                5e-1,
            ],
        );
        let z = self.b.ins().fmul(r, r);
        let one = self.fconst(l, 1.0);
        let rp1 = self.b.ins().fadd(r, one);
        let p = self.b.ins().fma(p, z, rp1);
        // Scale by 2^n in two steps so that results near overflow and in the
        // subnormal range are rounded once, like libm.
        let shifted_bits = self.to_bits(l, shifted);
        let magic_bits = self.iconst32(l, 0x4b40_0000);
        let ni = self.b.ins().isub(shifted_bits, magic_bits);
        let n1 = self.b.ins().sshr_imm_s(ni, 1);
        let n2 = self.b.ins().isub(ni, n1);
        let s1 = self.pow2i(l, n1);
        let s2 = self.pow2i(l, n2);
        let p = self.b.ins().fmul(p, s1);
        self.b.ins().fmul(p, s2)
    }

    /// Natural logarithm (Cephes logf with FMA; max error ~1 ulp).
    pub fn log(&mut self, l: Lanes, x: Value) -> Value {
        // Subnormals: scale up by 2^23 first and correct the exponent.
        let min_normal = self.fconst(l, f32::MIN_POSITIVE);
        let tiny = self.fcmp(FloatCC::LessThan, x, min_normal);
        let big = self.fconst(l, 8_388_608.0);
        let scaled = self.b.ins().fmul(x, big);
        let xs = self.select_mask(l, tiny, scaled, x);
        let bits = self.to_bits(l, xs);
        let e = self.b.ins().ushr_imm_s(bits, 23);
        let bias = self.iconst32(l, -126);
        let e = self.b.ins().iadd(e, bias);
        let e = if l.vector {
            let adj = self.iconst32(l, 23);
            let zero = self.iconst32(l, 0);
            let tiny_i = self.b.ins().bitcast(types::I32X4, bitcast_flags(), tiny);
            let adj = self.b.ins().bitselect(tiny_i, adj, zero);
            self.b.ins().isub(e, adj)
        } else {
            let e23 = self.b.ins().iadd_imm_s(e, -23); // scalar path only
            self.b.ins().select(tiny, e23, e)
        };
        let mant_mask = self.iconst32(l, 0x807f_ffffu32 as i32);
        let half_bits = self.iconst32(l, 0x3f00_0000);
        let m = self.b.ins().band(bits, mant_mask);
        let m = self.b.ins().bor(m, half_bits);
        let m = self.from_bits(l, m); // in [0.5, 1)
        let sqrthf = self.fconst(l, std::f32::consts::FRAC_1_SQRT_2);
        let below = self.fcmp(FloatCC::LessThan, m, sqrthf);
        let mut ef = self.b.ins().fcvt_from_sint(l.float_ty(), e);
        let one = self.fconst(l, 1.0);
        let zero = self.fconst(l, 0.0);
        let dec = self.select_mask(l, below, one, zero);
        ef = self.b.ins().fsub(ef, dec);
        let extra = self.select_mask(l, below, m, zero);
        let m = self.b.ins().fadd(m, extra);
        let m = self.b.ins().fsub(m, one);
        let z = self.b.ins().fmul(m, m);
        let p = self.poly(
            l,
            m,
            &[
                7.037_683_6e-2,
                -1.151_461e-1,
                1.167_699_9e-1,
                -1.242_014_1e-1,
                1.424_932_3e-1,
                -1.666_805_8e-1,
                2.000_071_4e-1,
                -2.499_999_4e-1,
                3.333_333e-1,
            ],
        );
        let y = self.b.ins().fmul(p, m);
        let y = self.b.ins().fmul(y, z);
        let c2 = self.fconst(l, -2.121_944_4e-4);
        let y = self.b.ins().fma(ef, c2, y);
        let mhalf = self.fconst(l, -0.5);
        let y = self.b.ins().fma(z, mhalf, y);
        let r = self.b.ins().fadd(m, y);
        let c1 = self.fconst(l, 0.693_359_4);
        let r = self.b.ins().fma(ef, c1, r);
        // Special values: log(0) = -inf, log(+inf) = +inf, log(x < 0) = log(NaN) = NaN.
        let is_zero = self.fcmp(FloatCC::Equal, x, zero);
        let ninf = self.fconst(l, f32::NEG_INFINITY);
        let r = self.select_mask(l, is_zero, ninf, r);
        let inf = self.fconst(l, f32::INFINITY);
        let is_inf = self.fcmp(FloatCC::Equal, x, inf);
        let r = self.select_mask(l, is_inf, inf, r);
        let invalid = self.fcmp(FloatCC::UnorderedOrLessThan, x, zero);
        let nan = self.fconst(l, f32::NAN);
        self.select_mask(l, invalid, nan, r)
    }

    /// `log(1 + y)` for `y >= 0`, accurate for tiny `y` (Goldberg's correction).
    pub fn log1p_pos(&mut self, l: Lanes, y: Value) -> Value {
        let one = self.fconst(l, 1.0);
        let u = self.b.ins().fadd(y, one);
        let lu = self.log(l, u);
        let um1 = self.b.ins().fsub(u, one);
        let q = self.b.ins().fdiv(y, um1);
        let corrected = self.b.ins().fmul(lu, q);
        let exact = self.fcmp(FloatCC::Equal, u, one);
        self.select_mask(l, exact, y, corrected)
    }

    /// Hyperbolic tangent (Cephes tanhf: polynomial below 0.625, exp beyond).
    pub fn tanh(&mut self, l: Lanes, x: Value) -> Value {
        let z = self.b.ins().fmul(x, x);
        let p = self.poly(
            l,
            z,
            &[
                -5.704_988_7e-3,
                2.063_909e-2,
                -5.373_971_6e-2,
                1.333_144_2e-1,
                -3.333_328e-1,
            ],
        );
        let pz = self.b.ins().fmul(p, z);
        let small = self.b.ins().fma(pz, x, x);
        let a = self.fabs(x);
        let two = self.fconst(l, 2.0);
        let a2 = self.b.ins().fmul(a, two);
        let e = self.exp(l, a2);
        let one = self.fconst(l, 1.0);
        let ep1 = self.b.ins().fadd(e, one);
        let q = self.b.ins().fdiv(two, ep1);
        let big = self.b.ins().fsub(one, q);
        let big = self.copysign(l, big, x);
        let limit = self.fconst(l, 0.625);
        let is_small = self.fcmp(FloatCC::LessThan, a, limit);
        self.select_mask(l, is_small, small, big)
    }

    /// `1 / (1 + e^-x)`, computed from `e^-|x|` so neither tail loses accuracy.
    pub fn sigmoid(&mut self, l: Lanes, x: Value) -> Value {
        let a = self.fabs(x);
        let na = self.b.ins().fneg(a);
        let e = self.exp(l, na);
        let one = self.fconst(l, 1.0);
        let d = self.b.ins().fadd(one, e);
        let r = self.b.ins().fdiv(one, d);
        let er = self.b.ins().fmul(e, r);
        let zero = self.fconst(l, 0.0);
        let neg = self.fcmp(FloatCC::LessThan, x, zero);
        self.select_mask(l, neg, er, r)
    }

    /// `log(1 + e^x)` as `max(x, 0) + log1p(e^-|x|)`.
    pub fn softplus(&mut self, l: Lanes, x: Value) -> Value {
        let a = self.fabs(x);
        let na = self.b.ins().fneg(a);
        let e = self.exp(l, na);
        let lp = self.log1p_pos(l, e);
        let zero = self.fconst(l, 0.0);
        let m = self.b.ins().fmax(x, zero);
        self.b.ins().fadd(m, lp)
    }

    /// `erfc(x)` for all x (relative accuracy in both tails).
    pub fn erfc(&mut self, l: Lanes, x: Value) -> Value {
        self.erfc_scaled(l, x, 1.0)
    }

    /// `erfc(s·x)` for `s` = 1 or 1/√2, without rounding `s·x` where it matters:
    /// the Gaussian factor `exp(-s²x²)` is computed from `x² = hi + lo` (split
    /// exactly with an FMA) and the exact `s²`, since rounding `s·x` first would
    /// cost up to `2(sx)²` ulps in the far tail.
    fn erfc_scaled(&mut self, l: Lanes, x: Value, s: f32) -> Value {
        let s2 = if s == 1.0 { 1.0 } else { 0.5 };
        let sc = self.fconst(l, s);
        let t = self.b.ins().fmul(x, sc);
        let a = self.fabs(t);
        // |t| < 1: erfc = 1 - t P(t^2).
        let z = self.b.ins().fmul(t, t);
        let p = self.poly(l, z, &ERF_P);
        let erf_small = self.b.ins().fmul(t, p);
        let one = self.fconst(l, 1.0);
        let small = self.b.ins().fsub(one, erf_small);
        // |t| >= 1: erfc(|t|) = exp(-s^2 x^2) Q(1/|t|); beyond |t| = 10.5 it underflows.
        let cap = self.fconst(l, 10.5);
        let ac = self.b.ins().fmin(a, cap);
        let xcap = self.fconst(l, 10.5 / s);
        let xa = self.fabs(x);
        let xa = self.b.ins().fmin(xa, xcap);
        let tinv = self.b.ins().fdiv(one, ac);
        let q1 = self.poly(l, tinv, &ERFC_Q1);
        let q2 = self.poly(l, tinv, &ERFC_Q2);
        let cut = self.fconst(l, 2.5);
        let mid = self.fcmp(FloatCC::LessThan, ac, cut);
        let q = self.select_mask(l, mid, q1, q2);
        let hi = self.b.ins().fmul(xa, xa);
        let nhi = self.b.ins().fneg(hi);
        let lo = self.b.ins().fma(xa, xa, nhi);
        let s2v = self.fconst(l, s2);
        let arg = self.b.ins().fmul(nhi, s2v); // exact: s2 is a power of two
        let e = self.exp(l, arg);
        let lo_s = self.b.ins().fmul(lo, s2v);
        let corr = self.b.ins().fneg(lo_s);
        let corr = self.b.ins().fma(e, corr, e); // e * (1 - s^2 lo)
        let tail = self.b.ins().fmul(corr, q);
        // Negative arguments: erfc(t) = 2 - erfc(|t|).
        let two = self.fconst(l, 2.0);
        let neg_tail = self.b.ins().fsub(two, tail);
        let zero = self.fconst(l, 0.0);
        let neg = self.fcmp(FloatCC::LessThan, t, zero);
        let large = self.select_mask(l, neg, neg_tail, tail);
        let is_small = self.fcmp(FloatCC::LessThan, a, one);
        let r = self.select_mask(l, is_small, small, large);
        let nan = self.fcmp(FloatCC::Unordered, x, x);
        self.select_mask(l, nan, x, r)
    }

    /// `erf(x)` (relative accuracy near 0, 1 - erfc beyond).
    pub fn erf(&mut self, l: Lanes, x: Value) -> Value {
        let z = self.b.ins().fmul(x, x);
        let p = self.poly(l, z, &ERF_P);
        let small = self.b.ins().fmul(x, p);
        let c = self.erfc(l, x);
        let one = self.fconst(l, 1.0);
        let large = self.b.ins().fsub(one, c);
        let a = self.fabs(x);
        let is_small = self.fcmp(FloatCC::LessThan, a, one);
        self.select_mask(l, is_small, small, large)
    }

    /// Exact GELU: `x Φ(x) = ½ x erfc(-x/√2)`.
    pub fn gelu_erf(&mut self, l: Lanes, x: Value) -> Value {
        let nx = self.b.ins().fneg(x);
        let c = self.erfc_scaled(l, nx, std::f32::consts::FRAC_1_SQRT_2);
        let half = self.fconst(l, 0.5);
        let hx = self.b.ins().fmul(x, half);
        self.b.ins().fmul(hx, c)
    }

    /// Tanh-approximated GELU, computed as `x · sigmoid(2√(2/π)(x + 0.044715 x³))`.
    pub fn gelu_tanh(&mut self, l: Lanes, x: Value) -> Value {
        let c = self.fconst(l, 0.044_715);
        let x2 = self.b.ins().fmul(x, x);
        let one = self.fconst(l, 1.0);
        let inner = self.b.ins().fma(c, x2, one);
        let u = self.b.ins().fmul(x, inner);
        let k = self.fconst(l, 2.0 * 0.797_884_6);
        let u = self.b.ins().fmul(u, k);
        let s = self.sigmoid(l, u);
        self.b.ins().fmul(x, s)
    }
}

/// erf(x) = x·P(x²) on |x| < 1 (tools/fit_erf.py). The last coefficient is
/// fitted; it is close to, not defined as, 2/√π.
#[allow(clippy::approx_constant)]
const ERF_P: [f32; 8] = [
    -9.667_046e-6,
    1.126_596e-4,
    -8.484_080_3e-4,
    5.221_031_6e-3,
    -2.686_543e-2,
    1.128_378_2e-1,
    -3.761_263_8e-1,
    1.128_379_2,
];

/// erfc(x) = exp(-x²)·Q1(1/x) on [1, 2.5) (tools/fit_erf.py).
const ERFC_Q1: [f32; 10] = [
    5.514_071e-3,
    -2.862_737_7e-2,
    4.151_982_4e-2,
    6.158_632_4e-2,
    -3.332_549_3e-1,
    5.886_288e-1,
    -5.232_004e-1,
    5.888_749_7e-2,
    5.560_331e-1,
    4.966_295e-4,
];

/// erfc(x) = exp(-x²)·Q2(1/x) on [2.5, 10.5] (tools/fit_erf.py).
const ERFC_Q2: [f32; 10] = [
    -4.130_828_7e-1,
    7.223_891e-1,
    -1.273_081_2e-1,
    -6.705_377_7e-1,
    6.478_340_6e-1,
    -4.573_944_2e-2,
    -2.761_505_2e-1,
    -4.828_125_5e-4,
    5.642_119e-1,
    -4.499_471_5e-7,
];
