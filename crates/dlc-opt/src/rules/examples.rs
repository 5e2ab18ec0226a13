//! Random instances of each rule's left-hand side, for the property tests.
//!
//! Each example draws small random dims from the seed and builds a graph whose
//! output is an instance of the rule's left-hand side, with inputs for the
//! variables (their values come from the test, e.g. `dlc_testgen::random_values`)
//! and constants where the rule's condition needs a known value.

use dlc_ir::init::SplitMix64;
use dlc_ir::{BinaryOp, ConstValue, ConvAttrs, Graph, Op, TensorType, UnaryOp, ValueId};

/// Builds an instance of a rule's left-hand side; returns the value to output.
pub type Example = fn(&mut Ex) -> ValueId;

/// A graph under construction with a seeded source of dims.
pub struct Ex {
    graph: Graph,
    rng: SplitMix64,
}

impl Ex {
    /// An empty example graph drawing from `seed`.
    pub fn new(seed: u64) -> Ex {
        Ex {
            graph: Graph::new("example"),
            rng: SplitMix64::new(seed),
        }
    }

    /// A dim in `1..=max`.
    pub fn dim(&mut self, max: usize) -> usize {
        1 + (self.rng.next_u64() % max as u64) as usize
    }

    /// A new f32 input of the given shape.
    pub fn input(&mut self, shape: &[usize]) -> ValueId {
        let name = format!("in{}", self.graph.len());
        self.graph
            .add_source(Op::Input, name, TensorType::f32(shape), None)
            .expect("fresh input names are unique")
    }

    /// A new f32 parameter of the given shape (the test draws its values).
    pub fn param(&mut self, shape: &[usize]) -> ValueId {
        let name = format!("p{}", self.graph.len());
        let init = dlc_ir::init::Init::Normal {
            mean: 0.0,
            std: 1.0,
        };
        self.graph
            .add_source(Op::Param { init }, name, TensorType::f32(shape), None)
            .expect("fresh parameter names are unique")
    }

    /// A f32 constant filled with `v`.
    pub fn fill(&mut self, shape: &[usize], v: f64) -> ValueId {
        let ty = TensorType::f32(shape);
        let value = ConstValue::Float(vec![v; ty.numel()]);
        let name = format!("k{}", self.graph.len());
        self.graph
            .add_source(Op::Const { value }, name, ty, None)
            .expect("fresh constant names are unique")
    }

    /// Applies `op`.
    ///
    /// # Panics
    /// If the example is ill-typed (a bug in the example, caught by its test).
    pub fn op(&mut self, op: Op, args: &[ValueId]) -> ValueId {
        let id = self
            .graph
            .add_anon(op, args)
            .unwrap_or_else(|e| panic!("ill-typed rule example: {e}"));
        ValueId::first(id)
    }

    /// Binary op shorthand.
    pub fn bin(&mut self, op: BinaryOp, a: ValueId, b: ValueId) -> ValueId {
        self.op(Op::Binary(op), &[a, b])
    }

    /// Unary op shorthand.
    pub fn un(&mut self, op: UnaryOp, a: ValueId) -> ValueId {
        self.op(Op::Unary(op), &[a])
    }

    /// Swaps the last two dims of a value.
    pub fn t(&mut self, a: ValueId) -> ValueId {
        let r = self.graph.ty(a).rank();
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 1, r - 2);
        self.op(Op::Transpose { perm }, &[a])
    }

    /// A random shape of rank 1..=3 with dims up to 5.
    pub fn shape(&mut self) -> Vec<usize> {
        let r = self.dim(3);
        (0..r).map(|_| self.dim(5)).collect()
    }

    /// The finished graph with `out` as its only output `y`.
    pub fn finish(mut self, out: ValueId) -> Graph {
        self.graph.add_output("y", out);
        self.graph
    }
}

fn unary_chain(e: &mut Ex, op: UnaryOp) -> ValueId {
    let s = e.shape();
    let x = e.input(&s);
    let a = e.un(op, x);
    e.un(op, a)
}

fn with_const(e: &mut Ex, op: BinaryOp, v: f64, left: bool) -> ValueId {
    let s = e.shape();
    let x = e.input(&s);
    // A constant that broadcasts into x (a trailing part of its shape, or a scalar).
    let keep = e.dim(s.len() + 1) - 1;
    let c = e.fill(&s[s.len() - keep..], v);
    if left {
        e.bin(op, c, x)
    } else {
        e.bin(op, x, c)
    }
}

/// `x * 1`.
pub fn mul_one(e: &mut Ex) -> ValueId {
    with_const(e, BinaryOp::Mul, 1.0, false)
}
/// `1 * x`.
pub fn mul_one_left(e: &mut Ex) -> ValueId {
    with_const(e, BinaryOp::Mul, 1.0, true)
}
/// `x / 1`.
pub fn div_one(e: &mut Ex) -> ValueId {
    with_const(e, BinaryOp::Div, 1.0, false)
}
/// `x + 0`.
pub fn add_zero(e: &mut Ex) -> ValueId {
    with_const(e, BinaryOp::Add, 0.0, false)
}
/// `0 + x`.
pub fn add_zero_left(e: &mut Ex) -> ValueId {
    with_const(e, BinaryOp::Add, 0.0, true)
}
/// `x - 0`.
pub fn sub_zero(e: &mut Ex) -> ValueId {
    with_const(e, BinaryOp::Sub, 0.0, false)
}
/// `exp(x) - exp(x)` (a shared operand, as the rule needs the same class twice).
pub fn sub_self(e: &mut Ex) -> ValueId {
    let s = e.shape();
    let x = e.input(&s);
    let y = e.un(UnaryOp::Tanh, x);
    e.bin(BinaryOp::Sub, y, y)
}
/// `a + (-b)`.
pub fn add_neg(e: &mut Ex) -> ValueId {
    let s = e.shape();
    let (a, b) = (e.input(&s), e.input(&s));
    let n = e.un(UnaryOp::Neg, b);
    e.bin(BinaryOp::Add, a, n)
}
/// `a - (-b)`.
pub fn sub_neg(e: &mut Ex) -> ValueId {
    let s = e.shape();
    let (a, b) = (e.input(&s), e.input(&s));
    let n = e.un(UnaryOp::Neg, b);
    e.bin(BinaryOp::Sub, a, n)
}
/// `-(-x)`.
pub fn neg_neg(e: &mut Ex) -> ValueId {
    unary_chain(e, UnaryOp::Neg)
}
/// `relu(relu(x))`.
pub fn relu_relu(e: &mut Ex) -> ValueId {
    unary_chain(e, UnaryOp::Relu)
}
/// `log(exp(x))`.
pub fn log_exp(e: &mut Ex) -> ValueId {
    let s = e.shape();
    let x = e.input(&s);
    let a = e.un(UnaryOp::Exp, x);
    e.un(UnaryOp::Log, a)
}

fn mat(e: &mut Ex, m: usize, n: usize) -> ValueId {
    e.input(&[m, n])
}

/// `x·a + x·b`.
pub fn matmul_linear(e: &mut Ex) -> ValueId {
    let (m, k, n) = (e.dim(6), e.dim(6), e.dim(6));
    let x = mat(e, m, k);
    let (a, b) = (mat(e, k, n), mat(e, k, n));
    let (xa, xb) = (e.op(Op::MatMul, &[x, a]), e.op(Op::MatMul, &[x, b]));
    e.bin(BinaryOp::Add, xa, xb)
}
/// `(x·s)·w` with a large x and a small w, so hoisting pays.
pub fn scalar_hoist_in(e: &mut Ex) -> ValueId {
    let (m, k, n) = (32 + e.dim(32), e.dim(4), e.dim(4));
    let x = mat(e, m, k);
    let w = mat(e, k, n);
    let s = e.input(&[]);
    let xs = e.bin(BinaryOp::Mul, x, s);
    e.op(Op::MatMul, &[xs, w])
}
/// `(x·w)·s` with a large output and a small w.
pub fn scalar_hoist_out(e: &mut Ex) -> ValueId {
    let (m, k, n) = (32 + e.dim(32), e.dim(4), e.dim(4));
    let x = mat(e, m, k);
    let w = mat(e, k, n);
    let s = e.input(&[1]);
    let y = e.op(Op::MatMul, &[x, w]);
    e.bin(BinaryOp::Mul, y, s)
}
/// Two random transposes of a rank-3 value.
pub fn transpose_transpose(e: &mut Ex) -> ValueId {
    let s = [e.dim(4), e.dim(4), e.dim(4)];
    let x = e.input(&s);
    let perms = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let p = perms[e.dim(6) - 1].to_vec();
    let q = perms[e.dim(6) - 1].to_vec();
    let a = e.op(Op::Transpose { perm: p }, &[x]);
    e.op(Op::Transpose { perm: q }, &[a])
}
/// An identity transpose.
pub fn transpose_identity(e: &mut Ex) -> ValueId {
    let s = e.shape();
    let x = e.input(&s);
    let perm = (0..s.len()).collect();
    let y = e.op(Op::Transpose { perm }, &[x]);
    e.un(UnaryOp::Tanh, y)
}
/// Two reshapes.
pub fn reshape_reshape(e: &mut Ex) -> ValueId {
    let (a, b, c) = (e.dim(4), e.dim(4), e.dim(4));
    let x = e.input(&[a, b, c]);
    let y = e.op(
        Op::Reshape {
            shape: vec![a * b, c],
        },
        &[x],
    );
    e.op(
        Op::Reshape {
            shape: vec![a, b * c],
        },
        &[y],
    )
}
/// A reshape to the same shape.
pub fn reshape_identity(e: &mut Ex) -> ValueId {
    let s = e.shape();
    let x = e.input(&s);
    e.op(Op::Reshape { shape: s }, &[x])
}
/// `(a·b)ᵀ` next to `aᵀ` and `bᵀ` (so `bᵀ·aᵀ` reuses them and saves a transpose).
pub fn transpose_matmul(e: &mut Ex) -> ValueId {
    let m = 2 + e.dim(6);
    let (a, b) = (mat(e, m, m), mat(e, m, m));
    let ab = e.op(Op::MatMul, &[a, b]);
    let abt = e.t(ab);
    let (at, bt) = (e.t(a), e.t(b));
    let s = e.bin(BinaryOp::Add, abt, bt);
    e.bin(BinaryOp::Add, s, at)
}
/// `aᵀ·bᵀ` for rank-3 operands.
pub fn matmul_transposes(e: &mut Ex) -> ValueId {
    let (bt, m, k, n) = (e.dim(3), e.dim(6), e.dim(6), e.dim(6));
    let (a0, b0) = (e.input(&[bt, k, m]), e.input(&[bt, n, k]));
    let (a, b) = (e.t(a0), e.t(b0));
    e.op(Op::MatMul, &[a, b])
}
/// `(a·b)·c` where `a·(b·c)` is cheaper (c has few columns).
pub fn matmul_assoc_right(e: &mut Ex) -> ValueId {
    let (m, k, n) = (16 + e.dim(16), 16 + e.dim(16), 16 + e.dim(16));
    let (a, b, c) = (mat(e, m, k), mat(e, k, n), mat(e, n, 1));
    let ab = e.op(Op::MatMul, &[a, b]);
    e.op(Op::MatMul, &[ab, c])
}
/// `a·(b·c)` where `(a·b)·c` is cheaper (a has few rows).
pub fn matmul_assoc_left(e: &mut Ex) -> ValueId {
    let (k, n, p) = (16 + e.dim(16), 16 + e.dim(16), 16 + e.dim(16));
    let (a, b, c) = (mat(e, 1, k), mat(e, k, n), mat(e, n, p));
    let bc = e.op(Op::MatMul, &[b, c]);
    e.op(Op::MatMul, &[a, bc])
}
/// Three projections of one large input (q/k/v-like), summed.
pub fn matmul_merge(e: &mut Ex) -> ValueId {
    let (m, k, n) = (1024 + e.dim(64), 96 + e.dim(32), e.dim(4));
    let x = mat(e, m, k);
    let ws: Vec<ValueId> = (0..3).map(|_| e.param(&[k, n])).collect();
    let ys: Vec<ValueId> = ws.iter().map(|&w| e.op(Op::MatMul, &[x, w])).collect();
    let s = e.bin(BinaryOp::Mul, ys[0], ys[1]);
    e.bin(BinaryOp::Add, s, ys[2])
}
/// A parameter-free computation on a constant.
pub fn fold_constant(e: &mut Ex) -> ValueId {
    let s = e.shape();
    let x = e.input(&s);
    let c = e.fill(&s, 0.5);
    let ec = e.un(UnaryOp::Exp, c);
    e.bin(BinaryOp::Mul, x, ec)
}

/// The batchnorm operands for `c` channels (variance kept positive).
fn bn_operands(e: &mut Ex, c: usize) -> [ValueId; 4] {
    let (g, b, m, v0) = (e.input(&[c]), e.input(&[c]), e.input(&[c]), e.input(&[c]));
    let va = e.un(UnaryOp::Abs, v0);
    let one = e.fill(&[], 1.0);
    let v = e.bin(BinaryOp::Add, va, one);
    [g, b, m, v]
}

fn bn(e: &mut Ex, x: ValueId, c: usize) -> ValueId {
    let [g, b, m, v] = bn_operands(e, c);
    let op = Op::BatchNorm {
        eps: 1e-5,
        momentum: 0.1,
        training: false,
    };
    e.op(op, &[x, g, b, m, v])
}

/// `batchnorm(x·w)`.
pub fn batchnorm_matmul(e: &mut Ex) -> ValueId {
    let (n, k, o) = (e.dim(6), e.dim(6), e.dim(6));
    let (x, w) = (mat(e, n, k), mat(e, k, o));
    let y = e.op(Op::MatMul, &[x, w]);
    bn(e, y, o)
}
/// `batchnorm(x·w + c)`.
pub fn batchnorm_matmul_bias(e: &mut Ex) -> ValueId {
    let (n, k, o) = (e.dim(6), e.dim(6), e.dim(6));
    let (x, w, c) = (mat(e, n, k), mat(e, k, o), e.input(&[o]));
    let y = e.op(Op::MatMul, &[x, w]);
    let yc = e.bin(BinaryOp::Add, y, c);
    bn(e, yc, o)
}

fn conv(e: &mut Ex, bias: bool) -> ValueId {
    let (n, c, o, h) = (e.dim(2), e.dim(3), e.dim(4), 3 + e.dim(4));
    let x = e.input(&[n, c, h, h]);
    let w = e.input(&[o, c, 3, 3]);
    let attrs = ConvAttrs {
        stride: vec![1, 1],
        padding: vec![(1, 1), (1, 1)],
        dilation: vec![1, 1],
        groups: 1,
    };
    let mut args = vec![x, w];
    if bias {
        args.push(e.input(&[o]));
    }
    let y = e.op(Op::Conv(attrs), &args);
    bn(e, y, o)
}
/// `batchnorm(conv(x, w))`.
pub fn batchnorm_conv(e: &mut Ex) -> ValueId {
    conv(e, false)
}
/// `batchnorm(conv(x, w, c))`.
pub fn batchnorm_conv_bias(e: &mut Ex) -> ValueId {
    conv(e, true)
}

fn attn(e: &mut Ex, scale: Option<BinaryOp>) -> ValueId {
    let (b, l, s, d) = (e.dim(3), 4 + e.dim(12), 4 + e.dim(12), 2 + e.dim(8));
    let (q, k, v) = (
        e.input(&[b, l, d]),
        e.input(&[b, s, d]),
        e.input(&[b, s, d]),
    );
    let kt = e.t(k);
    let mut scores = e.op(Op::MatMul, &[q, kt]);
    if let Some(op) = scale {
        let c = e.fill(&[], (d as f64).sqrt());
        scores = e.bin(op, scores, c);
    }
    let p = e.op(Op::Softmax { axis: 2 }, &[scores]);
    e.op(Op::MatMul, &[p, v])
}
/// `softmax(q·kᵀ)·v`.
pub fn attention(e: &mut Ex) -> ValueId {
    attn(e, None)
}
/// `softmax(q·kᵀ·s)·v`.
pub fn attention_mul(e: &mut Ex) -> ValueId {
    attn(e, Some(BinaryOp::Mul))
}
/// `softmax(q·kᵀ/s)·v`.
pub fn attention_div(e: &mut Ex) -> ValueId {
    attn(e, Some(BinaryOp::Div))
}
