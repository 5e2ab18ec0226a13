//! Batch normalisation of `x` viewed as `[outer, channels, inner]` over axis 1.
//!
//! Arguments: `x, gamma, beta, running mean, running var`, then `y` and, for
//! training, the new running mean and variance. With `inner > 1` each channel's
//! elements are `outer` contiguous runs, vectorised along the run; with
//! `inner == 1` (`[N, C]` inputs) the channels are contiguous instead, so the
//! lanes hold neighbouring channels.

use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::{Affine, S, V, each, fty, inv_std, load_at, normalise, stats};
use crate::emit::builder::KernelBuilder;
use crate::emit::math::Lanes;

const X: usize = 0;
const GAMMA: usize = 1;
const BETA: usize = 2;
const MEAN: usize = 3;
const VAR: usize = 4;
const Y: usize = 5;
const NEW_MEAN: usize = 6;
const NEW_VAR: usize = 7;

/// Emits inference (`momentum: None`) or training batch normalisation.
pub fn emit(
    kb: &mut KernelBuilder,
    outer: usize,
    channels: usize,
    inner: usize,
    eps: f32,
    momentum: Option<f32>,
) {
    if outer * channels * inner == 0 {
        return;
    }
    match (momentum, inner) {
        (None, 1) => infer_columns(kb, channels, eps),
        (None, _) => infer_rows(kb, channels, inner, eps),
        (Some(mom), 1) => {
            let run = Running::new(mom, outer);
            train_columns(kb, outer, channels, eps, run);
        }
        (Some(mom), _) => {
            let run = Running::new(mom, outer * inner);
            train_rows(kb, outer, channels, inner, eps, run);
        }
    }
}

/// Inference on `[N, C, inner]`: the parallel loop runs over the rows `n·C + c`.
fn infer_rows(kb: &mut KernelBuilder, channels: usize, inner: usize, eps: f32) {
    let (start, end) = (kb.start, kb.end);
    kb.for_range(start, end, 1, &[], |kb, r, _| {
        let c = kb.b.ins().urem_imm_u(r, channels as i64);
        let [m, v, g, b] = [MEAN, VAR, GAMMA, BETA].map(|arg| kb.load(types::F32, arg, c, 4));
        let inv = inv_std(kb, S, v, eps);
        let base = kb.b.ins().imul_imm_s(r, inner as i64);
        let (g, b) = (Affine::scalar(kb, g), Affine::scalar(kb, b));
        normalise(kb, (X, Y), base, inner, (m, inv), (g, b));
        vec![]
    });
}

/// Inference on `[N, C]`: the parallel loop runs over `n`, lanes over channels.
fn infer_columns(kb: &mut KernelBuilder, channels: usize, eps: f32) {
    let (start, end) = (kb.start, kb.end);
    kb.for_range(start, end, 1, &[], |kb, n, _| {
        let base = kb.b.ins().imul_imm_s(n, channels as i64);
        each(kb, channels, 1, &|kb, l, c| {
            let x = load_at(kb, l, X, base, c);
            let [m, v, g, b] = [MEAN, VAR, GAMMA, BETA].map(|arg| kb.load(fty(l), arg, c, 4));
            let inv = inv_std(kb, l, v, eps);
            let y = affine(kb, x, m, inv, g, b);
            let i = kb.b.ins().iadd(base, c);
            kb.store(y, Y, i, 4);
        });
        vec![]
    });
}

/// `((x - mean) · inv) · gamma + beta`, the interpreter's operation order.
fn affine(kb: &mut KernelBuilder, x: Value, m: Value, inv: Value, g: Value, b: Value) -> Value {
    let d = kb.b.ins().fsub(x, m);
    let t = kb.b.ins().fmul(d, inv);
    let t = kb.b.ins().fmul(t, g);
    kb.b.ins().fadd(t, b)
}

/// The running-statistics update of the training form.
#[derive(Clone, Copy)]
struct Running {
    /// Weight of the batch statistics.
    mom: f32,
    /// `1 - mom`.
    keep: f32,
    /// Values per channel `M`.
    m: f32,
    /// `M - 1`.
    m1: f32,
}

impl Running {
    fn new(mom: f32, per_channel: usize) -> Running {
        let m = per_channel as f32;
        Running {
            mom,
            keep: 1.0 - mom,
            m,
            m1: m - 1.0,
        }
    }

    /// Stores `keep·running + mom·batch` for the channels at `c` (the variance
    /// unbiased as `mom·var·M / (M - 1)`, in the interpreter's order).
    fn store(self, kb: &mut KernelBuilder, l: Lanes, c: Value, mean: Value, var: Value) {
        let [keep, mom, m, m1] = [self.keep, self.mom, self.m, self.m1].map(|v| kb.fconst(l, v));
        let rm = kb.load(fty(l), MEAN, c, 4);
        let a = kb.b.ins().fmul(keep, rm);
        let b = kb.b.ins().fmul(mom, mean);
        let new_mean = kb.b.ins().fadd(a, b);
        kb.store(new_mean, NEW_MEAN, c, 4);
        let rv = kb.load(fty(l), VAR, c, 4);
        let a = kb.b.ins().fmul(keep, rv);
        let b = kb.b.ins().fmul(mom, var);
        let b = kb.b.ins().fmul(b, m);
        let b = kb.b.ins().fdiv(b, m1);
        let new_var = kb.b.ins().fadd(a, b);
        kb.store(new_var, NEW_VAR, c, 4);
    }
}

/// Training on `[N, C, inner]`: the parallel loop runs over channels; each
/// channel's statistics stream its `N` runs once (see `stats`), then a second
/// pass normalises them.
fn train_rows(
    kb: &mut KernelBuilder,
    outer: usize,
    channels: usize,
    inner: usize,
    eps: f32,
    run: Running,
) {
    let stride = channels * inner;
    let (start, end) = (kb.start, kb.end);
    kb.for_range(start, end, 1, &[], |kb, c, _| {
        let base = kb.b.ins().imul_imm_s(c, inner as i64);
        let (mean, var) = stats(kb, X, base, outer, stride, inner);
        let inv = inv_std(kb, S, var, eps);
        let [g, b] = [GAMMA, BETA].map(|arg| kb.load(types::F32, arg, c, 4));
        let (g, b) = (Affine::scalar(kb, g), Affine::scalar(kb, b));
        kb.for_n(outer, &[], |kb, n, _| {
            let seg = kb.add_scaled(base, n, stride);
            normalise(kb, (X, Y), seg, inner, (mean, inv), (g, b));
            vec![]
        });
        run.store(kb, S, c, mean, var);
        vec![]
    });
}

/// Training on `[N, C]`: the parallel loop runs over channels, taken 16 at a
/// time (four f32x4 columns, a cache line per row), then 4, then singly.
/// Mean and variance are two-pass sums down the columns.
fn train_columns(kb: &mut KernelBuilder, outer: usize, channels: usize, eps: f32, run: Running) {
    let (start, end) = (kb.start, kb.end);
    let mut lo = start;
    for (width, lanes, vectors) in [(16, V, 4), (4, V, 1), (1, S, 1)] {
        let hi = if width == 1 {
            end
        } else {
            let span = kb.b.ins().isub(end, lo);
            let whole = kb.b.ins().band_imm_s(span, -(width as i64));
            kb.b.ins().iadd(lo, whole)
        };
        kb.for_range(lo, hi, width as i64, &[], |kb, c, _| {
            column_group(kb, outer, channels, eps, run, c, lanes, vectors);
            vec![]
        });
        lo = hi;
    }
}

/// Normalises channels `c .. c + vectors·lanes` of `[N, C]` and updates their
/// running statistics.
#[allow(clippy::too_many_arguments)]
fn column_group(
    kb: &mut KernelBuilder,
    outer: usize,
    channels: usize,
    eps: f32,
    run: Running,
    c: Value,
    l: Lanes,
    vectors: usize,
) {
    let ty = fty(l);
    let cols: Vec<Value> = (0..vectors)
        .map(|u| kb.b.ins().iadd_imm_s(c, 4 * u as i64))
        .collect();
    let load_row = |kb: &mut KernelBuilder, n: Value| -> Vec<Value> {
        let row = kb.b.ins().imul_imm_s(n, channels as i64);
        cols.iter()
            .map(|&col| load_at(kb, l, X, row, col))
            .collect()
    };
    let zero = kb.fconst(l, 0.0);
    let n_f = kb.fconst(l, outer as f32);
    let sums = kb.for_n(outer, &vec![zero; vectors], |kb, n, acc| {
        let xs = load_row(kb, n);
        xs.iter()
            .zip(acc)
            .map(|(&x, &a)| kb.b.ins().fadd(a, x))
            .collect()
    });
    let means: Vec<Value> = sums.iter().map(|&s| kb.b.ins().fdiv(s, n_f)).collect();
    let m2 = kb.for_n(outer, &vec![zero; vectors], |kb, n, acc| {
        let xs = load_row(kb, n);
        (0..vectors)
            .map(|u| {
                let d = kb.b.ins().fsub(xs[u], means[u]);
                let d2 = kb.b.ins().fmul(d, d);
                kb.b.ins().fadd(acc[u], d2)
            })
            .collect()
    });
    let vars: Vec<Value> = m2.iter().map(|&s| kb.b.ins().fdiv(s, n_f)).collect();
    let invs: Vec<Value> = vars.iter().map(|&v| inv_std(kb, l, v, eps)).collect();
    let gb: Vec<(Value, Value)> = cols
        .iter()
        .map(|&col| (kb.load(ty, GAMMA, col, 4), kb.load(ty, BETA, col, 4)))
        .collect();
    kb.for_n(outer, &[], |kb, n, _| {
        let row = kb.b.ins().imul_imm_s(n, channels as i64);
        let xs = load_row(kb, n);
        for u in 0..vectors {
            let y = affine(kb, xs[u], means[u], invs[u], gb[u].0, gb[u].1);
            let i = kb.b.ins().iadd(row, cols[u]);
            kb.store(y, Y, i, 4);
        }
        vec![]
    });
    for u in 0..vectors {
        run.store(kb, l, cols[u], means[u], vars[u]);
    }
}
