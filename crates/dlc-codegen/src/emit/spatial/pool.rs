//! Max and average pooling: each parallel index owns one `[H, W]` plane; output
//! rows are computed in runs of f32x4 vectors along the width (interior
//! columns) and single columns at the borders.
//!
//! Max pooling starts from −∞ and skips padding, so padding never wins (NaN
//! propagates, as `fmax` does). Average pooling sums the in-bounds elements in
//! window order and divides by the window size (`count_include_pad`) or by the
//! number of in-bounds elements.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};
use dlc_ir::PoolKind;

use super::{
    Columns, Dim, Phase, TapRange, dims, for_taps, in_bounds, load_even_odd, load_pure, load_x4,
    row_run, tap_range,
};
use crate::emit::builder::KernelBuilder;
use crate::emit::math::Lanes;
use crate::kernel::{SpatialOp, Window};

const V: Lanes = Lanes { vector: true };

/// f32x4 vectors per block of output columns.
const WIDE: usize = 4;

/// Most window rows unrolled.
const MAX_UNROLLED_ROWS: usize = 8;

struct Pool {
    kind: PoolKind,
    h: Dim,
    w: Dim,
    /// Argument indices of the input and the output.
    x_arg: usize,
    out_arg: usize,
}

/// Per-output-row values.
struct Row {
    taps: TapRange,
    /// Byte offset of window row 0 in the input.
    x4: Value,
    out: Value,
}

/// Emits a pooling kernel; the parallel loop runs over the planes.
pub(super) fn emit(kb: &mut KernelBuilder, op: &SpatialOp) {
    let SpatialOp::Pool {
        kind,
        row_chunks,
        window,
        ..
    } = *op
    else {
        unreachable!("pool::emit takes a pooling")
    };
    let [h, w] = dims(&window);
    let pool = Pool {
        kind,
        h,
        w,
        x_arg: 0,
        out_arg: 1,
    };
    let (start, end) = (kb.start, kb.end);
    kb.for_range(start, end, 1, &[], |kb, p, _| {
        let chunk = kb.b.ins().urem_imm_u(p, row_chunks as i64);
        let p = kb.b.ins().udiv_imm_u(p, row_chunks as i64);
        let x_plane = kb.affine(p, 4 * h.input * w.input, 0);
        let out_plane = kb.affine(p, h.output * w.output, 0);
        let rows = row_run(kb, h.output, row_chunks, chunk);
        pool.plane_rows(kb, x_plane, out_plane, rows);
        vec![]
    });
}

/// Max pooling of one plane of argument `x_arg` (from byte offset `x4`) into
/// output rows `lo..hi` of a plane of argument `out_arg` (from element
/// `out`), as [`emit`] pools each plane; `window` has no padding.
pub(super) fn max_rows(
    kb: &mut KernelBuilder,
    window: &Window,
    (x_arg, x4): (usize, Value),
    (out_arg, out): (usize, Value),
    rows: (Value, Value),
) {
    let [h, w] = dims(window);
    let pool = Pool {
        kind: PoolKind::Max,
        h,
        w,
        x_arg,
        out_arg,
    };
    pool.plane_rows(kb, x4, out, rows);
}

impl Pool {
    /// Output rows `lo..hi` of the plane at input byte offset `x_plane` and
    /// output element `out_plane`.
    fn plane_rows(
        &self,
        kb: &mut KernelBuilder,
        x_plane: Value,
        out_plane: Value,
        (lo, hi): (Value, Value),
    ) {
        let (h, w) = (self.h, self.w);
        let rp = &h.phases(false)[0];
        let cp = &w.phases(false)[0];
        kb.for_range(lo, hi, 1, &[], |kb, qy, _| {
            let taps = tap_range(kb, rp, h.input, qy);
            let iy0 = kb.affine(qy, h.stride, 0);
            let iy0 = kb.b.ins().iadd_imm_s(iy0, -(h.pad as i64));
            let x4 = kb.add_scaled(x_plane, iy0, 4 * w.input);
            let out = kb.add_scaled(out_plane, qy, w.output);
            let row = Row { taps, x4, out };
            Columns::new(cp, w.input, WIDE).emit(
                kb,
                WIDE,
                None,
                &mut |kb, q, n| self.vectors(kb, &row, cp, q, n),
                None,
                &mut |kb, q| self.scalar(kb, &row, cp, q),
            );
            vec![]
        });
    }

    fn identity(&self) -> f32 {
        match self.kind {
            PoolKind::Max => f32::NEG_INFINITY,
            PoolKind::Avg { .. } => 0.0,
        }
    }

    fn combine(&self, kb: &mut KernelBuilder, acc: Value, x: Value) -> Value {
        match self.kind {
            PoolKind::Max => kb.b.ins().fmax(acc, x),
            PoolKind::Avg { .. } => kb.b.ins().fadd(acc, x),
        }
    }

    /// The number of valid window rows of a row.
    fn rows(&self, kb: &mut KernelBuilder, taps: TapRange) -> Value {
        match taps {
            TapRange::Const(lo, hi) => kb.int((hi - lo) as i64),
            TapRange::Dynamic(lo, hi) => kb.b.ins().isub(hi, lo),
        }
    }

    /// Divides a sum by its divisor (`cols` in-bounds columns per window row,
    /// an i64) and stores it; stores a maximum as it is.
    fn finish(&self, kb: &mut KernelBuilder, l: Lanes, row: &Row, v: Value, cols: Value) -> Value {
        let PoolKind::Avg { count_include_pad } = self.kind else {
            return v;
        };
        let n = if count_include_pad {
            kb.int((self.h.kernel * self.w.kernel) as i64)
        } else {
            let rows = self.rows(kb, row.taps);
            let n = kb.b.ins().imul(rows, cols);
            let one = kb.int(1);
            kb.b.ins().smax(n, one)
        };
        let n = kb.b.ins().fcvt_from_sint(types::F32, n);
        let n = if l.vector {
            kb.b.ins().splat(types::F32X4, n)
        } else {
            n
        };
        kb.b.ins().fdiv(v, n)
    }

    /// Folds `x` into a vector accumulator. Max pooling uses `maxps` (one
    /// instruction, keeping a NaN already in `acc`) and ORs a NaN into `nan`,
    /// rather than Cranelift's NaN-exact `fmax` sequence of eight.
    fn combine_x4(
        &self,
        kb: &mut KernelBuilder,
        acc: Value,
        nan: Value,
        x: Value,
    ) -> (Value, Value) {
        match self.kind {
            PoolKind::Max => {
                let less = kb.fcmp(FloatCC::LessThan, acc, x);
                let m = kb.select_mask(V, less, x, acc);
                let x_nan = kb.fcmp(FloatCC::Unordered, x, x);
                (m, kb.b.ins().bor(nan, x_nan))
            }
            PoolKind::Avg { .. } => (kb.b.ins().fadd(acc, x), nan),
        }
    }

    /// `n` f32x4 vectors of outputs from interior column `q`.
    fn vectors(&self, kb: &mut KernelBuilder, row: &Row, cp: &Phase, q: Value, n: usize) {
        let is = cp.in_step;
        let mut init = vec![kb.fconst(V, self.identity()); n];
        let zero = kb.b.ins().iconst(types::I32, 0);
        let zero = kb.b.ins().splat(types::I32X4, zero);
        init.extend(vec![zero; n]);
        let xq = kb.b.ins().imul_imm_s(q, 4 * is as i64);
        let xq = kb.b.ins().iadd(row.x4, xq);
        let acc = for_taps(kb, row.taps, MAX_UNROLLED_ROWS, &init, |kb, j, acc| {
            let xj = kb.add_scaled(xq, j, 4 * self.w.input);
            let (mut acc, mut nan) = (acc[..n].to_vec(), acc[n..].to_vec());
            let mut t = 0;
            while t < cp.taps.len() {
                let off = cp.taps[t].1;
                // Stride 2: two adjacent taps share their loads (even and odd lanes).
                let pair = is == 2 && cp.taps.get(t + 1).is_some_and(|&(_, o)| o == off + 1);
                for v in 0..n {
                    let i =
                        kb.b.ins()
                            .iadd_imm_s(xj, 4 * (off as i64 + (4 * v * is) as i64));
                    let xs = if pair {
                        let (even, odd) = load_even_odd(kb, self.x_arg, i);
                        vec![even, odd]
                    } else {
                        vec![load_x4(kb, self.x_arg, i, is)]
                    };
                    for x in xs {
                        (acc[v], nan[v]) = self.combine_x4(kb, acc[v], nan[v], x);
                    }
                }
                t += if pair { 2 } else { 1 };
            }
            [acc, nan].concat()
        });
        let cols = kb.int(self.w.kernel as i64);
        for v in 0..n {
            let a = match self.kind {
                PoolKind::Max => {
                    let bits = kb.to_bits(V, acc[v]);
                    let bits = kb.b.ins().bor(bits, acc[n + v]);
                    kb.from_bits(V, bits)
                }
                PoolKind::Avg { .. } => acc[v],
            };
            let r = self.finish(kb, V, row, a, cols);
            let idx = kb.b.ins().iadd(row.out, q);
            let idx = kb.b.ins().iadd_imm_s(idx, 4 * v as i64);
            kb.store(r, self.out_arg, idx, 4);
        }
    }

    /// Output column `q`, testing each window column.
    fn scalar(&self, kb: &mut KernelBuilder, row: &Row, cp: &Phase, q: Value) {
        let qx = kb.affine(q, cp.in_step, 0);
        let bounds: Vec<(Value, Value)> = cp
            .taps
            .iter()
            .map(|&(_, off)| {
                let pos = kb.b.ins().iadd_imm_s(qx, off as i64);
                in_bounds(kb, pos, self.w.input)
            })
            .collect();
        let init = kb.fconst(Lanes { vector: false }, self.identity());
        let acc = for_taps(kb, row.taps, MAX_UNROLLED_ROWS, &[init], |kb, j, acc| {
            let xj = kb.add_scaled(row.x4, j, 4 * self.w.input);
            let mut a = acc[0];
            for &(ok, safe) in &bounds {
                let i = kb.add_scaled(xj, safe, 4);
                let x = load_pure(kb, types::F32, self.x_arg, i);
                let c = self.combine(kb, a, x);
                a = kb.b.ins().select(ok, c, a);
            }
            vec![a]
        });
        let mut cols = kb.int(0);
        for &(ok, _) in &bounds {
            let ok = kb.b.ins().uextend(types::I64, ok);
            cols = kb.b.ins().iadd(cols, ok);
        }
        let r = self.finish(kb, Lanes { vector: false }, row, acc[0], cols);
        let idx = kb.b.ins().iadd(row.out, q);
        kb.store(r, self.out_arg, idx, 4);
    }
}
