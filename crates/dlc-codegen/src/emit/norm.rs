//! Emitters of gather, one-hot, normalisation and loss kernels.
//!
//! This file holds the dispatch, layer normalisation and the row helpers the
//! family shares: [`each`] and [`fold`] walk a contiguous row in f32x4 lanes with
//! a scalar tail (`fold` with four independent accumulators, combined pairwise),
//! and [`stats`] computes a mean and biased variance in one streaming read: each
//! chunk of at most [`CHUNK`] elements gets an exact two-pass mean and sum of
//! squared deviations (the second pass hits L1), and chunks are combined with
//! Chan et al.'s pairwise update, so no sum of squares ever cancels.

mod batchnorm;
mod gather;
mod loss;

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{InstBuilder, Type, Value, types};

use super::builder::KernelBuilder;
use super::math::Lanes;
use crate::kernel::{Kernel, NormOp};

const V: Lanes = Lanes { vector: true };
const S: Lanes = Lanes { vector: false };

/// Elements per statistics chunk: 16 KiB, so its second pass reads L1.
const CHUNK: usize = 4096;

/// Emits the body of a norm-family kernel.
pub fn emit(kb: &mut KernelBuilder, op: &NormOp, _k: &Kernel) {
    match *op {
        NormOp::Gather {
            outer,
            axis_len,
            count,
            inner,
            dtype,
        } => gather::gather(kb, outer, axis_len, count, inner, dtype),
        NormOp::OneHot { depth, .. } => gather::one_hot(kb, depth),
        NormOp::BatchNorm {
            outer,
            channels,
            inner,
            eps,
            momentum,
        } => batchnorm::emit(kb, outer, channels, inner, eps, momentum),
        NormOp::LayerNorm { len, eps, .. } => layer_norm(kb, len, eps),
        NormOp::SquaredError {
            len,
            block,
            divisor,
        } => loss::squared_error(kb, len, block, divisor),
        NormOp::CrossEntropyRows { classes, .. } => loss::cross_entropy(kb, classes),
    }
}

/// `y[r, i] = (x[r, i] - mean_r) / sqrt(var_r + eps) · gamma[i] + beta[i]`;
/// arguments `x, gamma, beta, y`.
fn layer_norm(kb: &mut KernelBuilder, len: usize, eps: f32) {
    if len == 0 {
        return;
    }
    let (start, end) = (kb.start, kb.end);
    kb.for_range(start, end, 1, &[], |kb, r, _| {
        let base = kb.b.ins().imul_imm_s(r, len as i64);
        let (mean, var) = stats(kb, 0, base, 1, 0, len);
        let inv = inv_std(kb, S, var, eps);
        normalise(
            kb,
            (0, 3),
            base,
            len,
            (mean, inv),
            (Affine::Row(1), Affine::Row(2)),
        );
        vec![]
    });
}

/// The f32 type of the lanes.
fn fty(l: Lanes) -> Type {
    if l.vector { types::F32X4 } else { types::F32 }
}

/// A scalar as the lanes (splat to f32x4 for vectors).
fn splat(kb: &mut KernelBuilder, l: Lanes, v: Value) -> Value {
    if l.vector {
        kb.b.ins().splat(types::F32X4, v)
    } else {
        v
    }
}

/// Loads lanes of f32 from argument `arg` at element `base + off`.
fn load_at(kb: &mut KernelBuilder, l: Lanes, arg: usize, base: Value, off: Value) -> Value {
    let i = kb.b.ins().iadd(base, off);
    kb.load(fty(l), arg, i, 4)
}

/// `1 / sqrt(var + eps)`, in the interpreter's operation order.
fn inv_std(kb: &mut KernelBuilder, l: Lanes, var: Value, eps: f32) -> Value {
    let eps = kb.fconst(l, eps);
    let v = kb.b.ins().fadd(var, eps);
    let root = kb.b.ins().sqrt(v);
    let one = kb.fconst(l, 1.0);
    kb.b.ins().fdiv(one, root)
}

/// A per-row body: `(builder, lanes, element offset in the row)`.
type Body<'a> = &'a dyn Fn(&mut KernelBuilder, Lanes, Value);

/// Runs `body` over a row of `len` elements: f32x4 lanes at offsets 0, 4, ..
/// (`unroll` vectors per loop iteration, the leftover vectors unrolled), then
/// scalars for the last `len % 4`.
fn each(kb: &mut KernelBuilder, len: usize, unroll: usize, body: Body) {
    let step = 4 * unroll;
    let main = len / step * step;
    if main > step {
        let (lo, hi) = (kb.int(0), kb.int(main as i64));
        kb.for_range(lo, hi, step as i64, &[], |kb, i, _| {
            for u in 0..unroll {
                let off = kb.b.ins().iadd_imm_s(i, 4 * u as i64);
                body(kb, V, off);
            }
            vec![]
        });
    }
    let mut r = if main > step { main } else { 0 };
    while r + 4 <= len {
        let off = kb.int(r as i64);
        body(kb, V, off);
        r += 4;
    }
    for r in r..len {
        let off = kb.int(r as i64);
        body(kb, S, off);
    }
}

/// How [`fold`] combines values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fold {
    /// Addition.
    Sum,
    /// NaN-propagating maximum.
    Max,
}

impl Fold {
    fn identity(self) -> f32 {
        match self {
            Fold::Sum => 0.0,
            Fold::Max => f32::NEG_INFINITY,
        }
    }

    fn combine(self, kb: &mut KernelBuilder, a: Value, b: Value) -> Value {
        match self {
            Fold::Sum => kb.b.ins().fadd(a, b),
            Fold::Max => kb.b.ins().fmax(a, b),
        }
    }
}

/// A per-element value of a fold: `(builder, lanes, element offset) -> lanes`.
type Elem<'a> = &'a dyn Fn(&mut KernelBuilder, Lanes, Value) -> Value;

/// Folds `elem` over a row of `len` elements to a scalar: four f32x4
/// accumulators in the loop (independent dependency chains), combined pairwise,
/// then the four lanes pairwise, then the scalar tail in order.
fn fold(kb: &mut KernelBuilder, len: usize, how: Fold, elem: Elem) -> Value {
    const ACC: usize = 4;
    if len < 4 {
        let mut total = kb.fconst(S, how.identity());
        for r in 0..len {
            let off = kb.int(r as i64);
            let x = elem(kb, S, off);
            total = how.combine(kb, total, x);
        }
        return total;
    }
    let init = kb.fconst(V, how.identity());
    let mut acc = vec![init; ACC];
    let step = 4 * ACC;
    let main = len / step * step;
    if main > 0 {
        let (lo, hi) = (kb.int(0), kb.int(main as i64));
        acc = kb.for_range(lo, hi, step as i64, &acc, |kb, i, acc| {
            (0..ACC)
                .map(|u| {
                    let off = kb.b.ins().iadd_imm_s(i, 4 * u as i64);
                    let x = elem(kb, V, off);
                    how.combine(kb, acc[u], x)
                })
                .collect()
        });
    }
    let (mut r, mut u) = (main, 0);
    while r + 4 <= len {
        let off = kb.int(r as i64);
        let x = elem(kb, V, off);
        acc[u] = how.combine(kb, acc[u], x);
        (r, u) = (r + 4, u + 1);
    }
    let a = how.combine(kb, acc[0], acc[1]);
    let b = how.combine(kb, acc[2], acc[3]);
    let v = how.combine(kb, a, b);
    let lanes: Vec<Value> = (0..4).map(|i| kb.b.ins().extractlane(v, i as u8)).collect();
    let a = how.combine(kb, lanes[0], lanes[1]);
    let b = how.combine(kb, lanes[2], lanes[3]);
    let mut total = how.combine(kb, a, b);
    for r in r..len {
        let off = kb.int(r as i64);
        let x = elem(kb, S, off);
        total = how.combine(kb, total, x);
    }
    total
}

/// Mean and sum of squared deviations `(mean, m2)` of `len` contiguous f32
/// elements of argument `arg` from `base`, in two passes.
fn chunk_stats(kb: &mut KernelBuilder, arg: usize, base: Value, len: usize) -> (Value, Value) {
    let sum = fold(kb, len, Fold::Sum, &|kb, l, off| {
        load_at(kb, l, arg, base, off)
    });
    let n = kb.fconst(S, len as f32);
    let mean = kb.b.ins().fdiv(sum, n);
    let mean_v = kb.b.ins().splat(types::F32X4, mean);
    let m2 = fold(kb, len, Fold::Sum, &|kb, l, off| {
        let x = load_at(kb, l, arg, base, off);
        let m = if l.vector { mean_v } else { mean };
        let d = kb.b.ins().fsub(x, m);
        kb.b.ins().fmul(d, d)
    });
    (mean, m2)
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
fn stats(
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
        let st = kb.for_n(count, &[z, z], |kb, n, st| {
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
        let out = kb.for_n(full, &[m0, s0], |kb, k, acc| {
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
enum Affine {
    /// One value for the whole row: the scalar and its f32x4 splat.
    Scalar(Value, Value),
    /// Element `off` of an argument, for row offset `off`.
    Row(usize),
}

impl Affine {
    /// One value for the whole row.
    fn scalar(kb: &mut KernelBuilder, s: Value) -> Affine {
        Affine::Scalar(s, splat(kb, V, s))
    }

    fn get(self, kb: &mut KernelBuilder, l: Lanes, off: Value) -> Value {
        match self {
            Affine::Scalar(s, v) => {
                if l.vector {
                    v
                } else {
                    s
                }
            }
            Affine::Row(arg) => kb.load(fty(l), arg, off, 4),
        }
    }
}

/// `y[base + i] = ((x[base + i] - mean) · inv) · gamma + beta` over a row of
/// `len`, with `io = (x argument, y argument)`.
fn normalise(
    kb: &mut KernelBuilder,
    io: (usize, usize),
    base: Value,
    len: usize,
    (mean, inv): (Value, Value),
    (gamma, beta): (Affine, Affine),
) {
    let (mean, inv) = (Affine::scalar(kb, mean), Affine::scalar(kb, inv));
    each(kb, len, 2, &|kb, l, off| {
        let x = load_at(kb, l, io.0, base, off);
        let m = mean.get(kb, l, off);
        let d = kb.b.ins().fsub(x, m);
        let s = inv.get(kb, l, off);
        let t = kb.b.ins().fmul(d, s);
        let g = gamma.get(kb, l, off);
        let t = kb.b.ins().fmul(t, g);
        let b = beta.get(kb, l, off);
        let y = kb.b.ins().fadd(t, b);
        let i = kb.b.ins().iadd(base, off);
        kb.store(y, io.1, i, 4);
    });
}
