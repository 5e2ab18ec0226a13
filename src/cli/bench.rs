//! `dlc bench`: time a compiled model (median of many runs).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use dlc::{Env, Error};

use super::{ExecArgs, ModelArgs};

/// Arguments of `dlc bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    exec: ExecArgs,
    /// Inputs by name (.npz or .safetensors); random inputs if absent.
    #[arg(long, value_name = "FILE")]
    inputs: Option<PathBuf>,
    /// Timed runs.
    #[arg(long, default_value_t = 100)]
    runs: usize,
    /// Untimed warm-up runs.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
}

/// Runs `dlc bench`.
pub fn run(a: &BenchArgs) -> Result<ExitCode, Error> {
    let model = a.model.load()?;
    let t = Instant::now();
    let exe = model.compile(&a.exec.options(a.model.dims())?)?;
    let compile = t.elapsed().as_secs_f64();
    let inputs: Env = match &a.inputs {
        Some(p) => dlc::read_tensors(p)?,
        None => exe.random_inputs(a.exec.seed),
    };
    let mut wall = Vec::with_capacity(a.runs);
    let mut cpu = Vec::with_capacity(a.runs);
    let mut session = exe.compiled().map(|m| m.session());
    for i in 0..a.warmup + a.runs.max(1) {
        let (t, c) = (Instant::now(), thread_cpu_secs());
        match &mut session {
            Some(s) => drop(s.run(&inputs)?),
            None => drop(exe.run(&inputs)?),
        }
        if i >= a.warmup {
            wall.push(t.elapsed().as_secs_f64());
            cpu.push(thread_cpu_secs() - c);
        }
    }
    let (wall, cpu) = (Stats::of(wall), Stats::of(cpu));
    println!(
        "{}: median {:.3} ms, min {:.3} ms, mean {:.3} ms over {} runs (compile {:.1} ms)",
        model.name(),
        wall.median * 1e3,
        wall.min * 1e3,
        wall.mean * 1e3,
        wall.n,
        compile * 1e3
    );
    println!(
        "  calling thread's CPU time: median {:.3} ms, min {:.3} ms (robust to other load on single-threaded runs)",
        cpu.median * 1e3,
        cpu.min * 1e3
    );
    Ok(ExitCode::SUCCESS)
}

/// Order statistics of a sample.
struct Stats {
    n: usize,
    min: f64,
    median: f64,
    mean: f64,
}

impl Stats {
    fn of(mut v: Vec<f64>) -> Stats {
        v.sort_by(f64::total_cmp);
        Stats {
            n: v.len(),
            min: v[0],
            median: v[v.len() / 2],
            mean: v.iter().sum::<f64>() / v.len() as f64,
        }
    }
}

/// CPU time consumed by the calling thread, in seconds.
fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}
