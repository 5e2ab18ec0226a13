//! Products `C = A · Wᵀ (+ bias) (act)` whose B is the transpose of a row-major
//! matrix (a PyTorch weight `[n, k]` read as a `k × n` view) and whose A rows
//! are few enough to stay in cache: on the native tier they run the NT kernel
//! of the recurrences (`emit/sequence/nt.rs`) directly on the weight, with no
//! packing, then one pass adds the bias and applies the activation. Packing B
//! costs a strided read of the whole weight per run, which for a few dozen rows
//! of A (the input projection of a batch-1 recurrence: 50 × 128 · 128 × 1024)
//! cost more than the product itself.

use cranelift_codegen::ir::{InstBuilder, Value};

use super::Tier;
use super::small::activate;
use crate::emit::builder::KernelBuilder;
use crate::emit::sequence::nt::{self, NtKernel, Operand};
use crate::emit::sequence::{for_lanes, ty};
use crate::kernel::{Activation, GEMM_MR, MatMulKernel};

/// Bytes of A above which the packed GEMM is used instead: the NT kernel
/// re-reads all rows of A for every three rows of W, so they must stay in L2
/// (a quarter of this machine's 512 KiB, leaving room for the weight stream).
const MAX_A_BYTES: usize = 128 << 10;

/// The NT kernel, when `mm` is a packed product that it serves better: native
/// tier, unbatched, rows split over threads, A row-contiguous and small, B the
/// transpose of a row-major matrix.
pub fn applies(mm: &MatMulKernel, tier: Tier) -> Option<NtKernel> {
    let fits = matches!(tier, Tier::Native(_))
        && mm.batch.is_empty()
        && mm.packed()
        && !mm.split_columns()
        && mm.a.col_stride == 1
        && mm.b.row_stride == 1
        && mm.b.col_stride >= mm.k
        && mm.m * mm.a.row_stride * 4 <= MAX_A_BYTES;
    nt::detect().filter(|_| fits)
}

/// Emits the product for the kernel's row panels (`GEMM_MR` rows each);
/// returns the range of rows of C it computed.
pub fn emit(kb: &mut KernelBuilder, mm: &MatMulKernel, f: NtKernel) -> (Value, Value) {
    let (start, end) = (kb.start, kb.end);
    let lo = kb.b.ins().imul_imm_s(start, GEMM_MR as i64);
    let hi = kb.b.ins().imul_imm_s(end, GEMM_MR as i64);
    let mv = kb.int(mm.m as i64);
    let hi = kb.b.ins().smin(hi, mv);
    let rows = kb.b.ins().isub(hi, lo);
    let n_in = mm.c_arg();
    let a_first = kb.b.ins().imul_imm_s(lo, mm.a.row_stride as i64);
    let a = Operand {
        arg: 0,
        first: kb.b.ins().iadd_imm_s(a_first, mm.a.offset as i64),
        ld: mm.a.row_stride,
    };
    let w = Operand {
        arg: 1,
        first: kb.int(mm.b.offset as i64),
        ld: mm.b.col_stride,
    };
    let c = Operand {
        arg: n_in,
        first: kb.b.ins().imul_imm_s(lo, mm.n as i64),
        ld: mm.n,
    };
    let forward = kb.int(0);
    nt::emit_call(kb, f, rows, (mm.n, mm.k), a, w, c, forward);
    if mm.bias.is_none() && matches!(mm.activation, Activation::Identity) {
        return (lo, hi);
    }
    // The epilogue over rows lo..hi.
    let n = mm.n;
    kb.for_range(lo, hi, 1, &[], |kb, i, _| {
        let row = kb.b.ins().imul_imm_s(i, n as i64);
        for_lanes(kb, n, |kb, l, j| {
            let at = kb.b.ins().iadd(row, j);
            let mut v = kb.load(ty(l), n_in, at, 4);
            if let Some(off) = mm.bias {
                let bj = kb.b.ins().iadd_imm_s(j, off as i64);
                let b = kb.load(ty(l), 2, bj, 4);
                v = kb.b.ins().fadd(v, b);
            }
            let v = activate(kb, l, mm.activation, v);
            kb.store(v, n_in, at, 4);
        });
        vec![]
    });
    (lo, hi)
}
