//! Fused elementwise kernels: one loop nest evaluating an expression DAG per element.
//!
//! The innermost dim is vectorised (f32x4 body plus a scalar tail) when every
//! leaf and the result are f32; inputs broadcast along it (stride 0) are loaded
//! once per row and splat. Any i64/bool leaf, cast or dropout selects the scalar
//! path, where bools are i8 0/1 and i64 arithmetic wraps.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{InstBuilder, Value, types};
use dlc_ir::{BinaryOp, DType, UnaryOp};

use super::builder::KernelBuilder;
use super::math::Lanes;
use crate::kernel::{ElemKernel, ElemNode};

/// Emits the loop nest of an elementwise kernel with `inputs` leaves and one output
/// (argument `n_inputs`). Dim 0 is the parallel dim.
pub fn emit(kb: &mut KernelBuilder, k: &ElemKernel, n_inputs: usize) {
    let vector = vectorizable(k);
    let rank = k.shape.len();
    let out_strides = dlc_ir::types::strides(&k.shape);
    let bases: Vec<Value> = (k.leaves.iter().map(|l| l.offset))
        .chain([0])
        .map(|o| kb.int(o as i64))
        .collect();
    emit_level(kb, k, n_inputs, vector, 0, rank, &out_strides, &bases);
}

/// Whether the whole expression can run on f32x4 lanes: f32 throughout, and
/// every leaf contiguous or broadcast along the innermost dim (a strided view,
/// such as a slice with a step, cannot be read as one vector).
pub(crate) fn vectorizable(k: &ElemKernel) -> bool {
    k.leaves
        .iter()
        .all(|l| l.dtype == DType::F32 && matches!(l.strides.last(), None | Some(0 | 1)))
        && *k.dtypes.last().unwrap() == DType::F32
        && k.nodes.iter().zip(&k.dtypes).all(|(n, &dt)| {
            dt != DType::I64 && !matches!(n, ElemNode::Cast(..) | ElemNode::Dropout { .. })
        })
}

/// Emits the loop over dim `d`; `bases` holds each leaf's (and last, the output's)
/// element offset for the enclosing indices.
#[allow(clippy::too_many_arguments)]
fn emit_level(
    kb: &mut KernelBuilder,
    k: &ElemKernel,
    n_inputs: usize,
    vector: bool,
    d: usize,
    rank: usize,
    out_strides: &[usize],
    bases: &[Value],
) {
    let (lo, hi) = if d == 0 {
        (kb.start, kb.end)
    } else {
        (kb.int(0), kb.int(k.shape[d] as i64))
    };
    let strides: Vec<usize> = k
        .leaves
        .iter()
        .map(|l| l.strides[d])
        .chain([out_strides[d]])
        .collect();
    if d + 1 < rank {
        kb.for_range(lo, hi, 1, &[], |kb, i, _| {
            let next: Vec<Value> = bases
                .iter()
                .zip(&strides)
                .map(|(&b, &s)| kb.add_scaled(b, i, s))
                .collect();
            emit_level(kb, k, n_inputs, vector, d + 1, rank, out_strides, &next);
            vec![]
        });
        return;
    }
    emit_row(kb, k, n_inputs, vector, (lo, hi), bases, &strides);
}

/// Emits the innermost loop over `lo..hi`: `bases` holds each leaf's (and
/// last, the output's) element offset at index 0 of the loop, `strides` their
/// strides along it. f32x4 lanes with a scalar tail when `vector`; leaves
/// broadcast along the loop (stride 0) are loaded once.
pub(crate) fn emit_row(
    kb: &mut KernelBuilder,
    k: &ElemKernel,
    n_inputs: usize,
    vector: bool,
    (lo, hi): (Value, Value),
    bases: &[Value],
    strides: &[usize],
) {
    let d = k.shape.len() - 1;
    // Innermost dim: hoist loads of leaves broadcast along it.
    let hoisted: Vec<Option<Value>> = k
        .leaves
        .iter()
        .enumerate()
        .map(|(j, leaf)| {
            (leaf.strides[d] == 0).then(|| {
                let ty = scalar_type(leaf.dtype);
                let v = kb.load(ty, leaf.input, bases[j], leaf.dtype.size_bytes());
                if vector {
                    kb.b.ins().splat(types::F32X4, v)
                } else {
                    v
                }
            })
        })
        .collect();
    let tail_lo = if vector {
        let span = kb.b.ins().isub(hi, lo);
        let whole = kb.b.ins().band_imm_s(span, !3);
        let vec_hi = kb.b.ins().iadd(lo, whole);
        kb.for_range(lo, vec_hi, 4, &[], |kb, i, _| {
            element(
                kb,
                k,
                n_inputs,
                Lanes { vector: true },
                i,
                bases,
                strides,
                &hoisted,
            );
            vec![]
        });
        vec_hi
    } else {
        lo
    };
    let scalar_hoisted: Vec<Option<Value>> = if vector {
        hoisted
            .iter()
            .map(|h| h.map(|v| kb.b.ins().extractlane(v, 0)))
            .collect()
    } else {
        hoisted
    };
    kb.for_range(tail_lo, hi, 1, &[], |kb, i, _| {
        element(
            kb,
            k,
            n_inputs,
            Lanes { vector: false },
            i,
            bases,
            strides,
            &scalar_hoisted,
        );
        vec![]
    });
}

fn scalar_type(dt: DType) -> types::Type {
    match dt {
        DType::F32 => types::F32,
        DType::I64 => types::I64,
        DType::Bool => types::I8,
    }
}

/// Computes and stores the element(s) at innermost index `i`.
#[allow(clippy::too_many_arguments)]
fn element(
    kb: &mut KernelBuilder,
    k: &ElemKernel,
    n_inputs: usize,
    l: Lanes,
    i: Value,
    bases: &[Value],
    strides: &[usize],
    hoisted: &[Option<Value>],
) {
    let out_index = kb.add_scaled(bases[k.leaves.len()], i, strides[k.leaves.len()]);
    let mut vals: Vec<Value> = Vec::with_capacity(k.nodes.len());
    for (n, node) in k.nodes.iter().enumerate() {
        let v = match *node {
            ElemNode::Leaf(j) => match hoisted[j] {
                Some(v) => v,
                None => {
                    let leaf = &k.leaves[j];
                    let idx = kb.add_scaled(bases[j], i, strides[j]);
                    let ty = if l.vector {
                        types::F32X4
                    } else {
                        scalar_type(leaf.dtype)
                    };
                    kb.load(ty, leaf.input, idx, leaf.dtype.size_bytes())
                }
            },
            ElemNode::Const(c, dt) => constant(kb, l, c, dt),
            ElemNode::Unary(op, x) => unary(kb, l, op, vals[x], k.dtypes[x]),
            ElemNode::Binary(op, a, b) => binary(kb, l, op, vals[a], vals[b], k.dtypes[a]),
            ElemNode::LeakyRelu(alpha, x) => {
                let zero = kb.fconst(l, 0.0);
                let a = kb.fconst(l, alpha as f32);
                let scaled = kb.b.ins().fmul(vals[x], a);
                let pos = kb.fcmp(FloatCC::GreaterThan, vals[x], zero);
                kb.select_mask(l, pos, vals[x], scaled)
            }
            ElemNode::Elu(alpha, x) => {
                let zero = kb.fconst(l, 0.0);
                let a = kb.fconst(l, alpha as f32);
                let one = kb.fconst(l, 1.0);
                let e = kb.exp(l, vals[x]);
                let em1 = kb.b.ins().fsub(e, one);
                let neg = kb.b.ins().fmul(a, em1);
                let pos = kb.fcmp(FloatCC::GreaterThan, vals[x], zero);
                kb.select_mask(l, pos, vals[x], neg)
            }
            ElemNode::Clamp(lo, hi, x) => {
                let lo = kb.fconst(l, lo as f32);
                let hi = kb.fconst(l, hi as f32);
                let v = kb.b.ins().fmax(vals[x], lo);
                kb.b.ins().fmin(v, hi)
            }
            ElemNode::Where(c, a, b) => {
                if l.vector {
                    kb.select_mask(l, vals[c], vals[a], vals[b])
                } else {
                    kb.b.ins().select(vals[c], vals[a], vals[b])
                }
            }
            ElemNode::Cast(to, x) => cast(kb, vals[x], k.dtypes[x], to),
            ElemNode::Dropout { p, seed, x } => dropout(kb, vals[x], p, seed, out_index),
        };
        debug_assert!(n == vals.len());
        vals.push(v);
    }
    let result = *vals
        .last()
        .expect("an elementwise kernel has at least one node");
    let out_dt = *k.dtypes.last().unwrap();
    kb.store(result, n_inputs, out_index, out_dt.size_bytes());
}

fn constant(kb: &mut KernelBuilder, l: Lanes, c: f64, dt: DType) -> Value {
    match dt {
        DType::F32 => kb.fconst(l, c as f32),
        DType::I64 => kb.b.ins().iconst(types::I64, c as i64),
        DType::Bool if l.vector => {
            let s = kb.b.ins().iconst(types::I32, if c != 0.0 { -1 } else { 0 });
            kb.b.ins().splat(types::I32X4, s)
        }
        DType::Bool => kb.b.ins().iconst(types::I8, (c != 0.0) as i64),
    }
}

fn unary(kb: &mut KernelBuilder, l: Lanes, op: UnaryOp, x: Value, dt: DType) -> Value {
    match op {
        UnaryOp::Neg => kb.b.ins().fneg(x),
        UnaryOp::Abs => kb.b.ins().fabs(x),
        UnaryOp::Relu => {
            // max(x, 0) that propagates NaN: x > 0 ? x : (x is NaN ? x : 0).
            let zero = kb.fconst(l, 0.0);
            let keep = kb.fcmp(FloatCC::UnorderedOrGreaterThan, x, zero);
            kb.select_mask(l, keep, x, zero)
        }
        UnaryOp::Exp => kb.exp(l, x),
        UnaryOp::Log => kb.log(l, x),
        UnaryOp::Sqrt => kb.b.ins().sqrt(x),
        UnaryOp::Rsqrt => {
            let s = kb.b.ins().sqrt(x);
            let one = kb.fconst(l, 1.0);
            kb.b.ins().fdiv(one, s)
        }
        UnaryOp::Sigmoid => kb.sigmoid(l, x),
        UnaryOp::Tanh => kb.tanh(l, x),
        UnaryOp::GeluErf => kb.gelu_erf(l, x),
        UnaryOp::GeluTanh => kb.gelu_tanh(l, x),
        UnaryOp::Softplus => kb.softplus(l, x),
        UnaryOp::Erf => kb.erf(l, x),
        UnaryOp::Not => {
            debug_assert_eq!(dt, DType::Bool);
            if l.vector {
                kb.b.ins().bnot(x)
            } else {
                kb.b.ins().bxor_imm_s(x, 1)
            }
        }
    }
}

fn binary(kb: &mut KernelBuilder, l: Lanes, op: BinaryOp, a: Value, b: Value, dt: DType) -> Value {
    use BinaryOp as B;
    if let Some(cc) = float_cc(op).filter(|_| dt == DType::F32) {
        return kb.fcmp(cc, a, b);
    }
    match (dt, op) {
        (DType::F32, B::Add) => kb.b.ins().fadd(a, b),
        (DType::F32, B::Sub) => kb.b.ins().fsub(a, b),
        (DType::F32, B::Mul) => kb.b.ins().fmul(a, b),
        (DType::F32, B::Div) => kb.b.ins().fdiv(a, b),
        (DType::F32, B::Maximum) => kb.b.ins().fmax(a, b),
        (DType::F32, B::Minimum) => kb.b.ins().fmin(a, b),
        (DType::F32, B::Pow) => pow(kb, l, a, b),
        (DType::I64, B::Add) => kb.b.ins().iadd(a, b),
        (DType::I64, B::Sub) => kb.b.ins().isub(a, b),
        (DType::I64, B::Mul) => kb.b.ins().imul(a, b),
        (DType::I64, B::Maximum) => kb.b.ins().smax(a, b),
        (DType::I64, B::Minimum) => kb.b.ins().smin(a, b),
        (DType::I64 | DType::Bool, _) if int_cc(op).is_some() => {
            let cc = int_cc(op).unwrap();
            kb.b.ins().icmp(cc, a, b)
        }
        (DType::Bool, B::And) => kb.b.ins().band(a, b),
        (DType::Bool, B::Or) => kb.b.ins().bor(a, b),
        _ => unreachable!("shape inference rejects {op:?} on {dt}"),
    }
}

fn float_cc(op: BinaryOp) -> Option<FloatCC> {
    Some(match op {
        BinaryOp::Eq => FloatCC::Equal,
        BinaryOp::Ne => FloatCC::NotEqual,
        BinaryOp::Lt => FloatCC::LessThan,
        BinaryOp::Le => FloatCC::LessThanOrEqual,
        BinaryOp::Gt => FloatCC::GreaterThan,
        BinaryOp::Ge => FloatCC::GreaterThanOrEqual,
        _ => return None,
    })
}

fn int_cc(op: BinaryOp) -> Option<IntCC> {
    Some(match op {
        BinaryOp::Eq => IntCC::Equal,
        BinaryOp::Ne => IntCC::NotEqual,
        BinaryOp::Lt => IntCC::SignedLessThan,
        BinaryOp::Le => IntCC::SignedLessThanOrEqual,
        BinaryOp::Gt => IntCC::SignedGreaterThan,
        BinaryOp::Ge => IntCC::SignedGreaterThanOrEqual,
        _ => return None,
    })
}

/// `a^b` like libm's powf for the cases that matter: exp(b log|a|), with the sign
/// of odd integer powers of negative bases, NaN for negative bases with
/// non-integer exponents, `pow(x, 0) = 1` and `pow(0, b)` = 0 / inf.
fn pow(kb: &mut KernelBuilder, l: Lanes, a: Value, b: Value) -> Value {
    let abs_a = kb.b.ins().fabs(a);
    let la = kb.log(l, abs_a);
    let t = kb.b.ins().fmul(b, la);
    let mag = kb.exp(l, t);
    let zero = kb.fconst(l, 0.0);
    let one = kb.fconst(l, 1.0);
    let half = kb.fconst(l, 0.5);
    let bt = kb.b.ins().trunc(b);
    let is_int = kb.fcmp(FloatCC::Equal, bt, b);
    let hb = kb.b.ins().fmul(b, half);
    let hbt = kb.b.ins().trunc(hb);
    let is_even = kb.fcmp(FloatCC::Equal, hbt, hb);
    let neg_mag = kb.b.ins().fneg(mag);
    let signed = kb.select_mask(l, is_even, mag, neg_mag);
    let nan = kb.fconst(l, f32::NAN);
    let neg_result = kb.select_mask(l, is_int, signed, nan);
    let a_neg = kb.fcmp(FloatCC::LessThan, a, zero);
    let r = kb.select_mask(l, a_neg, neg_result, mag);
    let b_zero = kb.fcmp(FloatCC::Equal, b, zero);
    kb.select_mask(l, b_zero, one, r)
}

fn cast(kb: &mut KernelBuilder, x: Value, from: DType, to: DType) -> Value {
    let ins = kb.b.ins();
    match (from, to) {
        (f, t) if f == t => x,
        (DType::F32, DType::I64) => ins.fcvt_to_sint_sat(types::I64, x),
        (DType::F32, DType::Bool) => {
            let zero = kb.fconst(Lanes { vector: false }, 0.0);
            kb.b.ins().fcmp(FloatCC::NotEqual, x, zero)
        }
        (DType::I64, DType::F32) => ins.fcvt_from_sint(types::F32, x),
        (DType::I64, DType::Bool) => ins.icmp_imm_s(IntCC::NotEqual, x, 0),
        (DType::Bool, DType::F32) => {
            let w = ins.uextend(types::I32, x);
            kb.b.ins().fcvt_from_sint(types::F32, w)
        }
        (DType::Bool, DType::I64) => ins.uextend(types::I64, x),
        _ => unreachable!(),
    }
}

/// Inverted dropout with the mask of `dlc_ir::init::dropout_keep`.
fn dropout(kb: &mut KernelBuilder, x: Value, p: f32, seed: u64, index: Value) -> Value {
    let s =
        kb.b.ins()
            .iconst(types::I64, seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) as i64);
    let i1 = kb.b.ins().iadd_imm_s(index, 1);
    let mut z = kb.b.ins().bxor(s, i1);
    for (shift, mul) in [(30, 0xbf58_476d_1ce4_e5b9u64), (27, 0x94d0_49bb_1331_11eb)] {
        let sh = kb.b.ins().ushr_imm_s(z, shift);
        let x = kb.b.ins().bxor(z, sh);
        z = kb.b.ins().imul_imm_s(x, mul as i64);
    }
    let sh = kb.b.ins().ushr_imm_s(z, 31);
    let h = kb.b.ins().bxor(z, sh);
    let top = kb.b.ins().ushr_imm_s(h, 40);
    let uf = kb.b.ins().fcvt_from_uint(types::F32, top);
    let scale = kb.b.ins().f32const(1.0 / (1u32 << 24) as f32);
    let u = kb.b.ins().fmul(uf, scale);
    let pc = kb.b.ins().f32const(p);
    let keep = kb.b.ins().fcmp(FloatCC::GreaterThanOrEqual, u, pc);
    let k = kb.b.ins().f32const(1.0 / (1.0 - p));
    let scaled = kb.b.ins().fmul(x, k);
    let zero = kb.b.ins().f32const(0.0);
    kb.b.ins().select(keep, scaled, zero)
}
