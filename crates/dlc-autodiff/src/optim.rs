//! Optimisers as graph updates: a training step is the forward graph, its
//! backward pass and, for every parameter, the nodes computing its new value.
//!
//! The new values are not graph outputs: [`TrainStep::updates`] pairs each with
//! the parameter it replaces, and the runtime writes it over that parameter's
//! storage in place (the update nodes come last, after every read of the old
//! values). Optimiser state (momentum buffers, Adam's moments and step count) is
//! made of extra parameters, initialised to zeros and updated the same way. The
//! learning rate is a scalar input, so a schedule needs no recompilation.
//! Batch normalisation in training form also updates its running statistics.
//!
//! The formulas are PyTorch's (`torch.optim.SGD`, `Adam`, `AdamW`):
//!
//! - SGD: `g += wd·p`; with momentum `v = μ·v + g`, step `v` (Nesterov: `g + μ·v`);
//!   `p -= lr·step`.
//! - Adam: `g += wd·p` (or, decoupled, `p -= lr·wd·p` first); `m = β1·m + (1-β1)·g`,
//!   `v = β2·v + (1-β2)·g²`, `t += 1`;
//!   `p -= lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps)`.

use dlc_ir::{BinaryOp as B, Graph, Init, Op, TensorType, UnaryOp as U, ValueId};

use crate::deps::Deps;
use crate::tape::{R, Tape};
use crate::{AutodiffError, grad_values};

/// An optimiser and its hyperparameters (the learning rate is an input of the step).
#[derive(Clone, Debug, PartialEq)]
pub enum Optimizer {
    /// Stochastic gradient descent, with optional momentum and L2 weight decay.
    Sgd {
        /// Momentum `μ` (0 for plain SGD).
        momentum: f64,
        /// Nesterov momentum.
        nesterov: bool,
        /// L2 weight decay added to the gradient.
        weight_decay: f64,
    },
    /// Adam, with L2 or decoupled (AdamW) weight decay.
    Adam {
        /// Decay of the first moment.
        beta1: f64,
        /// Decay of the second moment.
        beta2: f64,
        /// Added to the denominator.
        eps: f64,
        /// Weight decay.
        weight_decay: f64,
        /// Decoupled weight decay (AdamW) instead of L2.
        decoupled: bool,
    },
}

impl Optimizer {
    /// Plain SGD.
    pub fn sgd() -> Optimizer {
        Optimizer::Sgd {
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }

    /// SGD with momentum `μ`.
    pub fn momentum(momentum: f64) -> Optimizer {
        Optimizer::Sgd {
            momentum,
            nesterov: false,
            weight_decay: 0.0,
        }
    }

    /// Adam with PyTorch's defaults (β = 0.9, 0.999; eps 1e-8).
    pub fn adam() -> Optimizer {
        Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
        }
    }

    /// The same optimiser with weight decay `wd`.
    pub fn with_weight_decay(mut self, wd: f64) -> Optimizer {
        match &mut self {
            Optimizer::Sgd { weight_decay, .. } | Optimizer::Adam { weight_decay, .. } => {
                *weight_decay = wd
            }
        }
        self
    }
}

/// A parameter overwritten after each step by the value `value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// The parameter's name.
    pub param: String,
    /// Its new value.
    pub value: ValueId,
}

/// A training step as one graph (see the module docs).
#[derive(Clone, Debug)]
pub struct TrainStep {
    /// Forward, backward and update nodes; the outputs are the forward graph's
    /// (the loss included).
    pub graph: Graph,
    /// The value written over each updated parameter, after every other read.
    pub updates: Vec<Update>,
    /// The name of the scalar learning-rate input.
    pub lr: String,
    /// The name of the loss output.
    pub loss: String,
    /// The parameters trained (a gradient is computed for each).
    pub trained: Vec<String>,
    /// The optimiser-state parameters added (all initialised to zeros).
    pub state: Vec<String>,
}

/// The parameters the loss depends on differentiably (the default trained set),
/// excluding batch-norm running statistics.
pub fn trainable_params(graph: &Graph, loss: &str) -> Vec<String> {
    let Some(of) = graph.lookup(loss) else {
        return Vec::new();
    };
    let running = running_stats(graph);
    graph
        .params()
        .map(ValueId::first)
        .filter(|&p| !running.iter().any(|(q, _)| *q == p) && Deps::of(graph, &[p]).diff(of))
        .map(|p| graph.value_name(p).to_string())
        .collect()
}

/// Parameters fed as running statistics to a training batch norm, with the
/// value that replaces each after a step.
fn running_stats(graph: &Graph) -> Vec<(ValueId, ValueId)> {
    let mut out = Vec::new();
    for id in graph.node_ids() {
        if let Op::BatchNorm { training: true, .. } = graph.node(id).op {
            let ops = graph.operands(id);
            for (slot, result) in [(3, 1), (4, 2)] {
                let v = ops[slot];
                if matches!(graph.node(v.node).op, Op::Param { .. }) {
                    out.push((v, ValueId { node: id, result }));
                }
            }
        }
    }
    out
}

/// A name based on `base` that `g` does not use yet.
fn fresh(g: &Graph, base: &str) -> String {
    let mut name = base.to_string();
    let mut k = 1;
    while g.lookup(&name).is_some() || g.outputs().iter().any(|o| o.name == name) {
        name = format!("{base}_{k}");
        k += 1;
    }
    name
}

/// Builds the training step of `forward`: minimise the scalar `loss` over
/// `params` (all trainable parameters when empty) with `opt`.
pub fn training_step(
    forward: &Graph,
    loss: &str,
    params: &[&str],
    opt: &Optimizer,
) -> Result<TrainStep, AutodiffError> {
    let names: Vec<String> = if params.is_empty() {
        trainable_params(forward, loss)
    } else {
        params.iter().map(|s| s.to_string()).collect()
    };
    let of = crate::lookup(forward, loss)?;
    let wrt: Vec<ValueId> = names
        .iter()
        .map(|n| crate::lookup(forward, n))
        .collect::<Result<_, _>>()?;
    for (n, &w) in names.iter().zip(&wrt) {
        if !matches!(forward.node(w.node).op, Op::Param { .. }) {
            return Err(AutodiffError::Internal(format!(
                "`{n}` is not a parameter; only parameters can be trained"
            )));
        }
    }
    let (mut g, grads) = grad_values(forward, of, &wrt)?;
    if !g.outputs().iter().any(|o| o.value == of) {
        g.add_output(loss, of);
    }
    let loss_name = g
        .outputs()
        .iter()
        .find(|o| o.value == of)
        .map(|o| o.name.clone())
        .unwrap_or_else(|| loss.to_string());
    let lr_name = fresh(&g, "lr");
    let lr = g
        .add_source(
            Op::Input,
            lr_name.clone(),
            TensorType::f32(Vec::<usize>::new()),
            None,
        )
        .map_err(|e| AutodiffError::Internal(e.to_string()))?;
    let mut t = Tape::new(g);
    let mut updates = Vec::new();
    let mut state = Vec::new();
    let mut step_t: Option<(ValueId, ValueId)> = None;
    for ((name, &p), &gr) in names.iter().zip(&wrt).zip(&grads) {
        let new = match opt {
            Optimizer::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => {
                let gr = decay(&mut t, gr, p, *weight_decay)?;
                let step = if *momentum != 0.0 {
                    let buf = state_param(&mut t, &mut state, name, "momentum", p)?;
                    let mv = t.scale(buf, *momentum)?;
                    let v = t.add(mv, gr)?;
                    updates.push(update(&mut t, &state[state.len() - 1], v));
                    if *nesterov {
                        let mv = t.scale(v, *momentum)?;
                        t.add(gr, mv)?
                    } else {
                        v
                    }
                } else {
                    gr
                };
                let d = t.mul(step, lr)?;
                t.sub(p, d)?
            }
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                decoupled,
            } => {
                let (gr, base) = if *decoupled {
                    let d = t.mul(p, lr)?;
                    let d = t.scale(d, *weight_decay)?;
                    (
                        gr,
                        if *weight_decay != 0.0 {
                            t.sub(p, d)?
                        } else {
                            p
                        },
                    )
                } else {
                    (decay(&mut t, gr, p, *weight_decay)?, p)
                };
                let (t1, _) = match step_t {
                    Some(s) => s,
                    None => {
                        let s = adam_step(&mut t, &mut state, &mut updates)?;
                        step_t = Some(s);
                        s
                    }
                };
                let m = state_param(&mut t, &mut state, name, "adam_m", p)?;
                let m_name = state[state.len() - 1].clone();
                let v = state_param(&mut t, &mut state, name, "adam_v", p)?;
                let v_name = state[state.len() - 1].clone();
                let bm = t.scale(m, *beta1)?;
                let gm = t.scale(gr, 1.0 - beta1)?;
                let m1 = t.add(bm, gm)?;
                let bv = t.scale(v, *beta2)?;
                let g2 = t.mul(gr, gr)?;
                let gv = t.scale(g2, 1.0 - beta2)?;
                let v1 = t.add(bv, gv)?;
                updates.push(update(&mut t, &m_name, m1));
                updates.push(update(&mut t, &v_name, v1));
                // Bias corrections from the step count (scalars).
                let bc = |t: &mut Tape, beta: f64| -> R<ValueId> {
                    let b = t.scalar(beta)?;
                    let pw = t.bin(B::Pow, b, t1)?;
                    let one = t.scalar(1.0)?;
                    t.sub(one, pw)
                };
                let bc1 = bc(&mut t, *beta1)?;
                let bc2 = bc(&mut t, *beta2)?;
                let step_size = t.div(lr, bc1)?;
                let inv = t.un(U::Rsqrt, bc2)?;
                let sv = t.un(U::Sqrt, v1)?;
                let sv = t.mul(sv, inv)?;
                let e = t.scalar(*eps)?;
                let denom = t.add(sv, e)?;
                let q = t.div(m1, denom)?;
                let d = t.mul(q, step_size)?;
                t.sub(base, d)?
            }
        };
        updates.push(update(&mut t, name, new));
    }
    for (p, v) in running_stats(forward) {
        if !wrt.contains(&p) {
            let name = forward.value_name(p).to_string();
            updates.push(Update {
                param: name,
                value: v,
            });
        }
    }
    Ok(TrainStep {
        graph: t.g,
        updates,
        lr: lr_name,
        loss: loss_name,
        trained: names,
        state,
    })
}

/// `g + wd·p` (just `g` without decay).
fn decay(t: &mut Tape, g: ValueId, p: ValueId, wd: f64) -> R<ValueId> {
    if wd == 0.0 {
        return Ok(g);
    }
    let d = t.scale(p, wd)?;
    t.add(g, d)
}

/// A zero-initialised state parameter shaped like `like`, named after `param`.
fn state_param(
    t: &mut Tape,
    state: &mut Vec<String>,
    param: &str,
    what: &str,
    like: ValueId,
) -> R<ValueId> {
    let name = fresh(&t.g, &format!("{param}_{what}"));
    let ty = t.g.ty(like).clone();
    let v =
        t.g.add_source(Op::Param { init: Init::Zeros }, name.clone(), ty, None)
            .map_err(|e| AutodiffError::Internal(e.to_string()))?;
    state.push(name);
    Ok(v)
}

/// Adam's shared step counter: returns `(t + 1, t)` and records its update.
fn adam_step(
    t: &mut Tape,
    state: &mut Vec<String>,
    updates: &mut Vec<Update>,
) -> R<(ValueId, ValueId)> {
    let name = fresh(&t.g, "adam_step");
    let ty = TensorType::f32(Vec::<usize>::new());
    let s =
        t.g.add_source(Op::Param { init: Init::Zeros }, name.clone(), ty, None)
            .map_err(|e| AutodiffError::Internal(e.to_string()))?;
    state.push(name.clone());
    let one = t.scalar(1.0)?;
    let s1 = t.add(s, one)?;
    updates.push(update(t, &name, s1));
    Ok((s1, s))
}

/// Records that `value` replaces `param`, naming it `new_<param>` when free.
fn update(t: &mut Tape, param: &str, value: ValueId) -> Update {
    if t.g.value_name(value).starts_with('_') && !t.g.node(value.node).op.is_source() {
        let name = fresh(&t.g, &format!("new_{param}"));
        let _ = t.g.rename(value, name);
    }
    Update {
        param: param.to_string(),
        value,
    }
}
