//! Ops consuming integer indices: gather (and embedding lookups), one_hot, and the
//! losses (mse, cross-entropy with i64 labels).

use dlc_ir::{BinaryOp, ConstValue, DType, Op, ValueId};

use super::Builder;

impl Builder {
    /// i64 indices in `0..limit`, of shape `shape` if given (else any shape within
    /// `budget` elements): a pool value whose range fits, a clamped pool value,
    /// a small constant, or a fresh input read only by this consumer.
    fn indices(&mut self, shape: Option<Vec<usize>>, limit: usize, budget: usize) -> ValueId {
        let top = limit as f64 - 1.0;
        let want = shape.clone();
        let ok_shape = move |b: &Builder, v: ValueId| {
            let t = b.g.ty(v);
            t.dtype == DType::I64
                && b.fact(v).exact
                && want.as_ref().map_or(t.numel() <= budget, |s| &t.shape == s)
        };
        let r = if self.small { 99 } else { self.rng.below(100) };
        if r < 30 {
            let c = self
                .candidates(|b, v| ok_shape(b, v) && b.fact(v).lo >= 0.0 && b.fact(v).hi <= top);
            if !c.is_empty() {
                return self.rng.pick(&c);
            }
        }
        if r < 45 {
            let c = self.candidates(&ok_shape);
            if !c.is_empty() {
                let v = self.rng.pick(&c);
                let (zero, hi) = (self.int_scalar(0), self.int_scalar(top as i64));
                let v = self.binary(BinaryOp::Maximum, v, zero);
                return self.binary(BinaryOp::Minimum, hi, v);
            }
        }
        let shape = shape.unwrap_or_else(|| {
            let rank = self.rng.range(0, 2);
            self.fresh_shape(rank, budget)
        });
        let n: usize = shape.iter().product();
        if r < 55 && n <= 8 {
            let vals = (0..n).map(|_| self.rng.below(limit) as i64).collect();
            return self.constant(DType::I64, shape, ConstValue::Int(vals));
        }
        self.index_input(shape, limit)
    }

    pub(super) fn gather_family(&mut self) -> Option<()> {
        if self.rng.pct(35) {
            let depth = self.rng.dim(self.cfg.max_dim);
            let idx = self.indices(None, depth, self.cfg.max_numel / depth);
            return self.emit_op(Op::OneHot { depth }, &[idx]).map(|_| ());
        }
        let x = match self.rng.below(10) {
            0..=2 => {
                let (v, d) = (
                    self.rng.dim(self.cfg.max_dim),
                    self.rng.dim(self.cfg.max_dim),
                );
                if !self.fits(v * d) {
                    return None;
                }
                self.param_in(vec![v, d], -1.0, 1.0)
            }
            3 if !self.small => {
                let c = self.candidates(|b, v| b.dtype(v) != DType::F32 && b.g.ty(v).rank() >= 1);
                if c.is_empty() {
                    self.f32_operand(1, 4)
                } else {
                    self.rng.pick(&c)
                }
            }
            _ => self.f32_operand(1, 4),
        };
        let s = self.shape(x);
        let axis = self.rng.below(s.len());
        let rest = s.iter().product::<usize>() / s[axis];
        let idx = self.indices(None, s[axis], self.cfg.max_numel / rest.max(1));
        self.emit_op(Op::Gather { axis }, &[x, idx]).map(|_| ())
    }

    pub(super) fn loss(&mut self) -> Option<()> {
        if self.rng.coin() {
            let pred = self.f32_operand(0, 4);
            let pred = self.bounded(pred, 32.0);
            let s = self.shape(pred);
            let target = match self.rng.below(10) {
                0..=1 => pred,
                2..=3 => {
                    let c =
                        self.candidates(|b, v| b.dtype(v) == DType::F32 && b.g.ty(v).shape == s);
                    let v = self.rng.pick(&c);
                    self.bounded(v, 32.0)
                }
                _ => self.input(DType::F32, s),
            };
            let (a, b) = if self.rng.coin() {
                (pred, target)
            } else {
                (target, pred)
            };
            return self.emit_op(Op::MseLoss, &[a, b]).map(|_| ());
        }
        let logits = self.f32_operand(2, 2);
        let logits = self.bounded(logits, 1e3);
        let s = self.shape(logits);
        let labels = self.indices(Some(vec![s[0]]), s[1], s[0]);
        self.emit_op(Op::CrossEntropy, &[logits, labels])
            .map(|_| ())
    }
}
