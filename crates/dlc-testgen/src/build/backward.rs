//! The backward ops autodiff emits, generated directly: forward operands drawn as
//! for the forward op, and fresh cotangent inputs shaped like its results.

use dlc_ir::infer::window_out;
use dlc_ir::init::Init;
use dlc_ir::{ConvAttrs, DType, Op, PoolAttrs, PoolKind, ValueId};

use super::Builder;

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

impl Builder {
    pub(super) fn backward(&mut self) -> Option<()> {
        match self.rng.below(6) {
            0 => self.conv_weight_grad(),
            1 => self.pool_grad(),
            2 => self.gather_grad(),
            3 => self.recurrent_grad(),
            4 => self.grid_lstm_grad(),
            _ => self.attention_grad(),
        }
    }

    /// A `U(-a, a)` weight with `a ≈ scale/sqrt(fan)` (a multiple of 1/64).
    fn grad_weight(&mut self, shape: Vec<usize>, fan: usize, scale: f64) -> ValueId {
        let a = (64.0 * scale / (fan.max(1) as f64).sqrt()).ceil() / 64.0;
        self.param(shape, Init::Uniform { lo: -a, hi: a })
    }

    fn conv_weight_grad(&mut self) -> Option<()> {
        let sp = self.rng.range(1, 2);
        let x = self.f32_operand(sp + 2, sp + 2);
        let x = self.bounded(x, 8.0);
        let s = self.shape(x);
        let c = s[1];
        let divs: Vec<usize> = (1..=c).filter(|&g| c.is_multiple_of(g)).collect();
        let groups = if self.rng.pct(60) {
            1
        } else {
            self.rng.pick(&divs)
        };
        let o = groups * self.rng.range(1, 4);
        let mut attrs = ConvAttrs {
            stride: vec![],
            padding: vec![],
            dilation: vec![],
            groups,
        };
        let (mut kernel, mut dy_shape) = (Vec::new(), vec![s[0], o]);
        for &len in &s[2..] {
            let mut k = self.rng.pick(&[1, 2, 3, 3, 5]);
            let mut dil = self.rng.pick(&[1, 1, 2]);
            let span = |k: usize, d: usize| d * (k - 1) + 1;
            let reach = span(k, dil) - 1;
            let pad = (self.rng.range(0, reach), self.rng.range(0, reach));
            while len + pad.0 + pad.1 < span(k, dil) {
                if dil > 1 {
                    dil = 1;
                } else {
                    k -= 1;
                }
            }
            let stride = self.rng.pick(&[1, 1, 2, 3]);
            let out = window_out(len, pad, k, dil, stride)?;
            // Sometimes fewer output positions than fit (a transposed conv's weight gradient).
            dy_shape.push(if out > 1 && self.rng.pct(15) {
                out - 1
            } else {
                out
            });
            kernel.push(k);
            attrs.stride.push(stride);
            attrs.padding.push(pad);
            attrs.dilation.push(dil);
        }
        let w_numel = o * c / groups * numel(&kernel);
        let work = w_numel * s[0] * numel(&dy_shape[2..]);
        if work > self.cfg.max_work || !self.fits(w_numel) || !self.fits(numel(&dy_shape)) {
            return None;
        }
        let dy = self.input(DType::F32, dy_shape);
        let op = Op::ConvWeightGrad {
            conv: attrs,
            kernel,
        };
        self.emit_op(op, &[x, dy]).map(|_| ())
    }

    fn pool_grad(&mut self) -> Option<()> {
        let sp = self.rng.range(1, 2);
        let kind = match self.rng.below(4) {
            0 | 1 => PoolKind::Max,
            2 => PoolKind::Avg {
                count_include_pad: true,
            },
            _ => PoolKind::Avg {
                count_include_pad: false,
            },
        };
        // Max pooling compares elements of x: every backend must hold them identically.
        let x = if kind == PoolKind::Max {
            self.exact_f32(sp + 2, sp + 2)
        } else {
            self.f32_operand(sp + 2, sp + 2)
        };
        let s = self.shape(x);
        let mut attrs = PoolAttrs {
            kind,
            kernel: vec![],
            stride: vec![],
            padding: vec![],
        };
        let mut out = s[..2].to_vec();
        for &len in &s[2..] {
            let mut k = self.rng.pick(&[1, 2, 2, 3, 3, 5]);
            let mut pad = (self.rng.range(0, k / 2), self.rng.range(0, k / 2));
            if len + pad.0 + pad.1 < k {
                k = len;
                pad = (self.rng.range(0, k / 2), self.rng.range(0, k / 2));
            }
            let stride = self.rng.pick(&[1, 2, 3, k]);
            out.push(window_out(len, pad, k, 1, stride)?);
            attrs.kernel.push(k);
            attrs.stride.push(stride);
            attrs.padding.push(pad);
        }
        // Padding can make the gradient larger than x (a window as wide as a
        // short axis, padded on both sides).
        if !self.fits(numel(&out)) {
            return None;
        }
        let dy = self.input(DType::F32, out);
        self.emit_op(Op::PoolGrad(attrs), &[x, dy]).map(|_| ())
    }

    fn gather_grad(&mut self) -> Option<()> {
        let rank = self.rng.range(1, 3);
        let x_shape = self.fresh_shape(rank, self.cfg.max_numel);
        let axis = self.rng.below(rank);
        let size = x_shape[axis];
        let rest = numel(&x_shape) / size;
        let idx_rank = self.rng.range(0, 2);
        let idx_shape = self.fresh_shape(idx_rank, (self.cfg.max_numel / rest.max(1)).max(1));
        let dy_shape = [&x_shape[..axis], &idx_shape[..], &x_shape[axis + 1..]].concat();
        if !self.fits(numel(&dy_shape)) {
            return None;
        }
        let dy = self.input(DType::F32, dy_shape);
        let idx = self.index_input(idx_shape, size);
        self.emit_op(Op::GatherGrad { axis, size }, &[dy, idx])
            .map(|_| ())
    }

    fn recurrent_grad(&mut self) -> Option<()> {
        let (cell, sequence, x, [steps, batch, input]) = self.recurrent_input();
        let hidden = self.rng.dim(self.cfg.max_dim.min(16));
        let gh = cell.gates() * hidden;
        if 3 * steps * batch * gh * (input + hidden) > self.cfg.max_work
            || !self.fits(steps * batch * gh)
            || !self.fits(gh * input.max(hidden))
        {
            return None;
        }
        let states = 1 + cell.has_cell_state() as usize;
        let mut args = vec![x];
        for _ in 0..states {
            args.push(self.input(DType::F32, vec![batch, hidden]));
        }
        args.push(self.grad_weight(vec![gh, input], hidden, 1.0));
        args.push(self.grad_weight(vec![gh, hidden], hidden, 0.5));
        args.push(self.grad_weight(vec![gh], hidden, 1.0));
        args.push(self.grad_weight(vec![gh], hidden, 1.0));
        if sequence {
            args.push(self.input(DType::F32, vec![steps, batch, hidden]));
        }
        for _ in 0..states {
            args.push(self.input(DType::F32, vec![batch, hidden]));
        }
        self.emit_op(Op::RecurrentGrad { cell, sequence }, &args)
            .map(|_| ())
    }

    fn grid_lstm_grad(&mut self) -> Option<()> {
        let x = self.f32_operand(4, 4);
        let x = self.bounded(x, 4.0);
        let s = self.shape(x);
        let (gh, gw, batch, f) = (s[0], s[1], s[2], s[3]);
        let hidden = self.rng.dim(self.cfg.max_dim.min(8));
        let k = f + 2 * hidden;
        let cells = gh * gw;
        if 6 * cells * batch * k * 4 * hidden > self.cfg.max_work
            || !self.fits(cells * batch * (2 * 4 * hidden + k))
            || !self.fits(k * 4 * hidden)
        {
            return None;
        }
        let mut args = vec![x];
        for _ in 0..2 {
            args.push(self.grad_weight(vec![k, 4 * hidden], k, 1.0));
            args.push(self.grad_weight(vec![4 * hidden], hidden, 1.0));
        }
        args.push(self.input(DType::F32, vec![gh, gw, batch, 2 * hidden]));
        for len in [gw, gw, gh, gh] {
            args.push(self.input(DType::F32, vec![len, batch, hidden]));
        }
        self.emit_op(Op::GridLstmGrad, &args).map(|_| ())
    }

    fn attention_grad(&mut self) -> Option<()> {
        let q = self.f32_operand(2, 4);
        let q = self.bounded(q, 4.0);
        let s = self.shape(q);
        let r = s.len();
        let (batch, l, e) = (&s[..r - 2], s[r - 2], s[r - 1]);
        let bn = numel(batch);
        let len = self.rng.dim(self.cfg.max_dim);
        let ev = if self.rng.coin() {
            e
        } else {
            self.rng.dim(self.cfg.max_dim)
        };
        if 4 * bn * l * len * (e + ev) > self.cfg.max_work
            || !self.fits(bn * len * e.max(ev))
            || !self.fits(bn * l * ev)
        {
            return None;
        }
        let k = self.input(DType::F32, [batch, &[len, e]].concat());
        let v = self.input(DType::F32, [batch, &[len, ev]].concat());
        let dout = self.input(DType::F32, [batch, &[l, ev]].concat());
        let scale = if self.rng.pct(60) {
            1.0 / (e as f64).sqrt()
        } else {
            self.rng.grid(0.0625, 2.0, 16.0)
        };
        let op = Op::AttentionGrad {
            causal: self.rng.coin(),
            scale,
        };
        self.emit_op(op, &[q, k, v, dout]).map(|_| ())
    }
}
