//! Emitters of recurrent, grid-LSTM and attention kernels, and the row helpers
//! they share: vectorised copies and fills, and dot products of several matrix
//! rows with one vector (f32x4 over the contracted axis, a scalar tail, then a
//! transposing horizontal sum that yields four dot products per vector).

mod attention;
mod flash;
mod gates;
mod grid_lstm;
pub(crate) mod nt;
mod recurrent;

use cranelift_codegen::ir::{
    ConstantData, Endianness, InstBuilder, MemFlagsData, Type, Value, types,
};

use super::builder::KernelBuilder;
use super::gemm::Tier;
use super::math::Lanes;
use crate::kernel::{Kernel, SequenceOp};

/// f32x4 lanes.
const V: Lanes = Lanes { vector: true };
/// Scalar f32.
const S: Lanes = Lanes { vector: false };

/// Emits the body of a sequence kernel; the native tier also selects the
/// native products of [`nt`], the native gate math of [`gates`] and the native
/// attention of [`flash`].
pub fn emit(kb: &mut KernelBuilder, op: &SequenceOp, k: &Kernel, tier: Tier) {
    let native = matches!(tier, Tier::Native(_));
    let nt = nt::detect().filter(|_| native);
    match op {
        SequenceOp::Recurrent {
            cell,
            sequence,
            steps,
            batch,
            hidden,
        } => recurrent::emit(
            kb,
            &recurrent::Shape {
                cell: *cell,
                sequence: *sequence,
                steps: *steps,
                batch: *batch,
                hidden: *hidden,
            },
            k.inputs.len(),
            nt.zip(gates::detect(*cell))
                .map(|(nt, gates)| recurrent::Native { nt, gates }),
        ),
        SequenceOp::GridLstm {
            rows,
            cols,
            batch,
            features,
            hidden,
            keep_gates,
        } => grid_lstm::emit(kb, [*rows, *cols, *batch, *features, *hidden], *keep_gates),
        SequenceOp::Attention { .. } => attention::emit(kb, op, flash::detect().filter(|_| native)),
    }
}

/// The value type of a lane shape.
pub(crate) fn ty(l: Lanes) -> Type {
    if l.vector { types::F32X4 } else { types::F32 }
}

/// A run of elements of one kernel argument: its index and first element.
#[derive(Clone, Copy)]
struct Row {
    arg: usize,
    base: Value,
}

impl Row {
    fn new(arg: usize, base: Value) -> Row {
        Row { arg, base }
    }

    /// The element index `base + off`.
    fn at(self, kb: &mut KernelBuilder, off: Value) -> Value {
        kb.b.ins().iadd(self.base, off)
    }

    /// Loads `l` lanes at `base + off`.
    fn load(self, kb: &mut KernelBuilder, l: Lanes, off: Value) -> Value {
        let i = self.at(kb, off);
        kb.load(ty(l), self.arg, i, 4)
    }

    /// Stores `v` at `base + off`.
    fn store(self, kb: &mut KernelBuilder, off: Value, v: Value) {
        let i = self.at(kb, off);
        kb.store(v, self.arg, i, 4);
    }

    /// The row starting `off` elements later.
    fn offset(self, kb: &mut KernelBuilder, off: usize) -> Row {
        if off == 0 {
            return self;
        }
        Row::new(self.arg, kb.b.ins().iadd_imm_s(self.base, off as i64))
    }
}

/// Runs `body(lanes, i)` over `0..len`: f32x4 steps, then a scalar tail loop.
pub(crate) fn for_lanes(
    kb: &mut KernelBuilder,
    len: usize,
    mut body: impl FnMut(&mut KernelBuilder, Lanes, Value),
) {
    let vec_len = len / 4 * 4;
    if vec_len > 0 {
        kb.for_n(vec_len / 4, &[], |kb, i, _| {
            let i = kb.b.ins().imul_imm_s(i, 4);
            body(kb, V, i);
            vec![]
        });
    }
    if vec_len < len {
        let (lo, hi) = (kb.int(vec_len as i64), kb.int(len as i64));
        kb.for_range(lo, hi, 1, &[], |kb, i, _| {
            body(kb, S, i);
            vec![]
        });
    }
}

/// `dst[..len] = src[..len]`.
fn copy_row(kb: &mut KernelBuilder, src: Row, dst: Row, len: usize) {
    for_lanes(kb, len, |kb, l, i| {
        let v = src.load(kb, l, i);
        dst.store(kb, i, v);
    });
}

/// `dst[..len] = value`.
fn fill_row(kb: &mut KernelBuilder, dst: Row, len: usize, value: f32) {
    for_lanes(kb, len, |kb, l, i| {
        let v = kb.fconst(l, value);
        dst.store(kb, i, v);
    });
}

/// Shuffles the 32-bit lanes of `a` and `b` (lane `k` of the result is lane
/// `lanes[k]` of `a:b`, numbered 0-7).
fn shuffle32(kb: &mut KernelBuilder, a: Value, b: Value, lanes: [u8; 4]) -> Value {
    let flags = MemFlagsData::new().with_endianness(Endianness::Little);
    let bytes: Vec<u8> = lanes
        .iter()
        .flat_map(|&l| (0..4).map(move |k| 4 * l + k))
        .collect();
    let mask = kb.b.func.dfg.immediates.push(ConstantData::from(bytes));
    let a = kb.b.ins().bitcast(types::I8X16, flags, a);
    let b = kb.b.ins().bitcast(types::I8X16, flags, b);
    let r = kb.b.ins().shuffle(a, b, mask);
    kb.b.ins().bitcast(types::F32X4, flags, r)
}

/// `[Σ a0, Σ a1, Σ a2, Σ a3]`: the lane sums of four vectors as one vector.
fn hsum4(kb: &mut KernelBuilder, a: [Value; 4]) -> Value {
    let t0 = shuffle32(kb, a[0], a[1], [0, 4, 1, 5]);
    let t1 = shuffle32(kb, a[0], a[1], [2, 6, 3, 7]);
    let t2 = shuffle32(kb, a[2], a[3], [0, 4, 1, 5]);
    let t3 = shuffle32(kb, a[2], a[3], [2, 6, 3, 7]);
    let s01 = kb.b.ins().fadd(t0, t1);
    let s23 = kb.b.ins().fadd(t2, t3);
    let lo = shuffle32(kb, s01, s23, [0, 1, 4, 5]);
    let hi = shuffle32(kb, s01, s23, [2, 3, 6, 7]);
    kb.b.ins().fadd(lo, hi)
}

/// Combines the four lanes of `v` with `f`: `(v0 ∘ v1) ∘ (v2 ∘ v3)`.
fn horizontal(
    kb: &mut KernelBuilder,
    v: Value,
    f: fn(&mut KernelBuilder, Value, Value) -> Value,
) -> Value {
    let l: Vec<Value> = (0..4).map(|i| kb.b.ins().extractlane(v, i as u8)).collect();
    let a = f(kb, l[0], l[1]);
    let b = f(kb, l[2], l[3]);
    f(kb, a, b)
}

fn fadd(kb: &mut KernelBuilder, a: Value, b: Value) -> Value {
    kb.b.ins().fadd(a, b)
}

fn fmax(kb: &mut KernelBuilder, a: Value, b: Value) -> Value {
    kb.b.ins().fmax(a, b)
}

/// Loads `l` lanes at element `index + off` of argument `arg`, with the constant
/// `off` as the access's displacement when it fits.
fn load_plus(kb: &mut KernelBuilder, l: Lanes, arg: usize, index: Value, off: usize) -> Value {
    match i32::try_from(4 * off) {
        Ok(disp) => kb.load_at(ty(l), arg, index, 4, disp),
        Err(_) => {
            let i = kb.b.ins().iadd_imm_s(index, off as i64);
            kb.load(ty(l), arg, i, 4)
        }
    }
}

/// `acc + a·b` as a multiply and an add, for loop-carried accumulators.
///
/// Cranelift's x64 `fma` always overwrites a multiplicand (`vfmadd132/213`,
/// never the accumulating `vfmadd231`), so an accumulator carried around a loop
/// costs a copy before and a move after every `fma`; with AVX's three-operand
/// `vmulps`/`vaddps` the sum stays in the accumulator's register.
fn mul_add(kb: &mut KernelBuilder, a: Value, b: Value, acc: Value) -> Value {
    let p = kb.b.ins().fmul(a, b);
    kb.b.ins().fadd(acc, p)
}

/// A vector from four scalars.
fn gather4(kb: &mut KernelBuilder, s: &[Value]) -> Value {
    let mut v = kb.b.ins().splat(types::F32X4, s[0]);
    for (k, &x) in s.iter().enumerate().skip(1) {
        v = kb.b.ins().insertlane(v, x, k as u8);
    }
    v
}

/// Dot products of rows `m.base + offsets[r]` of `m` (a multiple of 4 rows, each
/// `len` long) with `x`: one f32x4 per group of four rows, lane `r` holding row
/// `4g + r`'s product. The row offsets become load displacements.
fn dot4(kb: &mut KernelBuilder, x: Row, m: Row, offsets: &[usize], len: usize) -> Vec<Value> {
    assert!(
        offsets.len().is_multiple_of(4),
        "dot4 takes groups of four rows"
    );
    let zero = kb.fconst(V, 0.0);
    let (lo, hi) = (kb.int(0), kb.int((len / 4 * 4) as i64));
    let acc = kb.for_range(lo, hi, 4, &vec![zero; offsets.len()], |kb, k, acc| {
        let xv = x.load(kb, V, k);
        let at = m.at(kb, k);
        offsets
            .iter()
            .zip(acc)
            .map(|(&off, &a)| {
                let w = load_plus(kb, V, m.arg, at, off);
                mul_add(kb, w, xv, a)
            })
            .collect()
    });
    let mut sums: Vec<Value> = acc
        .chunks(4)
        .map(|g| hsum4(kb, [g[0], g[1], g[2], g[3]]))
        .collect();
    let vec_len = len / 4 * 4;
    if vec_len < len {
        let zero = kb.fconst(S, 0.0);
        let (lo, hi) = (kb.int(vec_len as i64), kb.int(len as i64));
        let tail = kb.for_range(lo, hi, 1, &vec![zero; offsets.len()], |kb, k, acc| {
            let xs = x.load(kb, S, k);
            let at = m.at(kb, k);
            offsets
                .iter()
                .zip(acc)
                .map(|(&off, &a)| {
                    let w = load_plus(kb, S, m.arg, at, off);
                    mul_add(kb, w, xs, a)
                })
                .collect()
        });
        for (s, g) in sums.iter_mut().zip(tail.chunks(4)) {
            let t = gather4(kb, g);
            *s = kb.b.ins().fadd(*s, t);
        }
    }
    sums
}

/// The dot product of `row` and `x` (`len` long) as a scalar.
fn dot1(kb: &mut KernelBuilder, x: Row, row: Row, len: usize) -> Value {
    let zero = kb.fconst(V, 0.0);
    let (lo, hi) = (kb.int(0), kb.int((len / 4 * 4) as i64));
    let acc = kb.for_range(lo, hi, 4, &[zero], |kb, k, acc| {
        let xv = x.load(kb, V, k);
        let w = row.load(kb, V, k);
        vec![mul_add(kb, w, xv, acc[0])]
    });
    let sum = horizontal(kb, acc[0], fadd);
    let vec_len = len / 4 * 4;
    if vec_len == len {
        return sum;
    }
    let (lo, hi) = (kb.int(vec_len as i64), kb.int(len as i64));
    kb.for_range(lo, hi, 1, &[sum], |kb, k, acc| {
        let xs = x.load(kb, S, k);
        let w = row.load(kb, S, k);
        vec![mul_add(kb, w, xs, acc[0])]
    })[0]
}
