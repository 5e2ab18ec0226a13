//! Strided copies (transpose, slice, broadcast, concat pieces, output copies).

use cranelift_codegen::ir::{InstBuilder, Value, types};
use dlc_ir::DType;

use super::builder::KernelBuilder;
use crate::kernel::CopyKernel;

/// Emits a copy; dim 0 is the parallel dim. Contiguous innermost runs move 16 bytes at a time.
pub fn emit(kb: &mut KernelBuilder, c: &CopyKernel) {
    let src0 = kb.int(c.src_offset as i64);
    let dst0 = kb.int(c.dst_offset as i64);
    level(kb, c, 0, src0, dst0);
}

fn elem_type(dt: DType) -> types::Type {
    match dt {
        DType::F32 => types::F32,
        DType::I64 => types::I64,
        DType::Bool => types::I8,
    }
}

fn level(kb: &mut KernelBuilder, c: &CopyKernel, d: usize, src: Value, dst: Value) {
    let rank = c.shape.len();
    let (lo, hi) = if d == 0 {
        (kb.start, kb.end)
    } else {
        (kb.int(0), kb.int(c.shape[d] as i64))
    };
    let (ss, ds) = (c.src_strides[d], c.dst_strides[d]);
    let eb = c.dtype.size_bytes();
    if d + 1 < rank {
        kb.for_range(lo, hi, 1, &[], |kb, i, _| {
            let s = kb.add_scaled(src, i, ss);
            let t = kb.add_scaled(dst, i, ds);
            level(kb, c, d + 1, s, t);
            vec![]
        });
        return;
    }
    let per_vec = 16 / eb;
    let tail_lo = if ss == 1 && ds == 1 {
        let span = kb.b.ins().isub(hi, lo);
        let whole = kb.b.ins().band_imm_s(span, !(per_vec as i64 - 1));
        let vhi = kb.b.ins().iadd(lo, whole);
        kb.for_range(lo, vhi, per_vec as i64, &[], |kb, i, _| {
            let s = kb.b.ins().iadd(src, i);
            let t = kb.b.ins().iadd(dst, i);
            let v = kb.load(types::I8X16, 0, s, eb);
            kb.store(v, 1, t, eb);
            vec![]
        });
        vhi
    } else {
        lo
    };
    let ty = elem_type(c.dtype);
    kb.for_range(tail_lo, hi, 1, &[], |kb, i, _| {
        let s = kb.add_scaled(src, i, ss);
        let t = kb.add_scaled(dst, i, ds);
        let v = kb.load(ty, 0, s, eb);
        kb.store(v, 1, t, eb);
        vec![]
    });
}
