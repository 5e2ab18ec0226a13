//! Emitters of gather, one-hot, normalisation and loss kernels.
//!
//! This file holds the dispatch and layer normalisation; [`rows`] has the loops
//! and row walkers the family shares (f32x4 lanes with a scalar tail, folds with
//! four independent accumulators), [`stats`] the one-read mean and variance and
//! the normalisation pass.

mod batchnorm;
mod gather;
mod loss;
pub(crate) mod rows;
pub(crate) mod stats;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value};

use self::rows::{Body, Elem, Fold, S, fold_many, for_parallel, for_range};
use self::stats::{Affine, Normaliser, inv_std, normalise};
use super::builder::KernelBuilder;
use crate::kernel::{Kernel, NormOp};

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

/// `y[r, i] = (x[r, i] - mean_r) / sqrt(var_r + eps) · gamma[i] + beta[i]` for
/// the rows in `start..end`; arguments `x, gamma, beta, y`. Each row is read
/// from memory once for its statistics (see [`stats`]) and once to normalise
/// it. Rows of up to a chunk are software-pipelined so that memory reads
/// overlap the arithmetic: one loop normalises row `r`, takes the squared
/// deviations of row `r + 1` (from L1) and sums row `r + 2` (from memory).
fn layer_norm(kb: &mut KernelBuilder, len: usize, eps: f32) {
    let gamma_beta = (Affine::Row(1), Affine::Row(2));
    if len == 0 {
        return;
    }
    if len > stats::CHUNK {
        for_parallel(kb, |kb, r| {
            let base = kb.b.ins().imul_imm_s(r, len as i64);
            let (mean, var) = stats::stats(kb, 0, base, 1, 0, len);
            let inv = inv_std(kb, S, var, eps);
            normalise(kb, (0, 3), base, len, (mean, inv), gamma_beta);
        });
        return;
    }
    let (start, end) = (kb.start, kb.end);
    let any = kb.b.ins().icmp(IntCC::SignedLessThan, start, end);
    kb.if_then(any, |kb| {
        let last = kb.b.ins().iadd_imm_s(end, -1);
        // The element offset of row `r + ahead`, or of the last row past it.
        let row = |kb: &mut KernelBuilder, r: Value, ahead: i64| {
            let r = kb.b.ins().iadd_imm_s(r, ahead);
            let r = kb.b.ins().smin(r, last);
            kb.b.ins().imul_imm_s(r, len as i64)
        };
        // The squared deviations of the row `dev = (offset, sum)` and the sum
        // of the row at offset `next`, with `side` run at each position.
        let step = |kb: &mut KernelBuilder, dev: (Value, Value), next: Value, side: Body| {
            let mean = stats::mean_of(kb, dev.1, len);
            let m2: Elem = &|kb, l, at| stats::deviation(kb, l, at, 0, dev.0, mean);
            let sum: Elem = &|kb, l, at| at.load(kb, l, 0, next);
            fold_many(kb, len, &[(Fold::SumSquares, m2), (Fold::Sum, sum)], side)
        };
        let first = row(kb, start, 0);
        let sum = stats::row_sum(kb, 0, first, len);
        let second = row(kb, start, 1);
        let st = step(kb, (first, sum), second, &|_, _, _| {});
        let init = [sum, st[0], st[1]];
        for_range(kb, start, end, 1, &init, |kb, r, st| {
            let (sum, m2, sum_next) = (st[0], st[1], st[2]);
            let base = kb.b.ins().imul_imm_s(r, len as i64);
            let mean = stats::mean_of(kb, sum, len).0;
            let n = kb.fconst(S, len as f32);
            let var = kb.b.ins().fdiv(m2, n);
            let inv = inv_std(kb, S, var, eps);
            let norm = Normaliser::new(kb, (0, 3), base, (mean, inv), gamma_beta);
            let (next, next2) = (row(kb, r, 1), row(kb, r, 2));
            let apply: Body = &|kb, l, at| norm.apply(kb, l, at);
            let st = step(kb, (next, sum_next), next2, apply);
            vec![sum_next, st[0], st[1]]
        });
    });
}
