//! Small matrix products and matrix-vector products: one row of A against
//! 48-, 16-, 4- and 1-column strips of B (12, 4, 1 f32x4 accumulators or one
//! scalar), with the bias and activation epilogue applied at the store. Used
//! where packing would cost more than it saves (see `MatMulKernel::packed`);
//! with a row-major B each strip streams contiguous rows, which is what a
//! memory-bound GEMV needs.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};

use crate::emit::builder::KernelBuilder;
use crate::emit::math::Lanes;
use crate::kernel::{Activation, MatMulKernel, MatView};

/// Element offset of batch `bi` (a flat index over `batch`) in a view.
pub fn batch_offset(kb: &mut KernelBuilder, batch: &[usize], view: &MatView, bi: Value) -> Value {
    let mut off = kb.int(view.offset as i64);
    let mut rest = bi;
    for d in (0..batch.len()).rev() {
        let coord = kb.b.ins().urem_imm_u(rest, batch[d] as i64);
        rest = kb.b.ins().udiv_imm_u(rest, batch[d] as i64);
        off = kb.add_scaled(off, coord, view.batch_strides[d]);
    }
    off
}

/// Applies the activation of an epilogue.
pub fn activate(kb: &mut KernelBuilder, l: Lanes, act: Activation, v: Value) -> Value {
    match act {
        Activation::Identity => v,
        Activation::Relu => {
            let zero = kb.fconst(l, 0.0);
            let keep = kb.fcmp(FloatCC::UnorderedOrGreaterThan, v, zero);
            kb.select_mask(l, keep, v, zero)
        }
    }
}

/// Emits `C = A·B (+ bias) (act)`; the parallel loop runs over all `batch × m` rows.
pub fn emit(kb: &mut KernelBuilder, mm: &MatMulKernel) {
    let out_arg = if mm.bias.is_some() { 3 } else { 2 };
    let (start, end) = (kb.start, kb.end);
    kb.for_range(start, end, 1, &[], |kb, row, _| {
        let bi = kb.b.ins().udiv_imm_u(row, mm.m as i64);
        let i = kb.b.ins().urem_imm_u(row, mm.m as i64);
        let a_off = batch_offset(kb, &mm.batch, &mm.a, bi);
        let a_row = kb.add_scaled(a_off, i, mm.a.row_stride);
        let b_off = batch_offset(kb, &mm.batch, &mm.b, bi);
        let c_row = kb.b.ins().imul_imm_s(row, mm.n as i64);
        let vec_ok = mm.b.col_stride == 1;
        let mut j0 = 0;
        for (width, lanes) in [(48, 12), (16, 4), (4, 1), (1, 0)] {
            let vector = lanes > 0;
            if vector && !vec_ok {
                continue;
            }
            let count = (mm.n - j0) / width;
            if count == 0 {
                continue;
            }
            let lo = kb.int(j0 as i64);
            let hi = kb.int((j0 + count * width) as i64);
            kb.for_range(lo, hi, width as i64, &[], |kb, j, _| {
                strip(
                    kb,
                    mm,
                    vector,
                    lanes.max(1),
                    a_row,
                    b_off,
                    j,
                    c_row,
                    out_arg,
                );
                vec![]
            });
            j0 += count * width;
        }
        vec![]
    });
}

/// One row of C from column `j`: `n_acc` f32x4 accumulators (vector) or one scalar.
#[allow(clippy::too_many_arguments)]
fn strip(
    kb: &mut KernelBuilder,
    mm: &MatMulKernel,
    vector: bool,
    n_acc: usize,
    a_row: Value,
    b_off: Value,
    j: Value,
    c_row: Value,
    out_arg: usize,
) {
    let l = Lanes { vector };
    let ty = if vector { types::F32X4 } else { types::F32 };
    let b_col = kb.add_scaled(b_off, j, mm.b.col_stride);
    let zero = kb.fconst(l, 0.0);
    let init = vec![zero; n_acc];
    let acc = kb.for_n(mm.k, &init, |kb, p, acc| {
        let ai = kb.add_scaled(a_row, p, mm.a.col_stride);
        let a = kb.load(types::F32, 0, ai, 4);
        let a = if vector {
            kb.b.ins().splat(types::F32X4, a)
        } else {
            a
        };
        let bp = kb.add_scaled(b_col, p, mm.b.row_stride);
        // Multiply then add, not fma: x86-64's fma overwrites a multiplicand
        // (here the broadcast, live across the strip), which costs a copy per
        // vector and a move per accumulator; AVX's three-operand mul and add
        // keep each accumulator in its register and fold the load of `b`.
        (0..n_acc)
            .map(|v| {
                let b = kb.load_at(ty, 1, bp, 4, (16 * v) as i32);
                let prod = kb.b.ins().fmul(a, b);
                kb.b.ins().fadd(acc[v], prod)
            })
            .collect()
    });
    let c = kb.b.ins().iadd(c_row, j);
    for (v, &sum) in acc.iter().enumerate() {
        let mut r = sum;
        if let Some(off) = mm.bias {
            let bidx = kb.b.ins().iadd_imm_s(j, (off + 4 * v) as i64);
            let bias = kb.load(ty, 2, bidx, 4);
            r = kb.b.ins().fadd(r, bias);
        }
        r = activate(kb, l, mm.activation, r);
        let ci = kb.b.ins().iadd_imm_s(c, (4 * v) as i64);
        kb.store(r, out_arg, ci, 4);
    }
}
