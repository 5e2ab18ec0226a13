//! Mean and variance of contiguous runs, and the normalisation pass.
//!
//! [`stats`] reads its data from memory once: each chunk of at most [`CHUNK`]
//! elements gets an exact two-pass mean and sum of squared deviations (the
//! second pass reads L1), and chunks are combined with Chan et al.'s pairwise
//! update, so no sum of squares ever cancels.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::rows::{At, Fold, S, V, each, fold, for_n, splat};
use crate::emit::builder::KernelBuilder;
use crate::emit::math::Lanes;

/// Elements per statistics chunk: 16 KiB, so its second pass reads L1.
pub const CHUNK: usize = 4096;

/// `1 / sqrt(var + eps)`, in the interpreter's operation order.
pub fn inv_std(kb: &mut KernelBuilder, l: Lanes, var: Value, eps: f32) -> Value {
    let eps = kb.fconst(l, eps);
    let v = kb.b.ins().fadd(var, eps);
    let root = kb.b.ins().sqrt(v);
    let one = kb.fconst(l, 1.0);
    kb.b.ins().fdiv(one, root)
}

/// The sum of `len` contiguous f32 elements of argument `arg` from `base`.
pub fn row_sum(kb: &mut KernelBuilder, arg: usize, base: Value, len: usize) -> Value {
    fold(kb, len, Fold::Sum, &|kb, l, at| at.load(kb, l, arg, base))
}

/// Mean and sum of squared deviations `(mean, m2)` of `len` contiguous f32
/// elements of argument `arg` from `base`, in two passes.
fn chunk_stats(kb: &mut KernelBuilder, arg: usize, base: Value, len: usize) -> (Value, Value) {
    let sum = row_sum(kb, arg, base, len);
    let mean = mean_of(kb, sum, len);
    let m2 = fold(kb, len, Fold::SumSquares, &|kb, l, at| {
        deviation(kb, l, at, arg, base, mean)
    });
    (mean.0, m2)
}

/// The mean of `len` elements from their sum, as a scalar and its splat.
pub fn mean_of(kb: &mut KernelBuilder, sum: Value, len: usize) -> (Value, Value) {
    let n = kb.fconst(S, len as f32);
    let mean = kb.b.ins().fdiv(sum, n);
    (mean, splat(kb, V, mean))
}

/// `x - mean` at a position of the row at `base` of argument `arg` (the
/// element of the second pass, whose sum of squares is `m2`).
pub fn deviation(
    kb: &mut KernelBuilder,
    l: Lanes,
    at: At,
    arg: usize,
    base: Value,
    (mean, mean_v): (Value, Value),
) -> Value {
    let x = at.load(kb, l, arg, base);
    kb.b.ins().fsub(x, if l.vector { mean_v } else { mean })
}

/// Chan et al.'s combination of the statistics `a` of the first `n_a` elements
/// (an i64 value; `a` may be a placeholder `(0, 0)` when it is 0) with those of
/// `n_b` more elements.
fn merge(
    kb: &mut KernelBuilder,
    a: (Value, Value),
    n_a: Value,
    b: (Value, Value),
    n_b: usize,
) -> (Value, Value) {
    let na = kb.b.ins().fcvt_from_sint(types::F32, n_a);
    let nb = kb.fconst(S, n_b as f32);
    let n = kb.b.ins().fadd(na, nb);
    let delta = kb.b.ins().fsub(b.0, a.0);
    let wb = kb.b.ins().fdiv(nb, n);
    let mean = kb.b.ins().fma(delta, wb, a.0);
    let nab = kb.b.ins().fmul(na, wb);
    let d2 = kb.b.ins().fmul(delta, delta);
    let m2 = kb.b.ins().fadd(a.1, b.1);
    let m2 = kb.b.ins().fma(d2, nab, m2);
    // With nothing before, `delta²·0` could be inf·0: take `b` as it is.
    let zero = kb.fconst(S, 0.0);
    let first = kb.fcmp(FloatCC::Equal, na, zero);
    let m2 = kb.b.ins().select(first, b.1, m2);
    (mean, m2)
}

/// Mean and biased variance of `count` segments of `len` contiguous f32
/// elements of argument `arg`, segment `n` starting at `base + n·stride`.
pub fn stats(
    kb: &mut KernelBuilder,
    arg: usize,
    base: Value,
    count: usize,
    stride: usize,
    len: usize,
) -> (Value, Value) {
    let (mean, m2) = if count == 1 {
        let zero = kb.int(0);
        segment_stats(kb, arg, base, len, zero, None)
    } else {
        let z = kb.fconst(S, 0.0);
        let st = for_n(kb, count, &[z, z], |kb, n, st| {
            let seg = kb.add_scaled(base, n, stride);
            let done = kb.b.ins().imul_imm_s(n, len as i64);
            let (m, m2) = segment_stats(kb, arg, seg, len, done, Some((st[0], st[1])));
            vec![m, m2]
        });
        (st[0], st[1])
    };
    let n = kb.fconst(S, (count * len) as f32);
    (mean, kb.b.ins().fdiv(m2, n))
}

/// Folds one segment of `len >= 1` elements at `seg` into the statistics `st` of
/// the `done` elements before it (`None`: there are none).
fn segment_stats(
    kb: &mut KernelBuilder,
    arg: usize,
    seg: Value,
    len: usize,
    done: Value,
    st: Option<(Value, Value)>,
) -> (Value, Value) {
    let (full, rem) = (len / CHUNK, len % CHUNK);
    let mut st = st;
    if full > 0 {
        let z = kb.fconst(S, 0.0);
        let (m0, s0) = st.unwrap_or((z, z));
        let out = for_n(kb, full, &[m0, s0], |kb, k, acc| {
            let off = kb.b.ins().imul_imm_s(k, CHUNK as i64);
            let at = kb.b.ins().iadd(seg, off);
            let n_a = kb.b.ins().iadd(done, off);
            let b = chunk_stats(kb, arg, at, CHUNK);
            let (m, m2) = merge(kb, (acc[0], acc[1]), n_a, b, CHUNK);
            vec![m, m2]
        });
        st = Some((out[0], out[1]));
    }
    if rem > 0 {
        let at = kb.b.ins().iadd_imm_s(seg, (full * CHUNK) as i64);
        let b = chunk_stats(kb, arg, at, rem);
        st = Some(match st {
            None => b,
            Some(a) => {
                let n_a = kb.b.ins().iadd_imm_s(done, (full * CHUNK) as i64);
                merge(kb, a, n_a, b, rem)
            }
        });
    }
    st.expect("a segment has at least one element")
}

/// Where the scale or shift of a normalisation comes from.
#[derive(Clone, Copy)]
pub enum Affine {
    /// One value for the whole row: the scalar and its f32x4 splat.
    Scalar(Value, Value),
    /// The argument holding one value per element of the row.
    Row(usize),
}

impl Affine {
    /// One value for the whole row.
    pub fn scalar(kb: &mut KernelBuilder, s: Value) -> Affine {
        Affine::Scalar(s, splat(kb, V, s))
    }

    fn get(self, kb: &mut KernelBuilder, l: Lanes, at: At) -> Value {
        match self {
            Affine::Scalar(s, v) => {
                if l.vector {
                    v
                } else {
                    s
                }
            }
            Affine::Row(arg) => at.load_row(kb, l, arg),
        }
    }
}

/// The normalisation `y = (x - mean) · (inv · gamma) + beta` of one row,
/// element by element (one rounding fewer than the interpreter's
/// `((x - mean) · inv) · gamma + beta`).
pub struct Normaliser {
    /// `(x argument, y argument)`.
    io: (usize, usize),
    /// Element offset of the row.
    base: Value,
    mean: Affine,
    /// `inv · gamma` when gamma is per row, else `inv`.
    scale: Affine,
    /// Gamma when it varies along the row.
    gamma: Option<usize>,
    beta: Affine,
}

impl Normaliser {
    /// Normalises the row at `base` of argument `io.0` into argument `io.1`.
    pub fn new(
        kb: &mut KernelBuilder,
        io: (usize, usize),
        base: Value,
        (mean, inv): (Value, Value),
        (gamma, beta): (Affine, Affine),
    ) -> Normaliser {
        let (scale, gamma) = match gamma {
            Affine::Scalar(g, _) => {
                let s = kb.b.ins().fmul(inv, g);
                (Affine::scalar(kb, s), None)
            }
            Affine::Row(arg) => (Affine::scalar(kb, inv), Some(arg)),
        };
        Normaliser {
            io,
            base,
            mean: Affine::scalar(kb, mean),
            scale,
            gamma,
            beta,
        }
    }

    /// Writes the lanes at `at`.
    pub fn apply(&self, kb: &mut KernelBuilder, l: Lanes, at: At) {
        let x = at.load(kb, l, self.io.0, self.base);
        let m = self.mean.get(kb, l, at);
        let d = kb.b.ins().fsub(x, m);
        let mut s = self.scale.get(kb, l, at);
        if let Some(arg) = self.gamma {
            let g = at.load_row(kb, l, arg);
            s = kb.b.ins().fmul(s, g);
        }
        let b = self.beta.get(kb, l, at);
        let y = kb.b.ins().fma(d, s, b);
        at.store(kb, y, self.io.1, self.base);
    }
}

/// Normalises a row of `len` elements (see [`Normaliser`]).
pub fn normalise(
    kb: &mut KernelBuilder,
    io: (usize, usize),
    base: Value,
    len: usize,
    stats: (Value, Value),
    affine: (Affine, Affine),
) {
    let n = Normaliser::new(kb, io, base, stats, affine);
    each(kb, len, 4, &|kb, l, at| n.apply(kb, l, at));
}
