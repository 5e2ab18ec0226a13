//! The attention gradient's row passes between its GEMMs: the probabilities
//! recomputed from the scores (in place), and the score gradient (in place over
//! the probability gradient).

use cranelift_codegen::ir::{InstBuilder, Value, types};

use crate::emit::builder::KernelBuilder;
use crate::emit::norm::rows::{Fold, S, each, fold, for_parallel, splat};

/// Row `r = b·rows + i` of the scores (argument 0) becomes
/// `softmax(scale · s)` over its first `keys(i)` columns (`min(i + 1, cols)`
/// when causal) and zero after them. Scalar loops: causal rows have a run-time
/// length.
pub fn probs(kb: &mut KernelBuilder, rows: usize, cols: usize, causal: bool, scale: f32) {
    for_parallel(kb, |kb, r| {
        let base = kb.b.ins().imul_imm_s(r, cols as i64);
        let keys = if causal {
            let i = kb.b.ins().urem_imm_u(r, rows as i64);
            let n = kb.b.ins().iadd_imm_s(i, 1);
            let limit = kb.int(cols as i64);
            kb.b.ins().smin(n, limit)
        } else {
            kb.int(cols as i64)
        };
        let sc = kb.fconst(S, scale);
        let at = |kb: &mut KernelBuilder, j: Value| kb.b.ins().iadd(base, j);
        let lo = kb.int(0);
        let neg = kb.fconst(S, f32::NEG_INFINITY);
        let m = kb.for_range(lo, keys, 1, &[neg], |kb, j, c| {
            let i = at(kb, j);
            let x = kb.load(types::F32, 0, i, 4);
            let x = kb.b.ins().fmul(x, sc);
            vec![kb.b.ins().fmax(c[0], x)]
        })[0];
        let zero = kb.fconst(S, 0.0);
        let sum = kb.for_range(lo, keys, 1, &[zero], |kb, j, c| {
            let i = at(kb, j);
            let x = kb.load(types::F32, 0, i, 4);
            let x = kb.b.ins().fmul(x, sc);
            let x = kb.b.ins().fsub(x, m);
            let e = kb.exp(S, x);
            kb.store(e, 0, i, 4);
            vec![kb.b.ins().fadd(c[0], e)]
        })[0];
        let one = kb.fconst(S, 1.0);
        let inv = kb.b.ins().fdiv(one, sum);
        kb.for_range(lo, keys, 1, &[], |kb, j, _| {
            let i = at(kb, j);
            let x = kb.load(types::F32, 0, i, 4);
            let x = kb.b.ins().fmul(x, inv);
            kb.store(x, 0, i, 4);
            vec![]
        });
        if causal {
            let end = kb.int(cols as i64);
            kb.for_range(keys, end, 1, &[], |kb, j, _| {
                let i = at(kb, j);
                kb.store(zero, 0, i, 4);
                vec![]
            });
        }
    });
}

/// `ds = scale · p · (dp − Σ_j p·dp)` for each row of `cols` in `start..end`;
/// arguments `p, dp` (overwritten with `ds`).
pub fn score_grad(kb: &mut KernelBuilder, cols: usize, scale: f32) {
    for_parallel(kb, |kb, r| {
        let base = kb.b.ins().imul_imm_s(r, cols as i64);
        let mix = fold(kb, cols, Fold::Sum, &|kb, l, at| {
            let p = at.load(kb, l, 0, base);
            let d = at.load(kb, l, 1, base);
            kb.b.ins().fmul(p, d)
        });
        each(kb, cols, 2, &|kb, l, at| {
            let p = at.load(kb, l, 0, base);
            let d = at.load(kb, l, 1, base);
            let m = splat(kb, l, mix);
            let sc = kb.fconst(l, scale);
            let d = kb.b.ins().fsub(d, m);
            let p = kb.b.ins().fmul(p, sc);
            let ds = kb.b.ins().fmul(p, d);
            at.store(kb, ds, 1, base);
        });
    });
}
