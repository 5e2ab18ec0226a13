//! The AVX2/FMA attention kernel of [`super`] (see its contract).

use std::arch::x86_64::*;

use super::super::attention::{BLOCK as KB, QUERY_BLOCK as QB};
use crate::emit::avx2::exp;

/// Most rows (keys or queries) of one register tile.
const MAX_ROWS: usize = 6;

/// One call's operands; scratch parts `qt` (`Qᵀ`), `st` (`Sᵀ`), `m`, `l`
/// and `alpha` (which holds each query's block maximum until the softmax).
#[derive(Clone, Copy)]
struct Ctx {
    q0: usize,
    depth: usize,
    ev: usize,
    causal: bool,
    k: *const f32,
    ldk: usize,
    v: *const f32,
    ldv: usize,
    o: *mut f32,
    ldo: usize,
    qt: *mut f32,
    st: *mut f32,
    m: *mut f32,
    l: *mut f32,
    alpha: *mut f32,
}

/// See the module contract of [`super`].
///
/// # Safety
/// The CPU must support AVX2 and FMA; the pointers must be valid for the
/// accesses the contract describes.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn flash_avx2(
    rows: usize,
    q0: usize,
    kend: usize,
    depth: usize,
    ev: usize,
    q: *const f32,
    ldq: usize,
    k: *const f32,
    ldk: usize,
    v: *const f32,
    ldv: usize,
    o: *mut f32,
    ldo: usize,
    scratch: *mut f32,
    scale_bits: u64,
    causal: u64,
) {
    let nq = rows.div_ceil(8);
    // SAFETY: the parts lie inside the scratch of the contract; every access
    // below stays inside the operands' extents (see each function).
    unsafe {
        let st = scratch.add(depth * QB);
        let m = st.add(KB * QB);
        let c = Ctx {
            q0,
            depth,
            ev,
            causal: causal != 0,
            k,
            ldk,
            v,
            ldv,
            o,
            ldo,
            qt: scratch,
            st,
            m,
            l: m.add(QB),
            alpha: m.add(2 * QB),
        };
        let scale = f32::from_bits(scale_bits as u32);
        for p in 0..depth {
            for i in 0..8 * nq {
                let x = if i < rows {
                    scale * *q.add(i * ldq + p)
                } else {
                    0.0
                };
                *c.qt.add(p * QB + i) = x;
            }
        }
        for i in 0..8 * nq {
            *c.m.add(i) = f32::NEG_INFINITY;
            *c.l.add(i) = 0.0;
        }
        let mut jb = 0;
        while jb < kend {
            let cnt = (kend - jb).min(KB);
            scores(c, jb, cnt, nq);
            softmax(c, cnt, nq);
            let last = jb + cnt == kend;
            if last {
                for i in 0..rows {
                    *c.l.add(i) = 1.0 / *c.l.add(i);
                }
            }
            values(c, jb, cnt, rows, [jb == 0, last]);
            jb += cnt;
        }
    }
}

/// Splits `n` into `n.div_ceil(max)` runs as even as possible: `(start, len)`.
fn split(n: usize, max: usize) -> impl Iterator<Item = (usize, usize)> {
    let t = n.div_ceil(max);
    let (base, extra) = (n / t.max(1), n % t.max(1));
    (0..t).map(move |x| (x * base + x.min(extra), base + usize::from(x < extra)))
}

/// Calls `$f::<R, …>` for the run length `$n` (1 to [`MAX_ROWS`]).
macro_rules! by_rows {
    ($n:expr, $f:ident::<$($g:tt),*>($($arg:expr),*)) => {
        match $n {
            1 => $f::<1, $($g),*>($($arg),*),
            2 => $f::<2, $($g),*>($($arg),*),
            3 => $f::<3, $($g),*>($($arg),*),
            4 => $f::<4, $($g),*>($($arg),*),
            5 => $f::<5, $($g),*>($($arg),*),
            _ => $f::<6, $($g),*>($($arg),*),
        }
    };
}

/// Scores of keys `jb .. jb + cnt` against the `8·nq` packed queries into
/// `st`, in strips of 16 queries and runs of at most [`MAX_ROWS`] keys (12
/// accumulators, 2 query vectors and a broadcast key element: 15 ymm); each
/// query's maximum into `alpha`.
///
/// # Safety
/// As [`flash_avx2`], with `jb + cnt ≤ kend`.
#[target_feature(enable = "avx2,fma")]
unsafe fn scores(c: Ctx, jb: usize, cnt: usize, nq: usize) {
    // SAFETY: alpha has QB ≥ 8·nq elements; the tiles stay inside the block.
    unsafe {
        for v in 0..nq {
            _mm256_storeu_ps(c.alpha.add(8 * v), _mm256_set1_ps(f32::NEG_INFINITY));
        }
        for i0 in (0..nq).step_by(2).map(|v| 8 * v) {
            for (j0, n) in split(cnt, MAX_ROWS) {
                if i0 + 8 < 8 * nq {
                    by_rows!(n, score_tile::<2>(c, jb, j0, i0));
                } else {
                    by_rows!(n, score_tile::<1>(c, jb, j0, i0));
                }
            }
        }
    }
}

/// The `R × 8·NV` tile of `Sᵀ` at key `j0` of the block at `jb`, query `i0`.
///
/// # Safety
/// As [`scores`], for keys `jb + j0 .. jb + j0 + R`, queries `i0 .. i0 + 8·NV`.
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
unsafe fn score_tile<const R: usize, const NV: usize>(c: Ctx, jb: usize, j0: usize, i0: usize) {
    // SAFETY: K rows jb + j0 + r < kend, depth p < depth; Qᵀ, Sᵀ and alpha
    // columns < i0 + 8·NV ≤ QB, Sᵀ rows j0 + r < KB.
    unsafe {
        let kr = c.k.add((jb + j0) * c.ldk);
        let (qt, st, bmax) = (c.qt.add(i0), c.st.add(i0), c.alpha.add(i0));
        let mut acc = [[_mm256_setzero_ps(); NV]; R];
        for p in 0..c.depth {
            let mut b = [_mm256_setzero_ps(); NV];
            for (v, x) in b.iter_mut().enumerate() {
                *x = _mm256_loadu_ps(qt.add(p * QB + 8 * v));
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let a = _mm256_broadcast_ss(&*kr.add(r * c.ldk + p));
                for (x, &bb) in row.iter_mut().zip(&b) {
                    *x = _mm256_fmadd_ps(a, bb, *x);
                }
            }
        }
        // The last key of the tile is after the block's first query.
        if c.causal && jb + j0 + R - 1 > c.q0 + i0 {
            let ninf = _mm256_set1_ps(f32::NEG_INFINITY);
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            for (v, col) in (0..NV).map(|v| (v, 8 * v)) {
                let query = _mm256_add_epi32(lanes, _mm256_set1_epi32((c.q0 + i0 + col) as i32));
                for (r, row) in acc.iter_mut().enumerate() {
                    let key = _mm256_set1_epi32((jb + j0 + r) as i32);
                    let hidden = _mm256_castsi256_ps(_mm256_cmpgt_epi32(key, query));
                    row[v] = _mm256_blendv_ps(row[v], ninf, hidden);
                }
            }
        }
        for v in 0..NV {
            // maxps keeps its second operand when either is NaN: a NaN score is
            // dropped here (it reaches the output through its weight).
            let mut mx = _mm256_loadu_ps(bmax.add(8 * v));
            for (r, row) in acc.iter().enumerate() {
                _mm256_storeu_ps(st.add((j0 + r) * QB + 8 * v), row[v]);
                mx = _mm256_max_ps(row[v], mx);
            }
            _mm256_storeu_ps(bmax.add(8 * v), mx);
        }
    }
}

/// The online-softmax step of a block of `cnt` keys for queries `0..8·nq`:
/// `m`, `α`, the weights (in place of the scores) and `l`.
///
/// # Safety
/// As [`flash_avx2`], after [`scores`] of the block.
#[target_feature(enable = "avx2,fma")]
unsafe fn softmax(c: Ctx, cnt: usize, nq: usize) {
    // SAFETY: forwarded.
    unsafe {
        match nq {
            4 => softmax_n::<4>(c, cnt),
            3 => softmax_n::<3>(c, cnt),
            2 => softmax_n::<2>(c, cnt),
            _ => softmax_n::<1>(c, cnt),
        }
    }
}

/// [`softmax`] for `NQ` vectors of queries, which go through each key's
/// exponentials side by side (independent chains, so the core overlaps them).
///
/// # Safety
/// As [`softmax`], with `nq = NQ`.
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
unsafe fn softmax_n<const NQ: usize>(c: Ctx, cnt: usize) {
    let ninf = _mm256_set1_ps(f32::NEG_INFINITY);
    // SAFETY: columns < 8·NQ ≤ QB, key rows < cnt ≤ KB.
    unsafe {
        let m_old: [__m256; NQ] = std::array::from_fn(|v| _mm256_loadu_ps(c.m.add(8 * v)));
        let m_new: [__m256; NQ] = std::array::from_fn(|v| {
            let m = _mm256_max_ps(_mm256_loadu_ps(c.alpha.add(8 * v)), m_old[v]);
            // A query that has seen only masked keys keeps a finite maximum,
            // so its α and weights are 0, not NaN.
            _mm256_max_ps(m, _mm256_set1_ps(f32::MIN))
        });
        let mut sum = [_mm256_setzero_ps(); NQ];
        for j in 0..cnt {
            let row = c.st.add(j * QB);
            for v in 0..NQ {
                let s = _mm256_loadu_ps(row.add(8 * v));
                let mut p = exp(_mm256_sub_ps(s, m_new[v]));
                if c.causal {
                    p = _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(s, ninf), p);
                }
                _mm256_storeu_ps(row.add(8 * v), p);
                sum[v] = _mm256_add_ps(sum[v], p);
            }
        }
        for v in 0..NQ {
            let alpha = exp(_mm256_sub_ps(m_old[v], m_new[v]));
            let l = _mm256_fmadd_ps(_mm256_loadu_ps(c.l.add(8 * v)), alpha, sum[v]);
            _mm256_storeu_ps(c.m.add(8 * v), m_new[v]);
            _mm256_storeu_ps(c.l.add(8 * v), l);
            _mm256_storeu_ps(c.alpha.add(8 * v), alpha);
        }
    }
}

/// `O = diag(α)·O + P·V_blk` for the block's `rows` queries (no `α` term in
/// the `first` block; times `l`, by then `1/l`, in the `last`), in strips of
/// 16, 8 and fewer (masked) columns.
///
/// # Safety
/// As [`flash_avx2`], after [`softmax`] of the block at `jb` (`cnt` keys).
#[target_feature(enable = "avx2,fma")]
unsafe fn values(c: Ctx, jb: usize, cnt: usize, rows: usize, ends: [bool; 2]) {
    let mut e0 = 0;
    while e0 < c.ev {
        let cols = (c.ev - e0).min(16);
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols as i32), lanes);
        for (i0, n) in split(rows, MAX_ROWS) {
            let t = Tile {
                jb,
                cnt,
                i0,
                e0,
                ends,
                mask,
            };
            // SAFETY: forwarded; the tile stays inside rows × ev.
            unsafe {
                match cols {
                    16 => by_rows!(n, value_tile::<2, false>(c, t)),
                    8..=15 => by_rows!(n, value_tile::<1, false>(c, t)),
                    _ => by_rows!(n, value_tile::<1, true>(c, t)),
                }
            }
        }
        e0 += if cols >= 8 { cols / 8 * 8 } else { cols };
    }
}

/// Where one output tile is: key block, first row and column, first/last
/// block, the lanes of a masked column vector.
#[derive(Clone, Copy)]
struct Tile {
    jb: usize,
    cnt: usize,
    i0: usize,
    e0: usize,
    ends: [bool; 2],
    mask: __m256i,
}

/// The `R × 8·NV` output tile `t` (only the lanes of `t.mask` when `MASKED`).
///
/// # Safety
/// As [`values`], for this tile.
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
unsafe fn value_tile<const R: usize, const NV: usize, const MASKED: bool>(c: Ctx, t: Tile) {
    // SAFETY: V rows jb + j < kend, columns < ev (masked); P rows j < cnt,
    // columns i0 + r < rows; O, α and l rows i0 + r < rows.
    unsafe {
        let vb = c.v.add(t.jb * c.ldv + t.e0);
        let pb = c.st.add(t.i0);
        let mut acc = [[_mm256_setzero_ps(); NV]; R];
        for j in 0..t.cnt {
            let mut b = [_mm256_setzero_ps(); NV];
            for (v, x) in b.iter_mut().enumerate() {
                *x = load_cols::<MASKED>(vb.add(j * c.ldv + 8 * v), t.mask);
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let a = _mm256_broadcast_ss(&*pb.add(j * QB + r));
                for (x, &bb) in row.iter_mut().zip(&b) {
                    *x = _mm256_fmadd_ps(a, bb, *x);
                }
            }
        }
        let [first, last] = t.ends;
        for (r, row) in acc.iter().enumerate() {
            let i = t.i0 + r;
            let alpha = _mm256_set1_ps(*c.alpha.add(i));
            let inv = _mm256_set1_ps(*c.l.add(i));
            for (v, &x) in row.iter().enumerate() {
                let at = c.o.add(i * c.ldo + t.e0 + 8 * v);
                let mut y = if first {
                    x
                } else {
                    _mm256_fmadd_ps(load_cols::<MASKED>(at, t.mask), alpha, x)
                };
                if last {
                    y = _mm256_mul_ps(y, inv);
                }
                if MASKED {
                    _mm256_maskstore_ps(at, t.mask, y);
                } else {
                    _mm256_storeu_ps(at, y);
                }
            }
        }
    }
}

/// Eight columns at `p`, or only the lanes of `mask` when `MASKED`.
///
/// # Safety
/// The loaded lanes must be readable.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn load_cols<const MASKED: bool>(p: *const f32, mask: __m256i) -> __m256 {
    // SAFETY: forwarded to the caller.
    unsafe {
        if MASKED {
            _mm256_maskload_ps(p, mask)
        } else {
            _mm256_loadu_ps(p)
        }
    }
}
