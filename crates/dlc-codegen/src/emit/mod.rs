//! Emission: each kernel becomes one Cranelift function in a JIT module.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod backward;
pub mod builder;
mod copy;
pub(crate) mod elementwise;
pub mod gemm;
mod jit;
/// The small-matmul helpers under their former path (used by the spatial and sequence emitters).
pub(crate) mod matmul {
    pub(crate) use super::gemm::small::{activate, batch_offset};
}
pub mod math;
pub(crate) mod norm;
mod reduce;
mod sequence;
mod spatial;

use std::time::Instant;

use cranelift_codegen::ir::{AbiParam, Function, types};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::Module;

use self::builder::{KernelBuilder, PTR};
use crate::kernel::{Buffer, Kernel, KernelOp};
use crate::{CodegenError, CodegenOptions};

/// A compiled kernel: `table` points to the status block then one pointer per
/// buffer; `start..end` is the share of the parallel loop; `scratch` is the
/// calling thread's private block of [`crate::KernelOp::scratch_bytes`] bytes.
pub type KernelFn =
    unsafe extern "C" fn(table: *const *mut u8, start: i64, end: i64, scratch: *mut u8);

/// Text dumps of one kernel, when requested.
#[derive(Clone, Debug, Default)]
pub struct KernelDump {
    /// Cranelift IR before compilation.
    pub clif: Option<String>,
    /// The backend's machine-code listing.
    pub asm: Option<String>,
    /// Size of the machine code in bytes.
    pub code_bytes: usize,
    /// Seconds Cranelift spent compiling this kernel (on one thread).
    pub compile_secs: f64,
}

/// The JIT module holding every kernel's machine code.
pub struct CompiledKernels {
    module: Option<JITModule>,
    /// One function per kernel, in kernel order.
    pub fns: Vec<KernelFn>,
    /// Dumps per kernel (empty strings unless requested).
    pub dumps: Vec<KernelDump>,
    /// Seconds spent building Cranelift IR.
    pub build_secs: f64,
    /// Wall-clock seconds spent in Cranelift's compiler (lowering, regalloc,
    /// emission; kernels compile in parallel) and linking.
    pub compile_secs: f64,
}

impl std::fmt::Debug for CompiledKernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledKernels")
            .field("fns", &self.fns.len())
            .finish()
    }
}

impl Drop for CompiledKernels {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the function pointers die with `self`; nothing can call them afterwards.
            unsafe { m.free_memory() };
        }
    }
}

// SAFETY: the module is only used to keep the code alive; the code is immutable
// after finalisation and the kernels are reentrant (they touch only the buffers
// passed to them).
unsafe impl Send for CompiledKernels {}
// SAFETY: as above; `&CompiledKernels` only exposes immutable function pointers.
unsafe impl Sync for CompiledKernels {}

/// Builds the target ISA for the host (FMA and AVX where present).
pub fn host_isa(opts: &CodegenOptions) -> Result<OwnedTargetIsa, CodegenError> {
    let mut flags = settings::builder();
    let set = |flags: &mut settings::Builder, k: &str, v: &str| {
        flags
            .set(k, v)
            .map_err(|e| CodegenError::Cranelift(format!("setting {k}={v}: {e}")))
    };
    set(
        &mut flags,
        "opt_level",
        if opts.optimize { "speed" } else { "none" },
    )?;
    set(&mut flags, "is_pic", "false")?;
    set(
        &mut flags,
        "enable_verifier",
        if cfg!(debug_assertions) {
            "true"
        } else {
            "false"
        },
    )?;
    let isa = cranelift_native::builder()
        .map_err(|e| CodegenError::Cranelift(format!("host ISA: {e}")))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| CodegenError::Cranelift(format!("host ISA: {e}")))?;
    Ok(isa)
}

/// Compiles every kernel: builds each one's Cranelift function, compiles the
/// functions on the rayon pool (they are independent), then links them into
/// one JIT module in kernel order.
pub fn compile(
    kernels: &[Kernel],
    buffers: &[Buffer],
    opts: &CodegenOptions,
) -> Result<CompiledKernels, CodegenError> {
    let isa = host_isa(opts)?;
    let mut module = JITModule::new(JITBuilder::with_isa(
        isa.clone(),
        cranelift_module::default_libcall_names(),
    ));
    let tier = match (opts.portable, gemm::native::detect()) {
        (false, Some(k)) => gemm::Tier::Native(k),
        _ => gemm::Tier::Portable,
    };
    let t0 = Instant::now();
    let mut fctx = FunctionBuilderContext::new();
    let mut units: Vec<jit::Unit> = Vec::with_capacity(kernels.len());
    for k in kernels {
        let mut func = Function::new();
        func.signature = module.make_signature();
        func.signature.params = vec![
            AbiParam::new(PTR),
            AbiParam::new(types::I64),
            AbiParam::new(types::I64),
            AbiParam::new(PTR),
        ];
        let args: Vec<(usize, usize)> = k
            .inputs
            .iter()
            .chain(&k.outputs)
            .map(|b| (b.index(), buffers[b.index()].bytes()))
            .collect();
        let fb = FunctionBuilder::new(&mut func, &mut fctx);
        let mut kb = KernelBuilder::new(fb, &args, k.op.scratch_bytes(), opts.checked);
        emit_body(&mut kb, k, tier);
        kb.finish().finalize(isa.frontend_config());
        units.push(jit::Unit::new(&k.name, func, opts));
    }
    let build_secs = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    jit::compile_all(&mut units, &*isa)?;
    let fns = jit::link(&mut module, &units)?;
    let compile_secs = t1.elapsed().as_secs_f64();
    Ok(CompiledKernels {
        module: Some(module),
        fns,
        dumps: units.into_iter().map(jit::Unit::into_dump).collect(),
        build_secs,
        compile_secs,
    })
}

/// Dispatches to the emitter of the kernel's op.
fn emit_body(kb: &mut KernelBuilder, k: &Kernel, tier: gemm::Tier) {
    let n_in = k.inputs.len();
    match &k.op {
        KernelOp::Elementwise(e) => elementwise::emit(kb, e, n_in),
        KernelOp::Copy(c) => copy::emit(kb, c),
        KernelOp::Reduce {
            kind,
            outer,
            len,
            inner,
        } => reduce::reduce(kb, *kind, *outer, *len, *inner),
        KernelOp::ArgMax { outer, len, inner } => reduce::argmax(kb, *outer, *len, *inner),
        KernelOp::Softmax {
            len, inner, log, ..
        } => {
            let native = reduce::native::detect().filter(|_| matches!(tier, gemm::Tier::Native(_)));
            reduce::softmax(kb, *len, *inner, *log, native)
        }
        KernelOp::MatMul(m) => gemm::emit(kb, m, tier),
        KernelOp::Norm(op) => norm::emit(kb, op, k),
        KernelOp::Spatial(op) => spatial::emit(kb, op, k, tier),
        KernelOp::Sequence(op) => sequence::emit(kb, op, k, tier),
        KernelOp::Backward(op) => backward::emit(kb, op),
    }
}
