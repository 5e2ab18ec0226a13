//! The native tier's attention over one block of query rows (flash-attention
//! style): one call of an AVX2 kernel per block ([`x86`]), which
//!
//! 1. packs the block's queries, times the scale, transposed into the
//!    thread's scratch (`Qᵀ`, `E × QB`, queries contiguous);
//! 2. per key block scores it in registers: `Sᵀ = K_blk · Qᵀ` (`cnt × QB`,
//!    keys major, so each query is one lane of the 8-wide vectors below), in
//!    tiles of up to 3 keys × 32 queries (12 ymm accumulators), masking keys
//!    after their query (causal) and taking each query's block maximum on the
//!    way;
//! 3. runs the online softmax eight queries per vector: the new running
//!    maximum `m`, the rescale factor `α = exp(m_old − m)`, the weights
//!    `P = exp(S − m)` in place (the Cephes `exp` of `emit/math.rs` operation
//!    for operation, shared with the gate kernels) and `l = α·l + Σ P`;
//! 4. updates the output rows in tiles of up to 6 queries × 16 columns:
//!    `O = diag(α)·O + P·V_blk` (just `P·V_blk` for the first key block), and
//!    in the last key block divides the rows by `l` in the same store.
//!
//! Each score and output element sums its products in depth (key) order from
//! zero whatever tile it falls in, so results do not depend on the split.
//!
//! Contract of `f(rows, q0, kend, depth, ev, q, ldq, k, ldk, v, ldv, o, ldo,
//! scratch, scale_bits, causal)` (strides in elements, `1 ≤ rows ≤ QB`, every
//! size at least 1): reads `q[i*ldq + p]`, `k[j*ldk + p]`, `v[j*ldv + e]` for
//! `i < rows`, `j < kend`, `p < depth`, `e < ev`; writes `o[i*ldo + e] =
//! Σ_j softmax_j(scale · q_i·k_j) v[j*ldv + e]` (`scale = f32::from_bits`);
//! with `causal` non-zero, query `i` sees key `j` only when `j ≤ q0 + i`;
//! uses `scratch[0 .. QB·(depth + KB + 3)]` ([`SequenceOp::scratch_bytes`]);
//! it touches nothing else.
//!
//! [`SequenceOp::scratch_bytes`]: crate::kernel::SequenceOp::scratch_bytes

use cranelift_codegen::ir::InstBuilder;
use cranelift_codegen::ir::Value;

use super::attention::{Attn, BLOCK, K, O, Q, QUERY_BLOCK as QB, SCRATCH, VAL, imin};
use super::nt::{Extent, Operand, byte_ptr, call_native};
use crate::emit::builder::KernelBuilder;

#[cfg(target_arch = "x86_64")]
mod x86;

/// Signature of the native attention kernel (see the module contract).
pub type FlashKernel = unsafe extern "C" fn(
    rows: usize,
    q0: usize,
    kend: usize,
    depth: usize,
    ev: usize,
    q: *const f32,
    ldq: usize,
    k: *const f32,
    ldk: usize,
    v: *const f32,
    ldv: usize,
    o: *mut f32,
    ldo: usize,
    scratch: *mut f32,
    scale_bits: u64,
    causal: u64,
);

/// The native attention kernel, when this CPU has AVX2 and FMA.
pub fn detect() -> Option<FlashKernel> {
    #[cfg(target_arch = "x86_64")]
    if super::nt::has_avx2_fma() {
        return Some(x86::flash_avx2);
    }
    None
}

/// Emits the call of `f` for query rows `q0 .. q0 + rows` (`rows ≤ QB`) of
/// the batch index in `a`. In checked mode the call runs only when every row
/// it touches lies inside its buffer.
pub(super) fn query_block(
    kb: &mut KernelBuilder,
    a: &Attn,
    f: FlashKernel,
    q0: Value,
    rows: Value,
) {
    let keys = kb.int(a.keys as i64);
    let kend = if a.causal {
        let q_end = kb.b.ins().iadd(q0, rows);
        imin(kb, q_end, keys)
    } else {
        keys
    };
    let [depth, ev] = [a.depth, a.value_depth].map(|n| kb.int(n as i64));
    let q = Operand {
        arg: Q,
        first: kb.add_scaled(a.q_off, q0, a.q.row_stride),
        ld: a.q.row_stride,
    };
    let k = Operand {
        arg: K,
        first: a.k_off,
        ld: a.k.row_stride,
    };
    let v = Operand {
        arg: VAL,
        first: a.v_off,
        ld: a.v.row_stride,
    };
    let o = Operand {
        arg: O,
        first: kb.add_scaled(a.o_off, q0, a.o.row_stride),
        ld: a.o.row_stride,
    };
    let scratch = Operand {
        arg: SCRATCH,
        first: kb.int(0),
        ld: 0,
    };
    let mut args = vec![rows, q0, kend, depth, ev];
    for op in [q, k, v, o, scratch] {
        args.push(byte_ptr(kb, op.arg, op.first));
        if op.arg != SCRATCH {
            args.push(kb.int(op.ld as i64));
        }
    }
    args.push(kb.int(a.scale.to_bits() as i64));
    args.push(kb.int(a.causal as i64));
    let (one, len) = (kb.int(1), kb.int((QB * (a.depth + BLOCK + 3)) as i64));
    let extents = [
        Extent::rows(q, rows, depth),
        Extent::rows(k, kend, depth),
        Extent::rows(v, kend, ev),
        Extent::rows(o, rows, ev),
        Extent::rows(scratch, one, len),
    ];
    call_native(kb, f as usize, &args, &extents);
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests;
