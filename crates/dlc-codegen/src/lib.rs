//! dlc's backend: lowering, memory planning and Cranelift code generation.
//!
//! [`compile`] turns a verified [`Graph`] into a [`Program`]: kernels in
//! execution order (see [`kernel`]), the buffers they use, an arena plan for
//! the temporaries ([`plan`]) and the JIT-compiled machine code of every kernel
//! ([`emit`]). Running a program (binding buffers, threading) is dlc-runtime's job.
//!
//! Only this crate knows that Cranelift exists.
#![deny(missing_docs)]

pub mod emit;
mod fault;
pub mod kernel;
pub mod lower;
pub mod plan;

use std::time::Instant;

use dlc_ir::Graph;

pub use emit::{CompiledKernels, KernelDump, KernelFn};
pub use fault::Fault;
pub use kernel::{BufId, Buffer, BufferKind, Kernel, KernelOp};
pub use lower::Lowered;
pub use plan::MemoryPlan;

/// What to generate.
#[derive(Clone, Debug)]
pub struct CodegenOptions {
    /// Run Cranelift's optimiser (`opt_level=speed`) rather than `none`.
    pub optimize: bool,
    /// Bounds-check every memory access (slow; for testing).
    pub checked: bool,
    /// Keep each kernel's Cranelift IR text.
    pub dump_clif: bool,
    /// Keep each kernel's machine-code listing.
    pub dump_asm: bool,
    /// Use only Cranelift-generated code (the portable GEMM micro-kernel) even
    /// where a natively compiled one exists for this CPU.
    pub portable: bool,
    /// Test only: deliberately miscompile (see [`Fault`]), so that the
    /// differential fuzzer can be shown to catch and reduce a known bug.
    #[doc(hidden)]
    pub fault: Option<Fault>,
}

impl Default for CodegenOptions {
    fn default() -> CodegenOptions {
        CodegenOptions {
            optimize: true,
            checked: false,
            dump_clif: false,
            dump_asm: false,
            portable: false,
            fault: None,
        }
    }
}

/// Why a graph could not be compiled.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CodegenError {
    /// The backend has no kernel for this op yet.
    #[error("the JIT backend does not support `{0}` yet")]
    Unsupported(&'static str),
    /// Cranelift rejected the generated code (a dlc bug).
    #[error("Cranelift error: {0}")]
    Cranelift(String),
    /// An internal invariant broke (a dlc bug).
    #[error("internal codegen error: {0}")]
    Internal(String),
    /// The input graph is not well formed.
    #[error(transparent)]
    Verify(#[from] dlc_ir::VerifyError),
}

/// Seconds spent in each phase of [`compile`].
#[derive(Clone, Copy, Debug, Default)]
pub struct PhaseTimes {
    /// Graph verification.
    pub verify: f64,
    /// Lowering to kernels.
    pub lower: f64,
    /// Memory planning.
    pub plan: f64,
    /// Building Cranelift IR.
    pub build: f64,
    /// Cranelift compilation and linking.
    pub compile: f64,
}

/// A compiled graph: everything the runtime needs to execute it.
#[derive(Debug)]
pub struct Program {
    /// Buffers, kernels and I/O bindings.
    pub lowered: Lowered,
    /// Arena offsets of the temporaries.
    pub plan: MemoryPlan,
    /// Machine code, one function per kernel.
    pub code: CompiledKernels,
    /// Time per phase.
    pub times: PhaseTimes,
}

/// Compiles a graph to machine code.
pub fn compile(g: &Graph, opts: &CodegenOptions) -> Result<Program, CodegenError> {
    let t = Instant::now();
    dlc_ir::verify(g)?;
    let verify = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let native = !opts.portable && emit::gemm::native::detect().is_some();
    let mut lowered = lower::lower(g, native)?;
    if let Some(f) = opts.fault {
        fault::inject(&mut lowered, f);
    }
    let lower = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let plan = plan::plan(&lowered.buffers, &lowered.kernels);
    let plan_secs = t.elapsed().as_secs_f64();
    let code = emit::compile(&lowered.kernels, &lowered.buffers, opts)?;
    let times = PhaseTimes {
        verify,
        lower,
        plan: plan_secs,
        build: code.build_secs,
        compile: code.compile_secs,
    };
    Ok(Program {
        lowered,
        plan,
        code,
        times,
    })
}
