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
    let mut times = Vec::with_capacity(a.runs);
    match exe.compiled() {
        Some(m) => {
            let mut session = m.session();
            for i in 0..a.warmup + a.runs.max(1) {
                let t = Instant::now();
                session.run(&inputs)?;
                if i >= a.warmup {
                    times.push(t.elapsed().as_secs_f64());
                }
            }
        }
        None => {
            for i in 0..a.warmup + a.runs.max(1) {
                let t = Instant::now();
                exe.run(&inputs)?;
                if i >= a.warmup {
                    times.push(t.elapsed().as_secs_f64());
                }
            }
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "{}: median {:.3} ms, min {:.3} ms, mean {:.3} ms over {} runs (compile {:.1} ms)",
        model.name(),
        median * 1e3,
        times[0] * 1e3,
        mean * 1e3,
        times.len(),
        compile * 1e3
    );
    Ok(ExitCode::SUCCESS)
}
