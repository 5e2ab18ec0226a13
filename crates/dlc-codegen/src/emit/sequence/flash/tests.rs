//! The native attention kernel against softmax attention in f64.

use super::*;

/// A deterministic pseudo-random value in `[-1, 1)`.
fn noise(seed: usize) -> f32 {
    let x = (seed as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

/// `softmax(scale · q kᵀ) v` of query `i` in f64 (keys `j ≤ i` when causal).
fn reference(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    [d, ev]: [usize; 2],
    i: usize,
    causal: bool,
) -> Vec<f64> {
    let keys = k.len() / d;
    let seen = if causal { keys.min(i + 1) } else { keys };
    let scale = 1.0 / (d as f64).sqrt();
    let s: Vec<f64> = (0..seen)
        .map(|j| {
            scale
                * (0..d)
                    .map(|p| q[i * d + p] as f64 * k[j * d + p] as f64)
                    .sum::<f64>()
        })
        .collect();
    let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
    let l: f64 = w.iter().sum();
    (0..ev)
        .map(|e| (0..seen).map(|j| w[j] * v[j * ev + e] as f64).sum::<f64>() / l)
        .collect()
}

/// Sequence lengths from 1 to past several key blocks (odd tails), depths
/// with and without masked column vectors, causal or not, over every query
/// block as the JIT calls it; the padding column after each output row must
/// stay untouched.
#[test]
fn matches_attention_in_f64() {
    let Some(f) = detect() else { return };
    for seq in [1, 7, 13, 100, 257] {
        for d in [1, 8, 13, 64] {
            for causal in [false, true] {
                let ev = d;
                let (ldq, ldo) = (d + 1, ev + 1);
                let q: Vec<f32> = (0..seq * ldq).map(|i| 3.0 * noise(i)).collect();
                let k: Vec<f32> = (0..seq * d).map(|i| 3.0 * noise(i + 7919)).collect();
                let v: Vec<f32> = (0..seq * ev).map(|i| noise(i + 104_729)).collect();
                let mut o = vec![7.0f32; seq * ldo];
                let mut scratch = vec![f32::NAN; QB * (d + BLOCK + 3)];
                let scale = 1.0 / (d as f32).sqrt();
                for q0 in (0..seq).step_by(QB) {
                    let rows = (seq - q0).min(QB);
                    let kend = if causal { (q0 + rows).min(seq) } else { seq };
                    // SAFETY: the buffers have the extents of the contract; the CPU was detected.
                    unsafe {
                        f(
                            rows,
                            q0,
                            kend,
                            d,
                            ev,
                            q.as_ptr().add(q0 * ldq),
                            ldq,
                            k.as_ptr(),
                            d,
                            v.as_ptr(),
                            ev,
                            o.as_mut_ptr().add(q0 * ldo),
                            ldo,
                            scratch.as_mut_ptr(),
                            scale.to_bits() as u64,
                            causal as u64,
                        )
                    };
                }
                let dense: Vec<f32> = (0..seq)
                    .flat_map(|i| (0..d).map(move |p| (i, p)))
                    .map(|(i, p)| q[i * ldq + p])
                    .collect();
                for i in 0..seq {
                    let want = reference(&dense, &k, &v, [d, ev], i, causal);
                    for (e, w) in want.iter().enumerate() {
                        let got = o[i * ldo + e];
                        // Outputs are convex combinations of |v| < 1; scores
                        // (|s| ≤ 9·√d) carry f32 rounding of ~1e-6 relative and
                        // exp ~2 ulp, so the weights are off by < 1e-5 relative.
                        assert!(
                            (got as f64 - w).abs() <= 2e-5,
                            "seq {seq} d {d} causal {causal} ({i},{e}): {got} vs {w}"
                        );
                    }
                    assert_eq!(o[i * ldo + ev], 7.0, "padding of row {i}");
                }
            }
        }
    }
}
