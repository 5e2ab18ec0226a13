//! Loops and row walkers shared by the family's emitters.

use cranelift_codegen::ir::{InstBuilder, Type, Value, types};

use crate::emit::builder::KernelBuilder;
use crate::emit::math::Lanes;

/// f32x4 lanes.
pub const V: Lanes = Lanes { vector: true };
/// One f32.
pub const S: Lanes = Lanes { vector: false };

/// `for i in (lo..hi).step_by(step)` carrying values (see
/// [`KernelBuilder::for_range`]).
pub fn for_range(
    kb: &mut KernelBuilder,
    lo: Value,
    hi: Value,
    step: i64,
    carried: &[Value],
    body: impl FnOnce(&mut KernelBuilder, Value, &[Value]) -> Vec<Value>,
) -> Vec<Value> {
    kb.for_range(lo, hi, step, carried, body)
}

/// `for i in 0..n` carrying values (see [`for_range`]).
pub fn for_n(
    kb: &mut KernelBuilder,
    n: usize,
    carried: &[Value],
    body: impl FnOnce(&mut KernelBuilder, Value, &[Value]) -> Vec<Value>,
) -> Vec<Value> {
    let (lo, hi) = (kb.int(0), kb.int(n as i64));
    for_range(kb, lo, hi, 1, carried, body)
}

/// The kernel's share `start..end` of its parallel loop.
pub fn for_parallel(kb: &mut KernelBuilder, body: impl FnOnce(&mut KernelBuilder, Value)) {
    let (start, end) = (kb.start, kb.end);
    for_range(kb, start, end, 1, &[], |kb, i, _| {
        body(kb, i);
        vec![]
    });
}

/// The f32 type of the lanes.
pub fn fty(l: Lanes) -> Type {
    if l.vector { types::F32X4 } else { types::F32 }
}

/// A scalar as the lanes (splat to f32x4 for vectors).
pub fn splat(kb: &mut KernelBuilder, l: Lanes, v: Value) -> Value {
    if l.vector {
        kb.b.ins().splat(types::F32X4, v)
    } else {
        v
    }
}

/// A position in a row: element `idx + disp / 4`, the byte displacement `disp`
/// folded into the access (one address computation per unrolled iteration).
#[derive(Clone, Copy)]
pub struct At {
    /// The element index part (a loop variable, or 0).
    pub idx: Value,
    /// The constant part, in bytes.
    pub disp: i32,
}

impl At {
    /// Loads lanes of f32 at element `base + self` of argument `arg`.
    pub fn load(self, kb: &mut KernelBuilder, l: Lanes, arg: usize, base: Value) -> Value {
        let i = kb.b.ins().iadd(base, self.idx);
        kb.load_at(fty(l), arg, i, 4, self.disp)
    }

    /// Loads lanes of f32 at element `self` of argument `arg` (a row-shaped operand).
    pub fn load_row(self, kb: &mut KernelBuilder, l: Lanes, arg: usize) -> Value {
        kb.load_at(fty(l), arg, self.idx, 4, self.disp)
    }

    /// Stores lanes of f32 at element `base + self` of argument `arg`.
    pub fn store(self, kb: &mut KernelBuilder, v: Value, arg: usize, base: Value) {
        let i = kb.b.ins().iadd(base, self.idx);
        kb.store_at(v, arg, i, 4, self.disp);
    }
}

/// A per-element body: `(builder, lanes, position in the row)`.
pub type Body<'a> = &'a dyn Fn(&mut KernelBuilder, Lanes, At);

/// Runs `body` over a row of `len` elements: f32x4 lanes at 0, 4, ..
/// (`unroll` vectors per loop iteration, the leftover vectors unrolled), then
/// scalars for the last `len % 4`.
pub fn each(kb: &mut KernelBuilder, len: usize, unroll: usize, body: Body) {
    let step = 4 * unroll;
    let main = if len / step > 1 { len / step * step } else { 0 };
    if main > 0 {
        let (lo, hi) = (kb.int(0), kb.int(main as i64));
        for_range(kb, lo, hi, step as i64, &[], |kb, i, _| {
            for u in 0..unroll {
                body(
                    kb,
                    V,
                    At {
                        idx: i,
                        disp: 16 * u as i32,
                    },
                );
            }
            vec![]
        });
    }
    let zero = kb.int(0);
    let at = |r: usize| At {
        idx: zero,
        disp: 4 * r as i32,
    };
    let mut r = main;
    while r + 4 <= len {
        body(kb, V, at(r));
        r += 4;
    }
    for r in r..len {
        body(kb, S, at(r));
    }
}

/// How [`fold`] accumulates values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fold {
    /// The sum.
    Sum,
    /// The sum of squares (fused multiply-adds).
    SumSquares,
    /// The NaN-propagating maximum.
    Max,
}

impl Fold {
    fn identity(self) -> f32 {
        match self {
            Fold::Sum | Fold::SumSquares => 0.0,
            Fold::Max => f32::NEG_INFINITY,
        }
    }

    /// Adds one value to an accumulator.
    fn accumulate(self, kb: &mut KernelBuilder, acc: Value, x: Value) -> Value {
        match self {
            Fold::Sum => kb.b.ins().fadd(acc, x),
            Fold::SumSquares => kb.b.ins().fma(x, x, acc),
            Fold::Max => kb.b.ins().fmax(acc, x),
        }
    }

    /// Combines two accumulators.
    fn combine(self, kb: &mut KernelBuilder, a: Value, b: Value) -> Value {
        match self {
            Fold::Sum | Fold::SumSquares => kb.b.ins().fadd(a, b),
            Fold::Max => kb.b.ins().fmax(a, b),
        }
    }
}

/// A per-element value of a fold: `(builder, lanes, position) -> lanes`.
pub type Elem<'a> = &'a dyn Fn(&mut KernelBuilder, Lanes, At) -> Value;

/// Folds `elem` over a row of `len` elements to a scalar: four f32x4
/// accumulators in the loop (independent dependency chains), combined pairwise,
/// then the four lanes pairwise, then the scalar tail in order.
pub fn fold(kb: &mut KernelBuilder, len: usize, how: Fold, elem: Elem) -> Value {
    fold_with(kb, len, how, elem, &|_, _, _| {})
}

/// [`fold`], also running `side` at every position (after `elem`), so that one
/// loop can fold one row while it writes another.
pub fn fold_with(kb: &mut KernelBuilder, len: usize, how: Fold, elem: Elem, side: Body) -> Value {
    fold_many(kb, len, &[(how, elem)], side)[0]
}

/// Several folds over a row in one loop, running `side` at every position after
/// the folds' `elem`s. Each fold's value is exactly what [`fold`] computes.
pub fn fold_many(
    kb: &mut KernelBuilder,
    len: usize,
    folds: &[(Fold, Elem)],
    side: Body,
) -> Vec<Value> {
    const ACC: usize = 4;
    let zero = kb.int(0);
    let at = |r: usize| At {
        idx: zero,
        disp: 4 * r as i32,
    };
    // Accumulates every fold's value at one position into `acc[j]`.
    let visit = |kb: &mut KernelBuilder, l: Lanes, at: At, acc: &mut [Value]| {
        let xs: Vec<Value> = folds.iter().map(|(_, elem)| elem(kb, l, at)).collect();
        side(kb, l, at);
        for ((a, x), (how, _)) in acc.iter_mut().zip(xs).zip(folds) {
            *a = how.accumulate(kb, *a, x);
        }
    };
    let nf = folds.len();
    let (mut totals, r) = if len < 4 {
        let ids = folds.iter().map(|(how, _)| kb.fconst(S, how.identity()));
        (ids.collect::<Vec<_>>(), 0)
    } else {
        // Accumulator `u` of fold `j` is `acc[u * nf + j]`.
        let mut acc: Vec<Value> = (0..ACC)
            .flat_map(|_| folds.iter().map(|(how, _)| how.identity()))
            .collect::<Vec<f32>>()
            .into_iter()
            .map(|v| kb.fconst(V, v))
            .collect();
        let step = 4 * ACC;
        let main = len / step * step;
        if main > 0 {
            let (lo, hi) = (kb.int(0), kb.int(main as i64));
            acc = for_range(kb, lo, hi, step as i64, &acc, |kb, i, acc| {
                let mut acc = acc.to_vec();
                for u in 0..ACC {
                    let at = At {
                        idx: i,
                        disp: 16 * u as i32,
                    };
                    visit(kb, V, at, &mut acc[u * nf..(u + 1) * nf]);
                }
                acc
            });
        }
        let (mut r, mut u) = (main, 0);
        while r + 4 <= len {
            visit(kb, V, at(r), &mut acc[u * nf..(u + 1) * nf]);
            (r, u) = (r + 4, u + 1);
        }
        let totals = folds
            .iter()
            .enumerate()
            .map(|(j, (how, _))| {
                let a = how.combine(kb, acc[j], acc[nf + j]);
                let b = how.combine(kb, acc[2 * nf + j], acc[3 * nf + j]);
                let v = how.combine(kb, a, b);
                let l: Vec<Value> = (0..4).map(|i| kb.b.ins().extractlane(v, i as u8)).collect();
                let a = how.combine(kb, l[0], l[1]);
                let b = how.combine(kb, l[2], l[3]);
                how.combine(kb, a, b)
            })
            .collect();
        (totals, r)
    };
    for r in r..len {
        visit(kb, S, at(r), &mut totals);
    }
    totals
}
