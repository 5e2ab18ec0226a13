//! The embedding API: load a model, compile it once, run it many times.

use std::path::Path;

use dlc_ir::Graph;
use dlc_ir::syntax::{self, Dims, ast};
use dlc_runtime::{CompiledModel, RuntimeOptions, Threading};
use dlc_tensor::Env;

use crate::Error;

/// Which engine executes a model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// Cranelift-compiled machine code (the default).
    #[default]
    Jit,
    /// The reference interpreter (slow, obviously correct).
    Interp,
}

/// How to compile a model: dims, parameters, backend, threads.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Named-dimension bindings (over the model's defaults).
    pub dims: Dims,
    /// Seed of the parameter initialisers.
    pub seed: u64,
    /// Parameter values loaded from a file; missing parameters are initialised.
    pub params: Env,
    /// The engine.
    pub backend: Backend,
    /// JIT options (code generation and threading).
    pub runtime: RuntimeOptions,
    /// Graph optimisation (level, rule groups, limits); `-O1` by default.
    pub opt: dlc_opt::OptOptions,
}

impl Options {
    /// Binds a named dimension, e.g. `.dim("B", 64)`.
    pub fn dim(mut self, name: &str, size: usize) -> Options {
        self.dims.insert(name.to_string(), size);
        self
    }

    /// Sets the initialiser seed.
    pub fn seed(mut self, seed: u64) -> Options {
        self.seed = seed;
        self
    }

    /// Uses these parameter values (others are initialised).
    pub fn params(mut self, params: Env) -> Options {
        self.params = params;
        self
    }

    /// Chooses the engine.
    pub fn backend(mut self, backend: Backend) -> Options {
        self.backend = backend;
        self
    }

    /// Limits the threads one kernel may use (1 = single-threaded).
    pub fn threads(mut self, threads: usize) -> Options {
        self.runtime.threading = Threading {
            threads: threads.max(1),
            ..self.runtime.threading
        };
        self
    }

    /// Sets the optimisation level (`O0` compiles the graph as written).
    pub fn opt_level(mut self, level: dlc_opt::OptLevel) -> Options {
        self.opt.level = level;
        self
    }

    /// Bounds-checks every memory access of the generated code (slow; for testing).
    pub fn checked(mut self, checked: bool) -> Options {
        self.runtime.codegen.checked = checked;
        self
    }

    /// Uses only Cranelift-generated code (the portable GEMM micro-kernel), even
    /// where a natively compiled (AVX-512 or AVX2) micro-kernel exists for this CPU.
    pub fn portable(mut self, portable: bool) -> Options {
        self.runtime.codegen.portable = portable;
        self
    }
}

/// A parsed model, not yet bound to dims.
#[derive(Clone, Debug)]
pub struct Model {
    path: String,
    source: String,
    ast: ast::Model,
}

impl Model {
    /// Reads and parses a `.ir` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Model, Error> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|e| Error::File(format!("{}: {e}", path.display())))?;
        let name = path.display().to_string();
        let source = String::from_utf8(bytes).map_err(|e| {
            let bytes = e.as_bytes();
            let at = e.utf8_error().valid_up_to();
            let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            let col = at - bytes[..at].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) + 1;
            Error::File(format!(
                "{name}:{line}:{col}: the file is not valid UTF-8 (invalid byte {:#04x} at offset {at})",
                bytes[at]
            ))
        })?;
        Model::from_source(&name, &source)
    }

    /// Parses model text; `name` is used in error messages.
    pub fn from_source(name: &str, source: &str) -> Result<Model, Error> {
        let ast = syntax::parse(source).map_err(|diagnostics| Error::Source {
            path: name.to_string(),
            text: source.to_string(),
            diagnostics,
        })?;
        Ok(Model {
            path: name.to_string(),
            source: source.to_string(),
            ast,
        })
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.ast.name
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The parsed syntax tree.
    pub fn ast(&self) -> &ast::Model {
        &self.ast
    }

    /// Elaborates the model to a typed graph with `dims` bound.
    pub fn graph(&self, dims: &Dims) -> Result<Graph, Error> {
        syntax::elaborate(&self.ast, dims).map_err(|diagnostics| Error::Source {
            path: self.path.clone(),
            text: self.source.clone(),
            diagnostics,
        })
    }

    /// Elaborates, binds parameters and compiles (or prepares the interpreter).
    pub fn compile(&self, opts: &Options) -> Result<Executable, Error> {
        Executable::new(self.graph(&opts.dims)?, opts)
    }
}

enum Engine {
    Jit(Box<CompiledModel>),
    Interp,
}

/// A model ready to run: bound dims and parameters, compiled for its backend.
pub struct Executable {
    graph: Graph,
    opt_report: dlc_opt::Report,
    params: Env,
    engine: Engine,
}

impl std::fmt::Debug for Executable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executable")
            .field("graph", &self.graph.name)
            .finish()
    }
}

impl Executable {
    /// Prepares a graph: optimises it (`opts.opt`), then binds parameters from
    /// `opts.params` or their initialisers.
    pub fn new(graph: Graph, opts: &Options) -> Result<Executable, Error> {
        let (graph, opt_report) = dlc_opt::optimize(&graph, &opts.opt)?;
        let params = dlc_tensor::init_params(&graph, opts.seed, &opts.params)?;
        let engine = match opts.backend {
            Backend::Jit => Engine::Jit(Box::new(CompiledModel::new(
                &graph,
                &params,
                &opts.runtime,
            )?)),
            Backend::Interp => Engine::Interp,
        };
        Ok(Executable {
            graph,
            opt_report,
            params,
            engine,
        })
    }

    /// Runs the model on `inputs` (checked against the declared types first).
    pub fn run(&self, inputs: &Env) -> Result<Env, Error> {
        match &self.engine {
            Engine::Jit(m) => Ok(m.run(inputs)?),
            Engine::Interp => Ok(dlc_interp::run::<f32>(&self.graph, inputs, &self.params)?),
        }
    }

    /// The bound graph (after optimisation).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// What the optimiser did.
    pub fn opt_report(&self) -> &dlc_opt::Report {
        &self.opt_report
    }

    /// The parameter values in use.
    pub fn params(&self) -> Env {
        match &self.engine {
            Engine::Jit(m) => m.params(),
            Engine::Interp => self.params.clone(),
        }
    }

    /// The compiled model, when the backend is the JIT.
    pub fn compiled(&self) -> Option<&CompiledModel> {
        match &self.engine {
            Engine::Jit(m) => Some(m),
            Engine::Interp => None,
        }
    }

    /// Random inputs valid for this model (indices and labels in range), from `seed`.
    pub fn random_inputs(&self, seed: u64) -> Env {
        dlc_testgen::random_values(&self.graph, seed).0
    }
}
