//! The native tier's attention over one block of query rows (flash-attention
//! style). The block's queries, scaled, are packed transposed into the
//! thread's scratch once (`Qᵀ`, `E × QB`); then for each key block
//!
//! 1. the native NN kernel scores it: `Sᵀ = K_blk · Qᵀ` (`cnt × QB`, keys
//!    major, so each query is one lane of the f32x4 vectors below);
//! 2. an online-softmax pass vectorised over four queries at a time takes each
//!    query's block maximum, the new running maximum `m`, the rescale factor
//!    `α = exp(m_old - m)`, the weights `P = exp(S - m)` (in place) and the
//!    running sum `l = α·l + Σ P` — contiguous loads, no horizontal sums;
//! 3. the native NN kernel updates the output rows:
//!    `O = diag(α)·O + P·V_blk` (just `P·V_blk` for the first key block).
//!
//! Last the rows are divided by `l`. With a causal mask only the key blocks
//! some row of the block sees are visited, and the weights of keys after a
//! query are zero. Queries past the end of the block's rows (up to the next
//! multiple of four) are computed on zero queries and never stored.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::attention::{Attn, BLOCK, K, O, Q, QUERY_BLOCK as QB, SCRATCH, VAL, imin};
use super::nn::{self, NnKernel, Strided};
use super::nt::Operand;
use super::{Row, S, V, for_lanes};
use crate::emit::builder::KernelBuilder;

/// Element offsets in the thread's scratch: `Qᵀ [E × QB]` at 0, then the
/// scores `Sᵀ [KB × QB]`, then `m`, `l` and `α` (`QB` each).
struct Layout {
    scores: usize,
    m: usize,
    l: usize,
    alpha: usize,
}

impl Layout {
    fn new(depth: usize) -> Layout {
        let scores = depth * QB;
        let m = scores + BLOCK * QB;
        Layout {
            scores,
            m,
            l: m + QB,
            alpha: m + 2 * QB,
        }
    }
}

/// Query rows `q0 .. q0 + rows` (`rows ≤ QB`) of the batch index in `a`.
pub(super) fn query_block(kb: &mut KernelBuilder, a: &Attn, f: NnKernel, q0: Value, rows: Value) {
    let lay = Layout::new(a.depth);
    let r3 = kb.b.ins().iadd_imm_s(rows, 3);
    let rows4 = kb.b.ins().band_imm_s(r3, !3);
    pack_queries(kb, a, q0, rows, rows4);
    let (ninf, zero) = (kb.fconst(V, f32::NEG_INFINITY), kb.fconst(V, 0.0));
    let (m_row, l_row) = (scratch_row(kb, lay.m), scratch_row(kb, lay.l));
    let lo = kb.int(0);
    kb.for_range(lo, rows4, 4, &[], |kb, g, _| {
        m_row.store(kb, g, ninf);
        l_row.store(kb, g, zero);
        vec![]
    });
    let keys = kb.int(a.keys as i64);
    let kend = if a.causal {
        let q_end = kb.b.ins().iadd(q0, rows);
        imin(kb, q_end, keys)
    } else {
        keys
    };
    let [depth, ev, block] = [a.depth, a.value_depth, BLOCK].map(|n| kb.int(n as i64));
    let (packed, scores, alpha) = (
        kb.int(0),
        kb.int(lay.scores as i64),
        kb.int(lay.alpha as i64),
    );
    let o_first = kb.add_scaled(a.o_off, q0, a.o.row_stride);
    let lo = kb.int(0);
    kb.for_range(lo, kend, BLOCK as i64, &[], |kb, jb, _| {
        let rest = kb.b.ins().isub(kend, jb);
        let cnt = imin(kb, rest, block);
        let k_first = kb.add_scaled(a.k_off, jb, a.k.row_stride);
        let k_blk = Strided {
            arg: K,
            first: k_first,
            row: a.k.row_stride,
            col: 1,
        };
        let qt = Operand {
            arg: SCRATCH,
            first: packed,
            ld: QB,
        };
        let st = Operand {
            arg: SCRATCH,
            first: scores,
            ld: QB,
        };
        nn::emit_call(kb, f, [cnt, rows4, depth], k_blk, qt, st, None);
        softmax(kb, a, &lay, [q0, jb, cnt, rows4]);
        let p = Strided {
            arg: SCRATCH,
            first: scores,
            row: 1,
            col: QB,
        };
        let v_first = kb.add_scaled(a.v_off, jb, a.v.row_stride);
        let v_blk = Operand {
            arg: VAL,
            first: v_first,
            ld: a.v.row_stride,
        };
        let o_blk = Operand {
            arg: O,
            first: o_first,
            ld: a.o.row_stride,
        };
        let later = kb.b.ins().icmp_imm_s(IntCC::NotEqual, jb, 0);
        nn::emit_call(
            kb,
            f,
            [rows, ev, cnt],
            p,
            v_blk,
            o_blk,
            Some((SCRATCH, alpha, later)),
        );
        vec![]
    });
    let lo = kb.int(0);
    kb.for_range(lo, rows, 1, &[], |kb, i, _| {
        let l = l_row.load(kb, S, i);
        let one = kb.fconst(S, 1.0);
        let inv = kb.b.ins().fdiv(one, l);
        let inv_v = kb.b.ins().splat(types::F32X4, inv);
        let o_row = Row::new(O, kb.add_scaled(o_first, i, a.o.row_stride));
        for_lanes(kb, a.value_depth, |kb, l, e| {
            let x = o_row.load(kb, l, e);
            let y = kb.b.ins().fmul(x, if l.vector { inv_v } else { inv });
            o_row.store(kb, e, y);
        });
        vec![]
    });
}

/// The scratch elements from `first` on.
fn scratch_row(kb: &mut KernelBuilder, first: usize) -> Row {
    let at = kb.int(first as i64);
    Row::new(SCRATCH, at)
}

/// `Qᵀ[p, i] = scale · q[q0 + i, p]` for `i < rows`, zero for `rows ≤ i < rows4`.
fn pack_queries(kb: &mut KernelBuilder, a: &Attn, q0: Value, rows: Value, rows4: Value) {
    let lo = kb.int(0);
    kb.for_range(lo, rows, 1, &[], |kb, i, _| {
        let qi = kb.b.ins().iadd(q0, i);
        let q_row = Row::new(Q, kb.add_scaled(a.q_off, qi, a.q.row_stride));
        for_lanes(kb, a.depth, |kb, l, p| {
            let x = q_row.load(kb, l, p);
            let scale = kb.fconst(l, a.scale);
            let x = kb.b.ins().fmul(x, scale);
            let at = kb.add_scaled(i, p, QB);
            if l.vector {
                for lane in 0..4u8 {
                    let e = kb.b.ins().extractlane(x, lane);
                    kb.store_at(e, SCRATCH, at, 4, (4 * QB * lane as usize) as i32);
                }
            } else {
                kb.store(x, SCRATCH, at, 4);
            }
        });
        vec![]
    });
    kb.for_range(rows, rows4, 1, &[], |kb, i, _| {
        let zero = kb.fconst(S, 0.0);
        kb.for_n(a.depth, &[], |kb, p, _| {
            let at = kb.add_scaled(i, p, QB);
            kb.store(zero, SCRATCH, at, 4);
            vec![]
        });
        vec![]
    });
}

/// `max(a, b)` per lane as one compare and select (`maxps`; a NaN `b` is dropped,
/// but it reaches the sum through its weight).
fn vmax(kb: &mut KernelBuilder, a: Value, b: Value) -> Value {
    let lt = kb.fcmp(FloatCC::LessThan, a, b);
    kb.select_mask(V, lt, b, a)
}

/// The online-softmax step of key block `jb` (`cnt` keys) for the block's
/// queries `0..rows4`, four at a time: replaces the scores by their weights and
/// updates `m`, `l` and `α`.
fn softmax(kb: &mut KernelBuilder, a: &Attn, lay: &Layout, [q0, jb, cnt, rows4]: [Value; 4]) {
    let lo = kb.int(0);
    kb.for_range(lo, rows4, 4, &[], |kb, g, _| {
        let [m_row, l_row, alpha_row] = [lay.m, lay.l, lay.alpha].map(|at| scratch_row(kb, at));
        let m_old = m_row.load(kb, V, g);
        let l_old = l_row.load(kb, V, g);
        // Score (key j, query g + lane) is at scores + j·QB + g + lane.
        let col = Row::new(SCRATCH, kb.b.ins().iadd_imm_s(g, lay.scores as i64));
        // With a causal mask, lane r's query index and the visibility of key j.
        let queries = a.causal.then(|| {
            let qg = kb.b.ins().iadd(q0, g);
            let qg = kb.b.ins().ireduce(types::I32, qg);
            let mut v = kb.b.ins().splat(types::I32X4, qg);
            for lane in 1..4u8 {
                let x = kb.b.ins().iadd_imm_s(qg, lane as i64);
                v = kb.b.ins().insertlane(v, x, lane);
            }
            v
        });
        let visible = |kb: &mut KernelBuilder, j: Value| {
            queries.map(|qv| {
                let key = kb.b.ins().iadd(jb, j);
                let key = kb.b.ins().ireduce(types::I32, key);
                let key = kb.b.ins().splat(types::I32X4, key);
                kb.b.ins().icmp(IntCC::SignedLessThanOrEqual, key, qv)
            })
        };
        let ninf = kb.fconst(V, f32::NEG_INFINITY);
        let lo = kb.int(0);
        let block_max = kb.for_range(lo, cnt, 1, &[ninf], |kb, j, acc| {
            let at = kb.b.ins().imul_imm_s(j, QB as i64);
            let mut s = col.load(kb, V, at);
            if let Some(vis) = visible(kb, j) {
                let ninf = kb.fconst(V, f32::NEG_INFINITY);
                s = kb.select_mask(V, vis, s, ninf);
            }
            vec![vmax(kb, acc[0], s)]
        })[0];
        let m_new = vmax(kb, m_old, block_max);
        let shift = kb.b.ins().fsub(m_old, m_new);
        let alpha = kb.exp(V, shift);
        let zero = kb.fconst(V, 0.0);
        let lo = kb.int(0);
        let sum = kb.for_range(lo, cnt, 1, &[zero], |kb, j, acc| {
            let at = kb.b.ins().imul_imm_s(j, QB as i64);
            let s = col.load(kb, V, at);
            let d = kb.b.ins().fsub(s, m_new);
            let mut p = kb.exp(V, d);
            if let Some(vis) = visible(kb, j) {
                let zero = kb.fconst(V, 0.0);
                p = kb.select_mask(V, vis, p, zero);
            }
            col.store(kb, at, p);
            vec![kb.b.ins().fadd(acc[0], p)]
        })[0];
        let l_scaled = kb.b.ins().fmul(l_old, alpha);
        let l_new = kb.b.ins().fadd(l_scaled, sum);
        m_row.store(kb, g, m_new);
        l_row.store(kb, g, l_new);
        alpha_row.store(kb, g, alpha);
        vec![]
    });
}
