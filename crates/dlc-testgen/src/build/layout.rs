//! Data movement: reshape, transpose, broadcast_to, concat, strided slice; on
//! f32, i64 and bool values.

use dlc_ir::{ConstValue, DType, Op, SliceRange, ValueId};

use super::Builder;

impl Builder {
    /// An operand of any dtype with rank in `lo..=hi` (mostly f32).
    fn any_operand(&mut self, lo: usize, hi: usize) -> ValueId {
        if !self.small && self.rng.pct(20) {
            let c = self.candidates(|b, v| {
                b.dtype(v) != DType::F32 && (lo..=hi).contains(&b.g.ty(v).rank())
            });
            if !c.is_empty() {
                return self.rng.pick(&c);
            }
        }
        self.f32_operand(lo, hi)
    }

    pub(super) fn layout(&mut self) -> Option<()> {
        match self.rng.weighted(&[22, 20, 16, 20, 22]) {
            0 => {
                let x = self.any_operand(0, 6);
                let n = self.g.ty(x).numel();
                let rank = self.rng.range(if n > 1 { 1 } else { 0 }, self.cfg.max_rank);
                let shape = self.factor_shape(n, rank);
                self.emit_op(Op::Reshape { shape }, &[x]).map(|_| ())
            }
            1 => {
                let x = self.any_operand(1, 6);
                let mut perm: Vec<usize> = (0..self.g.ty(x).rank()).collect();
                self.rng.shuffle(&mut perm);
                self.emit_op(Op::Transpose { perm }, &[x]).map(|_| ())
            }
            2 => {
                let x = self.any_operand(0, 5);
                let s = self.shape(x);
                let mut target: Vec<usize> = s
                    .iter()
                    .map(|&d| {
                        if d == 1 && self.rng.pct(60) {
                            self.rng.dim(self.cfg.max_dim)
                        } else {
                            d
                        }
                    })
                    .collect();
                for _ in 0..self.rng.range(0, 2) {
                    if target.len() < 6 {
                        let d = self.rng.dim(self.cfg.max_dim);
                        target.insert(0, d);
                    }
                }
                self.emit_op(Op::BroadcastTo { shape: target }, &[x])
                    .map(|_| ())
            }
            3 => self.concat(),
            _ => {
                let x = self.any_operand(1, 6);
                let ranges = self
                    .shape(x)
                    .into_iter()
                    .map(|d| self.slice_range(d))
                    .collect();
                self.emit_op(Op::Slice { ranges }, &[x]).map(|_| ())
            }
        }
    }

    fn slice_range(&mut self, d: usize) -> SliceRange {
        if self.rng.pct(30) {
            return SliceRange {
                start: 0,
                end: d,
                step: 1,
            };
        }
        let start = self.rng.below(d);
        let end = self.rng.range(start + 1, d);
        let step = match self.rng.below(6) {
            0..=2 => 1,
            3 => 2,
            4 => 3,
            _ => self.rng.range(1, d),
        };
        SliceRange { start, end, step }
    }

    fn concat(&mut self) -> Option<()> {
        let x = self.any_operand(1, 5);
        let (s, dtype) = (self.shape(x), self.dtype(x));
        let axis = self.rng.below(s.len());
        let mut parts = vec![x];
        for _ in 0..self.rng.range(1, 3) {
            let mut shape = s.clone();
            shape[axis] = self.rng.dim(self.cfg.max_dim);
            let same = |b: &Builder, v: ValueId| {
                let t = b.g.ty(v);
                t.dtype == dtype
                    && t.rank() == s.len()
                    && (0..s.len()).all(|i| i == axis || t.shape[i] == s[i])
            };
            let c = self.candidates(same);
            let fresh_fits = self.fits(shape.iter().product());
            let part = match self.rng.below(10) {
                0..=2 => x,
                _ if !fresh_fits => x,
                3..=4 if !c.is_empty() => self.rng.pick(&c),
                _ => match dtype {
                    DType::I64 => {
                        let n = shape.iter().product();
                        let vals = (0..n).map(|_| self.rng.range(0, 5) as i64).collect();
                        if n <= 16 {
                            self.constant(DType::I64, shape, ConstValue::Int(vals))
                        } else {
                            x
                        }
                    }
                    _ => self.input(dtype, shape),
                },
            };
            parts.push(part);
        }
        if self.rng.coin() {
            self.rng.shuffle(&mut parts);
        }
        self.emit_op(Op::Concat { axis }, &parts).map(|_| ())
    }
}
