//! One row of C against a row-major B (a GEMV, and the single rows of small
//! products), B streamed a few whole rows at a time.
//!
//! The strip kernel of [`super::small`] reads B one column strip at a time
//! down all of its rows: a few cache lines from each row, one row per 4 KiB
//! page or more, so the hardware prefetchers (which follow sequential lines
//! within a page) do not help and a GEMV whose B comes from L3 or memory runs
//! at a fraction of the bandwidth. Here each pass takes [`DEPTH`] rows of B
//! and sweeps them left to right, adding their products to the row of C
//! (which stays in L1): [`DEPTH`] sequential streams. Every element of C is
//! still `((0 + a₀b₀) + a₁b₁) + …` in depth order, multiply then add, so the
//! result is bit-identical to the strip kernel's.

use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::small::{Rows, finish};
use crate::emit::builder::KernelBuilder;
use crate::emit::math::Lanes;
use crate::kernel::MatMulKernel;

/// Rows of B per pass over the row of C.
const DEPTH: usize = 8;

/// Columns of C per step of a pass (four f32x4 vectors).
const WIDTH: usize = 16;

/// Whether a single row of `mm` takes this kernel: B's columns are contiguous
/// and there are at least a full step of columns and a full pass of rows, with
/// a pass's row offsets within an instruction's displacement.
pub(super) fn applies(mm: &MatMulKernel) -> bool {
    mm.b.col_stride == 1
        && mm.n >= WIDTH
        && mm.k >= DEPTH
        && 4 * (DEPTH * mm.b.row_stride + WIDTH) < i32::MAX as usize
}

/// Columns `0..n - n % WIDTH` of the row of C at `at`; returns where the
/// columns left for the strip kernel start.
pub(super) fn emit(kb: &mut KernelBuilder, mm: &MatMulKernel, at: &Rows) -> usize {
    let cols = mm.n - mm.n % WIDTH;
    let passes = mm.k.div_ceil(DEPTH);
    let last_depth = mm.k - DEPTH * (passes - 1);
    let zero = kb.int(0);
    if passes == 1 {
        pass(kb, mm, at, cols, zero, last_depth, Stage::Only);
        return cols;
    }
    pass(kb, mm, at, cols, zero, DEPTH, Stage::First);
    let lo = kb.int(DEPTH as i64);
    let hi = kb.int((DEPTH * (passes - 1)) as i64);
    kb.for_range(lo, hi, DEPTH as i64, &[], |kb, p, _| {
        pass(kb, mm, at, cols, p, DEPTH, Stage::Middle);
        vec![]
    });
    pass(kb, mm, at, cols, hi, last_depth, Stage::Last);
    cols
}

/// Where a pass sits in the depth.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The only pass: starts from zero and finishes C.
    Only,
    /// Starts from zero; C holds partial sums after it.
    First,
    /// Adds to the partial sums in C.
    Middle,
    /// Adds to the partial sums and finishes C (bias, activation).
    Last,
}

/// Adds rows `p..p + depth` of B, times their elements of A, to columns
/// `0..cols` of the row of C.
fn pass(
    kb: &mut KernelBuilder,
    mm: &MatMulKernel,
    at: &Rows,
    cols: usize,
    p: Value,
    depth: usize,
    stage: Stage,
) {
    let l = Lanes { vector: true };
    let a_at = kb.add_scaled(at.a_row, p, mm.a.col_stride);
    let a: Vec<Value> = (0..depth)
        .map(|r| {
            let x = kb.load_at(types::F32, 0, a_at, 4, (4 * r * mm.a.col_stride) as i32);
            kb.b.ins().splat(types::F32X4, x)
        })
        .collect();
    let b_at = kb.add_scaled(at.b_off, p, mm.b.row_stride);
    let from_zero = matches!(stage, Stage::Only | Stage::First);
    let finishes = matches!(stage, Stage::Only | Stage::Last);
    let out = mm.c_arg();
    let lo = kb.int(0);
    let hi = kb.int(cols as i64);
    kb.for_range(lo, hi, WIDTH as i64, &[], |kb, j, _| {
        let c = kb.b.ins().iadd(at.c_row, j);
        let b_row = kb.b.ins().iadd(b_at, j);
        for v in 0..WIDTH / 4 {
            let mut sum = if from_zero {
                kb.fconst(l, 0.0)
            } else {
                kb.load_at(types::F32X4, out, c, 4, 16 * v as i32)
            };
            for (r, &ar) in a.iter().enumerate() {
                let off = 4 * (r * mm.b.row_stride + 4 * v);
                let b = kb.load_at(types::F32X4, 1, b_row, 4, off as i32);
                let prod = kb.b.ins().fmul(ar, b);
                sum = kb.b.ins().fadd(sum, prod);
            }
            if finishes {
                let col = kb.b.ins().iadd_imm_s(j, 4 * v as i64);
                sum = finish(kb, mm, l, sum, col);
            }
            kb.store_at(sum, out, c, 4, 16 * v as i32);
        }
        vec![]
    });
}
