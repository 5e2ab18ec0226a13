//! Row kernels over `[outer, len, inner]` views: reductions, argmax, softmax.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};
use dlc_ir::ReduceKind;

use super::builder::KernelBuilder;
use super::math::Lanes;

pub mod native;

const V: Lanes = Lanes { vector: true };
const S: Lanes = Lanes { vector: false };

fn combine(kb: &mut KernelBuilder, kind: ReduceKind, a: Value, b: Value) -> Value {
    match kind {
        ReduceKind::Sum | ReduceKind::Mean => kb.b.ins().fadd(a, b),
        ReduceKind::Max => kb.b.ins().fmax(a, b),
        ReduceKind::Min => kb.b.ins().fmin(a, b),
    }
}

fn identity(kind: ReduceKind) -> f32 {
    match kind {
        ReduceKind::Sum | ReduceKind::Mean => 0.0,
        ReduceKind::Max => f32::NEG_INFINITY,
        ReduceKind::Min => f32::INFINITY,
    }
}

/// Combines the four lanes of a vector: `(l0 ∘ l1) ∘ (l2 ∘ l3)`.
fn horizontal(kb: &mut KernelBuilder, kind: ReduceKind, v: Value) -> Value {
    let l: Vec<Value> = (0..4).map(|i| kb.b.ins().extractlane(v, i as u8)).collect();
    let a = combine(kb, kind, l[0], l[1]);
    let b = combine(kb, kind, l[2], l[3]);
    combine(kb, kind, a, b)
}

/// A per-element transform applied before combining.
type Map<'m> = &'m dyn Fn(&mut KernelBuilder, Lanes, Value) -> Value;

/// Independent vector accumulators of a plain reduction: a combine (an IEEE
/// `fmax` is several instructions) is a loop-carried dependency, and four chains
/// keep the core busy where one would wait on its latency.
const CHAINS: usize = 4;

/// Reduces `x[base .. base + len]`, vectorised over [`CHAINS`] accumulators
/// with a scalar tail.
fn reduce_row(
    kb: &mut KernelBuilder,
    kind: ReduceKind,
    arg: usize,
    base: Value,
    len: usize,
) -> Value {
    let init_v = kb.fconst(V, identity(kind));
    let vectors = len / 4;
    let rounds = vectors / CHAINS;
    let chains = kb.for_n(rounds, &[init_v; CHAINS], |kb, i, acc| {
        let idx = kb.b.ins().imul_imm_s(i, (4 * CHAINS) as i64);
        let idx = kb.b.ins().iadd(base, idx);
        (0..CHAINS)
            .map(|c| {
                let at = kb.b.ins().iadd_imm_s(idx, 4 * c as i64);
                let x = kb.load(types::F32X4, arg, at, 4);
                combine(kb, kind, acc[c], x)
            })
            .collect()
    });
    let mut acc = chains[0];
    for &c in &chains[1..] {
        acc = combine(kb, kind, acc, c);
    }
    for v in rounds * CHAINS..vectors {
        let idx = kb.b.ins().iadd_imm_s(base, 4 * v as i64);
        let x = kb.load(types::F32X4, arg, idx, 4);
        acc = combine(kb, kind, acc, x);
    }
    let mut total = horizontal(kb, kind, acc);
    for r in vectors * 4..len {
        let idx = kb.b.ins().iadd_imm_s(base, r as i64);
        let x = kb.load(types::F32, arg, idx, 4);
        total = combine(kb, kind, total, x);
    }
    total
}

/// Sums `map(x[base .. base + len])` (one vector accumulator: the map is the
/// long pole), storing the mapped values into argument `store`.
fn map_sum_row(
    kb: &mut KernelBuilder,
    base: Value,
    len: usize,
    map: Map,
    store: Option<usize>,
) -> Value {
    let kind = ReduceKind::Sum;
    let init_v = kb.fconst(V, identity(kind));
    let vec_len = len / 4 * 4;
    let acc = kb.for_n(vec_len / 4, &[init_v], |kb, i, acc| {
        let idx = kb.b.ins().imul_imm_s(i, 4);
        let idx = kb.b.ins().iadd(base, idx);
        let x = kb.load(types::F32X4, 0, idx, 4);
        let x = map(kb, V, x);
        if let Some(out) = store {
            kb.store(x, out, idx, 4);
        }
        vec![combine(kb, kind, acc[0], x)]
    });
    let mut total = horizontal(kb, kind, acc[0]);
    for r in vec_len..len {
        let idx = kb.b.ins().iadd_imm_s(base, r as i64);
        let x = kb.load(types::F32, 0, idx, 4);
        let x = map(kb, S, x);
        if let Some(out) = store {
            kb.store(x, out, idx, 4);
        }
        total = combine(kb, kind, total, x);
    }
    total
}

/// `out[o, i] = reduce_r x[o, r, i]`.
pub fn reduce(kb: &mut KernelBuilder, kind: ReduceKind, _outer: usize, len: usize, inner: usize) {
    let finish = |kb: &mut KernelBuilder, v: Value, l: Lanes| -> Value {
        if kind == ReduceKind::Mean {
            let n = kb.fconst(l, len as f32);
            kb.b.ins().fdiv(v, n)
        } else {
            v
        }
    };
    let (start, end) = (kb.start, kb.end);
    kb.for_range(start, end, 1, &[], |kb, o, _| {
        if inner == 1 {
            let base = kb.b.ins().imul_imm_s(o, len as i64);
            let total = reduce_row(kb, kind, 0, base, len);
            let total = finish(kb, total, S);
            kb.store(total, 1, o, 4);
            return vec![];
        }
        // Columns: vectorise across `inner`.
        let in_base = kb.b.ins().imul_imm_s(o, (len * inner) as i64);
        let out_base = kb.b.ins().imul_imm_s(o, inner as i64);
        let vec_inner = inner / 4 * 4;
        for (lanes, step, lo, hi) in [(V, 4, 0, vec_inner), (S, 1, vec_inner, inner)] {
            if lo == hi {
                continue;
            }
            let ty = if lanes.vector {
                types::F32X4
            } else {
                types::F32
            };
            let (lo, hi) = (kb.int(lo as i64), kb.int(hi as i64));
            kb.for_range(lo, hi, step, &[], |kb, i, _| {
                let col = kb.b.ins().iadd(in_base, i);
                let init = kb.fconst(lanes, identity(kind));
                let acc = kb.for_n(len, &[init], |kb, r, acc| {
                    let idx = kb.add_scaled(col, r, inner);
                    let x = kb.load(ty, 0, idx, 4);
                    vec![combine(kb, kind, acc[0], x)]
                });
                let v = finish(kb, acc[0], lanes);
                let oi = kb.b.ins().iadd(out_base, i);
                kb.store(v, 1, oi, 4);
                vec![]
            });
        }
        vec![]
    });
}

/// `out[o, i] = argmax_r x[o, r, i]` (first index of the maximum; NaN counts as maximal).
pub fn argmax(kb: &mut KernelBuilder, _outer: usize, len: usize, inner: usize) {
    // The parallel loop runs over every (o, i) pair.
    let (start, end) = (kb.start, kb.end);
    kb.for_range(start, end, 1, &[], |kb, oi, _| {
        let o = kb.b.ins().udiv_imm_u(oi, inner as i64);
        let i = kb.b.ins().urem_imm_u(oi, inner as i64);
        let base = kb.b.ins().imul_imm_s(o, (len * inner) as i64);
        let base = kb.b.ins().iadd(base, i);
        let first = kb.load(types::F32, 0, base, 4);
        let zero = kb.int(0);
        let one = kb.int(1);
        let n = kb.int(len as i64);
        let best = kb.for_range(one, n, 1, &[first, zero], |kb, r, acc| {
            let idx = kb.add_scaled(base, r, inner);
            let x = kb.load(types::F32, 0, idx, 4);
            let greater = kb.fcmp(FloatCC::GreaterThan, x, acc[0]);
            let x_nan = kb.fcmp(FloatCC::Unordered, x, x);
            let best_num = kb.fcmp(FloatCC::Ordered, acc[0], acc[0]);
            let nan_wins = kb.b.ins().band(x_nan, best_num);
            let take = kb.b.ins().bor(greater, nan_wins);
            let v = kb.b.ins().select(take, x, acc[0]);
            let j = kb.b.ins().select(take, r, acc[1]);
            vec![v, j]
        });
        kb.store(best[1], 1, oi, 8);
        vec![]
    });
}

/// Softmax or log-softmax of `x[o, :, i]`, subtracting the maximum first.
/// Softmax over contiguous rows calls `native` when given.
pub fn softmax(
    kb: &mut KernelBuilder,
    len: usize,
    inner: usize,
    log: bool,
    native: Option<native::SoftmaxKernel>,
) {
    let (start, end) = (kb.start, kb.end);
    if let Some(f) = native.filter(|_| inner == 1 && !log) {
        native::emit_call(kb, f, len);
        return;
    }
    if inner == 1 {
        kb.for_range(start, end, 1, &[], |kb, o, _| {
            let base = kb.b.ins().imul_imm_s(o, len as i64);
            let max = reduce_row(kb, ReduceKind::Max, 0, base, len);
            // Pass 2: e = exp(x - max), summed; softmax stores e for pass 3.
            let maxv = kb.b.ins().splat(types::F32X4, max);
            let exp_shifted = |kb: &mut KernelBuilder, l: Lanes, x: Value| {
                let m = if l.vector { maxv } else { max };
                let d = kb.b.ins().fsub(x, m);
                kb.exp(l, d)
            };
            let sum = map_sum_row(kb, base, len, &exp_shifted, (!log).then_some(1));
            // Pass 3: normalise.
            let shift = if log {
                let ls = kb.log(S, sum);
                kb.b.ins().fadd(max, ls)
            } else {
                max
            };
            let inv = {
                let one = kb.fconst(S, 1.0);
                kb.b.ins().fdiv(one, sum)
            };
            let vec_len = len / 4 * 4;
            for (lanes, step, lo, hi) in [(V, 4, 0, vec_len), (S, 1, vec_len, len)] {
                if lo == hi {
                    continue;
                }
                let ty = if lanes.vector {
                    types::F32X4
                } else {
                    types::F32
                };
                let (shift_l, inv_l) = if lanes.vector {
                    (kb.b.ins().splat(ty, shift), kb.b.ins().splat(ty, inv))
                } else {
                    (shift, inv)
                };
                let (lo, hi) = (kb.int(lo as i64), kb.int(hi as i64));
                kb.for_range(lo, hi, step, &[], |kb, r, _| {
                    let idx = kb.b.ins().iadd(base, r);
                    let y = if log {
                        let x = kb.load(ty, 0, idx, 4);
                        kb.b.ins().fsub(x, shift_l)
                    } else {
                        let e = kb.load(ty, 1, idx, 4);
                        kb.b.ins().fmul(e, inv_l)
                    };
                    kb.store(y, 1, idx, 4);
                    vec![]
                });
            }
            vec![]
        });
        return;
    }
    // Softmax along a middle axis: one strided column at a time.
    let total = kb.int(inner as i64);
    let lo = kb.b.ins().imul(start, total);
    let hi = kb.b.ins().imul(end, total);
    kb.for_range(lo, hi, 1, &[], |kb, oi, _| {
        let o = kb.b.ins().udiv_imm_u(oi, inner as i64);
        let i = kb.b.ins().urem_imm_u(oi, inner as i64);
        let base = kb.b.ins().imul_imm_s(o, (len * inner) as i64);
        let base = kb.b.ins().iadd(base, i);
        let ninf = kb.fconst(S, f32::NEG_INFINITY);
        let max = kb.for_n(len, &[ninf], |kb, r, acc| {
            let idx = kb.add_scaled(base, r, inner);
            let x = kb.load(types::F32, 0, idx, 4);
            vec![kb.b.ins().fmax(acc[0], x)]
        })[0];
        let zero = kb.fconst(S, 0.0);
        let sum = kb.for_n(len, &[zero], |kb, r, acc| {
            let idx = kb.add_scaled(base, r, inner);
            let x = kb.load(types::F32, 0, idx, 4);
            let d = kb.b.ins().fsub(x, max);
            let e = kb.exp(S, d);
            vec![kb.b.ins().fadd(acc[0], e)]
        })[0];
        let shift = if log {
            let ls = kb.log(S, sum);
            kb.b.ins().fadd(max, ls)
        } else {
            max
        };
        kb.for_n(len, &[], |kb, r, _| {
            let idx = kb.add_scaled(base, r, inner);
            let x = kb.load(types::F32, 0, idx, 4);
            let d = kb.b.ins().fsub(x, shift);
            let y = if log {
                d
            } else {
                let e = kb.exp(S, d);
                kb.b.ins().fdiv(e, sum)
            };
            kb.store(y, 1, idx, 4);
            vec![]
        });
        vec![]
    });
}
