//! The e-class analysis: every e-class knows its result types, and small
//! parameter-free classes know their value.
//!
//! Types make rewrites shape-correct: an applier computes the types of what it is
//! about to add (see [`crate::build`]) and refuses to add anything whose types
//! differ from the matched class. Known values drive the conditions of the
//! algebraic rules (`x * 1`) and constant folding.

use std::collections::HashMap;
use std::sync::Arc;

use dlc_ir::{ConstValue, DType, Graph, Op, TensorType, ValueId};
use dlc_tensor::{Env, Value};
use egg::{Analysis, DidMerge, EGraph, Id, Language};

use crate::lang::{Attr, NodeOp, OpKey, SourceKey, Tensor};

/// The e-graph type of the optimiser.
pub type TensorGraph = EGraph<Tensor, TensorAnalysis>;

/// Constants with more elements than this are neither tracked nor folded (folding
/// bigger ones would trade runtime work for parameter memory and compile time).
pub const FOLD_LIMIT: usize = 4096;

/// A graph source in the e-graph: an original input, parameter or constant, or a
/// constant created by a rule.
#[derive(Clone, Debug)]
pub struct SourceInfo {
    /// `Input`, `Param` or `Const`.
    pub op: Op,
    /// The source's type.
    pub ty: TensorType,
    /// The node of the original graph, `None` for constants created by rules.
    pub original: Option<dlc_ir::NodeId>,
}

/// The analysis state: interning tables for ops and sources.
#[derive(Debug, Default)]
pub struct TensorAnalysis {
    ops: Vec<Op>,
    op_keys: HashMap<String, OpKey>,
    sources: Vec<SourceInfo>,
    const_keys: HashMap<String, SourceKey>,
    /// Choices that only pay off together (from multi-pattern rules), for extraction.
    pub groups: Vec<Vec<(Id, Tensor)>>,
    /// Every successful rewrite: the rule and the class it rewrote (for `--explain`).
    pub rewritten: Vec<(egg::Symbol, Id)>,
    /// Whether parameter-only nodes cost their amortised share
    /// ([`crate::OptOptions::amortise_params`]).
    pub amortise_params: bool,
}

/// What an e-class knows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Data {
    /// The attribute held by an attribute class.
    pub attr: Option<Attr>,
    /// One type per result: one for a value, several for a tuple, none for an
    /// attribute (or, never expected, a node whose types could not be inferred).
    pub types: Vec<TensorType>,
    /// The value, row-major, when the class is parameter-free and small.
    pub konst: Option<Arc<Vec<f64>>>,
    /// The value depends on no model input (only on parameters and constants):
    /// a weight, or something computed from weights alone.
    pub input_free: bool,
}

impl Data {
    /// The single result type, if the class is a single value.
    pub fn ty(&self) -> Option<&TensorType> {
        match self.types.as_slice() {
            [t] => Some(t),
            _ => None,
        }
    }

    /// Whether the class is a known constant with every element equal to `v`.
    pub fn is_all(&self, v: f64) -> bool {
        self.konst
            .as_ref()
            .is_some_and(|k| k.iter().all(|&x| x == v))
    }
}

impl TensorAnalysis {
    /// Interns an op (by its full value, attributes included).
    pub fn intern_op(&mut self, op: Op) -> OpKey {
        let text = format!("{op:?}");
        if let Some(&k) = self.op_keys.get(&text) {
            return k;
        }
        let k = OpKey(self.ops.len() as u32);
        self.ops.push(op);
        self.op_keys.insert(text, k);
        k
    }

    /// The op behind a key.
    pub fn op(&self, k: OpKey) -> &Op {
        &self.ops[k.0 as usize]
    }

    /// Registers an original source node (never deduplicated: each is its own leaf).
    pub fn add_source(&mut self, info: SourceInfo) -> SourceKey {
        self.sources.push(info);
        SourceKey(self.sources.len() as u32 - 1)
    }

    /// Interns a rule-made constant of type `ty` with the given values.
    pub fn intern_const(&mut self, ty: TensorType, values: &[f64]) -> SourceKey {
        let text = format!("{ty}{values:?}");
        if let Some(&k) = self.const_keys.get(&text) {
            return k;
        }
        let value = match ty.dtype {
            DType::F32 => ConstValue::Float(values.to_vec()),
            DType::I64 => ConstValue::Int(values.iter().map(|&x| x as i64).collect()),
            DType::Bool => ConstValue::Bool(values.iter().map(|&x| x != 0.0).collect()),
        };
        let k = self.add_source(SourceInfo {
            op: Op::Const { value },
            ty,
            original: None,
        });
        self.const_keys.insert(text, k);
        k
    }

    /// The source behind a key.
    pub fn source(&self, k: SourceKey) -> &SourceInfo {
        &self.sources[k.0 as usize]
    }

    /// The dlc op an e-node computes, given its attribute class's data.
    pub fn node_op(&self, node: &Tensor, attr: Option<&Data>) -> Option<Op> {
        match node.node_op() {
            NodeOp::Plain(op) => Some(op),
            NodeOp::Opaque(k) => Some(self.op(k).clone()),
            NodeOp::Attributed => match attr?.attr? {
                Attr::Op(k) => Some(self.op(k).clone()),
                Attr::Index(_) => None,
            },
            NodeOp::NotAnOp(_) => None,
        }
    }

    /// Computes the data of `node` from its children's data (in child order).
    pub fn compute(&self, node: &Tensor, children: &[&Data]) -> Data {
        match node {
            Tensor::Attr(a) => Data {
                attr: Some(*a),
                ..Data::default()
            },
            Tensor::Source(k) => {
                let s = self.source(*k);
                let konst = match &s.op {
                    Op::Const { value } if s.ty.numel() <= FOLD_LIMIT => {
                        Some(Arc::new(expand(value.to_f64(), &s.ty)))
                    }
                    _ => None,
                };
                Data {
                    attr: None,
                    types: vec![s.ty.clone()],
                    konst,
                    input_free: !matches!(s.op, Op::Input),
                }
            }
            Tensor::Get(_) => {
                let index = match children[0].attr {
                    Some(Attr::Index(i)) => i as usize,
                    _ => usize::MAX,
                };
                Data {
                    attr: None,
                    types: children[1].types.get(index).cloned().into_iter().collect(),
                    konst: None,
                    input_free: children[1].input_free,
                }
            }
            _ => {
                let Some(op) = self.node_op(node, children.first().copied()) else {
                    return Data::default();
                };
                let skip = node.children().len() - node.operands().len();
                let operands = &children[skip..];
                let Some(types) = operands
                    .iter()
                    .map(|d| d.ty().cloned())
                    .collect::<Option<Vec<_>>>()
                else {
                    return Data::default();
                };
                let Ok(types) = dlc_ir::infer(&op, &types) else {
                    return Data::default();
                };
                let konst = fold(&op, operands, &types);
                Data {
                    attr: None,
                    types,
                    konst,
                    input_free: operands.iter().all(|d| d.input_free),
                }
            }
        }
    }
}

/// A constant's values as the runtime sees them: at full length (a one-value
/// constant fills its shape) and rounded to f32 for f32 constants.
fn expand(values: Vec<f64>, ty: &TensorType) -> Vec<f64> {
    let round = |x: f64| {
        if ty.dtype == DType::F32 {
            x as f32 as f64
        } else {
            x
        }
    };
    if values.len() == 1 && ty.numel() > 1 {
        vec![round(values[0]); ty.numel()]
    } else {
        values.into_iter().map(round).collect()
    }
}

/// Evaluates `op` on known operand values with the reference interpreter (in f32,
/// what the JIT computes), when every operand is known and the result is small.
fn fold(op: &Op, operands: &[&Data], types: &[TensorType]) -> Option<Arc<Vec<f64>>> {
    let [ty] = types else { return None };
    if ty.numel() > FOLD_LIMIT || operands.iter().any(|d| d.konst.is_none()) || op.is_source() {
        return None;
    }
    let mut g = Graph::new("fold");
    let mut args = Vec::with_capacity(operands.len());
    for (i, d) in operands.iter().enumerate() {
        let t = d.ty()?.clone();
        let values = d.konst.as_ref()?.as_ref().clone();
        let value = match t.dtype {
            DType::F32 => ConstValue::Float(values),
            DType::I64 => ConstValue::Int(values.iter().map(|&x| x as i64).collect()),
            DType::Bool => ConstValue::Bool(values.iter().map(|&x| x != 0.0).collect()),
        };
        args.push(
            g.add_source(Op::Const { value }, format!("c{i}"), t, None)
                .ok()?,
        );
    }
    let id = g.add_op(op.clone(), &args, vec!["y".into()], None).ok()?;
    g.add_output("y", ValueId::first(id));
    let out = dlc_interp::run::<f32>(&g, &Env::new(), &Env::new()).ok()?;
    let values: Vec<f64> = match out.get("y")? {
        Value::Float(a) => a.iter().map(|&x| x as f64).collect(),
        Value::Int(a) => a.iter().map(|&x| x as f64).collect(),
        Value::Bool(a) => a.iter().map(|&x| x as u8 as f64).collect(),
    };
    Some(Arc::new(values))
}

impl Analysis<Tensor> for TensorAnalysis {
    type Data = Data;

    fn make(egraph: &mut TensorGraph, enode: &Tensor, _id: Id) -> Data {
        let children: Vec<&Data> = enode.children().iter().map(|&c| &egraph[c].data).collect();
        egraph.analysis.compute(enode, &children)
    }

    fn merge(&mut self, a: &mut Data, b: Data) -> DidMerge {
        // Rules only union classes of equal types (the builder checks), so only the
        // known value and input-freedom can be learned from the other side.
        debug_assert!(a.types == b.types || a.types.is_empty() || b.types.is_empty());
        let mut changed_a = false;
        if a.types.is_empty() && !b.types.is_empty() {
            a.types = b.types.clone();
            changed_a = true;
        }
        let changed_b = (a.konst.is_some() && b.konst.is_none()) || (a.input_free && !b.input_free);
        if b.input_free && !a.input_free {
            a.input_free = true;
            changed_a = true;
        }
        if a.konst.is_none() && b.konst.is_some() {
            a.konst = b.konst;
            changed_a = true;
        }
        DidMerge(changed_a, changed_b)
    }
}
