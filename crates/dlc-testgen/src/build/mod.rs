//! The random graph builder: a pool of typed values with [`Fact`]s, operand
//! selection (chains, reuse, fresh sources), domain and magnitude guards, and one
//! module of main-op generators per family group.

mod backward;
mod elementwise;
mod index;
mod layout;
mod norm;
mod operands;
mod reduce;
mod seq;
mod spatial;

use dlc_ir::init::Init;
use dlc_ir::{BinaryOp, ConstValue, DType, Graph, NodeId, Op, TensorType, UnaryOp, ValueId, infer};

use crate::facts::{self, Fact};
use crate::rng::Rng;
use crate::{Family, GenConfig};

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
            Family::Backward => self.backward(),
        }
    }

    /// Picks 1 to `max_outputs` outputs: always the last main result, then (most
    /// often) the other values nothing consumes, so that little computation goes
    /// unchecked, and sometimes values that are also consumed.
    fn finish(&mut self) {
        let last = self.last.expect("every graph has a main op");
        let mut sinks: Vec<ValueId> = self
            .pool
            .iter()
            .copied()
            .filter(|&v| v != last && !v_is_source(&self.g, v) && self.g.use_count(v) == 0)
            .collect();
        self.rng.shuffle(&mut sinks);
        let max = self.cfg.max_outputs;
        let want = if self.rng.pct(80) {
            (1 + sinks.len()).min(max)
        } else {
            self.rng.range(1, max)
        };
        let mut outs = vec![last];
        outs.extend(sinks.into_iter().take(want - 1));
        while outs.len() < want && self.rng.coin() {
            let v = self.rng.pick(&self.pool);
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
}

fn v_is_source(g: &Graph, v: ValueId) -> bool {
    g.node(v.node).op.is_source()
}
