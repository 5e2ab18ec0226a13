//! Reverse-mode automatic differentiation as a graph transform, and optimisers
//! as graph updates.
//!
//! [`grad`] takes a graph, the name of a scalar value (the loss) and the names of
//! the values to differentiate with respect to (parameters, inputs or any f32
//! value), and returns a new graph: the original nodes and outputs, then the
//! backward pass appended as ordinary nodes, with each gradient as a new output
//! `grad_<name>`. The backward graph is therefore printed, optimised, compiled
//! and interpreted like any other graph.
//!
//! ```
//! use dlc_ir::syntax::{self, Dims};
//! let src = "model m {\n  input x: f32[4, 3]\n  param w: f32[3, 2] = glorot_uniform\n  \
//!            loss = sum(tanh(x @ w))\n  output loss\n}\n";
//! let g = syntax::parse_graph(src, &Dims::new()).unwrap();
//! let dg = dlc_autodiff::grad(&g, "loss", &["w"]).unwrap();
//! assert_eq!(dg.outputs().last().unwrap().name, "grad_w");
//! assert_eq!(dg.ty(dg.outputs()[1].value).shape, vec![3, 2]);
//! // The result is valid IR: it prints and parses back.
//! let text = syntax::print(&dg);
//! assert_eq!(syntax::parse_graph(&text, &Dims::new()).unwrap(), dg);
//! ```
//!
//! How it works: a dependency pass ([`deps`]) finds the values that depend on the
//! differentiated ones through differentiable edges; then the nodes are visited
//! in reverse order from the loss, each with a *vector-Jacobian product* rule
//! (`rules`, one module per op family) that appends the nodes computing its
//! operands' gradients from its results' cotangents. Gradients of a value used
//! several times are summed; a gradient of a broadcast operand is summed back to
//! its shape. Most rules are compositions of existing ops (a convolution's input
//! gradient is a transposed convolution, softmax and normalisation gradients are
//! elementwise ops and reductions); recurrent layers, the grid LSTM, attention,
//! the convolution weight gradient, pooling and gather use dedicated backward ops,
//! which have interpreter and JIT implementations like every op.
//!
//! [`optim`] builds a training step: forward, loss, backward and the optimiser's
//! update of every parameter (SGD, momentum, Adam), as one graph whose update
//! values the runtime writes over the parameters in place.
#![deny(missing_docs)]

mod deps;
pub mod optim;
mod rules;
mod tape;

use std::collections::HashMap;

use dlc_ir::{ConstValue, DType, Graph, TensorType, ValueId};

pub use optim::{Optimizer, TrainStep, Update, training_step};

use deps::Deps;
use tape::Tape;

/// Why a gradient could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AutodiffError {
    /// A name given to differentiate (or to differentiate with respect to) is not
    /// a value of the graph.
    #[error("`{name}` is not a value of model `{model}`{hint}")]
    Unknown {
        /// The name given.
        name: String,
        /// The model.
        model: String,
        /// Close names or the parameters, as a hint.
        hint: String,
    },
    /// The value to differentiate is not a scalar.
    #[error(
        "cannot differentiate `{name}`: it has type {ty}, but a gradient needs a scalar \
         (one element); reduce it first, e.g. `loss = mean({name})`"
    )]
    NotScalar {
        /// The value.
        name: String,
        /// Its type.
        ty: TensorType,
    },
    /// A value to differentiate with respect to is not f32.
    #[error("cannot differentiate with respect to `{name}`: it has type {ty}, not f32")]
    NotFloat {
        /// The value.
        name: String,
        /// Its type.
        ty: TensorType,
    },
    /// The loss depends on a value only through ops that have no gradient.
    #[error(
        "the gradient of `{of}` with respect to `{wrt}` would flow through `{op}` \
         (producing `{node}`), which is not differentiable"
    )]
    NotDifferentiable {
        /// The differentiated value.
        of: String,
        /// The value differentiated with respect to.
        wrt: String,
        /// The blocking op.
        op: &'static str,
        /// The name of its first result.
        node: String,
    },
    /// The loss does not depend on a value at all.
    #[error("`{of}` does not depend on `{wrt}`; its gradient would be zero")]
    Unused {
        /// The differentiated value.
        of: String,
        /// The value differentiated with respect to.
        wrt: String,
    },
    /// The graph has a name clash with the outputs to be added.
    #[error("model `{model}` already has an output named `{name}`")]
    OutputExists {
        /// The model.
        model: String,
        /// The output name.
        name: String,
    },
    /// A rule built an ill-typed node (a dlc bug).
    #[error("internal autodiff error: {0}")]
    Internal(String),
}

/// Differentiates the scalar value `of` with respect to the values `wrt`: returns
/// the graph with the backward pass appended and one output `grad_<name>` per
/// name of `wrt`, in order, after the original outputs.
pub fn grad(graph: &Graph, of: &str, wrt: &[&str]) -> Result<Graph, AutodiffError> {
    let of_v = lookup(graph, of)?;
    let wrt_v: Vec<ValueId> = wrt
        .iter()
        .map(|n| lookup(graph, n))
        .collect::<Result<_, _>>()?;
    for name in wrt {
        let out = format!("grad_{name}");
        if graph.outputs().iter().any(|o| o.name == out) {
            return Err(AutodiffError::OutputExists {
                model: graph.name.clone(),
                name: out,
            });
        }
    }
    let (mut g, grads) = grad_values(graph, of_v, &wrt_v)?;
    for (name, v) in wrt.iter().zip(grads) {
        let out = format!("grad_{name}");
        if g.value_name(v).starts_with('_') && !g.node(v.node).op.is_source() {
            let _ = g.rename(v, out.clone());
        }
        g.add_output(out, v);
    }
    Ok(g)
}

/// The value called `name`, or an error with a hint.
fn lookup(graph: &Graph, name: &str) -> Result<ValueId, AutodiffError> {
    graph.lookup(name).ok_or_else(|| {
        let names: Vec<String> = graph
            .params()
            .chain(graph.inputs())
            .map(|id| graph.node(id).names[0].clone())
            .collect();
        let close: Vec<&String> = names
            .iter()
            .filter(|n| n.contains(name) || name.contains(n.as_str()))
            .collect();
        let hint = if !close.is_empty() {
            let c: Vec<String> = close.iter().map(|n| format!("`{n}`")).collect();
            format!(" (did you mean {}?)", c.join(", "))
        } else if !names.is_empty() {
            let c: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("; its parameters and inputs are {}", c.join(", "))
        } else {
            String::new()
        };
        AutodiffError::Unknown {
            name: name.to_string(),
            model: graph.name.clone(),
            hint,
        }
    })
}

/// [`grad`] on value ids: returns the extended graph (outputs unchanged) and the
/// gradient of each value of `wrt`.
pub fn grad_values(
    graph: &Graph,
    of: ValueId,
    wrt: &[ValueId],
) -> Result<(Graph, Vec<ValueId>), AutodiffError> {
    let ty = graph.ty(of).clone();
    let name = |v: ValueId| graph.value_name(v).to_string();
    if ty.dtype != DType::F32 || ty.numel() != 1 {
        return Err(AutodiffError::NotScalar { name: name(of), ty });
    }
    for &w in wrt {
        let ty = graph.ty(w);
        if ty.dtype != DType::F32 {
            return Err(AutodiffError::NotFloat {
                name: name(w),
                ty: ty.clone(),
            });
        }
        let d = Deps::of(graph, &[w]);
        if !d.diff(of) {
            return Err(match d.any(of).then(|| d.blocker(graph, of)).flatten() {
                Some(id) => AutodiffError::NotDifferentiable {
                    of: name(of),
                    wrt: name(w),
                    op: graph.node(id).op.name(),
                    node: graph.node(id).names[0].clone(),
                },
                None => AutodiffError::Unused {
                    of: name(of),
                    wrt: name(w),
                },
            });
        }
    }
    let deps = Deps::of(graph, wrt);
    let mut t = Tape::new(graph.clone());
    let mut grads: HashMap<ValueId, ValueId> = HashMap::new();
    let seed = t.constant(ty.clone(), ConstValue::Float(vec![1.0]))?;
    grads.insert(of, seed);
    for id in graph.node_ids().rev() {
        let node = graph.node(id);
        let outs: Vec<ValueId> = (0..node.types.len() as u32)
            .map(|result| ValueId { node: id, result })
            .collect();
        // Every use of these values comes later, so their gradients are complete.
        for &v in outs.iter().filter(|_| !node.op.is_source()) {
            if let Some(&gv) = grads.get(&v) {
                let vname = graph.value_name(v);
                if !vname.starts_with('_') && t.g.value_name(gv).starts_with('_') {
                    let _ = t.g.rename(gv, format!("d_{vname}"));
                }
            }
        }
        if node.op.is_source() || outs.iter().all(|v| !grads.contains_key(v)) {
            continue;
        }
        let args = graph.operands(id);
        let need: Vec<bool> = args
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                deps.diff(v) && graph.ty(v).dtype == DType::F32 && deps::differentiable(&node.op, i)
            })
            .collect();
        if !need.iter().any(|&b| b) {
            continue;
        }
        if deps::is_backward(&node.op) {
            return Err(AutodiffError::NotDifferentiable {
                of: name(of),
                wrt: wrt.iter().map(|&w| name(w)).collect::<Vec<_>>().join(", "),
                op: node.op.name(),
                node: node.names[0].clone(),
            });
        }
        let n = rules::Node {
            op: node.op.clone(),
            args: args.clone(),
            outs: outs.clone(),
            dys: outs.iter().map(|v| grads.get(v).copied()).collect(),
            need,
        };
        let gs = rules::vjp(&mut t, id, &n)?;
        for (i, gi) in gs.into_iter().enumerate() {
            let Some(gi) = gi else { continue };
            let v = args[i];
            if t.g.ty(gi) != graph.ty(v) {
                return Err(AutodiffError::Internal(format!(
                    "{}: gradient of operand {} has type {}, the operand {}",
                    node.op.name(),
                    i + 1,
                    t.g.ty(gi),
                    graph.ty(v)
                )));
            }
            let sum = match grads.get(&v) {
                Some(&prev) => t.add(prev, gi)?,
                None => gi,
            };
            grads.insert(v, sum);
        }
    }
    let mut out = Vec::with_capacity(wrt.len());
    for &w in wrt {
        let g = match grads.get(&w) {
            Some(&g) => g,
            None => {
                let s = graph.ty(w).shape.clone();
                t.zeros(&s)?
            }
        };
        out.push(g);
    }
    Ok((t.g, out))
}
