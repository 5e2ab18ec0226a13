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
mod pool;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{BlockArg, ConstantData, InstBuilder, MemFlagsData, Value, types};

use super::builder::KernelBuilder;
use crate::kernel::{Kernel, SpatialOp};

/// Emits the body of a spatial kernel.
pub fn emit(kb: &mut KernelBuilder, op: &SpatialOp, _k: &Kernel) {
    match op {
        SpatialOp::Conv { .. } => conv::emit(kb, op),
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

/// Both axes `[height, width]` of a kernel's attributes.
fn dims(
    input: [usize; 2],
    output: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
    dilation: [usize; 2],
) -> [Dim; 2] {
    [0, 1].map(|a| Dim {
        input: input[a],
        output: output[a],
        kernel: kernel[a],
        stride: stride[a],
        pad: pad[a],
        dilation: dilation[a],
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
/// when the range is a constant no longer than `unroll`).
fn for_taps(
    kb: &mut KernelBuilder,
    range: TapRange,
    unroll: usize,
    carried: &[Value],
    mut body: impl FnMut(&mut KernelBuilder, Value, &[Value]) -> Vec<Value>,
) -> Vec<Value> {
    match range {
        TapRange::Const(lo, hi) if hi - lo <= unroll => {
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

/// Runs `body` for `i` in `0..n`, carrying values, without a loop when `n == 1`.
fn for_n_or_once(
    kb: &mut KernelBuilder,
    n: usize,
    carried: &[Value],
    body: impl FnOnce(&mut KernelBuilder, Value, &[Value]) -> Vec<Value>,
) -> Vec<Value> {
    if n == 1 {
        let zero = kb.int(0);
        body(kb, zero, carried)
    } else {
        kb.for_n(n, carried, body)
    }
}

/// How the columns `0..count` of a phase are covered: vector blocks of
/// `4·wide` outputs, then single vectors, then single columns.
struct Columns {
    /// Start and end of the blocks of `4·wide`.
    blocks: (usize, usize),
    /// End of the single vectors (which start at `blocks.1`).
    vectors: usize,
    /// Scalar runs.
    scalar: [(usize, usize); 2],
}

impl Columns {
    fn new(phase: &Phase, input: usize, wide: usize) -> Columns {
        let (a, b) = phase.interior(input);
        let w = 4 * wide;
        let blocks = (a, a + (b - a) / w * w);
        let vectors = blocks.1 + (b - blocks.1) / 4 * 4;
        Columns {
            blocks,
            vectors,
            scalar: [(0, a), (vectors, phase.count)],
        }
    }

    /// Emits the columns: `vector(kb, q, n)` computes `n` f32x4 vectors of outputs
    /// from `q`, `scalar(kb, q)` the single output `q`.
    fn emit(
        &self,
        kb: &mut KernelBuilder,
        wide: usize,
        mut vector: impl FnMut(&mut KernelBuilder, Value, usize),
        mut scalar: impl FnMut(&mut KernelBuilder, Value),
    ) {
        let runs = [
            (self.blocks.0, self.blocks.1, 4 * wide),
            (self.blocks.1, self.vectors, 4),
        ];
        for (lo, hi, step) in runs {
            if lo < hi {
                let (l, h) = (kb.int(lo as i64), kb.int(hi as i64));
                kb.for_range(l, h, step as i64, &[], |kb, q, _| {
                    vector(kb, q, step / 4);
                    vec![]
                });
            }
        }
        for (lo, hi) in self.scalar {
            if lo < hi {
                let (l, h) = (kb.int(lo as i64), kb.int(hi as i64));
                kb.for_range(l, h, 1, &[], |kb, q, _| {
                    scalar(kb, q);
                    vec![]
                });
            }
        }
    }
}

/// Passes `vals` through a new block and returns them as its parameters.
///
/// With `opt_level=speed`, Cranelift keeps loads where they are but places pure
/// arithmetic at its first use, so a long chain of loads and multiply-adds into
/// accumulators would run as all the loads, then all the arithmetic (with every
/// loaded value live at once). A block boundary forces the arithmetic feeding
/// `vals` to be computed before it; the jump to the next block costs nothing.
fn barrier(kb: &mut KernelBuilder, vals: &[Value]) -> Vec<Value> {
    let next = kb.b.create_block();
    for &v in vals {
        let ty = kb.b.func.dfg.value_type(v);
        kb.b.append_block_param(next, ty);
    }
    let args: Vec<BlockArg> = vals.iter().map(|&v| BlockArg::Value(v)).collect();
    kb.b.ins().jump(next, &args);
    kb.b.switch_to_block(next);
    kb.b.seal_block(next);
    kb.b.block_params(next).to_vec()
}

/// Loads input elements `idx + l·step` (`l` in `0..4`) of argument `arg` as a vector.
fn load_x4(kb: &mut KernelBuilder, arg: usize, idx: Value, step: usize) -> Value {
    match step {
        1 => kb.load(types::F32X4, arg, idx, 4),
        2 => {
            // [p, p+3] and [p+3, p+6]: lanes 0, 2 of the first and 1, 3 of the second.
            let at3 = kb.b.ins().iadd_imm_s(idx, 3);
            let lo = kb.load(types::F32X4, arg, idx, 4);
            let hi = kb.load(types::F32X4, arg, at3, 4);
            let mask: Vec<u8> = [0u8, 2, 5, 7]
                .iter()
                .flat_map(|&l| (0..4).map(move |b| 4 * l + b))
                .collect();
            let mask = kb.b.func.dfg.immediates.push(ConstantData::from(mask));
            let flags =
                MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little);
            let lo = kb.b.ins().bitcast(types::I8X16, flags, lo);
            let hi = kb.b.ins().bitcast(types::I8X16, flags, hi);
            let v = kb.b.ins().shuffle(lo, hi, mask);
            kb.b.ins().bitcast(types::F32X4, flags, v)
        }
        _ => {
            let s0 = kb.load(types::F32, arg, idx, 4);
            let mut v = kb.b.ins().scalar_to_vector(types::F32X4, s0);
            for l in 1..4u8 {
                let i = kb.b.ins().iadd_imm_s(idx, (l as usize * step) as i64);
                let s = kb.load(types::F32, arg, i, 4);
                v = kb.b.ins().insertlane(v, s, l);
            }
            v
        }
    }
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
