//! Command-line definitions (clap) and dispatch to one module per subcommand.

mod bench;
mod case;
mod check;
mod compile;
mod fmt;
mod fuzz;
mod grad;
mod plot;
mod reduce;
mod run;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use dlc::{Backend, Dims, Error, Model, Options};

/// dlc: a deep-learning graph compiler.
#[derive(Parser, Debug)]
#[command(name = "dlc", version, about, long_about = None, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "\
Examples:
  dlc check ir/mlp.ir --dim B=64        print every value with its type
  dlc fmt ir/mlp.ir --write             format a model in place
  dlc run ir/lenet5.ir --random-inputs  run on random inputs with the JIT
  dlc run ir/mlp.ir --inputs in.npz --params p.safetensors --out out.npz
  dlc compile ir/lenet5.ir --emit kernels
  dlc bench ir/mlp.ir --dim B=1 --runs 200
  dlc grad ir/digits_mlp.ir --of loss --wrt w1,b1   print the gradient graph
  dlc train ir/digits_mlp.ir --data data/digits.npz --epochs 30 --lr 0.1 --save ckpt.safetensors
  dlc fuzz --time 10m --ops conv,pool      differential fuzzing, interpreter vs JIT
  dlc reduce fuzz-out/x/case.ir            shrink a disagreeing case to a repro";

#[derive(Subcommand, Debug)]
enum Command {
    /// Type-check a model and print every value with its type.
    Check(check::CheckArgs),
    /// Format a model (to stdout, or in place with --write).
    Fmt(fmt::FmtArgs),
    /// Run a model on inputs from a file or random inputs.
    Run(run::RunArgs),
    /// Compile a model and print a report (kernels, memory, time per phase).
    Compile(compile::CompileArgs),
    /// Time a compiled model (median of many runs).
    Bench(bench::BenchArgs),
    /// Print the gradient graph of a scalar value (valid `.ir`).
    Grad(grad::GradArgs),
    /// Train a model on a data set (progress bar, per-epoch table, SVG curves, checkpoints).
    Train(train::TrainArgs),
    /// Differential fuzzing: random models, interpreter against every JIT configuration.
    Fuzz(fuzz::FuzzArgs),
    /// Shrink a case on which the interpreter and the JIT disagree to a minimal repro.
    Reduce(reduce::ReduceArgs),
}

/// Arguments shared by the commands that load a model.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// The `.ir` model file.
    pub model: PathBuf,
    /// Bind a named dimension, e.g. `--dim B=64` (repeatable).
    #[arg(long = "dim", value_name = "NAME=SIZE", value_parser = parse_dim)]
    pub dims: Vec<(String, usize)>,
}

impl ModelArgs {
    /// The dims as a map.
    pub fn dims(&self) -> Dims {
        self.dims.iter().cloned().collect()
    }

    /// Loads the model.
    pub fn load(&self) -> Result<Model, Error> {
        Model::from_file(&self.model)
    }
}

/// Options shared by the commands that execute a model.
#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    /// The engine.
    #[arg(long, value_enum, default_value_t = BackendArg::Jit)]
    pub backend: BackendArg,
    /// Parameter values (.npz or .safetensors); missing ones are initialised.
    #[arg(long, value_name = "FILE")]
    pub params: Option<PathBuf>,
    /// Seed of the parameter initialisers (and of random inputs).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Threads per kernel (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Bounds-check every memory access of the generated code (slow).
    #[arg(long)]
    pub checked: bool,
    /// Optimisation level: 0 (none), 1 (exact rules, the default) or 2 (also
    /// finite-math rules such as x - x → 0).
    #[arg(short = 'O', value_name = "LEVEL", default_value = "1", value_parser = parse_opt_level)]
    pub opt: dlc::opt::OptLevel,
    /// Optimiser rule groups to run (comma-separated; default all):
    /// algebraic, layout, matmul, folding, fusion.
    #[arg(long, value_name = "GROUPS", value_delimiter = ',', value_parser = parse_rule_group)]
    pub rules: Vec<dlc::opt::Group>,
    /// Extraction after saturation: greedy, an integer program optimal under
    /// sharing (ilp), or auto (the integer program when rules created sharing).
    #[arg(long, value_enum, default_value_t = ExtractArg::Auto)]
    pub extract: ExtractArg,
    /// GEMM micro-kernel tier: the host's native one (AVX-512 or AVX2+FMA on x86-64 when
    /// present) or the portable Cranelift f32x4 one.
    #[arg(long, value_enum, default_value_t = IsaArg::Native)]
    pub isa: IsaArg,
}

/// `--extract` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExtractArg {
    /// The integer program when the rules created sharing, greedy otherwise.
    Auto,
    /// Greedy, refined with sharing groups and a local search.
    Greedy,
    /// Greedy, then the integer program.
    Ilp,
}

impl From<ExtractArg> for dlc::opt::Extractor {
    fn from(e: ExtractArg) -> dlc::opt::Extractor {
        match e {
            ExtractArg::Auto => dlc::opt::Extractor::Auto,
            ExtractArg::Greedy => dlc::opt::Extractor::Greedy,
            ExtractArg::Ilp => dlc::opt::Extractor::Ilp,
        }
    }
}

/// `--isa` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IsaArg {
    /// The best micro-kernels this CPU supports.
    Native,
    /// Cranelift-generated code only.
    Portable,
}

impl ExecArgs {
    /// Builds the compile options.
    pub fn options(&self, dims: Dims) -> Result<Options, Error> {
        let mut opts = Options {
            dims,
            ..Options::default()
        }
        .seed(self.seed)
        .backend(self.backend.into())
        .checked(self.checked)
        .portable(self.isa == IsaArg::Portable);
        if let Some(t) = self.threads {
            opts = opts.threads(t);
        }
        opts = opts.opt_level(self.opt);
        opts.opt.extractor = self.extract.into();
        if !self.rules.is_empty() {
            opts.opt.groups = self.rules.clone();
        }
        if let Some(p) = &self.params {
            opts = opts.params(dlc::read_tensors(p)?);
        }
        Ok(opts)
    }
}

/// `--backend` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BackendArg {
    /// Cranelift-compiled machine code.
    Jit,
    /// The reference interpreter.
    Interp,
}

impl From<BackendArg> for Backend {
    fn from(b: BackendArg) -> Backend {
        match b {
            BackendArg::Jit => Backend::Jit,
            BackendArg::Interp => Backend::Interp,
        }
    }
}

fn parse_dim(s: &str) -> Result<(String, usize), String> {
    let (name, size) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=SIZE, got `{s}`"))?;
    let size: usize = size
        .trim()
        .parse()
        .map_err(|_| format!("`{size}` is not a dimension size (a positive integer)"))?;
    if size == 0 {
        return Err("dimension sizes must be at least 1".into());
    }
    Ok((name.trim().to_string(), size))
}

/// Parses the command line and runs the command.
pub fn main() -> Result<ExitCode, Error> {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(a) => check::run(&a),
        Command::Fmt(a) => fmt::run(&a),
        Command::Run(a) => run::run(&a),
        Command::Compile(a) => compile::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Grad(a) => grad::run(&a),
        Command::Train(a) => train::run(&a),
        Command::Fuzz(a) => fuzz::run(&a),
        Command::Reduce(a) => reduce::run(&a),
    }
}

/// Parses `-O0`, `-O1`, `-O2`.
fn parse_opt_level(s: &str) -> Result<dlc::opt::OptLevel, String> {
    use dlc::opt::OptLevel;
    match s {
        "0" => Ok(OptLevel::O0),
        "1" => Ok(OptLevel::O1),
        "2" => Ok(OptLevel::O2),
        _ => Err(format!("`{s}` is not an optimisation level (0, 1 or 2)")),
    }
}

/// Parses a rule group name.
fn parse_rule_group(s: &str) -> Result<dlc::opt::Group, String> {
    dlc::opt::Group::from_name(s).ok_or_else(|| {
        let all: Vec<&str> = dlc::opt::Group::ALL.iter().map(|g| g.name()).collect();
        format!("`{s}` is not a rule group ({})", all.join(", "))
    })
}
