//! The facade's error type: every failure a user can cause, rendered for humans.

use dlc_ir::syntax::Diagnostics;

/// Anything that can go wrong between a model file and its outputs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model text has errors (syntax, names, types, shapes).
    #[error("{}", diagnostics.render(path, text))]
    Source {
        /// The file name shown in messages.
        path: String,
        /// The text that was parsed.
        text: String,
        /// Every problem found.
        diagnostics: Diagnostics,
    },
    /// A file could not be read or is not what was expected.
    #[error("{0}")]
    File(String),
    /// A tensor file could not be read or written.
    #[error(transparent)]
    Tensor(#[from] dlc_tensor::IoError),
    /// Inputs or parameters do not match the model.
    #[error(transparent)]
    Value(#[from] dlc_tensor::ValueError),
    /// The interpreter failed (e.g. an index out of range).
    #[error(transparent)]
    Interp(#[from] dlc_interp::InterpError),
    /// Compiling or running the JIT failed.
    #[error(transparent)]
    Run(#[from] dlc_runtime::RunError),
    /// The optimiser failed (a bug in dlc, reported rather than compiled wrongly).
    #[error(transparent)]
    Opt(#[from] dlc_opt::OptError),
    /// A gradient or training step could not be built (bad `--of`/`--wrt`,
    /// a non-scalar loss, a gradient through a non-differentiable op).
    #[error(transparent)]
    Autodiff(#[from] dlc_autodiff::AutodiffError),
    /// Training data that does not fit the model (missing keys, mismatched shapes).
    #[error("{0}")]
    Data(String),
    /// Training could not go on (a non-finite loss); the parameters are the last
    /// good ones.
    #[error("{0}")]
    Train(String),
}

impl Error {
    /// The process exit code for this error: 2 for bad input (the user can fix
    /// it), 1 when dlc itself fails or cannot do what was asked.
    pub fn exit_code(&self) -> i32 {
        use dlc_codegen::CodegenError as C;
        use dlc_runtime::RunError as R;
        match self {
            Error::Run(R::Codegen(
                C::Unsupported(_) | C::Cranelift(_) | C::Internal(_) | C::Verify(_),
            )) => 1,
            Error::Autodiff(dlc_autodiff::AutodiffError::Internal(_)) => 1,
            Error::Train(_) => 1,
            Error::Opt(_) => 1,
            _ => 2,
        }
    }
}
