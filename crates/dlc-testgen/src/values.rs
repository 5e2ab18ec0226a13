//! Input and parameter values for a graph, and the ranges they are drawn from.

use dlc_ir::init::param_seed;
use dlc_ir::{DType, Graph, NodeId, Op, ValueId};
use dlc_tensor::{Env, Value};
use ndarray::{ArrayD, IxDyn};

use crate::facts::Fact;
use crate::rng::Rng;

/// f32 inputs are drawn uniformly from `[-F32_INPUT_BOUND, F32_INPUT_BOUND)`.
pub const F32_INPUT_BOUND: f32 = 2.0;

/// i64 inputs that feed no index consumer are drawn from `0..DEFAULT_INT_LIMIT`.
pub const DEFAULT_INT_LIMIT: usize = 4;

/// The exclusive upper bound an i64 value must respect for the index consumers it
/// reaches through value-preserving ops (layout, `gather` data, `where` branches):
/// `gather` indices (the gathered dim), `one_hot` (the depth), `cross_entropy`
/// labels (the class count). `None` when it reaches none.
pub fn index_limit(g: &Graph, v: ValueId) -> Option<usize> {
    index_limit_depth(g, v, 0)
}

fn index_limit_depth(g: &Graph, v: ValueId, depth: usize) -> Option<usize> {
    if depth > 16 {
        return None;
    }
    let mut users: Vec<NodeId> = g.users(v.node).collect();
    users.sort();
    users.dedup();
    let mut limit: Option<usize> = None;
    let uses = users.into_iter().flat_map(|user| {
        let operands = g.operands(user);
        let slots: Vec<usize> = (0..operands.len()).filter(|&i| operands[i] == v).collect();
        slots.into_iter().map(move |slot| (user, slot))
    });
    for (user, operand) in uses {
        let operands = g.operands(user);
        let shape = |i: usize| &g.ty(operands[i]).shape;
        let here = match (&g.node(user).op, operand) {
            (Op::Gather { axis }, 1) => Some(shape(0)[*axis]),
            (Op::OneHot { depth }, 0) => Some(*depth),
            (Op::CrossEntropy, 1) => Some(shape(0)[1]),
            (Op::GatherGrad { size, .. }, 1) => Some(*size),
            (
                Op::Reshape { .. }
                | Op::Transpose { .. }
                | Op::BroadcastTo { .. }
                | Op::Slice { .. }
                | Op::Concat { .. }
                | Op::Gather { .. },
                _,
            )
            | (Op::Where, 1 | 2) => index_limit_depth(g, ValueId::first(user), depth + 1),
            _ => None,
        };
        limit = match (limit, here) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    limit
}

/// The range [`random_values`] draws an input from.
pub(crate) fn input_fact(g: &Graph, id: NodeId) -> Fact {
    let b = F32_INPUT_BOUND as f64;
    match g.node(id).types[0].dtype {
        DType::F32 => Fact::exact(-b, b),
        DType::Bool => Fact::exact(0.0, 1.0),
        DType::I64 => {
            let limit = index_limit(g, ValueId::first(id)).unwrap_or(DEFAULT_INT_LIMIT);
            Fact::exact(0.0, limit.max(1) as f64 - 1.0)
        }
    }
}

/// Inputs and parameters for `graph`, deterministic in `seed`.
///
/// - f32 inputs: uniform in `[-2, 2)`; the generator builds graphs that keep every
///   op in its domain for such inputs (`log(abs(x) + c)`, `exp` of bounded values,
///   denominators bounded away from zero, ...), so no NaN or infinity arises;
/// - i64 inputs: uniform in `0..limit`, where `limit` is the smallest bound of the
///   `gather` / `one_hot` / `cross_entropy` operands they reach ([`index_limit`]),
///   else `0..4`;
/// - bool inputs: fair coins;
/// - parameters: their initialisers, materialised as [`dlc_tensor::init_params`]
///   does with `seed` (so `dlc run --seed` reproduces them).
///
/// Each input's stream is seeded by `seed` and its name, so values do not depend
/// on the order of declarations.
pub fn random_values(graph: &Graph, seed: u64) -> (Env, Env) {
    let mut inputs = Env::new();
    for id in graph.inputs() {
        let node = graph.node(id);
        let (name, ty) = (&node.names[0], &node.types[0]);
        let mut rng = Rng::new(param_seed(seed, name));
        let n = ty.numel();
        let shape = IxDyn(&ty.shape);
        let value = match ty.dtype {
            DType::F32 => {
                let b = F32_INPUT_BOUND as f64;
                let data = (0..n).map(|_| (-b + 2.0 * b * rng.unit()) as f32).collect();
                Value::Float(ArrayD::from_shape_vec(shape, data).expect("numel values"))
            }
            DType::I64 => {
                let hi = input_fact(graph, id).hi as usize + 1;
                let data = (0..n).map(|_| rng.below(hi) as i64).collect();
                Value::Int(ArrayD::from_shape_vec(shape, data).expect("numel values"))
            }
            DType::Bool => {
                let data = (0..n).map(|_| rng.coin()).collect();
                Value::Bool(ArrayD::from_shape_vec(shape, data).expect("numel values"))
            }
        };
        inputs.insert(name.clone(), value);
    }
    let params = dlc_tensor::init_params(graph, seed, &Env::new())
        .expect("initialisers produce values of the declared types");
    (inputs, params)
}
