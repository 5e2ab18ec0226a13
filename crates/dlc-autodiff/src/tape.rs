//! The builder the VJP rules write the backward graph with: typed helpers over
//! [`Graph::add_anon`] for the ops gradients are made of (arithmetic with
//! broadcasting, reductions back to an operand's shape, constants, layout).

use std::collections::HashMap;

use dlc_ir::{BinaryOp, ConstValue, DType, Graph, Op, ReduceKind, TensorType, UnaryOp, ValueId};

use crate::AutodiffError;

/// Appends nodes to the graph being differentiated.
pub(crate) struct Tape {
    /// The graph: the forward nodes, then everything appended.
    pub g: Graph,
    /// Scalar f32 constants already emitted, by bit pattern.
    scalars: HashMap<u64, ValueId>,
    consts: usize,
}

/// A short result type for rules.
pub(crate) type R<T> = Result<T, AutodiffError>;

impl Tape {
    /// Starts appending to `g`.
    pub fn new(g: Graph) -> Tape {
        Tape {
            g,
            scalars: HashMap::new(),
            consts: 0,
        }
    }

    /// Adds an op and returns all its results.
    pub fn ops(&mut self, op: Op, args: &[ValueId]) -> R<Vec<ValueId>> {
        let name = op.name();
        let node = self
            .g
            .add_anon(op, args)
            .map_err(|e| AutodiffError::Internal(format!("building `{name}`: {e}")))?;
        let n = self.g.node(node).types.len() as u32;
        Ok((0..n).map(|result| ValueId { node, result }).collect())
    }

    /// Adds a single-result op.
    pub fn op(&mut self, op: Op, args: &[ValueId]) -> R<ValueId> {
        Ok(self.ops(op, args)?[0])
    }

    /// The shape of a value.
    pub fn shape(&self, v: ValueId) -> Vec<usize> {
        self.g.ty(v).shape.clone()
    }

    /// The rank of a value.
    pub fn rank(&self, v: ValueId) -> usize {
        self.g.ty(v).rank()
    }

    /// A constant of `ty` with `value` (a fresh `_cN` name).
    pub fn constant(&mut self, ty: TensorType, value: ConstValue) -> R<ValueId> {
        let mut name = format!("_c{}", self.consts);
        while self.g.lookup(&name).is_some() {
            self.consts += 1;
            name = format!("_c{}", self.consts);
        }
        self.consts += 1;
        self.g
            .add_source(Op::Const { value }, name, ty, None)
            .map_err(|e| AutodiffError::Internal(format!("constant: {e}")))
    }

    /// The f32 scalar `x` (one node per distinct value).
    pub fn scalar(&mut self, x: f64) -> R<ValueId> {
        if let Some(&v) = self.scalars.get(&x.to_bits()) {
            return Ok(v);
        }
        let v = self.constant(
            TensorType::f32(Vec::<usize>::new()),
            ConstValue::Float(vec![x]),
        )?;
        self.scalars.insert(x.to_bits(), v);
        Ok(v)
    }

    /// Zeros of `shape` (a broadcast scalar).
    pub fn zeros(&mut self, shape: &[usize]) -> R<ValueId> {
        let z = self.scalar(0.0)?;
        self.broadcast(z, shape)
    }

    /// `x` broadcast to `shape` (no node if it already has it).
    pub fn broadcast(&mut self, x: ValueId, shape: &[usize]) -> R<ValueId> {
        if self.g.ty(x).shape == shape {
            return Ok(x);
        }
        self.op(
            Op::BroadcastTo {
                shape: shape.to_vec(),
            },
            &[x],
        )
    }

    /// `x` reshaped (no node if the shape is unchanged).
    pub fn reshape(&mut self, x: ValueId, shape: &[usize]) -> R<ValueId> {
        if self.g.ty(x).shape == shape {
            return Ok(x);
        }
        self.op(
            Op::Reshape {
                shape: shape.to_vec(),
            },
            &[x],
        )
    }

    /// `x` with its dims permuted (no node for the identity).
    pub fn transpose(&mut self, x: ValueId, perm: &[usize]) -> R<ValueId> {
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(x);
        }
        self.op(
            Op::Transpose {
                perm: perm.to_vec(),
            },
            &[x],
        )
    }

    /// `x` with its last two dims swapped.
    pub fn transpose_last2(&mut self, x: ValueId) -> R<ValueId> {
        let r = self.rank(x);
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 2, r - 1);
        self.transpose(x, &perm)
    }

    /// A binary op.
    pub fn bin(&mut self, b: BinaryOp, x: ValueId, y: ValueId) -> R<ValueId> {
        self.op(Op::Binary(b), &[x, y])
    }

    /// `x + y`.
    pub fn add(&mut self, x: ValueId, y: ValueId) -> R<ValueId> {
        self.bin(BinaryOp::Add, x, y)
    }

    /// `x - y`.
    pub fn sub(&mut self, x: ValueId, y: ValueId) -> R<ValueId> {
        self.bin(BinaryOp::Sub, x, y)
    }

    /// `x * y`.
    pub fn mul(&mut self, x: ValueId, y: ValueId) -> R<ValueId> {
        self.bin(BinaryOp::Mul, x, y)
    }

    /// `x / y`.
    pub fn div(&mut self, x: ValueId, y: ValueId) -> R<ValueId> {
        self.bin(BinaryOp::Div, x, y)
    }

    /// `x * c` for a constant `c` (no node when `c` is 1).
    pub fn scale(&mut self, x: ValueId, c: f64) -> R<ValueId> {
        if c == 1.0 {
            return Ok(x);
        }
        let c = self.scalar(c)?;
        self.mul(x, c)
    }

    /// A unary op.
    pub fn un(&mut self, u: UnaryOp, x: ValueId) -> R<ValueId> {
        self.op(Op::Unary(u), &[x])
    }

    /// `-x`.
    pub fn neg(&mut self, x: ValueId) -> R<ValueId> {
        self.un(UnaryOp::Neg, x)
    }

    /// `where(cond, a, b)`.
    pub fn select(&mut self, cond: ValueId, a: ValueId, b: ValueId) -> R<ValueId> {
        self.op(Op::Where, &[cond, a, b])
    }

    /// A comparison of `x` with the scalar `c`.
    pub fn cmp_scalar(&mut self, b: BinaryOp, x: ValueId, c: f64) -> R<ValueId> {
        let c = self.scalar(c)?;
        self.bin(b, x, c)
    }

    /// `where(cond, x, 0)`.
    pub fn mask(&mut self, cond: ValueId, x: ValueId) -> R<ValueId> {
        let z = self.scalar(0.0)?;
        self.select(cond, x, z)
    }

    /// A reduction (no node when `axes` is empty).
    pub fn reduce(
        &mut self,
        kind: ReduceKind,
        x: ValueId,
        axes: &[usize],
        keepdim: bool,
    ) -> R<ValueId> {
        if axes.is_empty() {
            return Ok(x);
        }
        self.op(
            Op::Reduce {
                kind,
                axes: axes.to_vec(),
                keepdim,
            },
            &[x],
        )
    }

    /// The sum over `axes`.
    pub fn sum(&mut self, x: ValueId, axes: &[usize], keepdim: bool) -> R<ValueId> {
        self.reduce(ReduceKind::Sum, x, axes, keepdim)
    }

    /// The mean over `axes`, keeping them.
    pub fn mean_keep(&mut self, x: ValueId, axes: &[usize]) -> R<ValueId> {
        self.reduce(ReduceKind::Mean, x, axes, true)
    }

    /// Reduces a gradient of a broadcast result back to the operand's `shape`:
    /// sums the leading dims the operand lacks and the dims where it has size 1.
    pub fn sum_to(&mut self, g: ValueId, shape: &[usize]) -> R<ValueId> {
        let gs = self.shape(g);
        if gs == shape {
            return Ok(g);
        }
        let lead = gs.len() - shape.len();
        let axes: Vec<usize> = (0..gs.len())
            .filter(|&i| i < lead || (shape[i - lead] == 1 && gs[i] != 1))
            .collect();
        let s = self.sum(g, &axes, true)?;
        self.reshape(s, shape)
    }

    /// A cast.
    pub fn cast(&mut self, x: ValueId, to: DType) -> R<ValueId> {
        self.op(Op::Cast { to }, &[x])
    }

    /// The element count of a value as f64.
    pub fn numel(&self, v: ValueId) -> f64 {
        self.g.ty(v).numel() as f64
    }
}
