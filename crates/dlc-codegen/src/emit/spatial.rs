//! Emitters of convolution and pooling kernels, and the geometry they share.
//!
//! Every output element is computed by a *gather*: along each spatial axis,
//! [`Dim::phases`] splits the output positions into arithmetic progressions
//! (phases), each reading the input through a fixed list of kernel taps. A
//! convolution or pooling has one phase per axis; a transposed convolution of
//! stride `s` has `s` (output `o` receives input `i` through tap `k` exactly when
//! `o + pad = i·s + k·dilation`, so the residue of `o` fixes the taps), which
//! turns its scatter into a gather without wasted multiplications.
//!
//! Within a phase, rows take their valid taps from a run-time range (a select
//! chain over the row segments known at compile time); columns are split into
//! an interior, where every tap of a whole f32x4 vector is in bounds, and the
//! rest, computed one column at a time with a validity test per tap.

mod conv;
mod native;
mod pool;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    ConstantData, Endianness, InstBuilder, MemFlagsData, Type, Value, types,
};

use super::builder::{KernelBuilder, mem};
use super::gemm;
use crate::kernel::{Kernel, SpatialOp, Window};

/// Emits the body of a spatial kernel; convolutions lowered to implicit GEMMs
/// use the micro-kernel `tier`.
pub fn emit(kb: &mut KernelBuilder, op: &SpatialOp, _k: &Kernel, tier: gemm::Tier) {
    match op {
        SpatialOp::Conv { gemm: Some(_), .. } => gemm::conv::emit(kb, op, tier),
        SpatialOp::Conv { .. } => conv::emit(kb, op, tier),
        SpatialOp::Pool { .. } => pool::emit(kb, op),
    }
}

/// The geometry of one spatial axis.
#[derive(Clone, Copy, Debug)]
struct Dim {
    input: usize,
    output: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
}

/// Both axes `[height, width]` of a kernel's window.
fn dims(win: &Window) -> [Dim; 2] {
    [0, 1].map(|a| Dim {
        input: win.input[a],
        output: win.output[a],
        kernel: win.kernel[a],
        stride: win.stride[a],
        pad: win.pad[a],
        dilation: win.dilation[a],
    })
}

impl Dim {
    /// One phase for a convolution or pooling, `min(stride, output)` for a
    /// transposed convolution.
    fn phases(&self, transposed: bool) -> Vec<Phase> {
        if !transposed {
            let taps = (0..self.kernel)
                .map(|k| (k, (k * self.dilation) as isize - self.pad as isize))
                .collect();
            return vec![Phase::new(0, 1, self.output, self.stride, taps)];
        }
        let s = self.stride;
        (0..s.min(self.output))
            .map(|r| {
                // o = r + q·s receives input i = q + (r + pad − k·dilation)/s through tap k.
                let taps = (0..self.kernel)
                    .filter_map(|k| {
                        let t = (r + self.pad) as isize - (k * self.dilation) as isize;
                        (t.rem_euclid(s as isize) == 0).then_some((k, t / s as isize))
                    })
                    .collect();
                Phase::new(r, s, (self.output - r).div_ceil(s), 1, taps)
            })
            .collect()
    }
}

/// Output positions `first + q·step` for `q` in `0..count`; position `q` reads
/// input `q·in_step + offset` through each tap `(k, offset)` that lands in
/// bounds. The taps form arithmetic progressions in both `k` and `offset`.
#[derive(Clone, Debug)]
struct Phase {
    first: usize,
    step: usize,
    count: usize,
    in_step: usize,
    taps: Vec<(usize, isize)>,
}

impl Phase {
    fn new(
        first: usize,
        step: usize,
        count: usize,
        in_step: usize,
        taps: Vec<(usize, isize)>,
    ) -> Phase {
        let p = Phase {
            first,
            step,
            count,
            in_step,
            taps,
        };
        let ((k0, o0), (dk, doff)) = (p.first_tap(), p.tap_step());
        debug_assert!(
            p.taps
                .iter()
                .enumerate()
                .all(|(j, &(k, o))| k == k0 + j * dk && o == o0 + j as isize * doff),
            "taps must be arithmetic progressions"
        );
        p
    }

    /// The first tap (or `(0, 0)` when there is none).
    fn first_tap(&self) -> (usize, isize) {
        self.taps.first().copied().unwrap_or((0, 0))
    }

    /// The step between consecutive taps in `k` and in offset.
    fn tap_step(&self) -> (usize, isize) {
        match self.taps[..] {
            [(k0, o0), (k1, o1), ..] => (k1 - k0, o1 - o0),
            _ => (0, 0),
        }
    }

    /// Input position of tap `t` at `q` (may be out of bounds).
    fn pos(&self, q: usize, t: usize) -> isize {
        (q * self.in_step) as isize + self.taps[t].1
    }

    /// The run `lo..hi` of taps whose input is in `0..input` at `q` (offsets are
    /// monotone, so the valid taps are contiguous).
    fn valid_taps(&self, q: usize, input: usize) -> (usize, usize) {
        let inside = |t: &usize| (0..input as isize).contains(&self.pos(q, *t));
        let lo = (0..self.taps.len()).find(inside).unwrap_or(0);
        let hi = lo + (lo..self.taps.len()).take_while(inside).count();
        (lo, hi)
    }

    /// The interior `a..b` of `q`s at which every tap is in bounds.
    fn interior(&self, input: usize) -> (usize, usize) {
        let n = self.taps.len();
        let full = |q: &usize| self.valid_taps(*q, input) == (0, n);
        match (0..self.count).find(full) {
            None => (0, 0),
            Some(a) => (a, a + (a..self.count).take_while(full).count()),
        }
    }
}

/// The rows `lo..hi` of run `chunk` (a run-time value) when `count` rows are
/// split into `chunks` runs: `chunk·count/chunks .. (chunk+1)·count/chunks`.
fn row_run(kb: &mut KernelBuilder, count: usize, chunks: usize, chunk: Value) -> (Value, Value) {
    if chunks == 1 {
        return (kb.int(0), kb.int(count as i64));
    }
    let lo = kb.b.ins().imul_imm_s(chunk, count as i64);
    let lo = kb.b.ins().udiv_imm_u(lo, chunks as i64);
    let hi = kb.b.ins().iadd_imm_s(chunk, 1);
    let hi = kb.b.ins().imul_imm_s(hi, count as i64);
    let hi = kb.b.ins().udiv_imm_u(hi, chunks as i64);
    (lo, hi)
}

/// The taps of a row: a compile-time range when every row of the phase has the
/// same one, else run-time bounds.
#[derive(Clone, Copy)]
enum TapRange {
    Const(usize, usize),
    Dynamic(Value, Value),
}

/// The valid taps of row `q` of `phase`: a select chain over the runs of rows
/// that share a range.
fn tap_range(kb: &mut KernelBuilder, phase: &Phase, input: usize, q: Value) -> TapRange {
    let mut segments: Vec<(usize, (usize, usize))> = Vec::new(); // (end, range)
    for qi in 0..phase.count {
        let r = phase.valid_taps(qi, input);
        match segments.last_mut() {
            Some((end, last)) if *last == r => *end = qi + 1,
            _ => segments.push((qi + 1, r)),
        }
    }
    if segments.len() <= 1 {
        let (_, (lo, hi)) = segments.first().copied().unwrap_or((0, (0, 0)));
        return TapRange::Const(lo, hi);
    }
    let (_, (lo, hi)) = *segments.last().unwrap();
    let (mut lo, mut hi) = (kb.int(lo as i64), kb.int(hi as i64));
    for &(end, (l, h)) in segments.iter().rev().skip(1) {
        let before = kb.b.ins().icmp_imm_s(IntCC::SignedLessThan, q, end as i64);
        let (l, h) = (kb.int(l as i64), kb.int(h as i64));
        lo = kb.b.ins().select(before, l, lo);
        hi = kb.b.ins().select(before, h, hi);
    }
    TapRange::Dynamic(lo, hi)
}

/// Runs `body` for every tap index `j` of a range, carrying values (unrolled
/// when the range is a constant no longer than `unroll`, or a single tap).
fn for_taps(
    kb: &mut KernelBuilder,
    range: TapRange,
    unroll: usize,
    carried: &[Value],
    mut body: impl FnMut(&mut KernelBuilder, Value, &[Value]) -> Vec<Value>,
) -> Vec<Value> {
    match range {
        TapRange::Const(lo, hi) if hi - lo <= unroll.max(1) => {
            let mut vals = carried.to_vec();
            for j in lo..hi {
                let j = kb.int(j as i64);
                vals = body(kb, j, &vals);
            }
            vals
        }
        TapRange::Const(lo, hi) => {
            let (lo, hi) = (kb.int(lo as i64), kb.int(hi as i64));
            kb.for_range(lo, hi, 1, carried, body)
        }
        TapRange::Dynamic(lo, hi) => kb.for_range(lo, hi, 1, carried, body),
    }
}

/// How the columns `0..count` of a phase are covered: plain vector blocks of
/// `4·wide` outputs and single plain vectors over the interior, then the edge
/// runs, by masked vectors of 4 (when the phase has 4 columns and the emitter
/// has masked vectors; their starts are clamped to `count − 4`, so they may
/// recompute a few interior columns) or by single columns.
struct Columns {
    count: usize,
    /// Start and end of the blocks of `4·wide`.
    blocks: (usize, usize),
    /// End of the single vectors (which start at `blocks.1`).
    vectors: usize,
    /// The edge runs.
    edges: [(usize, usize); 2],
}

/// Emits `n` f32x4 vectors of outputs from a column.
type VectorFn<'f> = &'f mut dyn FnMut(&mut KernelBuilder, Value, usize);
/// Emits one masked vector or one single output at a column.
type ColumnFn<'f> = &'f mut dyn FnMut(&mut KernelBuilder, Value);
/// Emits the outputs of the columns `lo..hi` (compile-time bounds) at once.
type RunFn<'f> = &'f mut dyn FnMut(&mut KernelBuilder, usize, usize);

impl Columns {
    fn new(phase: &Phase, input: usize, wide: usize) -> Columns {
        let (a, b) = phase.interior(input);
        let w = 4 * wide;
        let blocks = (a, a + (b - a) / w * w);
        let vectors = blocks.1 + (b - blocks.1) / 4 * 4;
        Columns {
            count: phase.count,
            blocks,
            vectors,
            edges: [(0, a), (vectors, phase.count)],
        }
    }

    /// Emits the columns: `vector(kb, q, n)` computes `n` f32x4 vectors of
    /// outputs from column `q`, `masked(kb, q)` a vector of any 4 columns, and
    /// `scalar(kb, q)` the single output `q`; `run(kb, lo, hi)`, when given,
    /// computes all the blocks of `4·wide` at once instead of `vector`.
    fn emit(
        &self,
        kb: &mut KernelBuilder,
        wide: usize,
        run: Option<RunFn>,
        vector: VectorFn,
        masked: Option<ColumnFn>,
        scalar: ColumnFn,
    ) {
        let mut runs = vec![(self.blocks.1, self.vectors, 4)];
        match run {
            Some(run) if self.blocks.0 < self.blocks.1 => run(kb, self.blocks.0, self.blocks.1),
            _ => runs.insert(0, (self.blocks.0, self.blocks.1, 4 * wide)),
        }
        for (lo, hi, step) in runs {
            if lo < hi {
                let (l, h) = (kb.int(lo as i64), kb.int(hi as i64));
                kb.for_range(l, h, step as i64, &[], |kb, q, _| {
                    vector(kb, q, step / 4);
                    vec![]
                });
            }
        }
        let masked = masked.filter(|_| self.count >= 4);
        let step = if masked.is_some() { 4 } else { 1 };
        let column: ColumnFn = match masked {
            Some(m) => m,
            None => scalar,
        };
        for (lo, hi) in self.edges {
            if lo < hi {
                let (l, h) = (kb.int(lo as i64), kb.int(hi as i64));
                kb.for_range(l, h, step, &[], |kb, q, _| {
                    let q = if step == 4 {
                        let last = kb.int(self.count as i64 - 4);
                        kb.b.ins().smin(q, last)
                    } else {
                        q
                    };
                    column(kb, q);
                    vec![]
                });
            }
        }
    }
}

/// Loads a value of type `ty` at byte `offset` of argument `arg`, which the
/// kernel never writes.
///
/// The load is marked pure (read-only, movable), so with `opt_level=speed`
/// Cranelift places it at its first use like arithmetic. A side-effecting load
/// stays where it was emitted while the arithmetic it feeds sinks to its own
/// first use, which in a chain of multiply-adds means all loads first, every
/// loaded value live at once. Callers keep the offsets of pure loads varying in
/// the innermost loop, or loop-invariant code motion would hoist them.
fn load_pure(kb: &mut KernelBuilder, ty: Type, arg: usize, offset: Value) -> Value {
    let a = kb.addr(arg, offset, 1, ty.bytes() as usize);
    let flags = mem().with_readonly().with_can_move();
    kb.b.ins().load(ty, flags, a, 0)
}

/// Loads the f32 input elements at byte offsets `offset + 4·l·step` (`l` in
/// `0..4`) of argument `arg` as a vector.
fn load_x4(kb: &mut KernelBuilder, arg: usize, offset: Value, step: usize) -> Value {
    match step {
        1 => load_pure(kb, types::F32X4, arg, offset),
        2 => {
            // [p, p+3] and [p+3, p+6]: lanes 0, 2 of the first and 1, 3 of the second.
            let at3 = kb.b.ins().iadd_imm_s(offset, 12);
            let lo = load_pure(kb, types::F32X4, arg, offset);
            let hi = load_pure(kb, types::F32X4, arg, at3);
            shuffle_lanes(kb, lo, hi, [0, 2, 5, 7])
        }
        _ => {
            let s0 = load_pure(kb, types::F32, arg, offset);
            let mut v = kb.b.ins().scalar_to_vector(types::F32X4, s0);
            for l in 1..4u8 {
                let i =
                    kb.b.ins()
                        .iadd_imm_s(offset, (4 * l as usize * step) as i64);
                let s = load_pure(kb, types::F32, arg, i);
                v = kb.b.ins().insertlane(v, s, l);
            }
            v
        }
    }
}

/// The even and odd f32 elements of the 8 at byte `offset` of argument `arg`,
/// as two vectors (two loads, two `shufps`).
fn load_even_odd(kb: &mut KernelBuilder, arg: usize, offset: Value) -> (Value, Value) {
    let at4 = kb.b.ins().iadd_imm_s(offset, 16);
    let lo = load_pure(kb, types::F32X4, arg, offset);
    let hi = load_pure(kb, types::F32X4, arg, at4);
    (
        shuffle_lanes(kb, lo, hi, [0, 2, 4, 6]),
        shuffle_lanes(kb, lo, hi, [1, 3, 5, 7]),
    )
}

/// Lanes `lanes` (0–3 from `a`, 4–7 from `b`) of two f32x4 vectors.
pub(crate) fn shuffle_lanes(kb: &mut KernelBuilder, a: Value, b: Value, lanes: [u8; 4]) -> Value {
    let mask: Vec<u8> = lanes
        .iter()
        .flat_map(|&l| (0..4).map(move |b| 4 * l + b))
        .collect();
    let mask = kb.b.func.dfg.immediates.push(ConstantData::from(mask));
    let flags = MemFlagsData::new().with_endianness(Endianness::Little);
    let a = kb.b.ins().bitcast(types::I8X16, flags, a);
    let b = kb.b.ins().bitcast(types::I8X16, flags, b);
    let v = kb.b.ins().shuffle(a, b, mask);
    kb.b.ins().bitcast(types::F32X4, flags, v)
}

/// Stores the lanes of `v` at elements `idx + l·step` of argument `arg`.
fn store_x4(kb: &mut KernelBuilder, v: Value, arg: usize, idx: Value, step: usize) {
    if step == 1 {
        kb.store(v, arg, idx, 4);
        return;
    }
    for l in 0..4u8 {
        let s = kb.b.ins().extractlane(v, l);
        let i = kb.b.ins().iadd_imm_s(idx, (l as usize * step) as i64);
        kb.store(s, arg, i, 4);
    }
}

/// Whether input position `pos` (an i64, possibly negative) lies in `0..len`, and
/// the position clamped to 0 when it does not (safe to load).
fn in_bounds(kb: &mut KernelBuilder, pos: Value, len: usize) -> (Value, Value) {
    let ok =
        kb.b.ins()
            .icmp_imm_u(IntCC::UnsignedLessThan, pos, len as i64);
    let zero = kb.int(0);
    let safe = kb.b.ins().select(ok, pos, zero);
    (ok, safe)
}
