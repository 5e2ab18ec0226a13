//! Losses: blocks of squared errors and per-row softmax cross-entropy. Their
//! scalar means are finished by a reduction kernel (see the lowering).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::rows::{Fold, S, V, fold, for_parallel, for_range, splat};
use crate::emit::builder::{KernelBuilder, status};

/// `out[b] = Σ (p - t)² / divisor` over block `b` of `block` elements, for the
/// blocks in `start..end`; arguments `p, t, out`. The last block holds the
/// `len % block` leftover elements (all of them, none, when `len == 0`).
pub fn squared_error(kb: &mut KernelBuilder, len: usize, block: usize, divisor: f32) {
    let (full, last) = (len / block, len % block);
    let one_block = |kb: &mut KernelBuilder, b: Value, n: usize| {
        let lo = kb.b.ins().imul_imm_s(b, block as i64);
        let sum = fold(kb, n, Fold::SumSquares, &|kb, l, at| {
            let p = at.load(kb, l, 0, lo);
            let t = at.load(kb, l, 1, lo);
            kb.b.ins().fsub(p, t)
        });
        let div = kb.fconst(S, divisor);
        let y = kb.b.ins().fdiv(sum, div);
        kb.store(y, 2, b, 4);
    };
    let (start, end) = (kb.start, kb.end);
    if full > 0 {
        let full_v = kb.int(full as i64);
        let hi = kb.b.ins().smin(end, full_v);
        for_range(kb, start, hi, 1, &[], |kb, b, _| {
            one_block(kb, b, block);
            vec![]
        });
    }
    if last > 0 || len == 0 {
        // The short block `full` belongs to the call whose range holds it.
        let from =
            kb.b.ins()
                .icmp_imm_s(IntCC::SignedLessThanOrEqual, start, full as i64);
        let to =
            kb.b.ins()
                .icmp_imm_s(IntCC::SignedGreaterThan, end, full as i64);
        let mine = kb.b.ins().band(from, to);
        kb.if_then(mine, |kb| {
            let b = kb.int(full as i64);
            one_block(kb, b, last);
        });
    }
}

/// `out[n] = (max - x[n, label]) + log Σ exp(x[n, :] - max)` for the rows in
/// `start..end`; arguments `x, labels, out`. A label outside `0..classes` raises
/// `BAD_LABEL` (and reads class 0 instead).
pub fn cross_entropy(kb: &mut KernelBuilder, classes: usize) {
    for_parallel(kb, |kb, n| {
        let label = kb.load(types::I64, 1, n, 8);
        let bad =
            kb.b.ins()
                .icmp_imm_u(IntCC::UnsignedGreaterThanOrEqual, label, classes as i64);
        kb.if_then(bad, |kb| kb.raise(status::BAD_LABEL));
        if classes == 0 {
            return;
        }
        let zero = kb.int(0);
        let label = kb.b.ins().select(bad, zero, label);
        let base = kb.b.ins().imul_imm_s(n, classes as i64);
        let max = fold(kb, classes, Fold::Max, &|kb, l, at| at.load(kb, l, 0, base));
        let max_v = splat(kb, V, max);
        let sum = fold(kb, classes, Fold::Sum, &|kb, l, at| {
            let x = at.load(kb, l, 0, base);
            let m = if l.vector { max_v } else { max };
            let d = kb.b.ins().fsub(x, m);
            kb.exp(l, d)
        });
        let i = kb.b.ins().iadd(base, label);
        let picked = kb.load(types::F32, 0, i, 4);
        let gap = kb.b.ins().fsub(max, picked);
        let log_sum = kb.log(S, sum);
        let loss = kb.b.ins().fadd(gap, log_sum);
        kb.store(loss, 2, n, 4);
    });
}
