//! `dlc fmt`: canonical formatting of model source.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use dlc::{Error, Model};

/// Arguments of `dlc fmt`.
#[derive(Args, Debug)]
pub struct FmtArgs {
    /// The `.ir` model file.
    model: PathBuf,
    /// Rewrite the file in place.
    #[arg(long, conflicts_with = "check")]
    write: bool,
    /// Exit with code 1 if the file is not formatted (print nothing).
    #[arg(long)]
    check: bool,
}

/// Runs `dlc fmt`.
pub fn run(a: &FmtArgs) -> Result<ExitCode, Error> {
    let model = Model::from_file(&a.model)?;
    let formatted = dlc::ir::syntax::format::format_model(model.ast());
    if a.check {
        return Ok(if formatted == model.source() {
            ExitCode::SUCCESS
        } else {
            eprintln!("{} is not formatted", a.model.display());
            ExitCode::from(1)
        });
    }
    if a.write {
        if formatted != model.source() {
            std::fs::write(&a.model, &formatted)
                .map_err(|e| Error::File(format!("{}: {e}", a.model.display())))?;
        }
    } else {
        print!("{formatted}");
    }
    Ok(ExitCode::SUCCESS)
}
