//! Pooling gradients: each output's gradient goes back to the first maximum of
//! its window (max pooling; a NaN counts as the maximum, as in the forward
//! kernel) or, divided by the forward divisor, to every in-bounds cell of it.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{InstBuilder, Value, types};
use dlc_ir::PoolKind;

use super::{inside, scaled_minus, zero_run};
use crate::emit::builder::KernelBuilder;
use crate::emit::norm::rows::{S, for_parallel};

/// `dx` of the planes in `start..end` (zeroed, then accumulated window by
/// window); arguments `x, dy, dx`. Every load and store is clamped into its
/// plane, and masked where the window leaves it.
pub fn pool_grad(
    kb: &mut KernelBuilder,
    kind: PoolKind,
    [h, w]: [usize; 2],
    [oh_len, ow_len]: [usize; 2],
    [kh_len, kw_len]: [usize; 2],
    (stride, pad): ([usize; 2], [usize; 2]),
) {
    for_parallel(kb, |kb, plane| {
        let xb = kb.b.ins().imul_imm_s(plane, (h * w) as i64);
        let yb = kb.b.ins().imul_imm_s(plane, (oh_len * ow_len) as i64);
        zero_run(kb, 2, xb, h * w);
        kb.for_n(oh_len, &[], |kb, oh, _| {
            let h0 = scaled_minus(kb, oh, stride[0], pad[0]);
            let yrow = kb.add_scaled(yb, oh, ow_len);
            kb.for_n(ow_len, &[], |kb, ow, _| {
                let w0 = scaled_minus(kb, ow, stride[1], pad[1]);
                let yi = kb.b.ins().iadd(yrow, ow);
                let g = kb.load(types::F32, 1, yi, 4);
                let win = Window {
                    xb,
                    h0,
                    w0,
                    h,
                    w,
                    kh_len,
                    kw_len,
                };
                match kind {
                    PoolKind::Max => max_window(kb, &win, g),
                    PoolKind::Avg { count_include_pad } => {
                        avg_window(kb, &win, g, count_include_pad)
                    }
                }
                vec![]
            });
            vec![]
        });
    });
}

/// The body of [`Window::taps`]: `(builder, in plane, element, carried) -> carried`.
type Tap<'a> = dyn Fn(&mut KernelBuilder, Value, Value, &[Value]) -> Vec<Value> + 'a;

/// One window of a plane: its top-left corner (possibly in the padding).
struct Window {
    /// Element offset of the plane in `x` and `dx`.
    xb: Value,
    /// First row and column (i64, may be negative).
    h0: Value,
    w0: Value,
    h: usize,
    w: usize,
    kh_len: usize,
    kw_len: usize,
}

impl Window {
    /// Runs `body(kb, ok, index, carried)` at every tap: `ok` says whether the
    /// tap lies in the plane, `index` is its element (the plane's first when not).
    fn taps(&self, kb: &mut KernelBuilder, carried: &[Value], body: &Tap<'_>) -> Vec<Value> {
        kb.for_n(self.kh_len, carried, |kb, kh, carried| {
            let ih = kb.b.ins().iadd(self.h0, kh);
            let vh = inside(kb, ih, self.h);
            let row = kb.add_scaled(self.xb, ih, self.w);
            kb.for_n(self.kw_len, carried, |kb, kw, carried| {
                let iw = kb.b.ins().iadd(self.w0, kw);
                let vw = inside(kb, iw, self.w);
                let ok = kb.b.ins().band(vh, vw);
                let at = kb.b.ins().iadd(row, iw);
                let at = kb.b.ins().select(ok, at, self.xb);
                body(kb, ok, at, carried)
            })
        })
    }
}

/// Adds `g` to the first maximum of the window (NaN wins, as in the forward).
fn max_window(kb: &mut KernelBuilder, win: &Window, g: Value) {
    let none = kb.int(-1);
    let zero = kb.fconst(S, 0.0);
    let best = win.taps(kb, &[none, zero], &|kb, ok, at, c| {
        let (best_at, best) = (c[0], c[1]);
        let v = kb.load(types::F32, 0, at, 4);
        let first = kb.b.ins().icmp_imm_s(IntCC::SignedLessThan, best_at, 0);
        let best_ordered = kb.fcmp(FloatCC::Ordered, best, best);
        let greater = kb.fcmp(FloatCC::GreaterThan, v, best);
        let v_nan = kb.fcmp(FloatCC::Unordered, v, v);
        let better = kb.b.ins().bor(greater, v_nan);
        let better = kb.b.ins().band(best_ordered, better);
        let take = kb.b.ins().bor(first, better);
        let take = kb.b.ins().band(ok, take);
        let best_at = kb.b.ins().select(take, at, best_at);
        let best = kb.b.ins().select(take, v, best);
        vec![best_at, best]
    });
    let found =
        kb.b.ins()
            .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, best[0], 0);
    kb.if_then(found, |kb| {
        let d = kb.load(types::F32, 2, best[0], 4);
        let d = kb.b.ins().fadd(d, g);
        kb.store(d, 2, best[0], 4);
    });
}

/// Adds `g / divisor` to every in-bounds cell of the window.
fn avg_window(kb: &mut KernelBuilder, win: &Window, g: Value, count_include_pad: bool) {
    let divisor = if count_include_pad {
        kb.fconst(S, (win.kh_len * win.kw_len) as f32)
    } else {
        let rows = clipped(kb, win.h0, win.kh_len, win.h);
        let cols = clipped(kb, win.w0, win.kw_len, win.w);
        let cells = kb.b.ins().imul(rows, cols);
        let one = kb.int(1);
        let cells = kb.b.ins().smax(cells, one);
        kb.b.ins().fcvt_from_sint(types::F32, cells)
    };
    let share = kb.b.ins().fdiv(g, divisor);
    let zero = kb.fconst(S, 0.0);
    win.taps(kb, &[], &|kb, ok, at, _| {
        let add = kb.b.ins().select(ok, share, zero);
        let d = kb.load(types::F32, 2, at, 4);
        let d = kb.b.ins().fadd(d, add);
        kb.store(d, 2, at, 4);
        vec![]
    });
}

/// The number of positions of `start .. start + len` inside `0..n` (i64).
fn clipped(kb: &mut KernelBuilder, start: Value, len: usize, n: usize) -> Value {
    let zero = kb.int(0);
    let lo = kb.b.ins().smax(start, zero);
    let end = kb.b.ins().iadd_imm_s(start, len as i64);
    let limit = kb.int(n as i64);
    let hi = kb.b.ins().smin(end, limit);
    let d = kb.b.ins().isub(hi, lo);
    kb.b.ins().smax(d, zero)
}
