//! Matrix products. Large ones run a packed, cache-blocked GEMM whose loop nest,
//! packing, edge handling and fused epilogue are generated here; its register-
//! blocked micro-kernel is either generated too (the portable Cranelift f32x4
//! tier, 6×8) or a natively compiled one chosen by CPU features (the AVX2 tier,
//! 6×16; see [`native`]). Small and thin products use [`small`].
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

pub mod conv;
pub mod native;
pub mod small;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{AbiParam, InstBuilder, Value, types};

use super::builder::{KernelBuilder, PTR};
use super::math::Lanes;
use crate::kernel::{Activation, Blocking, GEMM_MR, GEMM_NR_MAX, MatMulKernel, MatView};
use small::{activate, batch_offset};

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
}

/// Emits a matrix product.
pub fn emit(kb: &mut KernelBuilder, mm: &MatMulKernel, tier: Tier) {
    if !mm.packed() {
        small::emit(kb, mm);
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
    );
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
        };
        debug_assert!(
            GEMM_NR_MAX.is_multiple_of(g.nr)
                && bl.nc.is_multiple_of(g.nr)
                && bl.mc.is_multiple_of(g.mr)
        );
        g
    }

    /// Rows `rows` × columns `cols` of one product of the batch.
    ///
    /// When every row fits one `mc` block (`m ≤ mc`) the depth loop goes
    /// outside the column loop, so the A block is packed once per depth block
    /// rather than once per column block too.
    fn batch(
        &self,
        kb: &mut KernelBuilder,
        rows: (Value, Value),
        cols: (Value, Value),
        offs: &Offsets,
    ) {
        let bl = self.bl;
        let depth = (kb.int(0), kb.int(self.k as i64));
        if self.m <= bl.mc {
            let (ic, mc) = (rows.0, kb.b.ins().isub(rows.1, rows.0));
            for_blocks(kb, depth, bl.kc, |kb, pc, kc| {
                self.pack_a(kb, offs.a, ic, mc, rows.1, pc, kc);
                for_blocks(kb, cols, bl.nc, |kb, jc, nc| {
                    self.pack_b(kb, offs.b, jc, nc, cols.1, pc, kc);
                    self.tiles(kb, offs, [(ic, mc), (jc, nc), (pc, kc)]);
                });
            });
            return;
        }
        for_blocks(kb, cols, bl.nc, |kb, jc, nc| {
            for_blocks(kb, depth, bl.kc, |kb, pc, kc| {
                self.pack_b(kb, offs.b, jc, nc, cols.1, pc, kc);
                for_blocks(kb, rows, bl.mc, |kb, ic, mc| {
                    self.pack_a(kb, offs.a, ic, mc, rows.1, pc, kc);
                    self.tiles(kb, offs, [(ic, mc), (jc, nc), (pc, kc)]);
                });
            });
        });
    }

    /// The micro-kernel tiles of one packed block: `[(ic, mc), (jc, nc), (pc,
    /// kc)]`, the block's origin and extent in rows, columns and depth.
    fn tiles(&self, kb: &mut KernelBuilder, offs: &Offsets, block: [(Value, Value); 3]) {
        let [(ic, mc), (jc, nc), (pc, kc)] = block;
        let zero = kb.int(0);
        kb.for_range(zero, nc, self.nr as i64, &[], |kb, jr, _| {
            let zero = kb.int(0);
            kb.for_range(zero, mc, self.mr as i64, &[], |kb, ir, _| {
                let at = TileAt {
                    c_off: offs.c,
                    bias_off: offs.bias,
                    ic,
                    jc,
                    ir,
                    jr,
                    mc,
                    nc,
                    pc,
                    kc,
                };
                self.tile(kb, &at);
                vec![]
            });
            vec![]
        });
    }

    /// Packs `B[pc.., jc..]` (kc × nc) into panels of `nr` columns, k-major,
    /// zero beyond column `col_hi`, reading from the B source.
    #[allow(clippy::too_many_arguments)]
    fn pack_b(
        &self,
        kb: &mut KernelBuilder,
        b_off: Value,
        jc: Value,
        nc: Value,
        col_hi: Value,
        pc: Value,
        kc: Value,
    ) {
        let nr = self.nr as i64;
        let zero = kb.int(0);
        kb.for_range(zero, nc, nr, &[], |kb, jp, _| {
            // jp = jr (column offset of the panel in the block).
            let col0 = kb.b.ins().iadd(jc, jp);
            let dst0 = kb.b.ins().imul(jp, kc);
            let dst0 = kb.b.ins().iadd_imm_s(dst0, self.bp_base as i64);
            let panel = Panel {
                b_off,
                col0,
                col_hi,
                pc,
                kc,
                dst0,
            };
            match self.b {
                BSource::Matrix(v) => self.pack_matrix_panel(kb, v, &panel),
                BSource::Image(im) => im.pack_panel(kb, self, &panel),
            }
            vec![]
        });
    }

    /// Packs one panel of B from a strided matrix.
    fn pack_matrix_panel(&self, kb: &mut KernelBuilder, v: &MatView, panel: &Panel) {
        let &Panel {
            b_off,
            col0,
            col_hi,
            pc,
            kc,
            dst0,
        } = panel;
        let nr = self.nr;
        let row = |base: Value| {
            move |kb: &mut KernelBuilder, p: Value| {
                let row = kb.b.ins().iadd(pc, p);
                kb.add_scaled(base, row, v.row_stride)
            }
        };
        let masked = |kb: &mut KernelBuilder| {
            let load = |kb: &mut KernelBuilder, src: Value, j: usize| {
                let col = kb.b.ins().iadd_imm_s(col0, j as i64);
                self.masked_load(kb, 1, src, col, v.col_stride, col_hi, self.n)
            };
            self.pack_groups(kb, (kc, dst0), (nr, 1), row(b_off), load);
        };
        let Some(step) = displacement(nr, v.col_stride) else {
            masked(kb);
            return;
        };
        // A whole panel inside B: no masks; contiguous rows copy as f32x4.
        let full_panel = |kb: &mut KernelBuilder| {
            let src0 = kb.add_scaled(b_off, col0, v.col_stride);
            if v.col_stride == 1 {
                let load = |kb: &mut KernelBuilder, src: Value, q: usize| {
                    kb.load_at(types::F32X4, 1, src, 4, 16 * q as i32)
                };
                self.pack_groups(kb, (kc, dst0), (nr, 4), row(src0), load);
            } else {
                let load = |kb: &mut KernelBuilder, src: Value, j: usize| {
                    kb.load_at(types::F32, 1, src, 4, j as i32 * step)
                };
                self.pack_groups(kb, (kc, dst0), (nr, 1), row(src0), load);
            }
        };
        let end = kb.b.ins().iadd_imm_s(col0, nr as i64);
        let full = kb.b.ins().icmp(IntCC::SignedLessThanOrEqual, end, col_hi);
        kb.if_else(full, full_panel, masked);
    }

    /// Packs `A[ic.., pc..]` (mc × kc) into panels of `mr` rows, k-major, zero
    /// beyond row `row_hi`.
    #[allow(clippy::too_many_arguments)]
    fn pack_a(
        &self,
        kb: &mut KernelBuilder,
        a_off: Value,
        ic: Value,
        mc: Value,
        row_hi: Value,
        pc: Value,
        kc: Value,
    ) {
        let v = self.a;
        let mr = self.mr;
        let step = displacement(mr, v.row_stride);
        let col = |base: Value| {
            move |kb: &mut KernelBuilder, p: Value| {
                let col = kb.b.ins().iadd(pc, p);
                kb.add_scaled(base, col, v.col_stride)
            }
        };
        let zero = kb.int(0);
        kb.for_range(zero, mc, mr as i64, &[], |kb, ip, _| {
            let row0 = kb.b.ins().iadd(ic, ip);
            let dst0 = kb.b.ins().imul(ip, kc);
            let masked = |kb: &mut KernelBuilder| {
                let load = |kb: &mut KernelBuilder, src: Value, r: usize| {
                    let row = kb.b.ins().iadd_imm_s(row0, r as i64);
                    self.masked_load(kb, self.a_arg, src, row, v.row_stride, row_hi, self.m)
                };
                self.pack_groups(kb, (kc, dst0), (mr, 1), col(a_off), load);
            };
            let Some(step) = step else {
                masked(kb);
                return vec![];
            };
            // A whole panel inside A: plain loads at constant displacements.
            let full_panel = |kb: &mut KernelBuilder| {
                let src0 = kb.add_scaled(a_off, row0, v.row_stride);
                let load = |kb: &mut KernelBuilder, src: Value, r: usize| {
                    kb.load_at(types::F32, self.a_arg, src, 4, r as i32 * step)
                };
                self.pack_groups(kb, (kc, dst0), (mr, 1), col(src0), load);
            };
            let end = kb.b.ins().iadd_imm_s(row0, mr as i64);
            let full = kb.b.ins().icmp(IntCC::SignedLessThanOrEqual, end, row_hi);
            kb.if_else(full, full_panel, masked);
            vec![]
        });
    }

    /// The packing skeleton shared by A and B panels: `kc` groups of `width`
    /// floats into scratch from `dst0` (group `p` at `dst0 + p·width`), group
    /// `p` read from source index `src(kb, p)` as `width / lanes` pieces,
    /// `load(kb, src, q)` giving piece `q` (`lanes` floats: f32 or f32x4).
    fn pack_groups<S, L>(
        &self,
        kb: &mut KernelBuilder,
        (kc, dst0): (Value, Value),
        (width, lanes): (usize, usize),
        src: S,
        load: L,
    ) where
        S: Fn(&mut KernelBuilder, Value) -> Value,
        L: Fn(&mut KernelBuilder, Value, usize) -> Value,
    {
        let zero = kb.int(0);
        kb.for_range(zero, kc, 1, &[], |kb, p, _| {
            let from = src(kb, p);
            let dst = kb.b.ins().imul_imm_s(p, width as i64);
            let dst = kb.b.ins().iadd(dst0, dst);
            for q in 0..width / lanes {
                let x = load(kb, from, q);
                kb.store_at(x, self.s, dst, 4, (4 * lanes * q) as i32);
            }
            vec![]
        });
    }

    /// `arg[base + i * stride]` if `i < hi`, else 0; the load index is clamped to
    /// `len - 1` so the access stays in bounds either way (branch-free).
    #[allow(clippy::too_many_arguments)]
    fn masked_load(
        &self,
        kb: &mut KernelBuilder,
        arg: usize,
        base: Value,
        i: Value,
        stride: usize,
        hi: Value,
        len: usize,
    ) -> Value {
        let last = kb.int(len as i64 - 1);
        let ic = kb.b.ins().smin(i, last);
        let idx = kb.add_scaled(base, ic, stride);
        let x = kb.load(types::F32, arg, idx, 4);
        let inside = kb.b.ins().icmp(IntCC::SignedLessThan, i, hi);
        let zero = kb.f32c(0.0, false);
        kb.b.ins().select(inside, x, zero)
    }

    /// One `mr × nr` tile of C: micro-kernel, edge copy, epilogue.
    fn tile(&self, kb: &mut KernelBuilder, at: &TileAt) {
        let (mr, nr) = (self.mr as i64, self.nr as i64);
        let n = self.n;
        let rows_left = kb.b.ins().isub(at.mc, at.ir);
        let cols_left = kb.b.ins().isub(at.nc, at.jr);
        let full_rows =
            kb.b.ins()
                .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, rows_left, mr);
        let full_cols =
            kb.b.ins()
                .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, cols_left, nr);
        let full = kb.b.ins().band(full_rows, full_cols);
        let accumulate = kb.b.ins().icmp_imm_s(IntCC::SignedGreaterThan, at.pc, 0);
        let ap = kb.b.ins().imul(at.ir, at.kc);
        let bp = kb.b.ins().imul(at.jr, at.kc);
        let bp = kb.b.ins().iadd_imm_s(bp, self.bp_base as i64);
        let row = kb.b.ins().iadd(at.ic, at.ir);
        let col = kb.b.ins().iadd(at.jc, at.jr);
        let c_idx = kb.add_scaled(at.c_off, row, n);
        let c_idx = kb.b.ins().iadd(c_idx, col);
        let tile_idx = kb.int(self.tile_base as i64);
        let no = kb.b.ins().iconst(types::I8, 0);
        let mrv = kb.int(mr);
        let rv = kb.b.ins().smin(rows_left, mrv);
        let nrv = kb.int(nr);
        let cv = kb.b.ins().smin(cols_left, nrv);
        kb.if_else(
            full,
            |kb| self.micro(kb, at.kc, ap, bp, self.c, c_idx, n, accumulate),
            |kb| {
                self.micro(kb, at.kc, ap, bp, self.s, tile_idx, self.nr, no);
                self.copy_out(kb, tile_idx, c_idx, rv, cv, accumulate);
            },
        );
        if self.bias.is_some() || self.activation != Activation::Identity {
            let sum = kb.b.ins().iadd(at.pc, at.kc);
            let last = kb.b.ins().icmp_imm_s(IntCC::Equal, sum, self.k as i64);
            let first = Tile { row, col, rv, cv };
            kb.if_then(last, |kb| self.epilogue(kb, c_idx, at.bias_off, &first));
        }
    }

    /// `acc = A panel · B panel`; stores to `dst[idx..]` with row stride `ld`,
    /// adding what is there when `accumulate` (an i8 flag) is set.
    #[allow(clippy::too_many_arguments)]
    fn micro(
        &self,
        kb: &mut KernelBuilder,
        kc: Value,
        ap: Value,
        bp: Value,
        dst: usize,
        idx: Value,
        ld: usize,
        accumulate: Value,
    ) {
        match self.tier {
            Tier::Portable => self.micro_portable(kb, kc, ap, bp, dst, idx, ld, accumulate),
            Tier::Native(k) => self.micro_native(kb, k, kc, ap, bp, dst, idx, ld, accumulate),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn micro_portable(
        &self,
        kb: &mut KernelBuilder,
        kc: Value,
        ap: Value,
        bp: Value,
        dst: usize,
        idx: Value,
        ld: usize,
        accumulate: Value,
    ) {
        let vecs = self.nr / 4;
        let zero = kb.f32c(0.0, true);
        let mut init = vec![zero; self.mr * vecs];
        init.push(ap);
        init.push(bp);
        let (mr, nr) = (self.mr, self.nr);
        let lo = kb.int(0);
        let out = kb.for_range(lo, kc, 1, &init, |kb, _, c| {
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
        let mask = kb.b.ins().sextend(types::I32, accumulate);
        let mask = kb.b.ins().ineg(mask);
        let mask = kb.b.ins().splat(types::I32X4, mask);
        let l = Lanes { vector: true };
        for r in 0..mr {
            let row = kb.b.ins().iadd_imm_s(idx, (r * ld) as i64);
            for v in 0..vecs {
                let old = kb.load_at(types::F32X4, dst, row, 4, 16 * v as i32);
                let zero = kb.f32c(0.0, true);
                let add = kb.select_mask(l, mask, old, zero);
                let sum = kb.b.ins().fadd(out[r * vecs + v], add);
                kb.store_at(sum, dst, row, 4, 16 * v as i32);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn micro_native(
        &self,
        kb: &mut KernelBuilder,
        k: native::NativeKernel,
        kc: Value,
        ap: Value,
        bp: Value,
        dst: usize,
        idx: Value,
        ld: usize,
        accumulate: Value,
    ) {
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
            let a_ptr = byte_ptr(kb, self.s, ap);
            let b_ptr = byte_ptr(kb, self.s, bp);
            let c_ptr = byte_ptr(kb, dst, idx);
            let ldv = kb.int(ld as i64);
            let acc = kb.b.ins().uextend(types::I64, accumulate);
            kb.b.ins()
                .call_indirect(sig, f, &[kc, a_ptr, b_ptr, c_ptr, ldv, acc]);
        };
        if !kb.checked() {
            call(kb);
            return;
        }
        // Checked mode: prove the regions the native code touches are in bounds.
        let a_len = kb.b.ins().imul_imm_s(kc, self.mr as i64);
        let b_len = kb.b.ins().imul_imm_s(kc, self.nr as i64);
        let c_len = kb.int(((self.mr - 1) * ld + self.nr) as i64);
        let ok_a = kb.in_bounds(self.s, ap, a_len, 4);
        let ok_b = kb.in_bounds(self.s, bp, b_len, 4);
        let ok_c = kb.in_bounds(dst, idx, c_len, 4);
        let ok = kb.b.ins().band(ok_a, ok_b);
        let ok = kb.b.ins().band(ok, ok_c);
        kb.if_then(ok, call);
    }

    /// Copies the valid `rv × cv` part of the edge tile to C (adding when accumulating).
    fn copy_out(
        &self,
        kb: &mut KernelBuilder,
        tile: Value,
        c_idx: Value,
        rv: Value,
        cv: Value,
        accumulate: Value,
    ) {
        let n = self.n;
        let nr = self.nr;
        let zero = kb.int(0);
        kb.for_range(zero, rv, 1, &[], |kb, r, _| {
            let src = kb.add_scaled(tile, r, nr);
            let dst = kb.add_scaled(c_idx, r, n);
            let zero = kb.int(0);
            kb.for_range(zero, cv, 1, &[], |kb, j, _| {
                let s = kb.b.ins().iadd(src, j);
                let d = kb.b.ins().iadd(dst, j);
                let t = kb.load(types::F32, self.s, s, 4);
                let old = kb.load(types::F32, self.c, d, 4);
                let z = kb.f32c(0.0, false);
                let add = kb.b.ins().select(accumulate, old, z);
                let v = kb.b.ins().fadd(t, add);
                kb.store(v, self.c, d, 4);
                vec![]
            });
            vec![]
        });
    }

    /// Adds the bias (element `bias_off + column` or `bias_off + row` of
    /// argument 2) and applies the activation to the valid part of a tile.
    fn epilogue(&self, kb: &mut KernelBuilder, c_idx: Value, bias_off: Value, t: &Tile) {
        let n = self.n;
        let l = Lanes { vector: false };
        let zero = kb.int(0);
        kb.for_range(zero, t.rv, 1, &[], |kb, r, _| {
            let row = kb.add_scaled(c_idx, r, n);
            let row_bias = match self.bias {
                Some(BiasAxis::Rows) => {
                    let i = kb.b.ins().iadd(bias_off, t.row);
                    let i = kb.b.ins().iadd(i, r);
                    Some(kb.load(types::F32, 2, i, 4))
                }
                _ => None,
            };
            let zero = kb.int(0);
            kb.for_range(zero, t.cv, 1, &[], |kb, j, _| {
                let d = kb.b.ins().iadd(row, j);
                let mut v = kb.load(types::F32, self.c, d, 4);
                if self.bias == Some(BiasAxis::Columns) {
                    let bj = kb.b.ins().iadd(t.col, j);
                    let bj = kb.b.ins().iadd(bj, bias_off);
                    let bias = kb.load(types::F32, 2, bj, 4);
                    v = kb.b.ins().fadd(v, bias);
                }
                if let Some(bias) = row_bias {
                    v = kb.b.ins().fadd(v, bias);
                }
                let v = activate(kb, l, self.activation, v);
                kb.store(v, self.c, d, 4);
                vec![]
            });
            vec![]
        });
    }
}

/// Where a tile sits: block origins, offsets within the block, block extents.
struct TileAt {
    c_off: Value,
    bias_off: Value,
    ic: Value,
    jc: Value,
    ir: Value,
    jr: Value,
    mc: Value,
    nc: Value,
    pc: Value,
    kc: Value,
}

/// The valid part of a tile: its first row and column in C and their counts.
struct Tile {
    row: Value,
    col: Value,
    rv: Value,
    cv: Value,
}

/// One panel of B to pack: the product's B offset, the panel's first column,
/// the end of the valid columns, the depth range `pc..pc + kc`, and the scratch
/// index of the panel's first element.
struct Panel {
    b_off: Value,
    col0: Value,
    col_hi: Value,
    pc: Value,
    kc: Value,
    dst0: Value,
}

/// `body(kb, at, len)` for the blocks `at = lo, lo + block, ..` below `hi`,
/// `len = min(block, hi − at)`.
fn for_blocks(
    kb: &mut KernelBuilder,
    (lo, hi): (Value, Value),
    block: usize,
    body: impl FnOnce(&mut KernelBuilder, Value, Value),
) {
    kb.for_range(lo, hi, block as i64, &[], |kb, at, _| {
        let left = kb.b.ins().isub(hi, at);
        let bv = kb.int(block as i64);
        let len = kb.b.ins().smin(left, bv);
        body(kb, at, len);
        vec![]
    });
}

/// The address of element `idx` (f32) of argument `arg`, for native calls.
fn byte_ptr(kb: &mut KernelBuilder, arg: usize, idx: Value) -> Value {
    let base = kb.arg_base(arg);
    let off = kb.b.ins().imul_imm_s(idx, 4);
    kb.b.ins().iadd(base, off)
}

/// The byte step between `count` consecutive elements `stride` apart, when the
/// farthest fits an access displacement (else the packing keeps computing
/// addresses per element).
fn displacement(count: usize, stride: usize) -> Option<i32> {
    let farthest = 4 * stride.checked_mul(count)?;
    i32::try_from(farthest).ok()?;
    i32::try_from(4 * stride).ok()
}
