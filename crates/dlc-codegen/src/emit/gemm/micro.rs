//! The register-blocked micro-kernel of a GEMM: `mr × nr` of C from a packed
//! A panel and a packed B panel, either generated (the portable Cranelift
//! f32x4 tier) or a call to a natively compiled kernel (see [`super::native`]).

use cranelift_codegen::ir::{AbiParam, InstBuilder, Value, types};

use super::{Gemm, Tier, native};
use crate::emit::builder::{KernelBuilder, PTR};
use crate::emit::math::Lanes;

/// One micro-kernel call: `kc` steps over the packed A panel at scratch index
/// `ap` and the packed B panel at `bp`; the `mr × nr` result goes to argument
/// `dst` from element `idx` with row stride `ld`.
pub(super) struct Micro {
    /// Depth of the panels.
    pub(super) kc: Value,
    /// Scratch index of the A panel.
    pub(super) ap: Value,
    /// Scratch index of the B panel.
    pub(super) bp: Value,
    /// Argument index of the destination (C or the scratch block).
    pub(super) dst: usize,
    /// Element index of the tile's first element in `dst`.
    pub(super) idx: Value,
    /// Row stride of the destination, in elements.
    pub(super) ld: usize,
    /// An i8 flag: add to what is in `dst` rather than overwrite it.
    pub(super) accumulate: Value,
}

impl Gemm<'_> {
    /// `acc = A panel · B panel`; stores to `dst[idx..]` with row stride `ld`,
    /// adding what is there when `accumulate` is set.
    pub(super) fn micro(&self, kb: &mut KernelBuilder, m: &Micro) {
        match self.tier {
            Tier::Portable => self.micro_portable(kb, m),
            Tier::Native(k) => self.micro_native(kb, k, m),
        }
    }

    /// The Cranelift-generated micro-kernel: `mr × nr/4` f32x4 accumulators
    /// over the depth loop, then a branch-free store (adding when accumulating).
    fn micro_portable(&self, kb: &mut KernelBuilder, m: &Micro) {
        let vecs = self.nr / 4;
        let zero = kb.f32c(0.0, true);
        let mut init = vec![zero; self.mr * vecs];
        init.push(m.ap);
        init.push(m.bp);
        let (mr, nr) = (self.mr, self.nr);
        let lo = kb.int(0);
        let out = kb.for_range(lo, m.kc, 1, &init, |kb, _, c| {
            let (ap, bp) = (c[mr * vecs], c[mr * vecs + 1]);
            let b: Vec<Value> = (0..vecs)
                .map(|v| kb.load_at(types::F32X4, self.s, bp, 4, 16 * v as i32))
                .collect();
            let mut next = Vec::with_capacity(c.len());
            for r in 0..mr {
                let a = kb.load_at(types::F32, self.s, ap, 4, 4 * r as i32);
                let a = kb.b.ins().splat(types::F32X4, a);
                for (v, &bv) in b.iter().enumerate() {
                    next.push(kb.b.ins().fma(a, bv, c[r * vecs + v]));
                }
            }
            next.push(kb.b.ins().iadd_imm_s(ap, mr as i64));
            next.push(kb.b.ins().iadd_imm_s(bp, nr as i64));
            next
        });
        // Store (adding the old values when accumulating: a branch-free select).
        let mask = kb.b.ins().sextend(types::I32, m.accumulate);
        let mask = kb.b.ins().ineg(mask);
        let mask = kb.b.ins().splat(types::I32X4, mask);
        let l = Lanes { vector: true };
        for r in 0..mr {
            let row = kb.b.ins().iadd_imm_s(m.idx, (r * m.ld) as i64);
            for v in 0..vecs {
                let old = kb.load_at(types::F32X4, m.dst, row, 4, 16 * v as i32);
                let zero = kb.f32c(0.0, true);
                let add = kb.select_mask(l, mask, old, zero);
                let sum = kb.b.ins().fadd(out[r * vecs + v], add);
                kb.store_at(sum, m.dst, row, 4, 16 * v as i32);
            }
        }
    }

    /// A call of the native micro-kernel `k`; in checked mode the call runs only
    /// when the regions it touches are proven in bounds.
    fn micro_native(&self, kb: &mut KernelBuilder, k: native::NativeKernel, m: &Micro) {
        let call = |kb: &mut KernelBuilder| {
            let mut sig = kb.b.func.signature.clone();
            sig.params = vec![
                AbiParam::new(types::I64),
                AbiParam::new(PTR),
                AbiParam::new(PTR),
                AbiParam::new(PTR),
                AbiParam::new(types::I64),
                AbiParam::new(types::I64),
            ];
            sig.returns.clear();
            let sig = kb.b.import_signature(sig);
            let f = kb.b.ins().iconst(PTR, k.f as usize as i64);
            let a_ptr = byte_ptr(kb, self.s, m.ap);
            let b_ptr = byte_ptr(kb, self.s, m.bp);
            let c_ptr = byte_ptr(kb, m.dst, m.idx);
            let ldv = kb.int(m.ld as i64);
            let acc = kb.b.ins().uextend(types::I64, m.accumulate);
            kb.b.ins()
                .call_indirect(sig, f, &[m.kc, a_ptr, b_ptr, c_ptr, ldv, acc]);
        };
        if !kb.checked() {
            call(kb);
            return;
        }
        // Checked mode: prove the regions the native code touches are in bounds.
        let a_len = kb.b.ins().imul_imm_s(m.kc, self.mr as i64);
        let b_len = kb.b.ins().imul_imm_s(m.kc, self.nr as i64);
        let c_len = kb.int(((self.mr - 1) * m.ld + self.nr) as i64);
        let ok_a = kb.in_bounds(self.s, m.ap, a_len, 4);
        let ok_b = kb.in_bounds(self.s, m.bp, b_len, 4);
        let ok_c = kb.in_bounds(m.dst, m.idx, c_len, 4);
        let ok = kb.b.ins().band(ok_a, ok_b);
        let ok = kb.b.ins().band(ok, ok_c);
        kb.if_then(ok, call);
    }
}

/// The address of element `idx` (f32) of argument `arg`, for native calls.
fn byte_ptr(kb: &mut KernelBuilder, arg: usize, idx: Value) -> Value {
    let base = kb.arg_base(arg);
    let off = kb.b.ins().imul_imm_s(idx, 4);
    kb.b.ins().iadd(base, off)
}
