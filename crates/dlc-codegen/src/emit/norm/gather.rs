//! Gather (embedding lookups included) and one-hot encodings.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};
use dlc_ir::DType;

use super::rows::{V, each, for_parallel, for_range};
use crate::emit::builder::{KernelBuilder, status};

/// `out[o, c, :] = x[o, idx[c], :]` for the rows `p = o·count + c` in
/// `start..end`; arguments `x, idx, out`. A bad index raises `BAD_INDEX` and
/// copies row 0 instead, so nothing is read out of bounds.
pub fn gather(
    kb: &mut KernelBuilder,
    outer: usize,
    axis_len: usize,
    count: usize,
    inner: usize,
    dtype: DType,
) {
    for_parallel(kb, |kb, p| {
        if axis_len == 0 {
            kb.raise(status::BAD_INDEX);
            return;
        }
        let (o, c) = if outer == 1 {
            (None, p)
        } else {
            let o = kb.b.ins().udiv_imm_u(p, count as i64);
            (Some(o), kb.b.ins().urem_imm_u(p, count as i64))
        };
        let j = kb.load(types::I64, 1, c, 8);
        let bad =
            kb.b.ins()
                .icmp_imm_u(IntCC::UnsignedGreaterThanOrEqual, j, axis_len as i64);
        kb.if_then(bad, |kb| kb.raise(status::BAD_INDEX));
        let zero = kb.int(0);
        let j = kb.b.ins().select(bad, zero, j);
        let row = match o {
            None => j,
            Some(o) => {
                let first = kb.b.ins().imul_imm_s(o, axis_len as i64);
                kb.b.ins().iadd(first, j)
            }
        };
        let src = kb.b.ins().imul_imm_s(row, inner as i64);
        let dst = kb.b.ins().imul_imm_s(p, inner as i64);
        copy_run(kb, src, dst, inner, dtype);
    });
}

/// Copies `len` contiguous elements from `x[src..]` (argument 0) to `out[dst..]`
/// (argument 2): 16 bytes at a time, then single elements.
fn copy_run(kb: &mut KernelBuilder, src: Value, dst: Value, len: usize, dtype: DType) {
    let eb = dtype.size_bytes();
    let per = 16 / eb;
    let vectors = len / per;
    let mv = |kb: &mut KernelBuilder, ty: types::Type, i: Value, disp: usize| {
        let s = kb.b.ins().iadd(src, i);
        let d = kb.b.ins().iadd(dst, i);
        let v = kb.load_at(ty, 0, s, eb, disp as i32);
        kb.store_at(v, 2, d, eb, disp as i32);
    };
    let zero = kb.int(0);
    if vectors > 4 {
        let (lo, hi) = (kb.int(0), kb.int((vectors / 2 * 2 * per) as i64));
        for_range(kb, lo, hi, 2 * per as i64, &[], |kb, i, _| {
            mv(kb, types::I8X16, i, 0);
            mv(kb, types::I8X16, i, 16);
            vec![]
        });
        if vectors % 2 == 1 {
            mv(kb, types::I8X16, zero, (vectors - 1) * 16);
        }
    } else {
        for v in 0..vectors {
            mv(kb, types::I8X16, zero, v * 16);
        }
    }
    let ty = match dtype {
        DType::F32 => types::F32,
        DType::I64 => types::I64,
        DType::Bool => types::I8,
    };
    for r in vectors * per..len {
        mv(kb, ty, zero, r * eb);
    }
}

/// `out[n, :] = one_hot(idx[n])` for the rows in `start..end`: the row is
/// zeroed, then 1.0 stored at an index inside `0..depth`; arguments `idx, out`.
pub fn one_hot(kb: &mut KernelBuilder, depth: usize) {
    for_parallel(kb, |kb, n| {
        let base = kb.b.ins().imul_imm_s(n, depth as i64);
        let (zero_v, zero_s) = (kb.fconst(V, 0.0), kb.f32c(0.0, false));
        each(kb, depth, 4, &|kb, l, at| {
            let z = if l.vector { zero_v } else { zero_s };
            at.store(kb, z, 1, base);
        });
        let j = kb.load(types::I64, 0, n, 8);
        let ok =
            kb.b.ins()
                .icmp_imm_u(IntCC::UnsignedLessThan, j, depth as i64);
        kb.if_then(ok, |kb| {
            let one = kb.f32c(1.0, false);
            let i = kb.b.ins().iadd(base, j);
            kb.store(one, 1, i, 4);
        });
    });
}
