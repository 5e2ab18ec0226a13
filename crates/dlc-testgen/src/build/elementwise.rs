//! Elementwise main ops: unary, binary (with broadcasting on either side),
//! comparisons, logical ops, integer arithmetic, activations with attributes,
//! casts and `where`.

use dlc_ir::types::broadcast_shapes;
use dlc_ir::{BinaryOp as B, ConstValue, DType, Op, UnaryOp as U, ValueId};

use super::Builder;

const F32_UNARY: [U; 13] = [
    U::Neg,
    U::Abs,
    U::Relu,
    U::Exp,
    U::Log,
    U::Sqrt,
    U::Rsqrt,
    U::Sigmoid,
    U::Tanh,
    U::GeluErf,
    U::GeluTanh,
    U::Softplus,
    U::Erf,
];

impl Builder {
    pub(super) fn elementwise(&mut self) -> Option<()> {
        match self.rng.weighted(&[28, 26, 10, 6, 6, 12, 7, 5]) {
            0 => self.ew_unary(),
            1 => self.ew_binary(),
            2 => self.ew_compare(),
            3 => self.ew_logical(),
            4 => self.ew_int(),
            5 => self.ew_activation(),
            6 => self.ew_cast(),
            _ => self.ew_where(),
        }
    }

    fn ew_unary(&mut self) -> Option<()> {
        let u = self.rng.pick(&F32_UNARY);
        let x = self.f32_operand(0, 4);
        let x = match u {
            U::Log | U::Sqrt | U::Rsqrt => {
                let x = self.bounded(x, 1e3);
                let min = self.rng.pick(&[0.25, 0.5, 1.0]);
                self.positive(x, min)
            }
            U::Exp => {
                let limit = self.rng.pick(&[1.0, 2.0, 4.0]);
                self.bounded(x, limit)
            }
            _ => self.bounded(x, 1e4),
        };
        self.emit_op(Op::Unary(u), &[x]).map(|_| ())
    }

    fn ew_binary(&mut self) -> Option<()> {
        let ops = [
            B::Add,
            B::Sub,
            B::Mul,
            B::Div,
            B::Pow,
            B::Maximum,
            B::Minimum,
        ];
        let b = ops[self.rng.weighted(&[20, 14, 16, 14, 10, 13, 13])];
        let a = self.f32_operand(0, 4);
        let other = self.partner(a, DType::F32, false);
        let (x, y) = if self.rng.coin() {
            (a, other)
        } else {
            (other, a)
        };
        let (x, y) = match b {
            B::Div => {
                let x = self.bounded(x, 1e3);
                let min = self.rng.pick(&[0.25, 0.5, 1.0]);
                (x, self.nonzero(y, min))
            }
            B::Pow => {
                let base = self.bounded(x, 4.0);
                let min = self.rng.pick(&[0.25, 0.5]);
                let base = self.positive(base, min);
                let e = if self.rng.pct(40) {
                    let k = self.rng.pick(&[2.0, 0.5, -1.0, 3.0, 1.5, -0.5]);
                    self.scalar(k)
                } else {
                    self.bounded(y, 2.0)
                };
                (base, e)
            }
            B::Mul => (self.tame(x), self.tame(y)),
            _ => (self.bounded(x, 1e4), self.bounded(y, 1e4)),
        };
        self.emit_op(Op::Binary(b), &[x, y]).map(|_| ())
    }

    /// A value of `dtype` that broadcasts with `a` (exact if asked): `a` itself, a
    /// pool value, a scalar constant, or a fresh input of a partner shape.
    pub(super) fn partner(&mut self, a: ValueId, dtype: DType, exact: bool) -> ValueId {
        let s = self.shape(a);
        let r = if self.small { 99 } else { self.rng.below(100) };
        if r < 10 && self.dtype(a) == dtype {
            return a;
        }
        if r < 35 {
            let max = self.cfg.max_numel;
            let c = self.candidates(|b, v| {
                b.dtype(v) == dtype
                    && (!exact || b.fact(v).exact)
                    && broadcast_shapes(&s, &b.g.ty(v).shape)
                        .is_some_and(|o| o.iter().product::<usize>() <= max)
            });
            if !c.is_empty() {
                return self.rng.pick(&c);
            }
        }
        let p = self.broadcast_partner(&s);
        let numel: usize = p.iter().product();
        match dtype {
            DType::F32 if r < 45 && numel == 1 => {
                let k = self.rng.grid(-2.0, 2.0, 8.0);
                self.constant(DType::F32, p, ConstValue::Float(vec![k]))
            }
            DType::F32 | DType::Bool => self.input(dtype, p),
            DType::I64 if numel <= 8 => {
                let vals = (0..numel)
                    .map(|_| self.rng.range(0, 8) as i64 - 3)
                    .collect();
                self.constant(DType::I64, p, ConstValue::Int(vals))
            }
            DType::I64 => {
                let x = self.input(DType::F32, p);
                self.op(Op::Cast { to: DType::I64 }, &[x])
            }
        }
    }

    /// An exact operand of `dtype` for comparisons and casts.
    fn exact_operand(&mut self, dtype: DType) -> ValueId {
        match dtype {
            DType::F32 => self.exact_f32(0, 4),
            DType::I64 => self.int_operand(),
            DType::Bool => self.bool_operand(),
        }
    }

    /// An i64 value (exact, small range): from the pool, or a cast of an exact f32.
    pub(super) fn int_operand(&mut self) -> ValueId {
        let c = self
            .candidates(|b, v| b.dtype(v) == DType::I64 && b.fact(v).exact && b.fact(v).m() <= 1e6);
        if !c.is_empty() && !self.small && self.rng.pct(70) {
            return self.rng.pick(&c);
        }
        let x = self.exact_f32(0, 4);
        self.op(Op::Cast { to: DType::I64 }, &[x])
    }

    /// A bool value: from the pool, a fresh comparison, or a fresh input.
    pub(super) fn bool_operand(&mut self) -> ValueId {
        let c = self.candidates(|b, v| b.dtype(v) == DType::Bool && b.fact(v).exact);
        let r = if self.small { 80 } else { self.rng.below(100) };
        if r < 50 && !c.is_empty() {
            return self.rng.pick(&c);
        }
        if r < 80 {
            let a = self.exact_f32(0, 4);
            let b = self.partner(a, DType::F32, true);
            let cmp = self.rng.pick(&[B::Lt, B::Le, B::Gt, B::Ge, B::Eq, B::Ne]);
            return self.binary(cmp, a, b);
        }
        let rank = self.rng.range(0, self.cfg.max_rank);
        let shape = self.fresh_shape(rank, self.cfg.max_numel);
        self.input(DType::Bool, shape)
    }

    fn ew_compare(&mut self) -> Option<()> {
        let dtype = [DType::F32, DType::I64, DType::Bool][self.rng.weighted(&[70, 20, 10])];
        let cmp = if dtype == DType::Bool {
            self.rng.pick(&[B::Eq, B::Ne])
        } else {
            self.rng.pick(&[B::Eq, B::Ne, B::Lt, B::Le, B::Gt, B::Ge])
        };
        let a = self.exact_operand(dtype);
        let b = self.partner(a, dtype, true);
        let (x, y) = if self.rng.coin() { (a, b) } else { (b, a) };
        let c = self.binary(cmp, x, y);
        if self.rng.coin() {
            self.where_on(c)
        } else {
            self.emit(c);
            Some(())
        }
    }

    fn ew_where(&mut self) -> Option<()> {
        let c = self.bool_operand();
        self.where_on(c)
    }

    /// `where(c, x, y)` with branches that broadcast with `c` (f32 mostly, or i64/bool).
    fn where_on(&mut self, c: ValueId) -> Option<()> {
        let dtype = [DType::F32, DType::I64, DType::Bool][self.rng.weighted(&[75, 15, 10])];
        let x = self.partner(c, dtype, false);
        let mut y = self.partner(c, dtype, false);
        let fits = broadcast_shapes(&self.shape(c), &self.shape(x))
            .and_then(|s| broadcast_shapes(&s, &self.shape(y)))
            .is_some_and(|s| s.iter().product::<usize>() <= self.cfg.max_numel);
        if !fits {
            y = x;
        }
        self.emit_op(Op::Where, &[c, x, y]).map(|_| ())
    }

    fn ew_logical(&mut self) -> Option<()> {
        let a = self.bool_operand();
        let v = if self.rng.pct(30) {
            self.unary(U::Not, a)
        } else {
            let b = self.partner(a, DType::Bool, true);
            let op = self.rng.pick(&[B::And, B::Or]);
            self.binary(op, a, b)
        };
        self.emit(v);
        Some(())
    }

    fn ew_int(&mut self) -> Option<()> {
        let a = self.int_operand();
        let b = self.partner(a, DType::I64, true);
        let small = self.fact(a).m() <= 1e3 && self.fact(b).m() <= 1e3;
        let ops = [B::Add, B::Sub, B::Mul, B::Maximum, B::Minimum];
        let op = ops[self
            .rng
            .weighted(&[25, 20, if small { 20 } else { 0 }, 18, 17])];
        let v = self.binary(op, a, b);
        self.emit(v);
        Some(())
    }

    fn ew_activation(&mut self) -> Option<()> {
        let x = self.f32_operand(0, 4);
        let x = self.bounded(x, 1e4);
        let op = match self.rng.below(3) {
            0 => Op::LeakyRelu {
                alpha: if self.rng.coin() {
                    self.rng.pick(&[0.01, 0.1, 0.2, 0.3])
                } else {
                    self.rng.grid(0.0, 1.5, 64.0)
                },
            },
            1 => Op::Elu {
                alpha: self.rng.grid(0.125, 2.0, 8.0),
            },
            _ => {
                let min = self.rng.grid(-3.0, 1.0, 8.0);
                Op::Clamp {
                    min,
                    max: min + self.rng.grid(0.125, 4.0, 8.0),
                }
            }
        };
        self.emit_op(op, &[x]).map(|_| ())
    }

    fn ew_cast(&mut self) -> Option<()> {
        let to = self.rng.pick(&[DType::F32, DType::I64, DType::Bool]);
        let x = match self.rng.weighted(&[50, 25, 25]) {
            0 if to == DType::F32 => self.f32_operand(0, 4),
            0 => self.exact_f32(0, 4),
            1 => self.int_operand(),
            _ => self.bool_operand(),
        };
        let v = self.op(Op::Cast { to }, &[x]);
        self.emit(v);
        Some(())
    }
}
