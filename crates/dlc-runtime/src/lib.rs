//! dlc's runtime: a [`CompiledModel`] owns the machine code of a graph, its
//! parameters and constants, and runs it on caller-provided inputs.
//!
//! # Calling from several threads
//!
//! [`CompiledModel`] is `Send + Sync`. [`CompiledModel::run`] takes an arena
//! from an internal pool (creating one when every arena is busy) and returns it
//! afterwards, so concurrent calls never share scratch memory and a warm model
//! allocates nothing but its result arrays. A [`Session`] owns one arena and
//! its output arrays outright: [`Session::run`] allocates nothing at all after
//! its first call.
//!
//! # Safety
//!
//! The generated code touches only the buffers bound in the pointer table:
//! inputs are validated (names, dtypes, shapes) before any kernel runs, and every
//! buffer has exactly the size its kernels were compiled for. In checked mode
//! (`Options::checked`) every access is bounds-checked as well.
#![deny(missing_docs)]

mod buffer;
mod derived;
mod exec;
mod update;

use std::sync::Mutex;

use dlc_codegen::{BufId, BufferKind, CodegenError, CodegenOptions, Program};
use dlc_ir::{Graph, TensorType};
use dlc_tensor::{Env, Tensor, ValueError};

use buffer::{AlignedBuf, data_ptr_mut, tensor_buf, tensor_from_bytes, write_tensor};
pub use exec::Threading;

/// Why a compiled model could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The graph could not be compiled.
    #[error(transparent)]
    Codegen(#[from] CodegenError),
    /// An input or parameter does not match the model.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// A kernel reported a run-time error (bad index, bad label, out-of-bounds access).
    #[error("kernel {kernel}: {message}")]
    Kernel {
        /// The kernel's name.
        kernel: String,
        /// What went wrong.
        message: String,
    },
}

/// How to compile and run a model.
#[derive(Clone, Debug, Default)]
pub struct RuntimeOptions {
    /// Code generation options.
    pub codegen: CodegenOptions,
    /// When to split kernels over threads.
    pub threading: Threading,
}

/// A named, typed binding of a graph value to a buffer.
#[derive(Clone, Debug)]
struct Port {
    name: String,
    ty: TensorType,
    buf: BufId,
}

/// A graph compiled to machine code, with its parameters and constants.
pub struct CompiledModel {
    program: Program,
    inputs: Vec<Port>,
    outputs: Vec<Port>,
    params: Vec<Port>,
    /// Model-owned storage for parameters and constants, by buffer index.
    storage: Vec<Option<AlignedBuf>>,
    threading: Threading,
    pool: Mutex<Vec<Arena>>,
    updates: update::Updates,
    /// The values computed from parameters alone, once per parameter change.
    derived: Option<derived::Derived>,
}

impl std::fmt::Debug for CompiledModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledModel")
            .field("kernels", &self.program.lowered.kernels.len())
            .field("arena_bytes", &self.program.plan.arena_bytes)
            .finish()
    }
}

/// Scratch memory for one run at a time: the arena, the status block, and one
/// private scratch block per thread (packing buffers).
struct Arena {
    mem: AlignedBuf,
    status: AlignedBuf,
    scratch: Vec<AlignedBuf>,
}

impl CompiledModel {
    /// Compiles `graph` and binds its parameters from `params` (every parameter
    /// must be present; see `dlc_tensor::init_params`). Values that depend only on
    /// parameters and constants are computed here, and again whenever a parameter
    /// changes, not on every run.
    pub fn new(
        graph: &Graph,
        params: &Env,
        opts: &RuntimeOptions,
    ) -> Result<CompiledModel, RunError> {
        dlc_tensor::check_params(graph, params)?;
        let split = derived::split(graph).map_err(|e| CodegenError::Internal(e.to_string()))?;
        let mut model = CompiledModel::build(&split.main, opts)?;
        let (own, hidden): (Vec<Port>, Vec<Port>) = std::mem::take(&mut model.params)
            .into_iter()
            .partition(|p| {
                (graph.lookup(&p.name))
                    .is_some_and(|v| matches!(graph.node(v.node).op, dlc_ir::Op::Param { .. }))
            });
        model.params = own;
        for p in &model.params {
            model.storage[p.buf.index()] = Some(tensor_buf(&params[&p.name]));
        }
        if let Some(prelude) = &split.prelude {
            let pre = CompiledModel::build(prelude, opts)?;
            let slot = |ports: &[Port], name: &str| {
                ports.iter().find(|p| p.name == name).map(|p| p.buf.index())
            };
            let reads = pre.inputs.iter().map(|i| slot(&model.params, &i.name));
            let writes = pre.outputs.iter().map(|o| slot(&hidden, &o.name));
            let (Some(reads), Some(writes)) = (reads.collect(), writes.collect()) else {
                return Err(CodegenError::Internal("prelude ports do not match".into()).into());
            };
            model.derived = Some(derived::Derived {
                model: Box::new(pre),
                reads,
                writes,
                failed: None,
            });
            model.refresh_derived();
            model.derived_status()?;
        }
        Ok(model)
    }

    /// Compiles `graph` with zeroed storage for its parameters and its constants'
    /// values; nothing is hoisted.
    fn build(graph: &Graph, opts: &RuntimeOptions) -> Result<CompiledModel, RunError> {
        let program = dlc_codegen::compile(graph, &opts.codegen)?;
        let low = &program.lowered;
        let port = |(name, buf): &(String, BufId)| {
            let b = &low.buffers[buf.index()];
            let v = graph.lookup(name);
            let ty = match v {
                Some(v) if matches!(b.kind, BufferKind::Input(_) | BufferKind::Param(_)) => {
                    graph.ty(v).clone()
                }
                _ => TensorType::new(b.dtype, vec![b.len]),
            };
            Port {
                name: name.clone(),
                ty,
                buf: *buf,
            }
        };
        let inputs: Vec<Port> = low.inputs.iter().map(port).collect();
        let params_ports: Vec<Port> = low.params.iter().map(port).collect();
        let outputs: Vec<Port> = graph
            .outputs()
            .iter()
            .zip(&low.outputs)
            .map(|(o, (name, buf))| Port {
                name: name.clone(),
                ty: graph.ty(o.value).clone(),
                buf: *buf,
            })
            .collect();
        let mut storage: Vec<Option<AlignedBuf>> = (0..low.buffers.len()).map(|_| None).collect();
        for p in &params_ports {
            storage[p.buf.index()] = Some(AlignedBuf::zeroed(p.ty.size_bytes()));
        }
        for (i, b) in low.buffers.iter().enumerate() {
            if let BufferKind::Const(node) = b.kind {
                let dlc_ir::Op::Const { value } = &graph.node(node).op else {
                    return Err(CodegenError::Internal(
                        "constant buffer without a constant".into(),
                    )
                    .into());
                };
                storage[i] = Some(AlignedBuf::from_bytes(&buffer::const_bytes(value, b.dtype)));
            }
        }
        Ok(CompiledModel {
            program,
            inputs,
            outputs,
            params: params_ports,
            storage,
            threading: opts.threading.clone(),
            pool: Mutex::new(Vec::new()),
            updates: update::Updates::default(),
            derived: None,
        })
    }

    /// The compiled program (kernels, buffers, memory plan, code dumps, timings).
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The inputs the model expects, in declaration order.
    pub fn input_types(&self) -> impl Iterator<Item = (&str, &TensorType)> {
        self.inputs.iter().map(|p| (p.name.as_str(), &p.ty))
    }

    /// The outputs the model produces, in order.
    pub fn output_types(&self) -> impl Iterator<Item = (&str, &TensorType)> {
        self.outputs.iter().map(|p| (p.name.as_str(), &p.ty))
    }

    /// The current parameter values.
    pub fn params(&self) -> Env {
        self.params
            .iter()
            .map(|p| {
                let bytes = self.storage[p.buf.index()]
                    .as_ref()
                    .expect("parameters have storage");
                (p.name.clone(), tensor_from_bytes(bytes.as_bytes(), &p.ty))
            })
            .collect()
    }

    /// Replaces one parameter's value (same type), in place, and recomputes the
    /// values derived from the parameters (to set several, use
    /// [`set_params`](Self::set_params), which recomputes them once).
    pub fn set_param(&mut self, name: &str, value: &Tensor) -> Result<(), RunError> {
        self.set_params([(name, value)])
    }

    /// Replaces several parameters' values (same types), in place, and recomputes
    /// the values derived from the parameters once. Every name and type is
    /// checked before anything is written, so a bad entry changes nothing.
    pub fn set_params<'a>(
        &mut self,
        values: impl IntoIterator<Item = (&'a str, &'a Tensor)>,
    ) -> Result<(), RunError> {
        let mut writes = Vec::new();
        for (name, value) in values {
            let i = self.param_index(name)?;
            value.check("parameter", name, &self.params[i].ty)?;
            writes.push((self.params[i].buf, value));
        }
        for (buf, value) in writes {
            let storage = self.storage[buf.index()]
                .as_mut()
                .expect("parameters have storage");
            write_tensor(value, storage.as_bytes_mut());
        }
        self.refresh_derived();
        self.derived_status()
    }

    /// The compiled prelude that computes the parameter-derived values, if any
    /// value of the graph depends only on parameters and constants.
    pub fn prelude(&self) -> Option<&Program> {
        self.derived.as_ref().map(|d| d.model.program())
    }

    /// The position of parameter `name` among the parameter ports.
    fn param_index(&self, name: &str) -> Result<usize, RunError> {
        self.params
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
                ValueError::Unknown {
                    what: "parameter",
                    name: name.to_string(),
                    known: known.join(", "),
                }
                .into()
            })
    }

    /// Runs the model: validates `inputs` (names, dtypes, shapes) before any
    /// kernel runs, then returns every output by name.
    pub fn run(&self, inputs: &Env) -> Result<Env, RunError> {
        self.check_inputs(inputs)?;
        let mut outputs: Vec<Tensor> = self.outputs.iter().map(|p| buffer::zeros(&p.ty)).collect();
        let ptrs: Vec<*mut u8> = outputs.iter_mut().map(data_ptr_mut).collect();
        let mut arena = self.take_arena();
        let result = self.execute(&mut arena, inputs, &ptrs);
        self.return_arena(arena);
        result?;
        Ok(self
            .outputs
            .iter()
            .map(|p| p.name.clone())
            .zip(outputs)
            .collect())
    }

    /// A session: an arena and output arrays reused by every [`Session::run`].
    pub fn session(&self) -> Session<'_> {
        Session {
            model: self,
            arena: self.take_arena(),
            outputs: self.outputs.iter().map(|p| buffer::zeros(&p.ty)).collect(),
        }
    }

    fn check_inputs(&self, inputs: &Env) -> Result<(), ValueError> {
        for p in &self.inputs {
            match inputs.get(&p.name) {
                None => {
                    return Err(ValueError::Missing {
                        what: "input",
                        name: p.name.clone(),
                        expected: p.ty.clone(),
                    });
                }
                Some(v) => v.check("input", &p.name, &p.ty)?,
            }
        }
        if let Some(extra) = inputs
            .keys()
            .find(|k| !self.inputs.iter().any(|p| &p.name == *k))
        {
            let known: Vec<&str> = self.inputs.iter().map(|p| p.name.as_str()).collect();
            return Err(ValueError::Unknown {
                what: "input",
                name: extra.clone(),
                known: if known.is_empty() {
                    "(none)".into()
                } else {
                    known.join(", ")
                },
            });
        }
        Ok(())
    }

    fn return_arena(&self, arena: Arena) {
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(arena);
    }

    fn take_arena(&self) -> Arena {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        pooled.unwrap_or_else(|| {
            let scratch = self
                .program
                .lowered
                .kernels
                .iter()
                .map(|k| k.op.scratch_bytes())
                .max()
                .unwrap_or(0);
            Arena {
                mem: AlignedBuf::zeroed(self.program.plan.arena_bytes),
                status: AlignedBuf::zeroed(dlc_codegen::emit::builder::STATUS_BYTES),
                scratch: (0..self.threading.threads.max(1))
                    .map(|_| AlignedBuf::zeroed(scratch))
                    .collect(),
            }
        })
    }
}

/// One caller's reusable state: an arena and the output arrays.
pub struct Session<'m> {
    model: &'m CompiledModel,
    arena: Arena,
    outputs: Vec<Tensor>,
}

impl Session<'_> {
    /// Runs the model into this session's output arrays and returns them by name.
    /// Allocates nothing after the first call.
    pub fn run(&mut self, inputs: &Env) -> Result<Vec<(&str, &Tensor)>, RunError> {
        self.model.check_inputs(inputs)?;
        let ptrs: Vec<*mut u8> = self.outputs.iter_mut().map(data_ptr_mut).collect();
        self.model.execute(&mut self.arena, inputs, &ptrs)?;
        Ok(self
            .model
            .outputs
            .iter()
            .map(|p| p.name.as_str())
            .zip(self.outputs.iter())
            .collect())
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let arena = Arena {
            mem: std::mem::take(&mut self.arena.mem),
            status: std::mem::take(&mut self.arena.status),
            scratch: std::mem::take(&mut self.arena.scratch),
        };
        self.model.return_arena(arena);
    }
}
