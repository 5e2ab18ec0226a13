//! Parameter-derived values, computed once instead of on every run.
//!
//! A value that depends on no model input — a concatenation of weight matrices
//! made by the optimiser's GEMM merge, a scaled or transposed weight, arithmetic
//! on constants — is the same on every run. [`split`] cuts such values out of the
//! graph: the *prelude* computes them from the parameters (which it reads as its
//! inputs), and the *main* graph reads each of them as a hidden parameter. The
//! model runs the prelude when it is built and again whenever a parameter changes
//! ([`CompiledModel::set_param`], [`CompiledModel::commit_updates`]), so a
//! training step that updates the weights sees derived values of the new weights.
//!
//! Views are never hoisted: a reshape, a broadcast or a transpose that matmuls
//! read through strides costs nothing per run, and materialising it would only
//! spend memory (and, for broadcasts, bandwidth).

use std::collections::{HashMap, HashSet};

use dlc_ir::{BuildError, Graph, Init, NodeId, Op, Output, ValueId};

use crate::{CompiledModel, RunError};

/// A graph split into the values computed once and the rest.
pub(crate) struct Split {
    /// The graph run on every call: each hoisted value is a parameter of it.
    pub main: Graph,
    /// Computes the hoisted values (its outputs, named like the main graph's
    /// hidden parameters) from the parameters it reads as inputs; `None` when
    /// nothing is hoisted.
    pub prelude: Option<Graph>,
}

/// Splits `g` (see the module docs). Node order and names are kept.
pub(crate) fn split(g: &Graph) -> Result<Split, BuildError> {
    let hoisted = hoisted_nodes(g);
    if hoisted.is_empty() {
        return Ok(Split {
            main: g.clone(),
            prelude: None,
        });
    }
    let outputs: HashSet<ValueId> = g.outputs().iter().map(|o| o.value).collect();
    // Hoisted values read by the main graph (or returned): the prelude's outputs.
    let mut frontier: Vec<ValueId> = Vec::new();
    for id in g.node_ids().filter(|n| !hoisted.contains(n)) {
        frontier.extend(
            g.operands(id)
                .into_iter()
                .filter(|v| hoisted.contains(&v.node)),
        );
    }
    frontier.extend(outputs.iter().filter(|v| hoisted.contains(&v.node)));
    frontier.sort();
    frontier.dedup();

    let mut main = Graph::new(g.name.clone());
    let mut prelude = Graph::new(format!("{}_prelude", g.name));
    let (mut in_main, mut in_prelude) = (HashMap::new(), HashMap::new());
    for id in g.node_ids() {
        let node = g.node(id);
        let operands = g.operands(id);
        if hoisted.contains(&id) {
            let mut args = Vec::with_capacity(operands.len());
            for &v in &operands {
                args.push(copy_to_prelude(g, &mut prelude, &mut in_prelude, v)?);
            }
            let n = prelude.add_op(node.op.clone(), &args, node.names.clone(), node.span)?;
            for r in 0..node.types.len() as u32 {
                let v = ValueId {
                    node: id,
                    result: r,
                };
                in_prelude.insert(v, ValueId { node: n, result: r });
                if frontier.binary_search(&v).is_ok() {
                    let name = g.value_name(v).to_string();
                    let p = main.add_source(
                        Op::Param { init: Init::Zeros },
                        name.clone(),
                        g.ty(v).clone(),
                        node.span,
                    )?;
                    in_main.insert(v, p);
                    prelude.add_output(name, ValueId { node: n, result: r });
                }
            }
        } else if node.op.is_source() {
            let v = main.add_source(
                node.op.clone(),
                node.names[0].clone(),
                node.types[0].clone(),
                node.span,
            )?;
            in_main.insert(ValueId::first(id), v);
        } else {
            let args: Vec<ValueId> = operands.iter().map(|v| in_main[v]).collect();
            let n = main.add_op(node.op.clone(), &args, node.names.clone(), node.span)?;
            for r in 0..node.types.len() as u32 {
                in_main.insert(
                    ValueId {
                        node: id,
                        result: r,
                    },
                    ValueId { node: n, result: r },
                );
            }
        }
    }
    main.set_outputs(
        g.outputs()
            .iter()
            .map(|o| Output {
                name: o.name.clone(),
                value: in_main[&o.value],
            })
            .collect(),
    );
    Ok(Split {
        main,
        prelude: Some(prelude),
    })
}

/// The prelude's copy of `v`, an input-free value: already there (a hoisted
/// value), or a parameter (read as an input), a constant or a view of them
/// (copied now, with what it reads).
fn copy_to_prelude(
    g: &Graph,
    prelude: &mut Graph,
    map: &mut HashMap<ValueId, ValueId>,
    v: ValueId,
) -> Result<ValueId, BuildError> {
    if let Some(&p) = map.get(&v) {
        return Ok(p);
    }
    let node = g.node(v.node);
    let name = g.value_name(v).to_string();
    let p = match node.op {
        Op::Param { .. } => prelude.add_source(Op::Input, name, g.ty(v).clone(), node.span)?,
        Op::Const { .. } => {
            prelude.add_source(node.op.clone(), name, g.ty(v).clone(), node.span)?
        }
        _ => {
            let mut args = Vec::new();
            for o in g.operands(v.node) {
                args.push(copy_to_prelude(g, prelude, map, o)?);
            }
            let n = prelude.add_op(node.op.clone(), &args, node.names.clone(), node.span)?;
            ValueId {
                node: n,
                result: v.result,
            }
        }
    };
    map.insert(v, p);
    Ok(p)
}

/// The nodes computed by the prelude: every non-source node that depends on no
/// input, except views of values that are not hoisted themselves.
fn hoisted_nodes(g: &Graph) -> HashSet<NodeId> {
    let folded = dlc_codegen::lower::folded_transposes(g);
    let mut input_free: HashSet<NodeId> = HashSet::new();
    let mut hoisted: HashSet<NodeId> = HashSet::new();
    for id in g.node_ids() {
        let op = &g.node(id).op;
        let operands = g.operands(id);
        if matches!(op, Op::Input) || !operands.iter().all(|v| input_free.contains(&v.node)) {
            continue;
        }
        input_free.insert(id);
        let view =
            matches!(op, Op::Reshape { .. } | Op::BroadcastTo { .. }) || folded.contains(&id);
        let of_hoisted = operands.iter().any(|v| hoisted.contains(&v.node));
        if !op.is_source() && (!view || of_hoisted) {
            hoisted.insert(id);
        }
    }
    hoisted
}

/// The compiled prelude of a model and where its values live.
pub(crate) struct Derived {
    /// The prelude: one input per parameter it reads, one output per hoisted value.
    pub model: Box<CompiledModel>,
    /// Per prelude input, the main model's storage slot of that parameter.
    pub reads: Vec<usize>,
    /// Per prelude output, the main model's storage slot of its hidden parameter.
    pub writes: Vec<usize>,
    /// The error of the last refresh, reported by every run until a refresh succeeds.
    pub failed: Option<(String, String)>,
}

impl CompiledModel {
    /// Recomputes the parameter-derived values from the current parameters; a
    /// failure is kept and reported by [`CompiledModel::derived_status`] and by
    /// every run until a refresh succeeds.
    pub(crate) fn refresh_derived(&mut self) {
        let Some(d) = self.derived.as_mut() else {
            return;
        };
        let storage = &mut self.storage;
        let mut slot = |i: usize| {
            storage[i]
                .as_mut()
                .expect("parameters have storage")
                .as_mut_ptr()
        };
        let ins: Vec<*const u8> = d.reads.iter().map(|&i| slot(i).cast_const()).collect();
        let outs: Vec<*mut u8> = d.writes.iter().map(|&i| slot(i)).collect();
        let mut arena = d.model.take_arena();
        let result = d.model.execute_raw(&mut arena, &ins, &outs);
        d.model.return_arena(arena);
        d.failed = match result {
            Err(RunError::Kernel { kernel, message }) => Some((kernel, message)),
            _ => None,
        };
    }

    /// The error of the last refresh of the derived values, if it failed.
    pub(crate) fn derived_status(&self) -> Result<(), RunError> {
        match self.derived.as_ref().and_then(|d| d.failed.clone()) {
            Some((kernel, message)) => Err(RunError::Kernel { kernel, message }),
            None => Ok(()),
        }
    }
}
