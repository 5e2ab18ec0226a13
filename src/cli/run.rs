//! `dlc run`: execute a model on inputs from a file or random inputs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use dlc::{Env, Error};

use super::{ExecArgs, ModelArgs};

/// Arguments of `dlc run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    exec: ExecArgs,
    /// Inputs by name (.npz or .safetensors).
    #[arg(long, value_name = "FILE", required_unless_present = "random_inputs")]
    inputs: Option<PathBuf>,
    /// Use random inputs (indices and labels in range) instead of a file.
    #[arg(long, conflicts_with = "inputs")]
    random_inputs: bool,
    /// Write the outputs to this .npz or .safetensors file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Runs `dlc run`.
pub fn run(a: &RunArgs) -> Result<ExitCode, Error> {
    let model = a.model.load()?;
    let opts = a.exec.options(a.model.dims())?;
    let from_file = a.inputs.as_deref().map(dlc::read_tensors).transpose()?;
    let exe = model.compile(&opts)?;
    let inputs: Env = from_file.unwrap_or_else(|| exe.random_inputs(a.exec.seed));
    let outputs = exe.run(&inputs)?;
    for out in exe.graph().outputs() {
        println!(
            "{}: {}",
            out.name,
            dlc_tensor::summarize(&outputs[&out.name])
        );
    }
    if let Some(p) = &a.out {
        match p.extension().and_then(|e| e.to_str()) {
            Some("safetensors") => dlc::write_safetensors(p, &outputs)?,
            _ => dlc::write_npz(p, &outputs)?,
        }
        println!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
