//! Fused attention with an online softmax (flash-attention style). Each
//! parallel index is one batch index's block of `ATTENTION_QUERY_BLOCK` query
//! rows; keys are visited a block at a time, keeping a running maximum `m` and
//! sum `l` per query row: the output is rescaled by `exp(m_old - m_new)` and
//! accumulated with the block's weighted values, and finally divided by `l`.
//!
//! The native tier runs each query block as one call of an AVX2 kernel
//! ([`super::flash`]); the portable tier (here) walks the block's rows one at
//! a time: keys are scored into a small scratch row and the weighted values are
//! accumulated in registers, 32 output columns at a time.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::flash::FlashKernel;
use super::{
    Row, S, V, dot1, dot4, fadd, fill_row, flash, fmax, for_lanes, horizontal, load_plus, mul_add,
};
use crate::emit::builder::KernelBuilder;
use crate::emit::math::Lanes;
use crate::emit::matmul::batch_offset;
use crate::kernel::{MatView, SequenceOp};

/// Argument indices: inputs `q, k, v`, output `o`, then the thread's scratch.
pub(super) const Q: usize = 0;
pub(super) const K: usize = 1;
pub(super) const VAL: usize = 2;
pub(super) const O: usize = 3;
pub(super) const SCRATCH: usize = 4;

/// Keys per block.
pub(super) const BLOCK: usize = SequenceOp::ATTENTION_KEY_BLOCK;
/// Query rows per parallel index.
pub(super) const QUERY_BLOCK: usize = SequenceOp::ATTENTION_QUERY_BLOCK;

/// The kernel's constants and the current batch index's offsets.
pub(super) struct Attn<'a> {
    pub keys: usize,
    pub depth: usize,
    pub value_depth: usize,
    pub scale: f32,
    pub causal: bool,
    pub q: &'a MatView,
    pub k: &'a MatView,
    pub v: &'a MatView,
    pub o: &'a MatView,
    pub q_off: Value,
    pub k_off: Value,
    pub v_off: Value,
    pub o_off: Value,
}

/// `min(a, b)` on i64 values.
pub(super) fn imin(kb: &mut KernelBuilder, a: Value, b: Value) -> Value {
    let lt = kb.b.ins().icmp(IntCC::SignedLessThan, a, b);
    kb.b.ins().select(lt, a, b)
}

/// Emits an `SequenceOp::Attention` kernel; `native` is the native tier's
/// kernel for a whole query block.
pub(super) fn emit(kb: &mut KernelBuilder, op: &SequenceOp, native: Option<FlashKernel>) {
    let SequenceOp::Attention {
        batch,
        queries,
        keys,
        depth,
        value_depth,
        scale,
        causal,
        views,
    } = op
    else {
        unreachable!("attention::emit takes an attention kernel")
    };
    let [qv, kv, vv, ov] = &**views;
    let blocks = queries.div_ceil(QUERY_BLOCK);
    let (start, end) = (kb.start, kb.end);
    kb.for_range(start, end, 1, &[], |kb, p, _| {
        let bi = kb.b.ins().udiv_imm_u(p, blocks as i64);
        let blk = kb.b.ins().imul_imm_s(bi, blocks as i64);
        let blk = kb.b.ins().isub(p, blk);
        let q0 = kb.b.ins().imul_imm_s(blk, QUERY_BLOCK as i64);
        let all = kb.int(*queries as i64);
        let left = kb.b.ins().isub(all, q0);
        let full = kb.int(QUERY_BLOCK as i64);
        let rows = imin(kb, left, full);
        let a = Attn {
            keys: *keys,
            depth: *depth,
            value_depth: *value_depth,
            scale: *scale,
            causal: *causal,
            q: qv,
            k: kv,
            v: vv,
            o: ov,
            q_off: batch_offset(kb, batch, qv, bi),
            k_off: batch_offset(kb, batch, kv, bi),
            v_off: batch_offset(kb, batch, vv, bi),
            o_off: batch_offset(kb, batch, ov, bi),
        };
        match native {
            Some(f) => flash::query_block(kb, &a, f, q0, rows),
            None => {
                let q_end = kb.b.ins().iadd(q0, rows);
                kb.for_range(q0, q_end, 1, &[], |kb, i, _| {
                    let q_row = Row::new(Q, kb.add_scaled(a.q_off, i, qv.row_stride));
                    let o_row = Row::new(O, kb.add_scaled(a.o_off, i, ov.row_stride));
                    let all = kb.int(*keys as i64);
                    let n_keys = if *causal {
                        let i1 = kb.b.ins().iadd_imm_s(i, 1);
                        imin(kb, i1, all)
                    } else {
                        all
                    };
                    query_row(kb, &a, q_row, o_row, n_keys);
                    vec![]
                });
            }
        }
        vec![]
    });
}

/// The portable path's row of `BLOCK` scores: the start of the thread's scratch.
fn scores_row(kb: &mut KernelBuilder) -> Row {
    let zero = kb.int(0);
    Row::new(SCRATCH, zero)
}

/// One query row against keys `0..n_keys`.
fn query_row(kb: &mut KernelBuilder, a: &Attn, q_row: Row, o_row: Row, n_keys: Value) {
    fill_row(kb, o_row, a.value_depth, 0.0);
    let ninf = kb.fconst(S, f32::NEG_INFINITY);
    let zero = kb.fconst(S, 0.0);
    let lo = kb.int(0);
    let ml = kb.for_range(lo, n_keys, BLOCK as i64, &[ninf, zero], |kb, jb, ml| {
        let rest = kb.b.ins().isub(n_keys, jb);
        let block = kb.int(BLOCK as i64);
        let cnt = imin(kb, rest, block);
        let cnt4 = kb.b.ins().band_imm_s(cnt, !3);
        let block_max = score_block(kb, a, q_row, jb, cnt4, cnt);
        let m_new = kb.b.ins().fmax(ml[0], block_max);
        let shift = kb.b.ins().fsub(ml[0], m_new);
        let alpha = kb.exp(S, shift);
        let psum = exp_block(kb, m_new, cnt4, cnt);
        let l_scaled = kb.b.ins().fmul(ml[1], alpha);
        let l_new = kb.b.ins().fadd(l_scaled, psum);
        accumulate(kb, a, o_row, jb, cnt, alpha);
        vec![m_new, l_new]
    });
    let one = kb.fconst(S, 1.0);
    let inv = kb.b.ins().fdiv(one, ml[1]);
    let inv_v = kb.b.ins().splat(types::F32X4, inv);
    for_lanes(kb, a.value_depth, |kb, l, e| {
        let x = o_row.load(kb, l, e);
        let y = kb.b.ins().fmul(x, if l.vector { inv_v } else { inv });
        o_row.store(kb, e, y);
    });
}

/// Scores `scale · q·k_j` of keys `jb + 0..cnt` into the scratch; returns their maximum.
fn score_block(
    kb: &mut KernelBuilder,
    a: &Attn,
    q_row: Row,
    jb: Value,
    cnt4: Value,
    cnt: Value,
) -> Value {
    let key_row = |kb: &mut KernelBuilder, jj: Value| {
        let key = kb.b.ins().iadd(jb, jj);
        Row::new(K, kb.add_scaled(a.k_off, key, a.k.row_stride))
    };
    let scores = scores_row(kb);
    let ninf = kb.fconst(V, f32::NEG_INFINITY);
    let lo = kb.int(0);
    let vmax = kb.for_range(lo, cnt4, 4, &[ninf], |kb, jj, acc| {
        let first = key_row(kb, jj);
        let rows: Vec<usize> = (0..4).map(|r| r * a.k.row_stride).collect();
        let s = dot4(kb, q_row, first, &rows, a.depth)[0];
        let scale = kb.fconst(V, a.scale);
        let s = kb.b.ins().fmul(s, scale);
        scores.store(kb, jj, s);
        vec![kb.b.ins().fmax(acc[0], s)]
    });
    let max = horizontal(kb, vmax[0], fmax);
    kb.for_range(cnt4, cnt, 1, &[max], |kb, jj, acc| {
        let row = key_row(kb, jj);
        let s = dot1(kb, q_row, row, a.depth);
        let scale = kb.fconst(S, a.scale);
        let s = kb.b.ins().fmul(s, scale);
        scores.store(kb, jj, s);
        vec![kb.b.ins().fmax(acc[0], s)]
    })[0]
}

/// Replaces the block's scores by `exp(s - m)`; returns their sum.
fn exp_block(kb: &mut KernelBuilder, m: Value, cnt4: Value, cnt: Value) -> Value {
    let scores = scores_row(kb);
    let step = |kb: &mut KernelBuilder, l: Lanes, jj: Value, acc: Value| {
        let s = scores.load(kb, l, jj);
        let mm = if l.vector {
            kb.b.ins().splat(types::F32X4, m)
        } else {
            m
        };
        let d = kb.b.ins().fsub(s, mm);
        let p = kb.exp(l, d);
        scores.store(kb, jj, p);
        kb.b.ins().fadd(acc, p)
    };
    let zero = kb.fconst(V, 0.0);
    let lo = kb.int(0);
    let vsum = kb.for_range(lo, cnt4, 4, &[zero], |kb, jj, acc| {
        vec![step(kb, V, jj, acc[0])]
    });
    let sum = horizontal(kb, vsum[0], fadd);
    kb.for_range(cnt4, cnt, 1, &[sum], |kb, jj, acc| {
        vec![step(kb, S, jj, acc[0])]
    })[0]
}

/// `o = o·alpha + Σ_jj p_jj · v[jb + jj]`, in strips of 32, 4 and 1 columns.
fn accumulate(kb: &mut KernelBuilder, a: &Attn, o_row: Row, jb: Value, cnt: Value, alpha: Value) {
    let scores = scores_row(kb);
    let alpha_v = kb.b.ins().splat(types::F32X4, alpha);
    let ev = a.value_depth;
    let mut e0 = 0;
    for (width, vectors) in [(32, 8), (4, 1), (1, 0)] {
        let count = (ev - e0) / width;
        if count == 0 {
            continue;
        }
        let l = Lanes {
            vector: vectors > 0,
        };
        let n = vectors.max(1);
        let al = if l.vector { alpha_v } else { alpha };
        let (lo, hi) = (kb.int(e0 as i64), kb.int((e0 + count * width) as i64));
        kb.for_range(lo, hi, width as i64, &[], |kb, e, _| {
            let init: Vec<Value> = (0..n)
                .map(|r| {
                    let x = o_row.offset(kb, 4 * r).load(kb, l, e);
                    kb.b.ins().fmul(x, al)
                })
                .collect();
            let zero = kb.int(0);
            let acc = kb.for_range(zero, cnt, 1, &init, |kb, jj, acc| {
                let p = scores.load(kb, S, jj);
                let p = if l.vector {
                    kb.b.ins().splat(types::F32X4, p)
                } else {
                    p
                };
                let key = kb.b.ins().iadd(jb, jj);
                let v_row = kb.add_scaled(a.v_off, key, a.v.row_stride);
                let v_row = kb.b.ins().iadd(v_row, e);
                (0..n)
                    .map(|r| {
                        let x = load_plus(kb, l, VAL, v_row, 4 * r);
                        mul_add(kb, p, x, acc[r])
                    })
                    .collect()
            });
            for (r, &x) in acc.iter().enumerate() {
                let at = o_row.offset(kb, 4 * r);
                at.store(kb, e, x);
            }
            vec![]
        });
        e0 += count * width;
    }
}
