//! Shapes, operand selection, and the domain and magnitude guards.

use dlc_ir::types::broadcast_shapes;
use dlc_ir::{BinaryOp, DType, Op, UnaryOp, ValueId};

use super::Builder;
use crate::facts::Fact;

/// Operands of ops that multiply magnitudes (mul, matmul, conv, sum, ...) are
/// brought below this first.
const GROWTH_LIMIT: f64 = 64.0;

impl Builder {
    // ---------------------------------------------------------------- shapes

    /// Whether a tensor of this many elements fits the element budget.
    pub fn fits(&self, numel: usize) -> bool {
        numel <= self.cfg.max_numel
    }

    /// A shape of `rank` dims within the dim limit and `budget` elements (both
    /// reduced when retrying with small operands).
    pub fn fresh_shape(&mut self, rank: usize, budget: usize) -> Vec<usize> {
        let (max_dim, shrink) = if self.small {
            (self.cfg.max_dim.min(7), 16)
        } else {
            (self.cfg.max_dim, 1)
        };
        let mut budget = (budget / shrink).clamp(1, self.cfg.max_numel);
        let mut dims = Vec::with_capacity(rank);
        for _ in 0..rank {
            let d = self.rng.dim(max_dim.min(budget));
            budget /= d;
            dims.push(d);
        }
        self.rng.shuffle(&mut dims);
        dims
    }

    /// A random shape of `rank` dims with exactly `numel` elements (`numel` must
    /// be 1 for rank 0).
    pub fn factor_shape(&mut self, numel: usize, rank: usize) -> Vec<usize> {
        let mut dims = vec![1usize; rank];
        if rank == 0 {
            return dims;
        }
        let (mut n, mut p) = (numel, 2);
        while n > 1 {
            if p * p > n {
                p = n;
            }
            if n % p == 0 {
                let i = self.rng.below(rank);
                dims[i] *= p;
                n /= p;
            } else {
                p += 1;
            }
        }
        dims
    }

    /// A shape that broadcasts with `s`: equal, with leading dims dropped or added,
    /// size-1 dims on either side, or a scalar; the result stays within limits.
    pub fn broadcast_partner(&mut self, s: &[usize]) -> Vec<usize> {
        let mut p = s.to_vec();
        match self.rng.weighted(&[30, 15, 25, 15, 10, 5]) {
            0 => {}
            1 => p = p[self.rng.range(0, p.len())..].to_vec(),
            2 => p.iter_mut().for_each(|d| {
                if self.rng.coin() {
                    *d = 1
                }
            }),
            3 => {
                for (i, d) in p.iter_mut().enumerate() {
                    if s[i] == 1 && self.rng.pct(70) {
                        *d = self.rng.dim(self.cfg.max_dim);
                    } else if self.rng.pct(40) {
                        *d = 1;
                    }
                }
            }
            4 if p.len() < 6 => {
                let d = self.rng.dim(self.cfg.max_dim);
                p.insert(0, d);
            }
            _ => p.clear(),
        }
        match broadcast_shapes(s, &p) {
            Some(out) if out.iter().product::<usize>() <= self.cfg.max_numel => p,
            _ => s.to_vec(),
        }
    }

    // -------------------------------------------------------------- operands

    /// Pool values satisfying `pred`.
    pub fn candidates(&self, pred: impl Fn(&Builder, ValueId) -> bool) -> Vec<ValueId> {
        self.pool
            .iter()
            .copied()
            .filter(|&v| pred(self, v))
            .collect()
    }

    /// An f32 operand with rank in `lo..=hi`: most often the chain head (cast or
    /// reshaped if needed), else a pool value, else a fresh input.
    pub fn f32_operand(&mut self, lo: usize, hi: usize) -> ValueId {
        let r = if self.small { 100 } else { self.rng.below(100) };
        if r < 60
            && let Some(v) = self.last
            && let Some(v) = self.adapt(v, lo, hi)
        {
            return v;
        }
        if r < 85 {
            let c = self.candidates(|b, v| {
                b.dtype(v) == DType::F32 && (lo..=hi).contains(&b.g.ty(v).rank())
            });
            if !c.is_empty() {
                return self.rng.pick(&c);
            }
        }
        self.fresh_f32(lo, hi)
    }

    /// A fresh f32 input with rank in `lo..=hi` (preferring ranks up to `max_rank`).
    pub fn fresh_f32(&mut self, lo: usize, hi: usize) -> ValueId {
        let rank = self.rng.range(lo, hi.min(self.cfg.max_rank.max(lo)));
        let shape = self.fresh_shape(rank, self.cfg.max_numel);
        self.input(DType::F32, shape)
    }

    /// `v` as an f32 value with rank in `lo..=hi`: cast from i64/bool, reshaped.
    fn adapt(&mut self, v: ValueId, lo: usize, hi: usize) -> Option<ValueId> {
        let t = self.ty(v);
        let mut v = v;
        if t.dtype != DType::F32 {
            if self.rng.coin() {
                return None;
            }
            v = self.op(Op::Cast { to: DType::F32 }, &[v]);
        }
        if (lo..=hi).contains(&t.rank()) {
            return Some(v);
        }
        let n = t.numel();
        let rank = self.rng.range(lo.max(if n > 1 { 1 } else { 0 }), hi);
        if rank < lo || rank > hi {
            return None;
        }
        let shape = self.factor_shape(n, rank);
        Some(self.reshape(v, shape))
    }

    /// An f32 operand every backend holds bit-identically (for comparisons,
    /// argmax, casts to integers): an exact pool value or a fresh input.
    pub fn exact_f32(&mut self, lo: usize, hi: usize) -> ValueId {
        if !self.small && self.rng.pct(70) {
            if let Some(v) = self.last.filter(|&v| {
                self.dtype(v) == DType::F32
                    && self.fact(v).exact
                    && (lo..=hi).contains(&self.g.ty(v).rank())
            }) {
                return v;
            }
            let c = self.candidates(|b, v| {
                b.dtype(v) == DType::F32 && b.fact(v).exact && (lo..=hi).contains(&b.g.ty(v).rank())
            });
            if !c.is_empty() {
                return self.rng.pick(&c);
            }
        }
        self.fresh_f32(lo, hi)
    }

    // ------------------------------------------------------ domain and range

    /// `v` with magnitude at most `limit` (>= 1): unchanged, or squashed by tanh,
    /// sigmoid, a clamp, or an exact power-of-two scaling (the only choice when
    /// `v` carries a noticeable absolute error, which squashing would turn into a
    /// large relative one).
    pub fn bounded(&mut self, v: ValueId, limit: f64) -> ValueId {
        let Fact { err, .. } = self.fact(v);
        let m = self.fact(v).m();
        if m <= limit {
            return v;
        }
        let choice = if err > 1e-4 { 3 } else { self.rng.below(4) };
        match choice {
            0 => self.unary(UnaryOp::Tanh, v),
            1 => self.unary(UnaryOp::Sigmoid, v),
            2 => {
                let mut c = 1.0;
                while c * 2.0 <= limit {
                    c *= 2.0;
                }
                self.op(Op::Clamp { min: -c, max: c }, &[v])
            }
            _ => {
                let mut s = 1.0;
                while m * s > limit {
                    s *= 0.5;
                }
                let k = self.scalar(s);
                self.binary(BinaryOp::Mul, v, k)
            }
        }
    }

    /// `v` bounded for ops that multiply magnitudes.
    pub fn tame(&mut self, v: ValueId) -> ValueId {
        self.bounded(v, GROWTH_LIMIT)
    }

    /// A value `>= min` derived from `v` (`min <= 2`): `v` itself when known safe,
    /// else `c + abs(v)`, `relu`, `softplus`, `sigmoid` or `exp` of a bounded `v`.
    pub fn positive(&mut self, v: ValueId, min: f64) -> ValueId {
        let f = self.fact(v);
        let known = self.safe_pos.iter().any(|&(s, m)| s == v && m >= min);
        if known || (f.exact && f.lo >= min) {
            return v;
        }
        let nonneg = match self.rng.below(5) {
            0 => self.unary(UnaryOp::Abs, v),
            1 => self.unary(UnaryOp::Relu, v),
            2 => self.unary(UnaryOp::Softplus, v),
            3 => self.unary(UnaryOp::Sigmoid, v),
            _ => {
                let b = self.bounded(v, 2.0);
                self.unary(UnaryOp::Exp, b)
            }
        };
        let cs: Vec<f64> = [0.25, 0.5, 1.0, 2.0]
            .into_iter()
            .filter(|&c| c >= min)
            .collect();
        let c = self.rng.pick(&cs);
        let k = self.scalar(c);
        let out = if self.rng.coin() {
            self.binary(BinaryOp::Add, nonneg, k)
        } else {
            self.binary(BinaryOp::Add, k, nonneg)
        };
        self.safe_pos.push((out, c));
        out
    }

    /// A value with `|x| >= min` everywhere: positive, or the negation of one.
    pub fn nonzero(&mut self, v: ValueId, min: f64) -> ValueId {
        let p = self.positive(v, min);
        if self.rng.pct(25) {
            self.unary(UnaryOp::Neg, p)
        } else {
            p
        }
    }
}
