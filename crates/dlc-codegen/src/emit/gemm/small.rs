//! Small matrix products and matrix-vector products. Rows of C are computed
//! one at a time against 48-, 16- and 4-column strips of B (12, 4, 1 f32x4
//! accumulators; most single rows first go through [`super::gemv`], which
//! streams B whole rows at a time, and leave only the last columns to the
//! strips), or, for unbatched products, four rows at a time against 8-
//! and 4-column strips so every load of B serves four rows and the four rows'
//! accumulator chains run in parallel (a single chain is bound by the add
//! latency, which is what made a 10-column output slow). Columns left over
//! after the strips are computed by one more 4-column strip ending at the last
//! column (it recomputes up to three columns bit-identically), or by scalar
//! chains when there are fewer than four columns or B's columns are strided.
//! The bias and activation epilogue is applied at the store. Used where packing
//! would cost more than it saves (see `MatMulKernel::packed`).

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::gemv;
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

/// Rows of C computed together by the unbatched kernel.
const BLOCK_ROWS: usize = 4;

/// Emits `C = A·B (+ bias) (act)`; the parallel loop runs over all `batch × m` rows.
pub fn emit(kb: &mut KernelBuilder, mm: &MatMulKernel) {
    let (start, end) = (kb.start, kb.end);
    // Blocks of rows may not straddle two batch entries (their B differs), so
    // only unbatched products are blocked; the rows left over run one by one.
    let single_from = if mm.batch.is_empty() {
        let len = kb.b.ins().isub(end, start);
        let blocks = kb.b.ins().udiv_imm_u(len, BLOCK_ROWS as i64);
        let blocked_end = kb.add_scaled(start, blocks, BLOCK_ROWS);
        kb.for_range(start, blocked_end, BLOCK_ROWS as i64, &[], |kb, row, _| {
            rows(kb, mm, row, BLOCK_ROWS);
            vec![]
        });
        blocked_end
    } else {
        start
    };
    kb.for_range(single_from, end, 1, &[], |kb, row, _| {
        rows(kb, mm, row, 1);
        vec![]
    });
}

/// Rows `row..row + count` of C (all in one batch entry).
fn rows(kb: &mut KernelBuilder, mm: &MatMulKernel, row: Value, count: usize) {
    let bi = kb.b.ins().udiv_imm_u(row, mm.m as i64);
    let i = kb.b.ins().urem_imm_u(row, mm.m as i64);
    let a_off = batch_offset(kb, &mm.batch, &mm.a, bi);
    let at = Rows {
        a_row: kb.add_scaled(a_off, i, mm.a.row_stride),
        b_off: batch_offset(kb, &mm.batch, &mm.b, bi),
        c_row: kb.b.ins().imul_imm_s(row, mm.n as i64),
        count,
    };
    let vector = mm.b.col_stride == 1;
    let strips: &[(usize, usize)] = match (vector, count) {
        (false, _) => &[],
        (true, 1) => &[(48, 12), (16, 4), (4, 1)],
        (true, _) => &[(8, 2), (4, 1)],
    };
    let mut j0 = 0;
    if count == 1 && gemv::applies(mm) {
        j0 = gemv::emit(kb, mm, &at);
    }
    for &(width, n_acc) in strips {
        let count = (mm.n - j0) / width;
        if count == 0 {
            continue;
        }
        let lo = kb.int(j0 as i64);
        let hi = kb.int((j0 + count * width) as i64);
        kb.for_range(lo, hi, width as i64, &[], |kb, j, _| {
            strip(kb, mm, &at, Some(n_acc), j);
            vec![]
        });
        j0 += count * width;
    }
    if j0 == mm.n {
        return;
    }
    if vector && mm.n >= 4 {
        let j = kb.int(mm.n as i64 - 4);
        strip(kb, mm, &at, Some(1), j);
    } else {
        let lo = kb.int(j0 as i64);
        let hi = kb.int(mm.n as i64);
        kb.for_range(lo, hi, 1, &[], |kb, j, _| {
            strip(kb, mm, &at, None, j);
            vec![]
        });
    }
}

/// Where a block of rows starts in A, B and C.
pub(super) struct Rows {
    /// Element index of the first row of A.
    pub(super) a_row: Value,
    /// Element index of B for the rows' batch entry.
    pub(super) b_off: Value,
    /// Element index of the first row of C.
    pub(super) c_row: Value,
    /// Rows in the block.
    count: usize,
}

/// The block's rows of C from column `j`: `Some(n)` f32x4 accumulators per row,
/// or (`None`) one scalar per row.
fn strip(kb: &mut KernelBuilder, mm: &MatMulKernel, at: &Rows, vectors: Option<usize>, j: Value) {
    let vector = vectors.is_some();
    let n_acc = vectors.unwrap_or(1);
    let l = Lanes { vector };
    let ty = if vector { types::F32X4 } else { types::F32 };
    let b_col = kb.add_scaled(at.b_off, j, mm.b.col_stride);
    let zero = kb.fconst(l, 0.0);
    let init = vec![zero; n_acc * at.count];
    let a_step = (4 * mm.a.row_stride) as i32;
    let acc = kb.for_n(mm.k, &init, |kb, p, acc| {
        let ai = kb.add_scaled(at.a_row, p, mm.a.col_stride);
        let bp = kb.add_scaled(b_col, p, mm.b.row_stride);
        let b: Vec<Value> = (0..n_acc)
            .map(|v| kb.load_at(ty, 1, bp, 4, (16 * v) as i32))
            .collect();
        let mut next = Vec::with_capacity(acc.len());
        for r in 0..at.count {
            let a = kb.load_at(types::F32, 0, ai, 4, r as i32 * a_step);
            let a = if vector {
                kb.b.ins().splat(types::F32X4, a)
            } else {
                a
            };
            // Multiply then add, not fma: x86-64's fma overwrites a multiplicand
            // (here the broadcast, live across the strip), which costs a copy per
            // vector and a move per accumulator; AVX's three-operand mul and add
            // keep each accumulator in its register and fold the load of `b`.
            for (v, &bv) in b.iter().enumerate() {
                let prod = kb.b.ins().fmul(a, bv);
                next.push(kb.b.ins().fadd(acc[r * n_acc + v], prod));
            }
        }
        next
    });
    let c = kb.b.ins().iadd(at.c_row, j);
    for r in 0..at.count {
        for v in 0..n_acc {
            let col = kb.b.ins().iadd_imm_s(j, 4 * v as i64);
            let sum = finish(kb, mm, l, acc[r * n_acc + v], col);
            kb.store_at(sum, mm.c_arg(), c, 4, (4 * (r * mm.n + 4 * v)) as i32);
        }
    }
}

/// A finished sum of C at column `col` (a lane or an f32x4 from there) with
/// the product's bias added and its activation applied.
pub(super) fn finish(
    kb: &mut KernelBuilder,
    mm: &MatMulKernel,
    l: Lanes,
    sum: Value,
    col: Value,
) -> Value {
    let mut sum = sum;
    if let Some(off) = mm.bias {
        let ty = if l.vector { types::F32X4 } else { types::F32 };
        let bidx = kb.b.ins().iadd_imm_s(col, off as i64);
        let bias = kb.load(ty, 2, bidx, 4);
        sum = kb.b.ins().fadd(sum, bias);
    }
    activate(kb, l, mm.activation, sum)
}
