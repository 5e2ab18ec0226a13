//! Reductions (`sum`/`mean`/`max`/`min` over axis subsets, `argmax`) and softmax.

use dlc_ir::{Op, ReduceKind};

use super::Builder;

impl Builder {
    /// A sorted, non-empty random subset of `0..rank` (all axes a fifth of the time).
    fn axes(&mut self, rank: usize) -> Vec<usize> {
        if self.rng.pct(20) {
            return (0..rank).collect();
        }
        let mut axes: Vec<usize> = (0..rank).filter(|_| self.rng.coin()).collect();
        if axes.is_empty() {
            axes.push(self.rng.below(rank));
        }
        axes
    }

    pub(super) fn reduce(&mut self) -> Option<()> {
        if self.rng.pct(25) {
            let x = self.exact_f32(1, 4);
            let axis = self.rng.below(self.g.ty(x).rank());
            let keepdim = self.rng.coin();
            return self.emit_op(Op::ArgMax { axis, keepdim }, &[x]).map(|_| ());
        }
        let kind = self.rng.pick(&[
            ReduceKind::Sum,
            ReduceKind::Mean,
            ReduceKind::Max,
            ReduceKind::Min,
        ]);
        let x = self.f32_operand(1, 4);
        let x = if kind == ReduceKind::Sum {
            self.tame(x)
        } else {
            self.bounded(x, 1e4)
        };
        let axes = self.axes(self.g.ty(x).rank());
        let keepdim = self.rng.coin();
        self.emit_op(
            Op::Reduce {
                kind,
                axes,
                keepdim,
            },
            &[x],
        )
        .map(|_| ())
    }

    pub(super) fn softmax(&mut self) -> Option<()> {
        let x = self.f32_operand(1, 4);
        let x = self.bounded(x, 1e3);
        let axis = self.rng.below(self.g.ty(x).rank());
        let op = if self.rng.coin() {
            Op::Softmax { axis }
        } else {
            Op::LogSoftmax { axis }
        };
        self.emit_op(op, &[x]).map(|_| ())
    }
}
