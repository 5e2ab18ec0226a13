//! `dlc grad`: print the gradient graph of a scalar value as `.ir` text.

use std::process::ExitCode;

use clap::Args;
use dlc::Error;

use super::ModelArgs;

/// Arguments of `dlc grad`.
#[derive(Args, Debug)]
pub struct GradArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The scalar value to differentiate.
    #[arg(long, default_value = "loss")]
    of: String,
    /// The values to differentiate with respect to, comma-separated (default:
    /// every parameter the value depends on differentiably).
    #[arg(long, value_delimiter = ',')]
    wrt: Vec<String>,
}

/// Runs `dlc grad`: the forward graph with the backward pass appended and one
/// output `grad_<name>` per `--wrt` name, printed as canonical `.ir` text.
pub fn run(a: &GradArgs) -> Result<ExitCode, Error> {
    let model = a.model.load()?;
    let g = model.graph(&a.model.dims())?;
    let wrt: Vec<String> = if a.wrt.is_empty() {
        dlc::autodiff::optim::trainable_params(&g, &a.of)
    } else {
        a.wrt.iter().map(|s| s.trim().to_string()).collect()
    };
    let names: Vec<&str> = wrt.iter().map(String::as_str).collect();
    let dg = dlc::autodiff::grad(&g, &a.of, &names)?;
    print!("{}", dlc::ir::syntax::print(&dg));
    Ok(ExitCode::SUCCESS)
}
