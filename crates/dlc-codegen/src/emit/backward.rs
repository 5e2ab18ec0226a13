//! Emitters of the backward family's own kernels: the patch matrix of a
//! convolution weight gradient and the gather gradient (here), the pooling
//! gradients ([`pool`]), the attention gradient's row passes ([`attention`])
//! and backpropagation through time ([`recurrent`]) and through the grid LSTM
//! ([`grid_lstm`]).

mod attention;
mod grid_lstm;
mod pool;
mod recurrent;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};

use super::builder::{KernelBuilder, status};
use super::norm::rows::{S, V, each, for_parallel};
use crate::kernel::{BackwardOp, Window};

/// Emits the body of a backward-family kernel.
pub fn emit(kb: &mut KernelBuilder, op: &BackwardOp) {
    match *op {
        BackwardOp::Im2Col { c, window } => im2col(kb, c, &window),
        BackwardOp::PoolGrad {
            kind,
            input,
            output,
            kernel,
            stride,
            pad,
        } => pool::pool_grad(kb, kind, input, output, kernel, (stride, pad)),
        BackwardOp::ScatterAdd { size, count, post } => scatter_add(kb, size, count, post),
        BackwardOp::AttentionProbs {
            rows,
            cols,
            causal,
            scale,
        } => attention::probs(kb, rows, cols, causal, scale),
        BackwardOp::AttentionScoreGrad { cols, scale } => attention::score_grad(kb, cols, scale),
        BackwardOp::RecurrentBackward {
            cell,
            sequence,
            steps,
            batch,
            hidden,
        } => recurrent::bptt(kb, cell, sequence, [steps, batch, hidden]),
        BackwardOp::GridLstmBackward {
            rows,
            cols,
            batch,
            features,
            hidden,
        } => grid_lstm::emit(kb, [rows, cols, batch, features, hidden]),
    }
}

/// `i·k − c` on i64 values (a window start: position times stride minus padding).
fn scaled_minus(kb: &mut KernelBuilder, i: Value, k: usize, c: usize) -> Value {
    let m = kb.affine(i, k, 0);
    kb.b.ins().iadd_imm_s(m, -(c as i64))
}

/// Whether the i64 `i` lies in `0..n` (one unsigned compare).
fn inside(kb: &mut KernelBuilder, i: Value, n: usize) -> Value {
    kb.b.ins().icmp_imm_u(IntCC::UnsignedLessThan, i, n as i64)
}

/// Zeroes elements `base .. base + len` of argument `arg`.
fn zero_run(kb: &mut KernelBuilder, arg: usize, base: Value, len: usize) {
    let (zv, zs) = (kb.fconst(V, 0.0), kb.fconst(S, 0.0));
    each(kb, len, 4, &|kb, l, at| {
        at.store(kb, if l.vector { zv } else { zs }, arg, base)
    });
}

/// `col[(n, oh, ow), (c, kh, kw)] = x[n, c, oh·s + kh·d − p, ow·s + kw·d − p]`
/// (zero outside `x`) for the output rows `r = n·oh_len + oh` in `start..end`;
/// arguments `x, col`. Every load is clamped into `x` and its value masked, so
/// no access leaves the buffer.
fn im2col(kb: &mut KernelBuilder, c: usize, win: &Window) {
    let ([h, w], [oh_len, ow_len]) = (win.input, win.output);
    let [kh_len, kw_len] = win.kernel;
    let (stride, pad, dilation) = (win.stride, win.pad, win.dilation);
    let row_len = c * kh_len * kw_len;
    for_parallel(kb, |kb, r| {
        let n = kb.b.ins().udiv_imm_u(r, oh_len as i64);
        let oh = kb.b.ins().urem_imm_u(r, oh_len as i64);
        let x_base = kb.b.ins().imul_imm_s(n, (c * h * w) as i64);
        let col_base = kb.b.ins().imul_imm_s(r, (ow_len * row_len) as i64);
        let h0 = scaled_minus(kb, oh, stride[0], pad[0]);
        kb.for_n(ow_len, &[], |kb, ow, _| {
            let w0 = scaled_minus(kb, ow, stride[1], pad[1]);
            let dst = kb.add_scaled(col_base, ow, row_len);
            kb.for_n(c, &[], |kb, ch, _| {
                let plane = kb.add_scaled(x_base, ch, h * w);
                let dst = kb.add_scaled(dst, ch, kh_len * kw_len);
                kb.for_n(kh_len, &[], |kb, kh, _| {
                    let ih = kb.add_scaled(h0, kh, dilation[0]);
                    let vh = inside(kb, ih, h);
                    let row = kb.add_scaled(plane, ih, w);
                    let dst = kb.add_scaled(dst, kh, kw_len);
                    let zero_f = kb.fconst(S, 0.0);
                    for kw in 0..kw_len {
                        let iw = kb.b.ins().iadd_imm_s(w0, (kw * dilation[1]) as i64);
                        let vw = inside(kb, iw, w);
                        let ok = kb.b.ins().band(vh, vw);
                        let at = kb.b.ins().iadd(row, iw);
                        let first = kb.int(0);
                        let at = kb.b.ins().select(ok, at, first);
                        let v = kb.load(types::F32, 0, at, 4);
                        let v = kb.b.ins().select(ok, v, zero_f);
                        kb.store_at(v, 1, dst, 4, (4 * kw) as i32);
                    }
                    vec![]
                });
                vec![]
            });
            vec![]
        });
    });
}

/// `dx[p, idx[i], :] += dy[p, i, :]` into a zeroed slab `p` for the slabs in
/// `start..end`; arguments `dy, idx, dx`. A bad index raises `BAD_INDEX` and
/// its row is skipped.
fn scatter_add(kb: &mut KernelBuilder, size: usize, count: usize, post: usize) {
    for_parallel(kb, |kb, p| {
        let base = kb.b.ins().imul_imm_s(p, (size * post) as i64);
        zero_run(kb, 2, base, size * post);
        let src0 = kb.b.ins().imul_imm_s(p, (count * post) as i64);
        kb.for_n(count, &[], |kb, i, _| {
            let j = kb.load(types::I64, 1, i, 8);
            let ok = inside(kb, j, size);
            kb.if_else(
                ok,
                |kb| {
                    let src = kb.add_scaled(src0, i, post);
                    let dst = kb.add_scaled(base, j, post);
                    each(kb, post, 2, &|kb, l, at| {
                        let a = at.load(kb, l, 2, dst);
                        let b = at.load(kb, l, 0, src);
                        let s = kb.b.ins().fadd(a, b);
                        at.store(kb, s, 2, dst);
                    });
                },
                |kb| kb.raise(status::BAD_INDEX),
            );
            vec![]
        });
    });
}
