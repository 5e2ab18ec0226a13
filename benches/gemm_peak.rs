//! The GEMM workloads W1a–W1e on each micro-kernel tier, as a fraction of that
//! tier's FMA peak measured in the same run on this core.
//!
//! Run: `cargo bench --bench gemm_peak [-- FILTER]` (e.g. `-- W1c`). One thread.
//! The peak is a loop of twelve independent FMA chains at the tier's vector
//! width (512-bit AVX-512 or 256-bit AVX2 for the native tier on x86-64, 128-bit for the portable
//! Cranelift f32x4 tier), so it is the rate the core actually sustains now —
//! clock and neighbours included — not a datasheet figure. Times are the
//! calling thread's CPU time (robust to other load on a shared machine), and
//! every ratio comes from measurements taken minutes apart at most.
//! Results are recorded in BENCHMARKS.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use dlc::{Model, Options};

mod common;

/// A micro-kernel tier: how to select it and the FMA width that bounds it.
struct Tier {
    name: &'static str,
    portable: bool,
    /// The FMA loop at this tier's width, when the CPU has one.
    peak: Option<FmaProbe>,
    width: &'static str,
}

/// A loop of FMAs at one vector width.
#[derive(Clone, Copy)]
struct FmaProbe {
    /// Runs the given number of rounds of [`CHAINS`] FMAs.
    run: fn(u64) -> f32,
    /// f32 lanes per FMA.
    lanes: u64,
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(|a| a.to_lowercase())
        .collect();
    let gemms: Vec<_> = common::workloads()
        .into_iter()
        .filter(|w| w.id.starts_with("W1"))
        .filter(|w| {
            let id = w.id.to_lowercase();
            filter.is_empty() || filter.iter().any(|f| id.contains(f.as_str()))
        })
        .collect();
    println!(
        "| workload | tier | CPU min | GFLOP/s | FMA peak (GFLOP/s) | of peak | wall median |"
    );
    println!("|---|---|---|---|---|---|---|");
    for tier in tiers() {
        let peak = tier.peak.map(fma_peak_gflops);
        let mut rows = Vec::new();
        for w in &gemms {
            let flops = w.flops.expect("GEMM workloads give their flops") as f64;
            let model = Model::from_source(&w.id, &w.source).expect("workload parses");
            let exe = model
                .compile(&Options::default().threads(1).portable(tier.portable))
                .expect("workload compiles");
            let inputs = exe.random_inputs(1);
            let compiled = exe.compiled().expect("JIT");
            let mut session = compiled.session();
            let t = time(|| {
                session.run(&inputs).expect("workload runs");
            });
            rows.push((&w.id, flops / t.cpu_min.as_secs_f64() / 1e9, t));
        }
        // Measured again after the workloads: the better of the two stands.
        let peak = peak
            .zip(tier.peak.map(fma_peak_gflops))
            .map(|(a, b)| a.max(b));
        for (id, gflops, t) in rows {
            let (peak_text, fraction) = match peak {
                Some(p) => (
                    format!("{p:.0} ({})", tier.width),
                    format!("{:.0}%", 100.0 * gflops / p),
                ),
                None => (format!("– ({})", tier.width), "–".to_string()),
            };
            println!(
                "| {id} | {} | {} | {gflops:.1} | {peak_text} | {fraction} | {} |",
                tier.name,
                ms(t.cpu_min),
                ms(t.wall_median)
            );
        }
    }
}

/// The tiers this CPU runs: native first when it differs from the portable one.
fn tiers() -> Vec<Tier> {
    let mut tiers = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        let fma = std::arch::is_x86_feature_detected!("fma");
        if std::arch::is_x86_feature_detected!("avx512f") {
            tiers.push(Tier {
                name: "native (AVX-512)",
                portable: false,
                peak: Some(FmaProbe {
                    run: x86::fma512,
                    lanes: 16,
                }),
                width: "512-bit FMA",
            });
        } else if fma && std::arch::is_x86_feature_detected!("avx2") {
            tiers.push(Tier {
                name: "native (AVX2)",
                portable: false,
                peak: Some(FmaProbe {
                    run: x86::fma256,
                    lanes: 8,
                }),
                width: "256-bit FMA",
            });
        }
        tiers.push(Tier {
            name: "portable (Cranelift f32x4)",
            portable: true,
            peak: fma.then_some(FmaProbe {
                run: x86::fma128,
                lanes: 4,
            }),
            width: "128-bit FMA",
        });
    }
    #[cfg(target_arch = "aarch64")]
    tiers.push(Tier {
        name: "portable = native (Cranelift f32x4)",
        portable: true,
        peak: Some(FmaProbe {
            run: arm::fma128,
            lanes: 4,
        }),
        width: "128-bit FMA",
    });
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    tiers.push(Tier {
        name: "portable (Cranelift f32x4)",
        portable: true,
        peak: None,
        width: "no FMA probe for this architecture",
    });
    tiers
}

/// Twelve FMA chains per iteration: enough independent work to keep two FMA
/// pipes of latency 4–5 busy, while the accumulators and both operands stay
/// in the 16 vector registers of x86-64.
const CHAINS: u64 = 12;

/// The best FMA rate of forty ~2 ms runs, in GFLOP/s. The best of many short
/// runs, because on a virtual machine time stolen by the host counts as the
/// thread's CPU time.
fn fma_peak_gflops(probe: FmaProbe) -> f64 {
    const ITERS: u64 = 1_000_000;
    let flops = (ITERS * CHAINS * probe.lanes * 2) as f64;
    let best = (0..40)
        .map(|_| {
            let start = thread_cpu();
            black_box((probe.run)(black_box(ITERS)));
            thread_cpu() - start
        })
        .min()
        .expect("forty runs");
    flops / best.as_secs_f64() / 1e9
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `iters` rounds of [`super::CHAINS`] independent 256-bit FMAs.
    pub fn fma256(iters: u64) -> f32 {
        assert!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
        // SAFETY: the CPU supports AVX2 and FMA (checked above).
        unsafe { fma256_impl(iters) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn fma256_impl(iters: u64) -> f32 {
        let a = _mm256_set1_ps(std::hint::black_box(0.999_9));
        let b = _mm256_set1_ps(std::hint::black_box(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); super::CHAINS as usize];
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        let sum = acc
            .iter()
            .fold(_mm256_setzero_ps(), |s, &x| _mm256_add_ps(s, x));
        _mm256_cvtss_f32(sum)
    }

    /// `iters` rounds of [`super::CHAINS`] independent 512-bit FMAs.
    pub fn fma512(iters: u64) -> f32 {
        assert!(is_x86_feature_detected!("avx512f"));
        // SAFETY: the CPU supports AVX-512F (checked above).
        unsafe { fma512_impl(iters) }
    }

    #[target_feature(enable = "avx512f")]
    fn fma512_impl(iters: u64) -> f32 {
        let a = _mm512_set1_ps(std::hint::black_box(0.999_9));
        let b = _mm512_set1_ps(std::hint::black_box(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); super::CHAINS as usize];
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        _mm512_reduce_add_ps(
            acc.iter()
                .fold(_mm512_setzero_ps(), |s, &x| _mm512_add_ps(s, x)),
        )
    }

    /// `iters` rounds of [`super::CHAINS`] independent 128-bit FMAs.
    pub fn fma128(iters: u64) -> f32 {
        assert!(is_x86_feature_detected!("fma"));
        // SAFETY: the CPU supports FMA (checked above).
        unsafe { fma128_impl(iters) }
    }

    #[target_feature(enable = "fma")]
    fn fma128_impl(iters: u64) -> f32 {
        let a = _mm_set1_ps(std::hint::black_box(0.999_9));
        let b = _mm_set1_ps(std::hint::black_box(1e-7));
        let mut acc = [_mm_set1_ps(1.0); super::CHAINS as usize];
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm_fmadd_ps(*x, a, b);
            }
        }
        let sum = acc.iter().fold(_mm_setzero_ps(), |s, &x| _mm_add_ps(s, x));
        _mm_cvtss_f32(sum)
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use std::arch::aarch64::*;

    /// `iters` rounds of [`super::CHAINS`] independent 128-bit NEON FMAs.
    pub fn fma128(iters: u64) -> f32 {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe {
            let a = vdupq_n_f32(std::hint::black_box(0.999_9));
            let b = vdupq_n_f32(std::hint::black_box(1e-7));
            let mut acc = [vdupq_n_f32(1.0); super::CHAINS as usize];
            for _ in 0..iters {
                for x in acc.iter_mut() {
                    *x = vfmaq_f32(b, *x, a);
                }
            }
            let sum = acc.iter().fold(vdupq_n_f32(0.0), |s, &x| vaddq_f32(s, x));
            vgetq_lane_f32(sum, 0)
        }
    }
}

/// The times of one workload: best thread CPU time, median wall time, per run.
struct Timing {
    cpu_min: Duration,
    wall_median: Duration,
}

/// Runs `f` a few times untimed, then times batches of runs (each batch at
/// least 2 ms, so the thread CPU clock's granularity does not matter) for
/// about a second, at least ten batches.
fn time(mut f: impl FnMut()) -> Timing {
    let start = Instant::now();
    let mut warm = 0u32;
    while warm < 3 || start.elapsed() < Duration::from_millis(20) {
        f();
        warm += 1;
    }
    let per_run = start.elapsed() / warm;
    let batch = (Duration::from_millis(2).as_nanos() / per_run.as_nanos().max(1)).max(1) as u32;
    let budget = Instant::now();
    let (mut cpu, mut wall) = (Vec::new(), Vec::new());
    while cpu.len() < 10 || (budget.elapsed() < Duration::from_secs(1) && cpu.len() < 2000) {
        let (c, w) = (thread_cpu(), Instant::now());
        for _ in 0..batch {
            f();
        }
        cpu.push((thread_cpu() - c) / batch);
        wall.push(w.elapsed() / batch);
    }
    wall.sort();
    Timing {
        cpu_min: cpu.into_iter().min().expect("ten batches"),
        wall_median: wall[wall.len() / 2],
    }
}

/// The calling thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "the thread CPU clock is readable");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A duration in milliseconds with three decimals.
fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}
