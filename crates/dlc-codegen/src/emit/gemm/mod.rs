//! Matrix products. Large ones run a packed, cache-blocked GEMM whose loop nest,
//! packing, edge handling and fused epilogue are generated here; its register-
//! blocked micro-kernel is either generated too (the portable Cranelift f32x4
//! tier, 6×8) or a natively compiled one chosen by CPU features (AVX-512,
//! 6×32, or AVX2, 6×16; see [`native`]). Small and thin products use [`small`] (its single
//! rows against a row-major B, GEMVs included, `gemv`); products of a few rows
//! with a transposed row-major weight, on the native tier, `unpacked`.
//!
//! Loop nest per call (BLIS order), over the call's share of row or column panels:
//!
//! ```text
//! for batch: for jc (nc columns): for pc (kc deep): pack B block → Bp
//!   for ic (mc rows): pack A block → Ap
//!     for jr (nr): for ir (mr): micro-kernel(Ap[ir], Bp[jr]) → C tile (+= after the first pc)
//!                                 last pc: bias + activation on the tile while it is hot
//! ```
//! Packing pads the edges with zeros, so the micro-kernel always computes full
//! tiles; partial tiles go through a scratch tile and are copied out. B is
//! packed from a [`BSource`]: a strided matrix, or (for convolutions, see
//! [`conv`]) the implicit im2col matrix of an image, read in place.
//!
//! This module holds the GEMM's static description (`Gemm`) and the entry
//! point for matrix products; the parts of the generated code live in
//! submodules: `nest` (the blocked loop nest), `pack` (packing A and B into
//! scratch), `tile` (one tile of C: edges and the fused epilogue) and `micro`
//! (the micro-kernel call, portable or native).

pub mod conv;
mod epilogue;
mod gemv;
mod micro;
pub mod native;
mod nest;
mod pack;
pub mod small;
mod tile;
mod unpacked;

use cranelift_codegen::ir::{InstBuilder, Value};

use super::builder::KernelBuilder;
use crate::kernel::{Activation, Blocking, GEMM_MR, GEMM_NR_MAX, MatMulKernel, MatView};
use small::batch_offset;

/// Which micro-kernel a GEMM uses.
#[derive(Clone, Copy, Debug)]
pub enum Tier {
    /// The Cranelift-generated f32x4 micro-kernel (6×8).
    Portable,
    /// A natively compiled micro-kernel.
    Native(native::NativeKernel),
}

impl Tier {
    /// Columns of this tier's tile.
    pub fn nr(self) -> usize {
        match self {
            Tier::Portable => 8,
            Tier::Native(k) => k.nr,
        }
    }
}

/// Where the packing of B reads its `k × n` matrix.
enum BSource<'a> {
    /// A strided matrix view of argument 1.
    Matrix(&'a MatView),
    /// The im2col matrix of the image in argument 0, never materialised.
    Image(&'a conv::Im2col),
}

/// Which index of C the bias (argument 2) is indexed by in the epilogue.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BiasAxis {
    /// `bias[j]` for column `j` (a matmul's `+ b` row).
    Columns,
    /// `bias[i]` for row `i` (a convolution's output channel).
    Rows,
}

/// Element offsets of one product of a batch: A, B and C, and the bias start.
struct Offsets {
    a: Value,
    b: Value,
    c: Value,
    bias: Value,
}

/// Static facts of one emitted GEMM.
struct Gemm<'a> {
    /// `C (m×n) = A (m×k) · B (k×n)`.
    m: usize,
    n: usize,
    k: usize,
    bl: Blocking,
    /// View of A and its argument index.
    a: &'a MatView,
    a_arg: usize,
    b: BSource<'a>,
    bias: Option<BiasAxis>,
    activation: Activation,
    tier: Tier,
    mr: usize,
    nr: usize,
    /// Argument indices of C and of the scratch block.
    c: usize,
    s: usize,
    /// Element offset of the packed B block in scratch (after the packed A block).
    bp_base: usize,
    /// Element offset of the edge tile in scratch.
    tile_base: usize,
    /// The product whose epilogue runs on finished rows of C.
    epilogue: Option<&'a MatMulKernel>,
}

/// Emits a matrix product.
pub fn emit(kb: &mut KernelBuilder, mm: &MatMulKernel, tier: Tier) {
    if !mm.packed() {
        small::emit(kb, mm);
        let (rows, cols) = ((kb.start, kb.end), (kb.int(0), kb.int(mm.n as i64)));
        epilogue::apply(kb, mm, rows, cols);
        return;
    }
    if let Some(f) = unpacked::applies(mm, tier) {
        let rows = unpacked::emit(kb, mm, f);
        let cols = (kb.int(0), kb.int(mm.n as i64));
        epilogue::apply(kb, mm, rows, cols);
        return;
    }
    let bias = mm.bias.map(|_| BiasAxis::Columns);
    let g = Gemm::new(
        (mm.m, mm.n, mm.k),
        mm.blocking(),
        (&mm.a, 0),
        BSource::Matrix(&mm.b),
        bias,
        mm.activation,
        tier,
    )
    .fusing(mm);
    let (m, n) = (mm.m as i64, mm.n as i64);
    let (start, end) = (kb.start, kb.end);
    let (rows, cols) = if mm.split_columns() {
        let lo = kb.b.ins().imul_imm_s(start, GEMM_NR_MAX as i64);
        let hi = kb.b.ins().imul_imm_s(end, GEMM_NR_MAX as i64);
        let nv = kb.int(n);
        let hi = kb.b.ins().smin(hi, nv);
        ((kb.int(0), kb.int(m)), (lo, hi))
    } else {
        let lo = kb.b.ins().imul_imm_s(start, GEMM_MR as i64);
        let hi = kb.b.ins().imul_imm_s(end, GEMM_MR as i64);
        let mv = kb.int(m);
        let hi = kb.b.ins().smin(hi, mv);
        ((lo, hi), (kb.int(0), kb.int(n)))
    };
    let nb: usize = mm.batch.iter().product();
    kb.for_n(nb, &[], |kb, bi, _| {
        let a_off = batch_offset(kb, &mm.batch, &mm.a, bi);
        let b_off = batch_offset(kb, &mm.batch, &mm.b, bi);
        let c_off = kb.b.ins().imul_imm_s(bi, m * n);
        let bias = kb.int(mm.bias.unwrap_or(0) as i64);
        let offs = Offsets {
            a: a_off,
            b: b_off,
            c: c_off,
            bias,
        };
        g.batch(kb, rows, cols, &offs);
        vec![]
    });
}

impl<'a> Gemm<'a> {
    /// A GEMM of shape `(m, n, k)` reading A from `(view, argument)`, B from
    /// `b`, the bias (if any) from argument 2, writing C to the first argument
    /// after the inputs; the scratch block is the argument after C.
    fn new(
        (m, n, k): (usize, usize, usize),
        bl: Blocking,
        (a, a_arg): (&'a MatView, usize),
        b: BSource<'a>,
        bias: Option<BiasAxis>,
        activation: Activation,
        tier: Tier,
    ) -> Self {
        let n_in = 2 + bias.is_some() as usize;
        let g = Gemm {
            m,
            n,
            k,
            bl,
            a,
            a_arg,
            b,
            bias,
            activation,
            tier,
            mr: GEMM_MR,
            nr: tier.nr(),
            c: n_in,
            s: n_in + 1,
            bp_base: bl.mc * bl.kc,
            tile_base: bl.mc * bl.kc + bl.kc * bl.nc,
            epilogue: None,
        };
        debug_assert!(
            GEMM_NR_MAX.is_multiple_of(g.nr)
                && bl.nc.is_multiple_of(g.nr)
                && bl.mc.is_multiple_of(g.mr)
        );
        g
    }

    /// The same GEMM applying `mm`'s epilogue (whose inputs come before C).
    fn fusing(self, mm: &'a MatMulKernel) -> Self {
        let c = mm.c_arg();
        Gemm {
            c,
            s: c + 1,
            epilogue: mm.epilogue.is_some().then_some(mm),
            ..self
        }
    }

    /// Applies the epilogue (if any) to the finished rows `rows` (of this
    /// product, at `offs`), columns `cols`.
    fn finish_rows(
        &self,
        kb: &mut KernelBuilder,
        offs: &Offsets,
        rows: (Value, Value),
        cols: (Value, Value),
    ) {
        let Some(mm) = self.epilogue else { return };
        let first = kb.b.ins().udiv_imm_u(offs.c, self.n as i64);
        let lo = kb.b.ins().iadd(first, rows.0);
        let hi = kb.b.ins().iadd(first, rows.1);
        epilogue::apply(kb, mm, (lo, hi), cols);
    }
}
