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
    x_orow: isize,
    out_orow: isize,
    relu: bool,
}

/// The row kernel for `ob` channels and tiles of `nv` vectors × `nr` rows
/// (the pairs [`crate::kernel::SpatialOp::native_conv_tile`] picks); the columns left
/// over from the `nv`-vector blocks take single vectors × the rows of the
/// one-vector tile.
pub(super) fn pick(ob: usize, nv: usize, nr: usize) -> Option<RowKernel> {
    macro_rules! table {
        ($(($o:literal, $v:literal, $r:literal, $t:literal)),*) => {
            match (ob, nv, nr) {
                $(($o, $v, $r) => Some(row::<$o, $v, $r, $t> as RowKernel),)*
                _ => None,
            }
        };
    }
    table!(
        (1, 1, 3, 3),
        (1, 2, 3, 3),
        (1, 3, 3, 3),
        (2, 1, 3, 3),
        (2, 2, 3, 3),
        (2, 3, 2, 3),
        (3, 1, 3, 3),
        (3, 2, 1, 3),
        (3, 3, 1, 3),
        (4, 1, 2, 2),
        (4, 2, 1, 2),
        (4, 3, 1, 2),
        (5, 1, 2, 2),
        (5, 2, 1, 2),
        (6, 1, 2, 2),
        (6, 2, 1, 2),
        (7, 1, 1, 1),
        (8, 1, 1, 1),
        (9, 1, 1, 1),
        (10, 1, 1, 1),
        (11, 1, 1, 1),
        (12, 1, 1, 1)
    )
}

/// The row kernel: tiles of `NR` output rows × `NV` vectors, then the
/// columns left over in tiles of `TR` rows × single vectors.
///
/// # Safety
/// The CPU must support AVX2 and FMA; the pointers must be valid for the
/// accesses of the module contract.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe extern "C" fn row<const OB: usize, const NV: usize, const NR: usize, const TR: usize>(
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
    out_rows: isize,
    x_orow: isize,
    out_orow: isize,
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
        x_orow,
        out_orow,
        relu: relu != 0,
    };
    let cols = cols as usize;
    let blocks = cols / (NV * LANES) * (NV * LANES);
    // SAFETY: every tile reads and writes inside the regions of the contract.
    unsafe {
        tiles::<OB, NV, NR>(x, w, out, bias, rows, (0, blocks), out_rows, &g);
        tiles::<OB, 1, TR>(x, w, out, bias, rows, (blocks, cols), out_rows, &g);
    }
}

/// The columns `j0..j1` (a multiple of `NV` vectors) of the `out_rows` output
/// rows: tiles of `NR` rows, then single rows.
///
/// # Safety
/// As [`row`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn tiles<const OB: usize, const NV: usize, const NR: usize>(
    x: *const f32,
    w: *const f32,
    out: *mut f32,
    bias: *const f32,
    rows: isize,
    (j0, j1): (usize, usize),
    out_rows: isize,
    g: &Geometry,
) {
    let wide = NV * LANES;
    let mut r = 0;
    // SAFETY: the caller guarantees the accesses (module contract).
    unsafe {
        while r < out_rows {
            let (xr, outr) = (x.offset(r * g.x_orow), out.offset(r * g.out_orow));
            let tile = r + NR as isize <= out_rows;
            let mut j = j0;
            while j < j1 {
                let (xj, outj) = (xr.add(j), outr.add(j));
                if tile {
                    block::<OB, NV, NR>(xj, w, outj, bias, rows, g);
                } else {
                    block::<OB, NV, 1>(xj, w, outj, bias, rows, g);
                }
                j += wide;
            }
            r += if tile { NR as isize } else { 1 };
        }
    }
}

/// `OB` channels × `NR` rows × `NV` vectors of outputs from column 0 of `x`
/// and `out`. Each tap loads the `NR × NV` input vectors and broadcasts the
/// `OB` weights once; whichever set is smaller is loaded first and kept in
/// registers while the other streams past it.
///
/// # Safety
/// As [`row`].
#[inline(always)]
unsafe fn block<const OB: usize, const NV: usize, const NR: usize>(
    x: *const f32,
    w: *const f32,
    out: *mut f32,
    bias: *const f32,
    rows: isize,
    g: &Geometry,
) {
    // SAFETY: the caller guarantees the accesses (module contract).
    unsafe {
        let mut acc = [[[_mm256_setzero_ps(); NV]; NR]; OB];
        if !bias.is_null() {
            for (o, a) in acc.iter_mut().enumerate() {
                *a = [[_mm256_broadcast_ss(&*bias.add(o)); NV]; NR];
            }
        }
        let (mut xc, mut wc) = (x, w);
        for _ in 0..g.channels {
            let (mut xr, mut wr) = (xc, wc);
            for _ in 0..rows {
                let (mut xt, mut wt) = (xr, wr);
                for _ in 0..g.taps {
                    let load = |r: usize, v: usize| {
                        _mm256_loadu_ps(xt.offset(r as isize * g.x_orow).add(v * LANES))
                    };
                    let weight = |o: usize| _mm256_broadcast_ss(&*wt.add(o));
                    if OB <= NR * NV {
                        let ws: [__m256; OB] = std::array::from_fn(weight);
                        for r in 0..NR {
                            for v in 0..NV {
                                let xv = load(r, v);
                                for (a, &wv) in acc.iter_mut().zip(&ws) {
                                    a[r][v] = _mm256_fmadd_ps(wv, xv, a[r][v]);
                                }
                            }
                        }
                    } else {
                        let xs: [[__m256; NV]; NR] =
                            std::array::from_fn(|r| std::array::from_fn(|v| load(r, v)));
                        for (o, a) in acc.iter_mut().enumerate() {
                            let wv = weight(o);
                            for (ar, xr) in a.iter_mut().zip(&xs) {
                                for (av, &xv) in ar.iter_mut().zip(xr) {
                                    *av = _mm256_fmadd_ps(wv, xv, *av);
                                }
                            }
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
            for (r, ar) in a.iter().enumerate() {
                let dst = out.offset(o as isize * g.out_oc + r as isize * g.out_orow);
                for (v, &val) in ar.iter().enumerate() {
                    // ReLU keeps v where v > 0 or unordered (NaN propagates).
                    let val = if g.relu {
                        _mm256_and_ps(_mm256_cmp_ps::<_CMP_NLE_UQ>(val, zero), val)
                    } else {
                        val
                    };
                    _mm256_storeu_ps(dst.add(v * LANES), val);
                }
            }
        }
    }
}
