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

#[cfg(test)]
mod tests {
    use cranelift_codegen::ir::{AbiParam, Function, InstBuilder, types};
    use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

    use super::*;
    use crate::emit::host_isa;

    /// A function storing a splat of type `ty` to `*p` (the x64 backend
    /// rejects f32x8 at lowering).
    fn splat_store(ty: types::Type, isa: &dyn TargetIsa) -> Function {
        let mut func = Function::new();
        func.signature.params.push(AbiParam::new(types::I64));
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);
        let p = b.block_params(entry)[0];
        let x = b.ins().f32const(1.0);
        let v = b.ins().splat(ty, x);
        b.ins().store(crate::emit::builder::mem(), v, p, 0);
        b.ins().return_(&[]);
        b.finalize(isa.frontend_config());
        func
    }

    /// A function Cranelift cannot compile among good ones: the error names it,
    /// however the units were spread over the pool's threads.
    #[test]
    fn a_failing_function_is_reported_by_name() {
        if !cfg!(target_arch = "x86_64") {
            return;
        }
        let opts = CodegenOptions::default();
        let isa = host_isa(&opts).unwrap();
        let mut units: Vec<Unit> = (0..6)
            .map(|i| {
                let ty = if i == 3 { types::F32X8 } else { types::F32X4 };
                Unit::new(&format!("k{i}_test"), splat_store(ty, &*isa), &opts)
            })
            .collect();
        let err = compile_all(&mut units, &*isa).unwrap_err();
        assert!(
            matches!(&err, CodegenError::Cranelift(m) if m.starts_with("k3_test: ")),
            "{err}"
        );
    }
}
