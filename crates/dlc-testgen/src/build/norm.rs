//! Normalisation (batchnorm in both forms, layernorm) and dropout.

use dlc_ir::Op;

use super::Builder;

impl Builder {
    /// Emits a normalisation with a random `eps`, or a larger one when the small
    /// `eps` would amplify the operand's error too much (a nearly constant group
    /// amplifies errors by up to `1/sqrt(eps)`).
    fn emit_norm(&mut self, op: impl Fn(f64) -> Op, args: &[dlc_ir::ValueId]) -> Option<()> {
        const EPS: [f64; 4] = [1e-5, 1e-3, 1e-2, 0.1];
        let first = self.rng.below(EPS.len());
        EPS[first..]
            .iter()
            .find_map(|&eps| self.emit_op(op(eps), args))
            .map(|_| ())
    }

    pub(super) fn norm(&mut self) -> Option<()> {
        if self.rng.coin() {
            let x = self.f32_operand(2, 4);
            let x = self.bounded(x, 1e3);
            let s = self.shape(x);
            let c = s[1];
            let training = self.rng.coin() && s.iter().product::<usize>() / c >= 2;
            let ones = self.rng.pct(30);
            let (gamma, beta, mean, var) = if ones {
                (
                    self.param_in(vec![c], 1.0, 1.0),
                    self.param_in(vec![c], 0.0, 0.0),
                    self.param_in(vec![c], 0.0, 0.0),
                    self.param_in(vec![c], 1.0, 1.0),
                )
            } else {
                (
                    self.param_in(vec![c], 0.5, 1.5),
                    self.param_in(vec![c], -0.5, 0.5),
                    self.param_in(vec![c], -1.0, 1.0),
                    self.param_in(vec![c], 0.5, 2.0),
                )
            };
            let momentum = self.rng.pick(&[0.1, 0.01, 0.5, 0.9]);
            let op = |eps| Op::BatchNorm {
                eps,
                momentum,
                training,
            };
            return self.emit_norm(op, &[x, gamma, beta, mean, var]);
        }
        let x = self.f32_operand(1, 4);
        let x = self.bounded(x, 1e3);
        let s = self.shape(x);
        let axis = self.rng.below(s.len());
        let (gamma, beta) = if self.rng.pct(30) {
            (
                self.param_in(s[axis..].to_vec(), 1.0, 1.0),
                self.param_in(s[axis..].to_vec(), 0.0, 0.0),
            )
        } else {
            (
                self.param_in(s[axis..].to_vec(), 0.5, 1.5),
                self.param_in(s[axis..].to_vec(), -0.5, 0.5),
            )
        };
        self.emit_norm(|eps| Op::LayerNorm { axis, eps }, &[x, gamma, beta])
    }

    pub(super) fn dropout(&mut self) -> Option<()> {
        let x = self.f32_operand(0, 4);
        let x = self.bounded(x, 1e4);
        let p = if self.rng.coin() {
            self.rng.pick(&[0.0, 0.1, 0.25, 0.5, 0.9])
        } else {
            self.rng.grid(0.0, 0.95, 64.0)
        };
        let op = Op::Dropout {
            p,
            seed: self.rng.u64() >> self.rng.below(64),
            training: self.rng.pct(70),
        };
        self.emit_op(op, &[x]).map(|_| ())
    }
}
