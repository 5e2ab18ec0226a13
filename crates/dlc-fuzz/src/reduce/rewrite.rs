//! Graph surgery for the reducer: substitute values (by new inputs or by other
//! values of the same type), drop outputs, and remove everything dead.

use std::collections::{HashMap, HashSet};

use dlc_ir::{Graph, NodeId, Op, Output, ValueId};
use dlc_tensor::{Env, Tensor};

use crate::TestCase;

/// What a value is replaced by.
#[derive(Clone, Debug)]
pub(crate) enum Repl {
    /// A new input of the value's type, holding this value.
    Input(Tensor),
    /// An earlier value of the same type.
    Value(ValueId),
}

/// Rebuilds `case` with values substituted and `outputs` (indices into the current
/// outputs) kept, dropping dead nodes, inputs and parameters. `None` if the result
/// would not be a valid graph (the caller's substitution was ill-typed).
pub(crate) fn rebuild(
    case: &TestCase,
    subst: &HashMap<ValueId, Repl>,
    outputs: &[usize],
) -> Option<TestCase> {
    let g = &case.graph;
    let resolve = |mut v: ValueId| {
        while let Some(Repl::Value(u)) = subst.get(&v) {
            if u.node >= v.node || g.try_ty(*u)? != g.ty(v) {
                return None;
            }
            v = *u;
        }
        Some(v)
    };
    // Liveness, from the kept outputs back.
    let mut live: HashSet<NodeId> = HashSet::new();
    let mut as_input: HashSet<ValueId> = HashSet::new();
    let mut stack: Vec<ValueId> = Vec::new();
    for &i in outputs {
        stack.push(resolve(g.outputs().get(i)?.value)?);
    }
    while let Some(v) = stack.pop() {
        if matches!(subst.get(&v), Some(Repl::Input(_))) {
            as_input.insert(v);
        } else if live.insert(v.node) {
            for u in g.operands(v.node) {
                stack.push(resolve(u)?);
            }
        }
    }
    let mut out = Graph::new(g.name.clone());
    let mut map: HashMap<ValueId, ValueId> = HashMap::new();
    let (mut inputs, mut params) = (Env::new(), Env::new());
    let taken: HashSet<&str> = g
        .node_ids()
        .flat_map(|n| g.node(n).names.iter().map(String::as_str))
        .collect();
    for id in g.node_ids() {
        let node = g.node(id);
        for r in 0..node.types.len() {
            let v = ValueId {
                node: id,
                result: r as u32,
            };
            if let (true, Some(Repl::Input(t))) = (as_input.contains(&v), subst.get(&v)) {
                let mut name = node.names[r].clone();
                if live.contains(&id) {
                    name = fresh(&taken, &name);
                }
                let nv = out
                    .add_source(Op::Input, name.clone(), node.types[r].clone(), None)
                    .ok()?;
                inputs.insert(name, t.clone());
                map.insert(v, nv);
            }
        }
        if !live.contains(&id) {
            continue;
        }
        let nid = if node.op.is_source() {
            let ty = node.types[0].clone();
            let name = &node.names[0];
            match node.op {
                Op::Input => inputs.insert(name.clone(), case.inputs.get(name)?.clone()),
                Op::Param { .. } => params.insert(name.clone(), case.params.get(name)?.clone()),
                _ => None,
            };
            out.add_source(node.op.clone(), name.clone(), ty, node.span)
                .ok()?
                .node
        } else {
            let operands: Option<Vec<ValueId>> = g
                .operands(id)
                .into_iter()
                .map(|u| map.get(&resolve(u)?).copied())
                .collect();
            out.add_op(node.op.clone(), &operands?, node.names.clone(), node.span)
                .ok()?
        };
        for r in 0..node.types.len() as u32 {
            let v = ValueId {
                node: id,
                result: r,
            };
            map.entry(v).or_insert(ValueId {
                node: nid,
                result: r,
            });
        }
    }
    let outs: Option<Vec<Output>> = outputs
        .iter()
        .map(|&i| {
            let o = &g.outputs()[i];
            Some(Output {
                name: o.name.clone(),
                value: *map.get(&resolve(o.value)?)?,
            })
        })
        .collect();
    out.set_outputs(outs?);
    dlc_ir::verify(&out).ok()?;
    Some(TestCase {
        graph: out,
        inputs,
        params,
    })
}

/// `base` or `base_in`, `base_in2`, ... whichever is not taken.
fn fresh(taken: &HashSet<&str>, base: &str) -> String {
    let mut name = format!("{base}_in");
    let mut k = 1;
    while taken.contains(name.as_str()) {
        k += 1;
        name = format!("{base}_in{k}");
    }
    name
}

/// The case with dead nodes, inputs and parameters removed.
pub(crate) fn prune(case: &TestCase) -> Option<TestCase> {
    let all: Vec<usize> = (0..case.graph.outputs().len()).collect();
    rebuild(case, &HashMap::new(), &all)
}
