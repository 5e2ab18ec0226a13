//! Batch normalisation of `x` viewed as `[outer, channels, inner]` over axis 1.
//!
//! Arguments: `x, gamma, beta, running mean, running var`, then `y` and, for
//! training, the new running mean and variance. With `inner > 1` each channel's
//! elements are `outer` contiguous runs, vectorised along the run; with
//! `inner == 1` (`[N, C]` inputs) the channels are contiguous instead, so the
//! lanes hold neighbouring channels.

use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::rows::{At, S, V, each, for_n, for_parallel, for_range};
use super::stats::{Affine, inv_std, normalise, stats};
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
    for_parallel(kb, |kb, r| {
        let c = kb.b.ins().urem_imm_u(r, channels as i64);
        let [m, v, g, b] = [MEAN, VAR, GAMMA, BETA].map(|arg| kb.load(types::F32, arg, c, 4));
        let inv = inv_std(kb, S, v, eps);
        let base = kb.b.ins().imul_imm_s(r, inner as i64);
        let (g, b) = (Affine::scalar(kb, g), Affine::scalar(kb, b));
        normalise(kb, (X, Y), base, inner, (m, inv), (g, b));
    });
}

/// Inference on `[N, C]`: the parallel loop runs over `n`, lanes over channels.
fn infer_columns(kb: &mut KernelBuilder, channels: usize, eps: f32) {
    for_parallel(kb, |kb, n| {
        let base = kb.b.ins().imul_imm_s(n, channels as i64);
        each(kb, channels, 2, &|kb, l, c| {
            let x = c.load(kb, l, X, base);
            let [m, v, g, b] = [MEAN, VAR, GAMMA, BETA].map(|arg| c.load_row(kb, l, arg));
            let inv = inv_std(kb, l, v, eps);
            let y = affine(kb, x, m, inv, g, b);
            c.store(kb, y, Y, base);
        });
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
    fn store(self, kb: &mut KernelBuilder, l: Lanes, c: At, mean: Value, var: Value) {
        let [keep, mom, m, m1] = [self.keep, self.mom, self.m, self.m1].map(|v| kb.fconst(l, v));
        let rm = c.load_row(kb, l, MEAN);
        let a = kb.b.ins().fmul(keep, rm);
        let b = kb.b.ins().fmul(mom, mean);
        let new_mean = kb.b.ins().fadd(a, b);
        let zero = kb.int(0);
        c.store(kb, new_mean, NEW_MEAN, zero);
        let rv = c.load_row(kb, l, VAR);
        let a = kb.b.ins().fmul(keep, rv);
        let b = kb.b.ins().fmul(mom, var);
        let b = kb.b.ins().fmul(b, m);
        let b = kb.b.ins().fdiv(b, m1);
        let new_var = kb.b.ins().fadd(a, b);
        c.store(kb, new_var, NEW_VAR, zero);
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
    for_parallel(kb, |kb, c| {
        let base = kb.b.ins().imul_imm_s(c, inner as i64);
        let (mean, var) = stats(kb, X, base, outer, stride, inner);
        let inv = inv_std(kb, S, var, eps);
        let [g, b] = [GAMMA, BETA].map(|arg| kb.load(types::F32, arg, c, 4));
        let (g, b) = (Affine::scalar(kb, g), Affine::scalar(kb, b));
        for_n(kb, outer, &[], |kb, n, _| {
            let seg = kb.add_scaled(base, n, stride);
            normalise(kb, (X, Y), seg, inner, (mean, inv), (g, b));
            vec![]
        });
        run.store(kb, S, At { idx: c, disp: 0 }, mean, var);
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
        for_range(kb, lo, hi, width as i64, &[], |kb, c, _| {
            let cols = Columns {
                outer,
                channels,
                c,
                l: lanes,
                vectors,
            };
            cols.emit(kb, eps, run);
            vec![]
        });
        lo = hi;
    }
}

/// Channels `c .. c + vectors·lanes` of an `[N, C]` training batch norm.
struct Columns {
    outer: usize,
    channels: usize,
    c: Value,
    l: Lanes,
    vectors: usize,
}

impl Columns {
    /// Column `u` of the group.
    fn at(&self, u: usize) -> At {
        At {
            idx: self.c,
            disp: 16 * u as i32,
        }
    }

    /// The group's values in row `n`.
    fn row(&self, kb: &mut KernelBuilder, n: Value) -> (Value, Vec<Value>) {
        let base = kb.b.ins().imul_imm_s(n, self.channels as i64);
        let xs = (0..self.vectors)
            .map(|u| self.at(u).load(kb, self.l, X, base))
            .collect();
        (base, xs)
    }

    /// `Σ_n f(x[n, col])` per column, in order down the column.
    fn sums(
        &self,
        kb: &mut KernelBuilder,
        f: &dyn Fn(&mut KernelBuilder, usize, Value) -> Value,
    ) -> Vec<Value> {
        let zero = kb.fconst(self.l, 0.0);
        for_n(kb, self.outer, &vec![zero; self.vectors], |kb, n, acc| {
            let (_, xs) = self.row(kb, n);
            (0..self.vectors)
                .map(|u| {
                    let v = f(kb, u, xs[u]);
                    kb.b.ins().fadd(acc[u], v)
                })
                .collect()
        })
    }

    /// Normalises the columns and updates their running statistics.
    fn emit(&self, kb: &mut KernelBuilder, eps: f32, run: Running) {
        let n_f = kb.fconst(self.l, self.outer as f32);
        let sums = self.sums(kb, &|_, _, x| x);
        let means: Vec<Value> = sums.iter().map(|&s| kb.b.ins().fdiv(s, n_f)).collect();
        let m2 = self.sums(kb, &|kb, u, x| {
            let d = kb.b.ins().fsub(x, means[u]);
            kb.b.ins().fmul(d, d)
        });
        let vars: Vec<Value> = m2.iter().map(|&s| kb.b.ins().fdiv(s, n_f)).collect();
        let invs: Vec<Value> = vars.iter().map(|&v| inv_std(kb, self.l, v, eps)).collect();
        let gb: Vec<(Value, Value)> = (0..self.vectors)
            .map(|u| {
                let at = self.at(u);
                (
                    at.load_row(kb, self.l, GAMMA),
                    at.load_row(kb, self.l, BETA),
                )
            })
            .collect();
        for_n(kb, self.outer, &[], |kb, n, _| {
            let (base, xs) = self.row(kb, n);
            for u in 0..self.vectors {
                let y = affine(kb, xs[u], means[u], invs[u], gb[u].0, gb[u].1);
                self.at(u).store(kb, y, Y, base);
            }
            vec![]
        });
        for u in 0..self.vectors {
            run.store(kb, self.l, self.at(u), means[u], vars[u]);
        }
    }
}
