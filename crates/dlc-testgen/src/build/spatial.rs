//! Linear layers: matmul (batched, broadcast batch dims), conv, conv_transpose,
//! and pooling.

use dlc_ir::infer::window_out;
use dlc_ir::types::broadcast_shapes;
use dlc_ir::{ConvAttrs, ConvTransposeAttrs, DType, Op, PoolAttrs, PoolKind};

use super::Builder;

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

impl Builder {
    /// An operand of exactly `rank` for a layer, bounded to keep outputs moderate.
    fn layer_input(&mut self, rank: usize) -> dlc_ir::ValueId {
        let x = self.f32_operand(rank, rank);
        self.bounded(x, 8.0)
    }

    /// A divisor of `c`: 1 half of the time, `c` (depthwise) sometimes, else any.
    fn groups_of(&mut self, c: usize) -> usize {
        let divs: Vec<usize> = (1..=c).filter(|&g| c.is_multiple_of(g)).collect();
        match self.rng.below(10) {
            0..=4 => 1,
            5..=6 => c,
            _ => self.rng.pick(&divs),
        }
    }

    pub(super) fn matmul(&mut self) -> Option<()> {
        let a = self.f32_operand(1, 4);
        let a = if self.g.ty(a).rank() == 1 {
            let n = self.g.ty(a).numel();
            let s = if self.rng.coin() {
                vec![1, n]
            } else {
                vec![n, 1]
            };
            self.reshape(a, s)
        } else {
            a
        };
        let a = self.bounded(a, 8.0);
        let s = self.shape(a);
        let r = s.len();
        let (batch, m, k) = (&s[..r - 2], s[r - 2], s[r - 1]);
        if self.rng.pct(20) && batch.is_empty() {
            // A weight on the left: w [m2, m] @ a [m, k].
            let m2 = self.rng.dim(self.cfg.max_dim);
            if m2 * m * k > self.cfg.max_work || !self.fits(m2 * m) || !self.fits(m2 * k) {
                return None;
            }
            let w = self.weight(vec![m2, m], m);
            return self.emit_op(Op::MatMul, &[w, a]).map(|_| ());
        }
        let batch_b = if batch.is_empty() && self.rng.pct(75) {
            vec![]
        } else {
            self.broadcast_partner(batch)
        };
        let out_batch = broadcast_shapes(batch, &batch_b)?;
        let n = self.rng.dim(self.cfg.max_dim);
        if numel(&out_batch) * m * k * n > self.cfg.max_work
            || !self.fits(numel(&batch_b) * k * n)
            || !self.fits(numel(&out_batch) * m * n)
        {
            return None;
        }
        let b = if batch_b.is_empty() && self.rng.pct(65) {
            self.weight(vec![k, n], k)
        } else {
            let fits = |b: &Builder, v| {
                let t = b.g.ty(v);
                t.dtype == DType::F32
                    && t.rank() >= 2
                    && t.shape[t.rank() - 2] == k
                    && t.shape[t.rank() - 1] <= n
                    && broadcast_shapes(batch, &t.shape[..t.rank() - 2]).is_some()
            };
            let c = self.candidates(fits);
            if !c.is_empty() && self.rng.pct(25) {
                let v = self.rng.pick(&c);
                self.bounded(v, 8.0)
            } else {
                self.input(DType::F32, [batch_b, vec![k, n]].concat())
            }
        };
        self.emit_op(Op::MatMul, &[a, b]).map(|_| ())
    }

    pub(super) fn conv(&mut self) -> Option<()> {
        let sp = self.rng.range(1, 2);
        let x = self.layer_input(sp + 2);
        let s = self.shape(x);
        let c = s[1];
        let groups = self.groups_of(c);
        let o = if groups == 1 {
            self.rng.dim(self.cfg.max_dim.min(32))
        } else {
            groups * self.rng.pick(&[1, 1, 2, 3])
        };
        let (mut kernel, mut attrs) = (
            Vec::new(),
            ConvAttrs {
                stride: vec![],
                padding: vec![],
                dilation: vec![],
                groups,
            },
        );
        let mut out = vec![s[0], o];
        for &len in &s[2..] {
            let mut k = self.rng.pick(&[1, 2, 3, 3, 5, 7]);
            let mut dil = self.rng.pick(&[1, 1, 1, 2, 3]);
            let span = |k: usize, d: usize| d * (k - 1) + 1;
            let pad = match self.rng.below(4) {
                0 => (0, 0),
                1 => ((span(k, dil) - 1) / 2, (span(k, dil) - 1) / 2),
                2 => (
                    self.rng.range(0, span(k, dil) - 1),
                    self.rng.range(0, span(k, dil) - 1),
                ),
                _ => (span(k, dil) - 1, 0),
            };
            while len + pad.0 + pad.1 < span(k, dil) {
                if dil > 1 {
                    dil = 1;
                } else {
                    k -= 1;
                }
            }
            let stride = self.rng.pick(&[1, 1, 2, 3]);
            out.push(window_out(len, pad, k, dil, stride)?);
            kernel.push(k);
            attrs.stride.push(stride);
            attrs.padding.push(pad);
            attrs.dilation.push(dil);
        }
        let fan = c / groups * numel(&kernel);
        if numel(&out) * fan > self.cfg.max_work || !self.fits(o * fan) || !self.fits(numel(&out)) {
            return None;
        }
        let w = self.weight([vec![o, c / groups], kernel].concat(), fan);
        let mut args = vec![x, w];
        if self.rng.pct(60) {
            args.push(self.param_in(vec![o], -0.5, 0.5));
        }
        self.emit_op(Op::Conv(attrs), &args).map(|_| ())
    }

    pub(super) fn conv_transpose(&mut self) -> Option<()> {
        let sp = self.rng.range(1, 2);
        let x = self.layer_input(sp + 2);
        let s = self.shape(x);
        let cin = s[1];
        let groups = self.groups_of(cin);
        let per_group = if groups == 1 {
            self.rng.dim(self.cfg.max_dim.min(16))
        } else {
            self.rng.pick(&[1, 1, 2, 3])
        };
        let mut attrs = ConvTransposeAttrs {
            stride: vec![],
            padding: vec![],
            output_padding: vec![],
            dilation: vec![],
            groups,
        };
        let mut kernel = Vec::new();
        let mut out_numel = s[0] * groups * per_group;
        for &len in &s[2..] {
            let k = self.rng.pick(&[1, 2, 3, 3, 4, 5]);
            let stride = self.rng.pick(&[1, 1, 2, 3]);
            let dil = self.rng.pick(&[1, 1, 2]);
            let op = self.rng.below(stride.max(dil));
            let reach = dil * (k - 1);
            let full = (len - 1) * stride + reach + op + 1;
            let mut pad = (self.rng.range(0, reach), self.rng.range(0, reach));
            if self.rng.pct(40) {
                pad = (0, 0);
            }
            while pad.0 + pad.1 >= full {
                pad = (pad.0 / 2, pad.1 / 2);
            }
            out_numel *= full - pad.0 - pad.1;
            kernel.push(k);
            attrs.stride.push(stride);
            attrs.padding.push(pad);
            attrs.output_padding.push(op);
            attrs.dilation.push(dil);
        }
        let work = numel(&s) * per_group * numel(&kernel);
        let w_numel = cin * per_group * numel(&kernel);
        if work > self.cfg.max_work || !self.fits(out_numel) || !self.fits(w_numel) {
            return None;
        }
        let fan = cin / groups * numel(&kernel);
        let w = self.weight([vec![cin, per_group], kernel].concat(), fan);
        let mut args = vec![x, w];
        if self.rng.pct(50) {
            args.push(self.param_in(vec![groups * per_group], -0.5, 0.5));
        }
        self.emit_op(Op::ConvTranspose(attrs), &args).map(|_| ())
    }

    pub(super) fn pool(&mut self) -> Option<()> {
        if self.rng.pct(25) {
            let rank = self.rng.range(3, 5);
            let x = self.f32_operand(rank, rank);
            return self.emit_op(Op::GlobalAvgPool, &[x]).map(|_| ());
        }
        let sp = self.rng.range(1, 2);
        let x = self.f32_operand(sp + 2, sp + 2);
        let s = self.shape(x);
        let kind = match self.rng.below(4) {
            0 | 1 => PoolKind::Max,
            2 => PoolKind::Avg {
                count_include_pad: true,
            },
            _ => PoolKind::Avg {
                count_include_pad: false,
            },
        };
        let mut attrs = PoolAttrs {
            kind,
            kernel: vec![],
            stride: vec![],
            padding: vec![],
        };
        for &len in &s[2..] {
            let mut k = self.rng.pick(&[1, 2, 2, 3, 3, 5]);
            let mut pad = (self.rng.range(0, k / 2), self.rng.range(0, k / 2));
            if len + pad.0 + pad.1 < k {
                k = len;
                pad = (self.rng.range(0, k / 2), self.rng.range(0, k / 2));
            }
            let stride = self.rng.pick(&[1, 2, 3, k]);
            attrs.kernel.push(k);
            attrs.stride.push(stride);
            attrs.padding.push(pad);
        }
        self.emit_op(Op::Pool(attrs), &[x]).map(|_| ())
    }
}
