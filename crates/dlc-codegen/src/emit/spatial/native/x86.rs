//! The x86-64 AVX2/FMA row kernels (see the parent module for the contract).

use std::arch::x86_64::*;

use super::{LANES, RowKernel};

/// The strides of one call, in elements.
struct Geometry {
    channels: isize,
    taps: isize,
    x_col: isize,
    w_col: isize,
    x_row: isize,
    w_row: isize,
    x_chan: isize,
    w_chan: isize,
    out_oc: isize,
    relu: bool,
}

/// The row kernel for `OB` channels and blocks of `nv` vectors.
pub(super) fn pick(ob: usize, nv: usize) -> Option<RowKernel> {
    macro_rules! table {
        ($(($o:literal, $v:literal)),*) => {
            match (ob, nv) {
                $(($o, $v) => Some(row::<$o, $v> as RowKernel),)*
                _ => None,
            }
        };
    }
    table!(
        (1, 3),
        (2, 3),
        (3, 3),
        (4, 3),
        (5, 2),
        (6, 2),
        (7, 1),
        (8, 1),
        (9, 1),
        (10, 1),
        (11, 1),
        (12, 1)
    )
}

/// The row kernel: blocks of `NV` vectors, then single vectors.
///
/// # Safety
/// The CPU must support AVX2 and FMA; the pointers must be valid for the
/// accesses of the module contract.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe extern "C" fn row<const OB: usize, const NV: usize>(
    x: *const f32,
    w: *const f32,
    out: *mut f32,
    bias: *const f32,
    rows: isize,
    cols: isize,
    channels: isize,
    taps: isize,
    x_col: isize,
    w_col: isize,
    x_row: isize,
    w_row: isize,
    x_chan: isize,
    w_chan: isize,
    out_oc: isize,
    relu: isize,
) {
    let g = Geometry {
        channels,
        taps,
        x_col,
        w_col,
        x_row,
        w_row,
        x_chan,
        w_chan,
        out_oc,
        relu: relu != 0,
    };
    let cols = cols as usize;
    let wide = NV * LANES;
    let mut j = 0;
    // SAFETY: every block reads and writes inside the regions of the contract.
    unsafe {
        while j + wide <= cols {
            block::<OB, NV>(x.add(j), w, out.add(j), bias, rows, &g);
            j += wide;
        }
        while j + LANES <= cols {
            block::<OB, 1>(x.add(j), w, out.add(j), bias, rows, &g);
            j += LANES;
        }
    }
}

/// `OB × NV` vectors of outputs from column 0 of `x` and `out`.
///
/// # Safety
/// As [`row`].
#[inline(always)]
unsafe fn block<const OB: usize, const NV: usize>(
    x: *const f32,
    w: *const f32,
    out: *mut f32,
    bias: *const f32,
    rows: isize,
    g: &Geometry,
) {
    // SAFETY: the caller guarantees the accesses (module contract).
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); NV]; OB];
        if !bias.is_null() {
            for (o, a) in acc.iter_mut().enumerate() {
                *a = [_mm256_broadcast_ss(&*bias.add(o)); NV];
            }
        }
        let (mut xc, mut wc) = (x, w);
        for _ in 0..g.channels {
            let (mut xr, mut wr) = (xc, wc);
            for _ in 0..rows {
                let (mut xt, mut wt) = (xr, wr);
                for _ in 0..g.taps {
                    let xs: [__m256; NV] =
                        std::array::from_fn(|v| _mm256_loadu_ps(xt.add(v * LANES)));
                    for (o, a) in acc.iter_mut().enumerate() {
                        let wv = _mm256_broadcast_ss(&*wt.add(o));
                        for (av, &xv) in a.iter_mut().zip(&xs) {
                            *av = _mm256_fmadd_ps(wv, xv, *av);
                        }
                    }
                    xt = xt.offset(g.x_col);
                    wt = wt.offset(g.w_col);
                }
                xr = xr.offset(g.x_row);
                wr = wr.offset(g.w_row);
            }
            xc = xc.offset(g.x_chan);
            wc = wc.offset(g.w_chan);
        }
        let zero = _mm256_setzero_ps();
        for (o, a) in acc.iter().enumerate() {
            for (v, &r) in a.iter().enumerate() {
                // ReLU keeps v where v > 0 or unordered (NaN propagates).
                let r = if g.relu {
                    _mm256_and_ps(_mm256_cmp_ps::<_CMP_NLE_UQ>(r, zero), r)
                } else {
                    r
                };
                _mm256_storeu_ps(out.offset(o as isize * g.out_oc).add(v * LANES), r);
            }
        }
    }
}
