//! The tensor language the e-graph holds, and the mapping between its nodes and dlc ops.
//!
//! Ops that rules talk about get their own named variant, so rules can be written
//! as ordinary egg patterns (`(matmul ?x ?w)`). Ops with attributes take the
//! attributes as their *first child*: an e-class holding one [`Attr`] leaf (e.g.
//! `(transpose ?perm ?x)`), so a rule can bind the attributes to a variable and a
//! condition can read them. Every other op is an opaque [`Tensor::Other`] node that
//! carries its whole [`Op`], so any graph can enter the e-graph. Ops with several
//! results are a *tuple* e-class read by `(get ?index ?tuple)` nodes.
//!
//! Attribute values, opaque ops and graph sources are interned in the
//! [`TensorAnalysis`](crate::analysis::TensorAnalysis) tables; the language only holds
//! their small integer keys, which keeps nodes cheap to hash and compare.

use std::fmt;
use std::str::FromStr;

use dlc_ir::{BinaryOp, Op, UnaryOp};
use egg::Id;

/// Key of an interned [`Op`] (attributes or an opaque op).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpKey(pub u32);

/// Key of an interned graph source (input, parameter or constant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceKey(pub u32);

/// An attribute leaf: the attributes of the op that has it as first child.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attr {
    /// An interned op whose attributes apply (e.g. `Op::Transpose { perm }`).
    Op(OpKey),
    /// The result index of a `get`.
    Index(u32),
}

/// Parsing exists only because egg's patterns require it: keys are never written
/// in rule text, so every string is refused.
macro_rules! unparsable {
    ($($t:ty => $fmt:literal),*) => {$(
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Err(format!("`{s}` is not a {} (keys cannot be written in patterns)", stringify!($t)))
            }
        }
    )*};
}
unparsable!(OpKey => "op#{}", SourceKey => "src#{}", Attr => "");

impl fmt::Display for OpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op#{}", self.0)
    }
}

impl fmt::Display for SourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "src#{}", self.0)
    }
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attr::Op(k) => write!(f, "attr#{}", k.0),
            Attr::Index(i) => write!(f, "index#{i}"),
        }
    }
}

// egg's macro cannot document variants, so the lint is relaxed for this module only.
mod node {
    #![allow(missing_docs)]
    use super::{Attr, OpKey, SourceKey};
    use egg::{Id, define_language};

    define_language! {
        /// A tensor program in the e-graph (variants are documented by their text form).
        ///
        /// Children are value e-classes except the leading attribute child of
        /// `transpose`, `reshape`, `softmax`, `slice`, `concat`, `conv`, `batchnorm`
        /// (inference only), `attention` (each an [`Attr::Op`] holding the op) and `get`
        /// (an [`Attr::Index`]). `Attr`, `Source` and `Other` are the attribute leaves,
        /// graph sources and opaque ops.
        pub enum Tensor {
            "add" = Add([Id; 2]),
            "sub" = Sub([Id; 2]),
            "mul" = Mul([Id; 2]),
            "div" = Div([Id; 2]),
            "neg" = Neg([Id; 1]),
            "exp" = Exp([Id; 1]),
            "log" = Log([Id; 1]),
            "relu" = Relu([Id; 1]),
            "matmul" = MatMul([Id; 2]),
            // `(transpose attr x)`, attr = `Op::Transpose`.
            "transpose" = Transpose([Id; 2]),
            // `(reshape attr x)`, attr = `Op::Reshape`.
            "reshape" = Reshape([Id; 2]),
            // `(softmax attr x)`, attr = `Op::Softmax`.
            "softmax" = Softmax([Id; 2]),
            // `(slice attr x)`, attr = `Op::Slice`.
            "slice" = Slice([Id; 2]),
            // `(concat attr x...)`, attr = `Op::Concat`.
            "concat" = Concat(Box<[Id]>),
            // `(conv attr x w)` or `(conv attr x w b)`, attr = `Op::Conv`.
            "conv" = Conv(Box<[Id]>),
            // `(batchnorm attr x gamma beta mean var)`, attr = inference `Op::BatchNorm`.
            "batchnorm" = BatchNorm([Id; 6]),
            // `(attention attr q k v)`, attr = `Op::Attention`.
            "attention" = Attention([Id; 4]),
            // `(get index tuple)`: one result of a multi-result op.
            "get" = Get([Id; 2]),
            Attr(Attr),
            Source(SourceKey),
            Other(OpKey, Vec<Id>),
        }
    }
}

pub use node::Tensor;

/// How an e-node computes, seen as a dlc op.
pub enum NodeOp<'a> {
    /// An op without attributes, named by the node itself.
    Plain(Op),
    /// An attributed op: the op is held by the attribute class (the first child).
    Attributed,
    /// An opaque op carrying its key.
    Opaque(OpKey),
    /// A `get`, a source or an attribute: not an op.
    NotAnOp(&'a Tensor),
}

impl Tensor {
    /// Classifies the node (see [`NodeOp`]).
    pub fn node_op(&self) -> NodeOp<'_> {
        use Tensor::*;
        let b = |op| NodeOp::Plain(Op::Binary(op));
        let u = |op| NodeOp::Plain(Op::Unary(op));
        match self {
            Add(_) => b(BinaryOp::Add),
            Sub(_) => b(BinaryOp::Sub),
            Mul(_) => b(BinaryOp::Mul),
            Div(_) => b(BinaryOp::Div),
            Neg(_) => u(UnaryOp::Neg),
            Exp(_) => u(UnaryOp::Exp),
            Log(_) => u(UnaryOp::Log),
            Relu(_) => u(UnaryOp::Relu),
            MatMul(_) => NodeOp::Plain(Op::MatMul),
            Transpose(_) | Reshape(_) | Softmax(_) | Slice(_) | Concat(_) | Conv(_)
            | BatchNorm(_) | Attention(_) => NodeOp::Attributed,
            Other(k, _) => NodeOp::Opaque(*k),
            Get(_) | Attr(_) | Source(_) => NodeOp::NotAnOp(self),
        }
    }

    /// The value operands of the node (its children after the attribute child).
    pub fn operands(&self) -> &[Id] {
        match self.node_op() {
            NodeOp::Attributed => &egg::Language::children(self)[1..],
            NodeOp::NotAnOp(Tensor::Get(c)) => &c[1..],
            _ => egg::Language::children(self),
        }
    }

    /// The node for `op` applied to `operands`, with `attr` the attribute class when
    /// the op has a named attributed variant. Returns `None` for ops that are opaque
    /// (the caller then builds [`Tensor::Other`]).
    pub fn named(op: &Op, attr: Id, operands: &[Id]) -> Option<Tensor> {
        use Tensor::*;
        let one = |f: fn([Id; 1]) -> Tensor| (operands.len() == 1).then(|| f([operands[0]]));
        let two =
            |f: fn([Id; 2]) -> Tensor| (operands.len() == 2).then(|| f([operands[0], operands[1]]));
        let with_attr =
            |f: fn([Id; 2]) -> Tensor| (operands.len() == 1).then(|| f([attr, operands[0]]));
        let boxed = || {
            std::iter::once(attr)
                .chain(operands.iter().copied())
                .collect::<Box<[Id]>>()
        };
        match op {
            Op::Binary(BinaryOp::Add) => two(Add),
            Op::Binary(BinaryOp::Sub) => two(Sub),
            Op::Binary(BinaryOp::Mul) => two(Mul),
            Op::Binary(BinaryOp::Div) => two(Div),
            Op::Unary(UnaryOp::Neg) => one(Neg),
            Op::Unary(UnaryOp::Exp) => one(Exp),
            Op::Unary(UnaryOp::Log) => one(Log),
            Op::Unary(UnaryOp::Relu) => one(Relu),
            Op::MatMul => two(MatMul),
            Op::Transpose { .. } => with_attr(Transpose),
            Op::Reshape { .. } => with_attr(Reshape),
            Op::Softmax { .. } => with_attr(Softmax),
            Op::Slice { .. } => with_attr(Slice),
            Op::Concat { .. } => Some(Concat(boxed())),
            Op::Conv(_) if matches!(operands.len(), 2 | 3) => Some(Conv(boxed())),
            Op::BatchNorm {
                training: false, ..
            } if operands.len() == 5 => {
                let o = operands;
                Some(BatchNorm([attr, o[0], o[1], o[2], o[3], o[4]]))
            }
            Op::Attention { .. } if operands.len() == 3 => {
                Some(Attention([attr, operands[0], operands[1], operands[2]]))
            }
            _ => None,
        }
    }
}
