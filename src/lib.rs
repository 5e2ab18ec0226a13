#![doc = include_str!("../docs/api.md")]
#![deny(missing_docs)]

mod data;
mod error;
mod model;
mod train;

pub use data::{Dataset, InputSpec, correct, shuffled};
pub use dlc_autodiff as autodiff;
pub use dlc_autodiff::Optimizer;
pub use dlc_interp as interp;
pub use dlc_ir as ir;
pub use dlc_ir::syntax::Dims;
pub use dlc_opt as opt;
pub use dlc_runtime as runtime;
pub use dlc_tensor::{Env, Tensor, Value, read_tensors, write_npz, write_safetensors};
pub use error::Error;
pub use model::{Backend, Executable, Model, Options};
pub use train::{Metrics, TrainConfig, Trainer};
