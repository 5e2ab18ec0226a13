//! Training: one compiled callable per step (forward, loss, backward and the
//! optimiser's update), parameters updated in place, epochs over a [`Dataset`].

use std::collections::HashMap;
use std::time::Instant;

use dlc_autodiff::{Optimizer, TrainStep};
use dlc_codegen::CodegenError;
use dlc_ir::init::mix64;
use dlc_ir::{Graph, Op, ValueId};
use dlc_runtime::{CompiledModel, RunError};
use dlc_tensor::{Env, Tensor, Value};
use ndarray::{ArrayD, IxDyn};

use crate::data::{self, Dataset, InputSpec};
use crate::{Backend, Error, Model, Options};

/// What to train: the loss, the parameters, the optimiser, the batch dimension.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// The optimiser (the learning rate is given per step).
    pub optimizer: Optimizer,
    /// The scalar value to minimise.
    pub loss: String,
    /// The parameters to train (empty: every parameter the loss depends on).
    pub params: Vec<String>,
    /// The named dim that is the batch size (`B` in the bundled models).
    pub batch_dim: String,
}

impl Default for TrainConfig {
    fn default() -> TrainConfig {
        TrainConfig {
            optimizer: Optimizer::sgd(),
            loss: "loss".into(),
            params: Vec::new(),
            batch_dim: "B".into(),
        }
    }
}

/// Loss and accuracy of one step, an epoch or an evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Metrics {
    /// The mean loss over the examples.
    pub loss: f64,
    /// Correctly classified examples (when the loss is a cross-entropy).
    pub correct: Option<usize>,
    /// The examples seen.
    pub examples: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl Metrics {
    /// The fraction of examples classified correctly, if known.
    pub fn accuracy(&self) -> Option<f64> {
        self.correct.map(|c| c as f64 / self.examples.max(1) as f64)
    }

    /// Adds another batch's metrics (loss weighted by examples).
    fn add(&mut self, m: &Metrics) {
        let n = (self.examples + m.examples).max(1) as f64;
        self.loss = (self.loss * self.examples as f64 + m.loss * m.examples as f64) / n;
        self.correct = match (self.correct, m.correct) {
            (Some(a), Some(b)) => Some(a + b),
            (None, b) if self.examples == 0 => b,
            _ => None,
        };
        self.examples += m.examples;
        self.seconds += m.seconds;
    }
}

/// Where classification accuracy comes from: the cross-entropy's operands.
#[derive(Clone, Debug)]
struct AccuracyOutputs {
    logits: String,
    /// An input name, or an output added for a computed label value.
    labels: Labels,
}

#[derive(Clone, Debug)]
enum Labels {
    Input(String),
    Output(String),
}

/// Adds outputs for the logits and (computed) labels of the first cross-entropy
/// with `[N, C]` logits and `[N]` labels, unless already there.
fn accuracy_outputs(g: &mut Graph) -> Option<AccuracyOutputs> {
    let id = g.node_ids().find(|&id| {
        let ops = g.operands(id);
        matches!(g.node(id).op, Op::CrossEntropy)
            && g.ty(ops[0]).rank() == 2
            && data::is_labels(g.ty(ops[1]))
    })?;
    let ops = g.operands(id);
    let output = |g: &mut Graph, v: ValueId, name: &str| -> String {
        if let Some(o) = g.outputs().iter().find(|o| o.value == v) {
            return o.name.clone();
        }
        g.add_output(name, v);
        name.to_string()
    };
    let logits = output(g, ops[0], "acc_logits");
    let labels = if matches!(g.node(ops[1].node).op, Op::Input) {
        Labels::Input(g.value_name(ops[1]).to_string())
    } else {
        Labels::Output(output(g, ops[1], "acc_labels"))
    };
    Some(AccuracyOutputs { logits, labels })
}

/// The number of correct predictions in a run's outputs.
fn count_correct(acc: &Option<AccuracyOutputs>, inputs: &Env, outputs: &Env) -> Option<usize> {
    let acc = acc.as_ref()?;
    let logits = outputs.get(&acc.logits)?.as_float()?;
    let labels = match &acc.labels {
        Labels::Input(n) => inputs.get(n)?,
        Labels::Output(n) => outputs.get(n)?,
    };
    Some(data::correct(logits, labels.as_int()?))
}

/// What runs a graph: machine code, or the interpreter with its parameters.
enum Engine {
    Jit(Box<CompiledModel>),
    Interp(Box<Graph>, Env),
}

impl Engine {
    /// The JIT when `opts` asks for it and it compiles every op of `g` (else the
    /// interpreter, and why).
    fn new(g: &Graph, params: Env, opts: &Options) -> Result<(Engine, Option<String>), Error> {
        if opts.backend == Backend::Interp {
            return Ok((Engine::Interp(Box::new(g.clone()), params), None));
        }
        match CompiledModel::new(g, &params, &opts.runtime) {
            Ok(m) => Ok((Engine::Jit(Box::new(m)), None)),
            Err(e @ RunError::Codegen(CodegenError::Unsupported(_))) => Ok((
                Engine::Interp(Box::new(g.clone()), params),
                Some(e.to_string()),
            )),
            Err(e) => Err(e.into()),
        }
    }

    fn run(&self, inputs: &Env) -> Result<Env, Error> {
        match self {
            Engine::Jit(m) => Ok(m.run(inputs)?),
            Engine::Interp(g, p) => Ok(dlc_interp::run::<f32>(g, inputs, p)?),
        }
    }

    /// Runs a training step: the JIT computes the updates into staging buffers
    /// (see [`Engine::commit`]); the interpreter returns them as outputs.
    fn run_staged(&mut self, inputs: &Env) -> Result<Env, Error> {
        match self {
            Engine::Jit(m) => Ok(m.run_staged(inputs)?),
            Engine::Interp(..) => self.run(inputs),
        }
    }

    /// Makes the last step's updated values (`updates`: parameter, output) the
    /// parameters' values.
    fn commit(&mut self, updates: &[(String, String)], outputs: &mut Env) {
        match self {
            Engine::Jit(m) => m.commit_updates(),
            Engine::Interp(_, p) => {
                for (param, output) in updates {
                    let v: Tensor = outputs.remove(output).expect("every update is an output");
                    p.insert(param.clone(), v);
                }
            }
        }
    }

    fn params(&self) -> Env {
        match self {
            Engine::Jit(m) => m.params(),
            Engine::Interp(_, p) => p.clone(),
        }
    }

    /// Replaces the parameters `values` names (others are ignored); types are checked.
    fn set(&mut self, values: &Env) -> Result<(), Error> {
        let current = self.params();
        let known = values
            .iter()
            .filter(|(name, _)| current.contains_key(*name));
        match self {
            Engine::Jit(m) => m.set_params(known.map(|(n, v)| (n.as_str(), v)))?,
            Engine::Interp(_, p) => {
                let known: Vec<_> = known.collect();
                for (name, v) in &known {
                    v.check("parameter", name, &current[*name].ty())?;
                }
                for (name, v) in known {
                    p.insert(name.clone(), v.clone());
                }
            }
        }
        Ok(())
    }

    fn backend(&self) -> Backend {
        match self {
            Engine::Jit(_) => Backend::Jit,
            Engine::Interp(..) => Backend::Interp,
        }
    }
}

/// A training step compiled once and called per batch; see the
/// [crate docs](crate) for an example.
pub struct Trainer {
    model: Model,
    opts: Options,
    cfg: TrainConfig,
    batch: usize,
    step: TrainStep,
    engine: Engine,
    fallback: Option<String>,
    /// (parameter, output holding its new value)
    updates: Vec<(String, String)>,
    acc: Option<AccuracyOutputs>,
    inputs: Vec<InputSpec>,
    eval: HashMap<usize, (Engine, Option<AccuracyOutputs>)>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("model", &self.model.name())
            .field("batch", &self.batch)
            .field("backend", &self.backend())
            .finish()
    }
}

impl Trainer {
    /// Builds and compiles the training step of `model` with `batch` examples
    /// per step. `opts` gives the other dims, the initialiser seed, initial
    /// parameter values (a checkpoint: optimiser state included) and the
    /// backend: with [`Backend::Jit`] the JIT is used when it can compile every
    /// op of the step, else the interpreter ([`Trainer::fallback`] says why).
    pub fn new(
        model: &Model,
        opts: &Options,
        batch: usize,
        cfg: &TrainConfig,
    ) -> Result<Trainer, Error> {
        let declared = model.ast().declared_dims();
        if !declared.iter().any(|d| d.name == cfg.batch_dim) {
            let names: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
            return Err(Error::Data(format!(
                "model `{}` has no dim `{}` to use as the batch size (its dims: {})",
                model.name(),
                cfg.batch_dim,
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )));
        }
        let opts = opts.clone().dim(&cfg.batch_dim, batch);
        let forward = model.graph(&opts.dims)?;
        let inputs = input_specs(model, &opts, &cfg.batch_dim, batch, &forward)?;
        let params: Vec<&str> = cfg.params.iter().map(String::as_str).collect();
        let mut step = dlc_autodiff::training_step(&forward, &cfg.loss, &params, &cfg.optimizer)?;
        let mut updates = Vec::new();
        for u in &step.updates {
            let name = format!("update_{}", u.param);
            step.graph.add_output(&name, u.value);
            updates.push((u.param.clone(), name));
        }
        let acc = accuracy_outputs(&mut step.graph);
        // The whole step (forward, backward, update) is optimised like any graph,
        // except that values of the parameters alone are recomputed after every
        // update, so the optimiser must price them as per-run work.
        let opt = dlc_opt::OptOptions {
            amortise_params: false,
            ..opts.opt.clone()
        };
        step.graph = dlc_opt::optimize(&step.graph, &opt)?.0;
        let values = dlc_tensor::init_params(&step.graph, opts.seed, &opts.params)?;
        let (mut engine, fallback) = Engine::new(&step.graph, values, &opts)?;
        if let Engine::Jit(m) = &mut engine {
            m.bind_updates(&updates)?;
        }
        Ok(Trainer {
            model: model.clone(),
            opts,
            cfg: cfg.clone(),
            batch,
            step,
            engine,
            fallback,
            updates,
            acc,
            inputs,
            eval: HashMap::new(),
        })
    }

    /// The engine running the step.
    pub fn backend(&self) -> Backend {
        self.engine.backend()
    }

    /// Why the interpreter runs the step although the JIT was asked for.
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// The examples per step.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The training-step graph (forward, backward, updates as outputs `update_<param>`).
    pub fn graph(&self) -> &Graph {
        &self.step.graph
    }

    /// The model inputs a data set must provide, with their example axes.
    pub fn inputs(&self) -> &[InputSpec] {
        &self.inputs
    }

    /// Checks `arrays` against the model's inputs and wraps them as a data set.
    pub fn dataset(&self, arrays: &Env) -> Result<Dataset, Error> {
        Dataset::new(arrays, &self.inputs)
    }

    /// The parameters and the optimiser state: a checkpoint, which `dlc run
    /// --params` also accepts (it ignores the state).
    pub fn params(&self) -> Env {
        self.engine.params()
    }

    /// Sets parameters (and optimiser state) from a checkpoint; names the step
    /// does not have are ignored, types are checked.
    pub fn load(&mut self, ckpt: &Env) -> Result<(), Error> {
        self.engine.set(ckpt)
    }

    /// One step on a batch of `batch` examples with learning rate `lr`: returns
    /// the batch's loss (and correct predictions) and updates the parameters.
    /// A non-finite loss is an error and leaves the parameters as they were.
    pub fn step(&mut self, mut inputs: Env, lr: f32) -> Result<Metrics, Error> {
        let t = Instant::now();
        let scalar = ArrayD::from_elem(IxDyn(&[]), lr);
        inputs.insert(self.step.lr.clone(), Value::Float(scalar));
        let mut out = self.engine.run_staged(&inputs)?;
        let loss = out[&self.step.loss]
            .as_float()
            .map_or(f64::NAN, |a| a.sum() as f64);
        if !loss.is_finite() {
            return Err(Error::Train(format!(
                "the loss `{}` is {loss}; the parameters are left at their last finite-loss \
                 values (try a smaller learning rate)",
                self.step.loss
            )));
        }
        let correct = count_correct(&self.acc, &inputs, &out);
        self.engine.commit(&self.updates, &mut out);
        Ok(Metrics {
            loss,
            correct,
            examples: self.batch,
            seconds: t.elapsed().as_secs_f64(),
        })
    }

    /// Epoch number `epoch` (from 1): the examples of `data` shuffled by
    /// [`data::shuffled`] from the options' seed and `epoch` (so a resumed run
    /// sees the same order as an uninterrupted one), in full batches (a last
    /// partial batch is dropped, as the step has a static batch size).
    /// `on_step` sees each step's metrics.
    pub fn epoch(
        &mut self,
        data: &Dataset,
        lr: f32,
        epoch: usize,
        mut on_step: impl FnMut(&Metrics),
    ) -> Result<Metrics, Error> {
        let seed = mix64(self.opts.seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        if data.len() < self.batch {
            return Err(Error::Data(format!(
                "the training data has {} examples, fewer than one batch of {}",
                data.len(),
                self.batch
            )));
        }
        let order = data::shuffled(data.len(), seed);
        let mut total = Metrics::default();
        for idx in order.chunks_exact(self.batch) {
            let m = self.step(data.select(idx), lr)?;
            on_step(&m);
            total.add(&m);
        }
        Ok(total)
    }

    /// The loss and accuracy of the current parameters on every example of
    /// `data`, run forward in batches of the training batch size (the remainder
    /// in one smaller batch).
    pub fn evaluate(&mut self, data: &Dataset) -> Result<Metrics, Error> {
        let t = Instant::now();
        let params = self.params();
        let loss_name = self.cfg.loss.clone();
        let mut total = Metrics::default();
        let all: Vec<usize> = (0..data.len()).collect();
        for idx in all.chunks(self.batch) {
            let (exe, acc) = self.evaluator(idx.len())?;
            exe.set(&params)?;
            let inputs = data.select(idx);
            let out = exe.run(&inputs)?;
            let loss = out
                .get(&loss_name)
                .and_then(Value::as_float)
                .map_or(f64::NAN, |a| a.sum() as f64);
            total.add(&Metrics {
                loss,
                correct: count_correct(acc, &inputs, &out),
                examples: idx.len(),
                seconds: 0.0,
            });
        }
        total.seconds = t.elapsed().as_secs_f64();
        Ok(total)
    }

    /// The forward model for `n` examples (compiled once per size), with the
    /// loss and accuracy values as outputs.
    fn evaluator(&mut self, n: usize) -> Result<&mut (Engine, Option<AccuracyOutputs>), Error> {
        if !self.eval.contains_key(&n) {
            let opts = self.opts.clone().dim(&self.cfg.batch_dim, n);
            let mut g = self.model.graph(&opts.dims)?;
            if !g.outputs().iter().any(|o| o.name == self.cfg.loss)
                && let Some(v) = g.lookup(&self.cfg.loss)
            {
                g.add_output(self.cfg.loss.clone(), v);
            }
            let acc = accuracy_outputs(&mut g);
            let values = dlc_tensor::init_params(&g, opts.seed, &self.params())?;
            let (engine, _) = Engine::new(&g, values, &opts)?;
            self.eval.insert(n, (engine, acc));
        }
        Ok(self.eval.get_mut(&n).expect("inserted above"))
    }
}

/// The model's inputs with their example axes: the axis whose size follows
/// the batch dim (found by elaborating with a second batch size).
fn input_specs(
    model: &Model,
    opts: &Options,
    batch_dim: &str,
    batch: usize,
    forward: &Graph,
) -> Result<Vec<InputSpec>, Error> {
    let other = model.graph(&opts.clone().dim(batch_dim, batch + 1).dims)?;
    let mut specs = Vec::new();
    for id in forward.inputs() {
        let node = forward.node(id);
        let (name, ty) = (&node.names[0], &node.types[0]);
        let ty2 = other
            .lookup(name)
            .map(|v| other.ty(v).shape.clone())
            .unwrap_or_default();
        let axis = ty
            .shape
            .iter()
            .zip(&ty2)
            .position(|(a, b)| a != b)
            .ok_or_else(|| {
                Error::Data(format!(
                    "input `{name}` ({ty}) does not depend on the batch dim `{batch_dim}`, \
                     so it cannot be read from a data set of examples"
                ))
            })?;
        specs.push(InputSpec {
            name: name.clone(),
            ty: ty.clone(),
            axis,
        });
    }
    Ok(specs)
}
