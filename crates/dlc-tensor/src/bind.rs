//! Binding values to a graph: checking inputs and materialising parameters.

use dlc_ir::init::param_seed;
use dlc_ir::{DType, Graph, Op};
use ndarray::{ArrayD, IxDyn};

use crate::{Env, Value, ValueError};

/// Checks that `inputs` holds exactly the graph's inputs, each with its declared type.
pub fn check_inputs<F>(graph: &Graph, inputs: &Env<F>) -> Result<(), ValueError> {
    check_against(graph, inputs, "input", |op| matches!(op, Op::Input))
}

/// Checks that `params` holds exactly the graph's parameters, each with its declared type.
pub fn check_params<F>(graph: &Graph, params: &Env<F>) -> Result<(), ValueError> {
    check_against(graph, params, "parameter", |op| {
        matches!(op, Op::Param { .. })
    })
}

fn check_against<F>(
    graph: &Graph,
    values: &Env<F>,
    what: &'static str,
    is_kind: impl Fn(&Op) -> bool,
) -> Result<(), ValueError> {
    let declared: Vec<_> = graph
        .node_ids()
        .filter(|&n| is_kind(&graph.node(n).op))
        .collect();
    for &n in &declared {
        let node = graph.node(n);
        let (name, ty) = (&node.names[0], &node.types[0]);
        match values.get(name) {
            None => {
                return Err(ValueError::Missing {
                    what,
                    name: name.clone(),
                    expected: ty.clone(),
                });
            }
            Some(v) => v.check(what, name, ty)?,
        }
    }
    if let Some(extra) = values
        .keys()
        .find(|k| !declared.iter().any(|&n| &graph.node(n).names[0] == *k))
    {
        let known: Vec<&str> = declared
            .iter()
            .map(|&n| graph.node(n).names[0].as_str())
            .collect();
        return Err(ValueError::Unknown {
            what,
            name: extra.clone(),
            known: if known.is_empty() {
                "(none)".to_string()
            } else {
                known.join(", ")
            },
        });
    }
    Ok(())
}

/// Builds the value of every parameter: taken from `loaded` when present there
/// (type-checked), otherwise produced by its initialiser with a seed derived from
/// `seed` and the parameter's name. Entries of `loaded` that are not parameters
/// of the graph are ignored (a checkpoint may hold more than one model needs).
pub fn init_params(graph: &Graph, seed: u64, loaded: &Env) -> Result<Env, ValueError> {
    let mut env = Env::new();
    for n in graph.params() {
        let node = graph.node(n);
        let (name, ty) = (&node.names[0], &node.types[0]);
        let Op::Param { init } = &node.op else {
            unreachable!("params() yields parameter nodes")
        };
        let value = match loaded.get(name) {
            Some(v) => {
                v.check("parameter", name, ty)?;
                v.clone()
            }
            None => {
                let data = init.materialize(&ty.shape, param_seed(seed, name));
                let shape = IxDyn(&ty.shape);
                match ty.dtype {
                    DType::F32 => Value::Float(
                        ArrayD::from_shape_vec(shape, data.iter().map(|&x| x as f32).collect())
                            .expect("initialiser yields numel values"),
                    ),
                    DType::I64 => Value::Int(
                        ArrayD::from_shape_vec(shape, data.iter().map(|&x| x as i64).collect())
                            .expect("initialiser yields numel values"),
                    ),
                    DType::Bool => Value::Bool(
                        ArrayD::from_shape_vec(shape, data.iter().map(|&x| x != 0.0).collect())
                            .expect("initialiser yields numel values"),
                    ),
                }
            }
        };
        env.insert(name.clone(), value);
    }
    Ok(env)
}
