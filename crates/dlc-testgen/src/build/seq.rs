//! Sequence models: rnn/lstm/gru (sequences and cells), the grid LSTM, attention
//! and multi-head attention.

use dlc_ir::init::Init;
use dlc_ir::{CellKind, DType, Op, ValueId};

use super::Builder;

impl Builder {
    /// A `U(-a, a)` parameter, `a = scale/sqrt(fan)` rounded up to a multiple of 1/64.
    fn uniform(&mut self, shape: Vec<usize>, fan: usize, scale: f64) -> ValueId {
        let a = (64.0 * scale / (fan.max(1) as f64).sqrt()).ceil() / 64.0;
        self.param(shape, Init::Uniform { lo: -a, hi: a })
    }

    /// A state of exactly `shape`: a fresh input, a pool value, or a zero parameter.
    fn state(&mut self, shape: Vec<usize>) -> ValueId {
        let c = self.candidates(|b, v| b.dtype(v) == DType::F32 && b.g.ty(v).shape == shape);
        match self.rng.below(10) {
            0..=1 if !c.is_empty() => {
                let v = self.rng.pick(&c);
                self.bounded(v, 2.0)
            }
            2 => self.param_in(shape, 0.0, 0.0),
            _ => self.input(DType::F32, shape),
        }
    }

    /// Draws a recurrent op's cell kind, whether it is a sequence op, and its
    /// input `x` (bounded so the gates do not saturate), with the
    /// `[steps, batch, features]` it implies (one step when not a sequence).
    pub(super) fn recurrent_input(&mut self) -> (CellKind, bool, ValueId, [usize; 3]) {
        let cell = self
            .rng
            .pick(&[CellKind::Rnn, CellKind::Lstm, CellKind::Gru]);
        let sequence = self.rng.pct(65);
        let x = self.f32_operand(2 + sequence as usize, 2 + sequence as usize);
        let x = self.bounded(x, 4.0);
        let s = self.shape(x);
        let (steps, batch, input) = if sequence {
            (s[0], s[1], s[2])
        } else {
            (1, s[0], s[1])
        };
        (cell, sequence, x, [steps, batch, input])
    }

    pub(super) fn recurrent(&mut self) -> Option<()> {
        let (cell, sequence, x, [steps, batch, input]) = self.recurrent_input();
        let hidden = self.rng.dim(self.cfg.max_dim.min(32));
        let gh = cell.gates() * hidden;
        if steps * batch * gh * (input + hidden) > self.cfg.max_work
            || !self.fits(steps * batch * hidden)
            || !self.fits(gh * input.max(hidden))
        {
            return None;
        }
        let mut args = vec![x, self.state(vec![batch, hidden])];
        if cell.has_cell_state() {
            args.push(self.state(vec![batch, hidden]));
        }
        let scale = self.rng.pick(&[0.5, 1.0]);
        args.push(self.uniform(vec![gh, input], hidden, 1.0));
        args.push(self.uniform(vec![gh, hidden], hidden, scale));
        args.push(self.uniform(vec![gh], hidden, 1.0));
        args.push(self.uniform(vec![gh], hidden, 1.0));
        self.emit_op(Op::Recurrent { cell, sequence }, &args)
            .map(|_| ())
    }

    pub(super) fn grid_lstm(&mut self) -> Option<()> {
        let x = self.f32_operand(4, 4);
        let x = self.bounded(x, 4.0);
        let s = self.shape(x);
        let (cells, batch, f) = (s[0] * s[1], s[2], s[3]);
        let hidden = self.rng.dim(self.cfg.max_dim.min(16));
        let k = f + 2 * hidden;
        if 2 * cells * batch * k * 4 * hidden > self.cfg.max_work
            || !self.fits(cells * batch * 2 * hidden)
            || !self.fits(k * 4 * hidden)
        {
            return None;
        }
        let mut args = vec![x];
        for _ in 0..2 {
            args.push(self.uniform(vec![k, 4 * hidden], k, 1.0));
            args.push(self.uniform(vec![4 * hidden], hidden, 1.0));
        }
        self.emit_op(Op::GridLstm, &args).map(|_| ())
    }

    pub(super) fn attention(&mut self) -> Option<()> {
        if self.rng.pct(40) {
            return self.multihead();
        }
        let q = self.f32_operand(2, 4);
        let q = self.bounded(q, 4.0);
        let s = self.shape(q);
        let r = s.len();
        let (batch, l, e) = (&s[..r - 2], s[r - 2], s[r - 1]);
        let bn: usize = batch.iter().product();
        let (k, v) = if self.rng.pct(30) {
            (q, q)
        } else {
            let len = self.rng.dim(self.cfg.max_dim);
            let ev = if self.rng.coin() {
                e
            } else {
                self.rng.dim(self.cfg.max_dim)
            };
            if !self.fits(bn * len * e.max(ev)) || !self.fits(bn * l * ev) {
                return None;
            }
            let k = self.input(DType::F32, [batch, &[len, e]].concat());
            let v = if ev == e && self.rng.pct(30) {
                k
            } else {
                self.input(DType::F32, [batch, &[len, ev]].concat())
            };
            (k, v)
        };
        let (len, ev) = (self.shape(k)[r - 2], self.shape(v)[r - 1]);
        if bn * l * len * (e + ev) > self.cfg.max_work {
            return None;
        }
        let scale = if self.rng.pct(60) {
            1.0 / (e as f64).sqrt()
        } else {
            self.rng.grid(0.0625, 2.0, 16.0)
        };
        let op = Op::Attention {
            causal: self.rng.coin(),
            scale,
        };
        self.emit_op(op, &[q, k, v]).map(|_| ())
    }

    fn multihead(&mut self) -> Option<()> {
        let query = self.f32_operand(3, 3);
        let query = self.bounded(query, 4.0);
        let s = self.shape(query);
        let (l, n, e) = (s[0], s[1], s[2]);
        let divs: Vec<usize> = (1..=e).filter(|&h| e.is_multiple_of(h)).collect();
        let heads = if self.rng.coin() {
            1
        } else {
            self.rng.pick(&divs)
        };
        let (key, value) = if self.rng.pct(40) {
            (query, query)
        } else {
            let len = self.rng.dim(self.cfg.max_dim);
            if len * n * e > self.cfg.max_numel {
                return None;
            }
            let key = self.input(DType::F32, vec![len, n, e]);
            let value = if self.rng.pct(30) {
                key
            } else {
                self.input(DType::F32, vec![len, n, e])
            };
            (key, value)
        };
        let len = self.shape(key)[0];
        if n * (l * len * e + 3 * (l + len) * e * e) > self.cfg.max_work || !self.fits(3 * e * e) {
            return None;
        }
        let args = [
            query,
            key,
            value,
            self.uniform(vec![3 * e, e], e, 1.0),
            self.uniform(vec![3 * e], e, 0.5),
            self.uniform(vec![e, e], e, 1.0),
            self.uniform(vec![e], e, 0.5),
        ];
        let op = Op::MultiHeadAttention {
            heads,
            causal: self.rng.coin(),
        };
        self.emit_op(op, &args).map(|_| ())
    }
}
