//! Emitters of gather, one-hot, normalisation and loss kernels.
//!
//! This file holds the dispatch and layer normalisation; [`rows`] has the loops
//! and row walkers the family shares (f32x4 lanes with a scalar tail, folds with
//! four independent accumulators), [`stats`] the one-read mean and variance and
//! the normalisation pass.

mod batchnorm;
mod gather;
mod loss;
mod rows;
mod stats;

use cranelift_codegen::ir::InstBuilder;

use self::rows::{S, for_parallel};
use self::stats::{Affine, inv_std, normalise};
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
/// the rows in `start..end`: one read of the row for its statistics, one to
/// normalise it; arguments `x, gamma, beta, y`.
fn layer_norm(kb: &mut KernelBuilder, len: usize, eps: f32) {
    if len == 0 {
        return;
    }
    for_parallel(kb, |kb, r| {
        let base = kb.b.ins().imul_imm_s(r, len as i64);
        let (mean, var) = stats::stats(kb, 0, base, 1, 0, len);
        let inv = inv_std(kb, S, var, eps);
        let gamma_beta = (Affine::Row(1), Affine::Row(2));
        normalise(kb, (0, 3), base, len, (mean, inv), gamma_beta);
    });
}
