//! The random graph builder: a pool of typed values with [`Fact`]s, operand
//! selection (chains, reuse, fresh sources), domain and magnitude guards, and one
//! module of main-op generators per family group.

mod elementwise;
mod index;
mod layout;
mod norm;
mod reduce;
mod seq;
mod spatial;

use dlc_ir::init::Init;
use dlc_ir::types::broadcast_shapes;
use dlc_ir::{BinaryOp, ConstValue, DType, Graph, NodeId, Op, TensorType, UnaryOp, ValueId, infer};

use crate::facts::{self, Fact};
use crate::rng::Rng;
use crate::{Family, GenConfig};

/// Operands of ops that multiply magnitudes (mul, matmul, conv, sum, ...) are
/// brought below this first.
const GROWTH_LIMIT: f64 = 64.0;

/// Main ops whose f32 results would carry an estimated error above this fraction
/// of their magnitude are not emitted (the step is retried on fresh operands).
const REL_LIMIT: f64 = 1e-3;

/// Builds one graph.
pub(crate) struct Builder {
    pub cfg: GenConfig,
    pub rng: Rng,
    pub g: Graph,
    facts: Vec<Vec<Fact>>,
    /// Values later ops may consume (i64 inputs are excluded: each feeds exactly
    /// one index consumer, so `random_values` can infer its range).
    pool: Vec<ValueId>,
    /// The most recent main result: chains continue from it.
    last: Option<ValueId>,
    /// Values made positive by [`Builder::positive`], with their true lower bound.
    safe_pos: Vec<(ValueId, f64)>,
    names: usize,
    /// Retrying a step that did not fit the budgets: fresh, small operands only.
    small: bool,
    /// Main ops refused as ill-conditioned (for the generator's own tests).
    pub rejected: usize,
    /// Attempts at a step that failed (budget or conditioning) and were retried.
    pub retried: usize,
}

/// The op count of `random_graph(seed, cfg)`, from a stream separate from the
/// builder's so that graphs for one seed and growing op counts share a prefix.
pub(crate) fn op_count(seed: u64, cfg: &GenConfig) -> usize {
    Rng::new(seed ^ 0x6f70_2d63_6f75_6e74).range(1, cfg.max_ops.max(1))
}

/// A graph of `ops` main ops built from `seed`.
pub(crate) fn build(seed: u64, cfg: &GenConfig, ops: usize) -> Graph {
    build_counting(seed, cfg, ops).0
}

/// [`build`], also returning how many main ops were refused as ill-conditioned
/// and how many step attempts were retried.
pub(crate) fn build_counting(seed: u64, cfg: &GenConfig, ops: usize) -> (Graph, usize, usize) {
    let mut b = Builder {
        cfg: cfg.sanitized(),
        rng: Rng::new(seed),
        g: Graph::new(format!("random_{seed}")),
        facts: Vec::new(),
        pool: Vec::new(),
        last: None,
        safe_pos: Vec::new(),
        names: 0,
        small: false,
        rejected: 0,
        retried: 0,
    };
    for _ in 0..ops.max(1) {
        let family = b.rng.pick(&b.cfg.families);
        b.family(family);
    }
    b.finish();
    (b.g, b.rejected, b.retried)
}

impl Builder {
    /// Emits one main op of family `f`. A generator returns `None` when its op
    /// would exceed the element or work budget; it is retried with small fresh
    /// operands, and as a last resort a `relu` of a fresh input is emitted.
    fn family(&mut self, f: Family) {
        for attempt in 0..4 {
            self.small = attempt > 0;
            let done = self.family_once(f).is_some();
            self.small = false;
            if done {
                return;
            }
            self.retried += 1;
        }
        let x = self.input(DType::F32, vec![1]);
        let v = self.unary(UnaryOp::Relu, x);
        self.emit(v);
    }

    fn family_once(&mut self, f: Family) -> Option<()> {
        match f {
            Family::Elementwise => self.elementwise(),
            Family::MatMul => self.matmul(),
            Family::Conv => self.conv(),
            Family::ConvTranspose => self.conv_transpose(),
            Family::Pool => self.pool(),
            Family::Reduce => self.reduce(),
            Family::Softmax => self.softmax(),
            Family::Layout => self.layout(),
            Family::Gather => self.gather_family(),
            Family::Norm => self.norm(),
            Family::Loss => self.loss(),
            Family::Dropout => self.dropout(),
            Family::Recurrent => self.recurrent(),
            Family::GridLstm => self.grid_lstm(),
            Family::Attention => self.attention(),
        }
    }

    /// Picks 1 to `max_outputs` outputs: always the last main result, then values
    /// nothing consumes (or, less often, any pool value).
    fn finish(&mut self) {
        let last = self.last.expect("every graph has a main op");
        let mut outs = vec![last];
        let want = self.rng.range(1, self.cfg.max_outputs);
        let sinks: Vec<ValueId> = self
            .pool
            .iter()
            .copied()
            .filter(|&v| !v_is_source(&self.g, v) && self.g.use_count(v) == 0)
            .collect();
        for _ in 1..want {
            let from = if self.rng.pct(70) && !sinks.is_empty() {
                &sinks
            } else {
                &self.pool
            };
            let v = self.rng.pick(from);
            if !outs.contains(&v) && !v_is_source(&self.g, v) {
                outs.push(v);
            }
        }
        for (i, v) in outs.into_iter().enumerate() {
            self.g.add_output(format!("out{i}"), v);
        }
    }

    // ---------------------------------------------------------------- values

    pub fn fact(&self, v: ValueId) -> Fact {
        self.facts[v.node.index()][v.result as usize]
    }

    pub fn ty(&self, v: ValueId) -> TensorType {
        self.g.ty(v).clone()
    }

    pub fn shape(&self, v: ValueId) -> Vec<usize> {
        self.g.ty(v).shape.clone()
    }

    pub fn dtype(&self, v: ValueId) -> DType {
        self.g.ty(v).dtype
    }

    fn fresh_name(&mut self, prefix: &str) -> String {
        self.names += 1;
        format!("{prefix}{}", self.names - 1)
    }

    fn source(&mut self, op: Op, prefix: &str, ty: TensorType, fact: Fact) -> ValueId {
        assert!(
            ty.numel() <= self.cfg.max_numel,
            "dlc-testgen: source {ty} exceeds the element budget"
        );
        let name = self.fresh_name(prefix);
        let v = self
            .g
            .add_source(op, name, ty, None)
            .expect("fresh names are unique");
        self.facts.push(vec![fact]);
        v
    }

    /// A fresh runtime input (f32 in [-2, 2], bool; i64 inputs go through
    /// [`Builder::index_input`]).
    pub fn input(&mut self, dtype: DType, shape: Vec<usize>) -> ValueId {
        debug_assert!(dtype != DType::I64);
        let fact = match dtype {
            DType::F32 => {
                let b = crate::values::F32_INPUT_BOUND as f64;
                Fact::exact(-b, b)
            }
            _ => Fact::exact(0.0, 1.0),
        };
        let v = self.source(Op::Input, "x", TensorType::new(dtype, shape), fact);
        self.pool.push(v);
        v
    }

    /// A fresh i64 input in `0..limit`, to be consumed once, directly, by an index
    /// consumer with that limit (never pooled).
    pub fn index_input(&mut self, shape: Vec<usize>, limit: usize) -> ValueId {
        let fact = Fact::exact(0.0, limit as f64 - 1.0);
        self.source(Op::Input, "i", TensorType::new(DType::I64, shape), fact)
    }

    /// A fresh f32 parameter.
    pub fn param(&mut self, shape: Vec<usize>, init: Init) -> ValueId {
        let fact = facts::init_fact(&init, &shape);
        self.source(Op::Param { init }, "w", TensorType::f32(shape), fact)
    }

    /// A weight `U(-a, a)` for a fan-in of `fan` (`a ≈ 1/sqrt(fan)`, a multiple
    /// of 1/64), sometimes Glorot-uniform instead.
    pub fn weight(&mut self, shape: Vec<usize>, fan: usize) -> ValueId {
        let init = if self.rng.pct(15) && shape.len() >= 2 {
            Init::GlorotUniform
        } else {
            let a = (64.0 / (fan.max(1) as f64).sqrt()).ceil() / 64.0;
            Init::Uniform { lo: -a, hi: a }
        };
        self.param(shape, init)
    }

    /// A parameter drawn from `U(lo, hi)` (or constant `lo` when equal).
    pub fn param_in(&mut self, shape: Vec<usize>, lo: f64, hi: f64) -> ValueId {
        let init = match (lo, hi) {
            (0.0, 0.0) => Init::Zeros,
            (1.0, 1.0) => Init::Ones,
            _ if lo == hi => Init::Constant(lo),
            _ => Init::Uniform { lo, hi },
        };
        self.param(shape, init)
    }

    /// A constant of any dtype.
    pub fn constant(&mut self, dtype: DType, shape: Vec<usize>, value: ConstValue) -> ValueId {
        let fact = facts::const_fact(&value);
        let v = self.source(
            Op::Const { value },
            "c",
            TensorType::new(dtype, shape),
            fact,
        );
        self.pool.push(v);
        v
    }

    /// An f32 scalar constant (use values exact in f32).
    pub fn scalar(&mut self, x: f64) -> ValueId {
        self.constant(DType::F32, vec![], ConstValue::Float(vec![x]))
    }

    /// An i64 scalar constant.
    pub fn int_scalar(&mut self, x: i64) -> ValueId {
        self.constant(DType::I64, vec![], ConstValue::Int(vec![x]))
    }

    // ------------------------------------------------------------------- ops

    /// Adds an op whose results fit the element budget, or returns `None`.
    ///
    /// # Panics
    /// If the op is ill-typed: the generator constructs valid attributes directly,
    /// so this is a generator bug (the crate's tests draw thousands of graphs).
    pub fn try_op(&mut self, op: Op, args: &[ValueId]) -> Option<NodeId> {
        self.add_checked(op, args, false)
    }

    /// [`Builder::try_op`], optionally also refusing ill-conditioned results: an f32
    /// result whose estimated error exceeds [`REL_LIMIT`] of its magnitude would
    /// get a tolerance so loose that the comparison says little.
    fn add_checked(&mut self, op: Op, args: &[ValueId], guard: bool) -> Option<NodeId> {
        let tys: Vec<TensorType> = args.iter().map(|&v| self.ty(v)).collect();
        let out = infer(&op, &tys).unwrap_or_else(|e| {
            panic!("dlc-testgen built an invalid op: {e}\n  op: {op:?}\n  operands: {tys:?}")
        });
        if out.iter().any(|t| t.numel() > self.cfg.max_numel) {
            return None;
        }
        let arg_facts: Vec<Fact> = args.iter().map(|&v| self.fact(v)).collect();
        let refs: Vec<&TensorType> = tys.iter().collect();
        let f = facts::op_facts(&op, &arg_facts, &refs, &out);
        let bad = |(f, t): (&Fact, &TensorType)| {
            t.dtype == DType::F32 && f.err > REL_LIMIT * f.m() && f.err > 1e-6
        };
        if guard && f.iter().zip(&out).any(bad) {
            self.rejected += 1;
            return None;
        }
        let id = self.g.add_anon(op, args).expect("inferred above");
        self.facts.push(f);
        Some(id)
    }

    /// Adds a single-result helper op (pooled, but not a chain head).
    pub fn op(&mut self, op: Op, args: &[ValueId]) -> ValueId {
        let name = op.name();
        let id = self
            .try_op(op, args)
            .unwrap_or_else(|| panic!("dlc-testgen: helper {name} exceeds the element budget"));
        let v = ValueId::first(id);
        self.pool.push(v);
        v
    }

    /// Records a main result: pooled and the head of the chain.
    pub fn emit(&mut self, v: ValueId) -> ValueId {
        if !self.pool.contains(&v) {
            self.pool.push(v);
        }
        self.last = Some(v);
        v
    }

    /// Adds a main op (if within budget and well-conditioned) and emits a
    /// non-empty random subset of its results.
    pub fn emit_op(&mut self, op: Op, args: &[ValueId]) -> Option<ValueId> {
        let id = self.add_checked(op, args, true)?;
        let n = self.g.node(id).types.len();
        let mut chosen: Vec<u32> = (0..n as u32).filter(|_| self.rng.pct(60)).collect();
        if chosen.is_empty() {
            chosen.push(self.rng.below(n) as u32);
        }
        let mut last = None;
        for r in chosen {
            let v = ValueId {
                node: id,
                result: r,
            };
            self.pool.push(v);
            last = Some(v);
        }
        last.map(|v| self.emit(v))
    }

    pub fn unary(&mut self, u: UnaryOp, x: ValueId) -> ValueId {
        self.op(Op::Unary(u), &[x])
    }

    pub fn binary(&mut self, b: BinaryOp, x: ValueId, y: ValueId) -> ValueId {
        self.op(Op::Binary(b), &[x, y])
    }

    pub fn reshape(&mut self, x: ValueId, shape: Vec<usize>) -> ValueId {
        self.op(Op::Reshape { shape }, &[x])
    }

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

fn v_is_source(g: &Graph, v: ValueId) -> bool {
    g.node(v.node).op.is_source()
}
