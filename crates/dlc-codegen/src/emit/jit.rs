//! Machine code for the kernels: each Cranelift function is compiled on its
//! own (on the rayon pool, since the functions are independent) and the
//! results are linked into the JIT module in kernel order.

use std::time::Instant;

use cranelift_codegen::Context;
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::Function;
use cranelift_codegen::isa::TargetIsa;
use cranelift_jit::JITModule;
use cranelift_module::{Linkage, Module, ModuleReloc};
use rayon::prelude::*;

use super::{KernelDump, KernelFn};
use crate::{CodegenError, CodegenOptions};

/// One kernel on its way to machine code.
pub(super) struct Unit {
    name: String,
    ctx: Context,
    dump: KernelDump,
}

impl Unit {
    /// A built function, with the dumps `opts` asks for.
    pub(super) fn new(name: &str, func: Function, opts: &CodegenOptions) -> Unit {
        let dump = KernelDump {
            clif: opts.dump_clif.then(|| func.display().to_string()),
            ..KernelDump::default()
        };
        let mut ctx = Context::for_function(func);
        ctx.set_disasm(opts.dump_asm);
        Unit {
            name: name.to_string(),
            ctx,
            dump,
        }
    }

    /// The kernel's dumps (with its code size and compile time).
    pub(super) fn into_dump(self) -> KernelDump {
        self.dump
    }

    fn compile(&mut self, isa: &dyn TargetIsa) -> Result<(), CodegenError> {
        let t = Instant::now();
        let code = self
            .ctx
            .compile(isa, &mut ControlPlane::default())
            .map_err(|e| CodegenError::Cranelift(format!("{}: {:?}", self.name, e.inner)))?;
        self.dump.code_bytes = code.code_buffer().len();
        self.dump.asm = code.vcode.clone();
        self.dump.compile_secs = t.elapsed().as_secs_f64();
        Ok(())
    }
}

/// Compiles every unit, in parallel.
pub(super) fn compile_all(units: &mut [Unit], isa: &dyn TargetIsa) -> Result<(), CodegenError> {
    units.par_iter_mut().try_for_each(|u| u.compile(isa))
}

/// Defines every compiled unit in `module`, finalises it, and returns the entry
/// points in unit order.
pub(super) fn link(module: &mut JITModule, units: &[Unit]) -> Result<Vec<KernelFn>, CodegenError> {
    let err = |e: cranelift_module::ModuleError| CodegenError::Cranelift(e.to_string());
    let mut ids = Vec::with_capacity(units.len());
    for u in units {
        let id = module
            .declare_function(&u.name, Linkage::Local, &u.ctx.func.signature)
            .map_err(err)?;
        let code = u.ctx.compiled_code().expect("compiled by compile_all");
        let relocs: Vec<ModuleReloc> = code
            .buffer
            .relocs()
            .iter()
            .map(|r| ModuleReloc::from_mach_reloc(r, &u.ctx.func, id))
            .collect();
        module
            .define_function_bytes(
                id,
                code.buffer.alignment as u64,
                code.code_buffer(),
                &relocs,
            )
            .map_err(err)?;
        ids.push(id);
    }
    module.finalize_definitions().map_err(err)?;
    Ok(ids
        .iter()
        // SAFETY: every function was declared with the `KernelFn` signature.
        .map(|&id| unsafe {
            std::mem::transmute::<*const u8, KernelFn>(module.get_finalized_function(id))
        })
        .collect())
}
