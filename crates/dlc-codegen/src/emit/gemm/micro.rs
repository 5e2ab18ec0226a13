//! The register-blocked micro-kernel of a GEMM: `mr × nr` of C from a packed
//! A panel and a packed B panel, either generated (the portable Cranelift
//! f32x4 tier) or a call to a natively compiled kernel (see [`super::native`]).

use cranelift_codegen::ir::{AbiParam, InstBuilder, Value, types};

use super::{Gemm, Tier, native};
use crate::emit::builder::{KernelBuilder, PTR};

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
    /// over the depth loop, then a store that adds what is there when
    /// accumulating.
    ///
    /// Its data flow is shaped for Cranelift's x86 lowering and register
    /// allocator, so the loop runs without spills:
    /// - `fma` overwrites a multiplicand, never the addend, so each multiply-add
    ///   gets a multiplicand that dies there: its own broadcast of its A
    ///   element, loaded straight from the panel (`vbroadcastss` from memory
    ///   into a fresh register). Identical loads would be merged, so the loop
    ///   carries one copy of the A panel pointer per B vector; the copies are
    ///   equal but not provably so.
    /// - No vector constant is live across the loop (the allocator does not
    ///   rematerialise them): the first depth step is peeled to initialise the
    ///   accumulators with products instead of zeros, and the store branches on
    ///   `accumulate` instead of selecting with a mask.
    ///
    /// Live vector registers: the accumulators, the B vectors and one broadcast
    /// (15 of 16 at 6×8).
    fn micro_portable(&self, kb: &mut KernelBuilder, m: &Micro) {
        let (mr, vecs) = (self.mr, self.nr / 4);
        let aps = vec![m.ap; vecs];
        let first = self.portable_step(kb, None, &aps, m.bp);
        let mut init = first;
        init.extend(std::iter::repeat_n(m.ap, vecs));
        init.push(m.bp);
        let one = kb.int(1);
        let out = kb.for_range(one, m.kc, 1, &init, |kb, _, c| {
            let acc = &c[..mr * vecs];
            let (aps, bp) = (&c[mr * vecs..mr * vecs + vecs], c[mr * vecs + vecs]);
            let aps: Vec<Value> = aps
                .iter()
                .map(|&ap| kb.b.ins().iadd_imm_s(ap, mr as i64))
                .collect();
            let bp = kb.b.ins().iadd_imm_s(bp, self.nr as i64);
            let mut next = self.portable_step(kb, Some(acc), &aps, bp);
            next.extend(aps);
            next.push(bp);
            next
        });
        let store = |kb: &mut KernelBuilder, add: bool| {
            for r in 0..mr {
                let row = kb.b.ins().iadd_imm_s(m.idx, (r * m.ld) as i64);
                for v in 0..vecs {
                    let mut sum = out[r * vecs + v];
                    if add {
                        let old = kb.load_at(types::F32X4, m.dst, row, 4, 16 * v as i32);
                        sum = kb.b.ins().fadd(sum, old);
                    }
                    kb.store_at(sum, m.dst, row, 4, 16 * v as i32);
                }
            }
        };
        kb.if_else(m.accumulate, |kb| store(kb, true), |kb| store(kb, false));
    }

    /// One depth step of the portable micro-kernel at panel positions `aps`
    /// (one copy per B vector) and `bp`: the `mr × nr` products, added to
    /// `acc` when given.
    fn portable_step(
        &self,
        kb: &mut KernelBuilder,
        acc: Option<&[Value]>,
        aps: &[Value],
        bp: Value,
    ) -> Vec<Value> {
        let b: Vec<Value> = (0..aps.len())
            .map(|v| kb.load_pure_at(types::F32X4, self.s, bp, 4, 16 * v as i32))
            .collect();
        let mut out = Vec::with_capacity(self.mr * aps.len());
        for r in 0..self.mr {
            for (v, &bv) in b.iter().enumerate() {
                let a = kb.load_pure_at(types::F32, self.s, aps[v], 4, 4 * r as i32);
                let a = kb.b.ins().splat(types::F32X4, a);
                out.push(match acc {
                    Some(acc) => kb.b.ins().fma(a, bv, acc[r * aps.len() + v]),
                    None => kb.b.ins().fmul(a, bv),
                });
            }
        }
        out
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
