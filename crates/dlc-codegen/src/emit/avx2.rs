//! AVX2 building blocks shared by the natively compiled kernels (the gate
//! math, attention, softmax rows): masked chunks of eight lanes for the end of
//! a row, and the vector `exp` of `emit/math.rs` operation for operation, so a
//! native kernel and its Cranelift twin compute the same values.

use std::arch::x86_64::*;

/// Loads and stores of one chunk of eight units, masked in the row's last chunk.
#[derive(Clone, Copy)]
pub struct Chunk {
    /// Lanes `< len` set (all lanes in a full chunk).
    mask: __m256i,
    full: bool,
}

impl Chunk {
    /// The chunk of `len` (1..=8) units.
    #[target_feature(enable = "avx2,fma")]
    pub fn new(len: usize) -> Chunk {
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(len as i32), lanes);
        Chunk {
            mask,
            full: len == 8,
        }
    }

    /// # Safety
    /// The chunk's lanes of `p` must be readable.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn load(self, p: *const f32) -> __m256 {
        // SAFETY: forwarded (masked lanes are not accessed).
        unsafe {
            if self.full {
                _mm256_loadu_ps(p)
            } else {
                _mm256_maskload_ps(p, self.mask)
            }
        }
    }

    /// Lanes outside the chunk replaced by `fill`.
    #[target_feature(enable = "avx2,fma")]
    pub fn or_fill(self, v: __m256, fill: __m256) -> __m256 {
        _mm256_blendv_ps(fill, v, _mm256_castsi256_ps(self.mask))
    }

    /// # Safety
    /// The chunk's lanes of `p` must be writable.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn store(self, p: *mut f32, v: __m256) {
        // SAFETY: forwarded (masked lanes are not accessed).
        unsafe {
            if self.full {
                _mm256_storeu_ps(p, v)
            } else {
                _mm256_maskstore_ps(p, self.mask, v)
            }
        }
    }
}

/// Horner evaluation with FMA, coefficients highest degree first.
#[target_feature(enable = "avx2,fma")]
pub fn poly(x: __m256, coefs: &[f32]) -> __m256 {
    let mut acc = _mm256_set1_ps(coefs[0]);
    for &c in &coefs[1..] {
        acc = _mm256_fmadd_ps(acc, x, _mm256_set1_ps(c));
    }
    acc
}

/// `2^n` for integer lanes `n` in `[-126, 127]`.
#[target_feature(enable = "avx2,fma")]
fn pow2i(n: __m256i) -> __m256 {
    let biased = _mm256_add_epi32(n, _mm256_set1_epi32(127));
    _mm256_castsi256_ps(_mm256_slli_epi32(biased, 23))
}

/// `e^x`: `KernelBuilder::exp` (Cephes expf with FMA), operation for operation.
#[target_feature(enable = "avx2,fma")]
pub fn exp(x: __m256) -> __m256 {
    // minps/maxps return their second operand when either is NaN: x passes through.
    let x = _mm256_min_ps(_mm256_set1_ps(89.0), x);
    let x = _mm256_max_ps(_mm256_set1_ps(-104.0), x);
    let t = _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E));
    let magic = _mm256_set1_ps(12_582_912.0);
    let shifted = _mm256_add_ps(t, magic);
    let n = _mm256_sub_ps(shifted, magic);
    let neg_n = _mm256_xor_ps(n, _mm256_set1_ps(-0.0));
    let r = _mm256_fmadd_ps(neg_n, _mm256_set1_ps(0.693_359_4), x);
    let r = _mm256_fmadd_ps(neg_n, _mm256_set1_ps(-2.121_944_4e-4), r);
    let p = poly(
        r,
        &[
            1.987_569_1e-4,
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            5e-1,
        ],
    );
    let z = _mm256_mul_ps(r, r);
    let p = _mm256_fmadd_ps(p, z, _mm256_add_ps(r, _mm256_set1_ps(1.0)));
    let ni = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x4b40_0000));
    let n1 = _mm256_srai_epi32(ni, 1);
    let n2 = _mm256_sub_epi32(ni, n1);
    _mm256_mul_ps(_mm256_mul_ps(p, pow2i(n1)), pow2i(n2))
}
