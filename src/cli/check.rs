//! `dlc check`: type-check and list every value with its type.

use std::process::ExitCode;

use clap::Args;
use dlc::Error;

use super::ModelArgs;

/// Arguments of `dlc check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    model: ModelArgs,
}

/// Runs `dlc check`.
pub fn run(a: &CheckArgs) -> Result<ExitCode, Error> {
    let model = a.model.load()?;
    let g = model.graph(&a.model.dims())?;
    println!("model {} ({} nodes)", g.name, g.len());
    let width = g
        .node_ids()
        .flat_map(|n| g.node(n).names.iter().map(|s| s.len()))
        .max()
        .unwrap_or(0);
    for id in g.node_ids() {
        let node = g.node(id);
        for (name, ty) in node.names.iter().zip(&node.types) {
            println!(
                "  {name:<width$}  {:<24} {}",
                ty.to_string(),
                node.op.name()
            );
        }
    }
    let outs: Vec<&str> = g.outputs().iter().map(|o| o.name.as_str()).collect();
    println!("outputs: {}", outs.join(", "));
    Ok(ExitCode::SUCCESS)
}
