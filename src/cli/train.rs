//! `dlc train`: train a model on a `.npz` data set with a progress bar, a
//! per-epoch table, an SVG curve and checkpoints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use dlc::{Backend, Dataset, Env, Error, Metrics, Optimizer, TrainConfig, Trainer, Value};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array2, ArrayD};

use super::plot::{self, Panel, Series};
use super::{ExecArgs, ModelArgs};

/// `--optimizer` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OptimizerArg {
    /// Plain stochastic gradient descent.
    Sgd,
    /// SGD with momentum (`--momentum`).
    Momentum,
    /// Adam (β = 0.9, 0.999; eps 1e-8).
    Adam,
}

/// Arguments of `dlc train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    exec: ExecArgs,
    /// Training data (.npz or .safetensors): one array per model input, examples
    /// along the batch axis; optional `train_idx`/`test_idx` arrays split it.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Test data with the same keys (instead of a `test_idx` split).
    #[arg(long, value_name = "FILE")]
    test_data: Option<PathBuf>,
    /// Epochs to train (in total, counting those of a resumed checkpoint).
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Examples per step (binds the batch dim).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    /// The named dim that is the batch size.
    #[arg(long, default_value = "B")]
    batch_dim: String,
    /// The optimiser.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Sgd)]
    optimizer: OptimizerArg,
    /// Learning rate.
    #[arg(long, default_value_t = 0.1)]
    lr: f32,
    /// Momentum of `--optimizer momentum`.
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    /// Weight decay (L2 for SGD and Adam).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// The scalar value to minimise.
    #[arg(long, default_value = "loss")]
    loss: String,
    /// Save a checkpoint (parameters and optimiser state, .safetensors or .npz)
    /// after every epoch; `dlc run --params` accepts it.
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// Continue from a checkpoint written by `--save`.
    #[arg(long, value_name = "FILE")]
    resume: Option<PathBuf>,
    /// Write the loss and accuracy curves as SVG (default with `--save`: next to
    /// the checkpoint, with extension .svg).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
}

/// Checkpoint keys that are not parameters (ignored by `dlc run --params`).
const EPOCH_KEY: &str = "dlc_train_epoch";
const HISTORY_KEY: &str = "dlc_train_history";

/// Per epoch: train loss, train accuracy, test loss, test accuracy (NaN if unknown).
type History = Vec<[f64; 4]>;

/// Runs `dlc train`.
pub fn run(a: &TrainArgs) -> Result<ExitCode, Error> {
    if !(a.lr.is_finite() && a.lr > 0.0) {
        return Err(Error::Data(format!(
            "--lr must be a positive number, not {}",
            a.lr
        )));
    }
    let model = a.model.load()?;
    let mut opts = a.exec.options(a.model.dims())?;
    let (mut start, mut history) = (0, History::new());
    if let Some(p) = &a.resume {
        let ckpt = dlc::read_tensors(p)?;
        (start, history) = read_progress(&ckpt);
        opts.params.extend(ckpt);
    }
    let optimizer = match a.optimizer {
        OptimizerArg::Sgd => Optimizer::sgd(),
        OptimizerArg::Momentum => Optimizer::momentum(a.momentum),
        OptimizerArg::Adam => Optimizer::adam(),
    }
    .with_weight_decay(a.weight_decay);
    let cfg = TrainConfig {
        optimizer,
        loss: a.loss.clone(),
        params: Vec::new(),
        batch_dim: a.batch_dim.clone(),
    };
    let batch = a.batch as usize;
    let mut trainer = Trainer::new(&model, &opts, batch, &cfg)?;
    let (train, test) = load_data(&trainer, &a.data, a.test_data.as_deref())?;
    let engine = match (trainer.backend(), trainer.fallback()) {
        (Backend::Jit, _) => "the JIT".to_string(),
        (Backend::Interp, Some(why)) => format!("the interpreter ({why})"),
        (Backend::Interp, None) => "the interpreter".to_string(),
    };
    println!(
        "training {} on {} examples ({} test), batch {batch}, {:?} lr {}, on {engine}",
        model.name(),
        train.len(),
        test.as_ref().map_or(0, Dataset::len),
        a.optimizer,
        a.lr
    );
    if start > 0 {
        println!("resuming after epoch {start}");
    }
    println!(
        "{:>5}  {:>10}  {:>9}  {:>9}  {:>8}  {:>8}  {:>10}",
        "epoch", "train loss", "train acc", "test loss", "test acc", "time", "examples/s"
    );
    let plot_path = a
        .plot
        .clone()
        .or_else(|| a.save.as_ref().map(|p| p.with_extension("svg")));
    let steps = train.len() / batch;
    for epoch in start + 1..=a.epochs {
        let bar = progress(steps as u64, epoch, a.epochs);
        let mut running = Metrics::default();
        let result = trainer.epoch(&train, a.lr, epoch, |m| {
            running.loss = (running.loss * running.examples as f64 + m.loss * m.examples as f64)
                / (running.examples + m.examples) as f64;
            running.correct = m.correct.map(|c| c + running.correct.unwrap_or(0));
            running.examples += m.examples;
            running.seconds += m.seconds;
            bar.set_message(format!(
                "loss {:.4}{}  {:.0} ex/s",
                running.loss,
                pct(running.accuracy()).map_or(String::new(), |p| format!("  acc {p}")),
                running.examples as f64 / running.seconds.max(1e-9)
            ));
            bar.inc(1);
        });
        bar.finish_and_clear();
        let m = match result {
            Ok(m) => m,
            Err(Error::Train(msg)) => {
                let kept = match &a.save {
                    Some(p) if epoch > 1 => format!(
                        "; the last good checkpoint (epoch {}) is {}",
                        epoch - 1,
                        p.display()
                    ),
                    _ => String::new(),
                };
                return Err(Error::Train(format!(
                    "training stopped in epoch {epoch}: {msg}{kept}"
                )));
            }
            Err(e) => return Err(e),
        };
        let t = match &test {
            Some(d) => Some(trainer.evaluate(d)?),
            None => None,
        };
        println!(
            "{epoch:>5}  {:>10.4}  {:>9}  {:>9}  {:>8}  {:>8}  {:>10.0}",
            m.loss,
            pct(m.accuracy()).unwrap_or_else(|| "-".into()),
            t.map_or("-".into(), |t| format!("{:.4}", t.loss)),
            t.and_then(|t| pct(t.accuracy()))
                .unwrap_or_else(|| "-".into()),
            seconds(m.seconds),
            m.examples as f64 / m.seconds.max(1e-9)
        );
        let nan = f64::NAN;
        history.push([
            m.loss,
            m.accuracy().unwrap_or(nan),
            t.map_or(nan, |t| t.loss),
            t.and_then(|t| t.accuracy()).unwrap_or(nan),
        ]);
        if let Some(p) = &a.save {
            save(p, trainer.params(), epoch, &history)?;
        }
        if let Some(p) = &plot_path {
            write_plot(p, model.name(), &history)?;
        }
    }
    if let Some(p) = &a.save {
        println!("saved {}", p.display());
    }
    if let Some(p) = &plot_path {
        println!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// An epoch's time with three significant digits: `2.45 ms`, `31.2 s`.
fn seconds(s: f64) -> String {
    let (v, unit) = if s < 1.0 { (s * 1e3, "ms") } else { (s, "s") };
    let decimals = if v < 10.0 {
        2
    } else if v < 100.0 {
        1
    } else {
        0
    };
    format!("{v:.decimals$} {unit}")
}

fn pct(x: Option<f64>) -> Option<String> {
    x.map(|x| format!("{:.2}%", 100.0 * x))
}

fn progress(steps: u64, epoch: usize, epochs: usize) -> ProgressBar {
    let bar = ProgressBar::new(steps);
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
        .expect("valid template")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("epoch {epoch}/{epochs}"));
    bar
}

/// The training and test sets: `train_idx`/`test_idx` split the file when it
/// has them; a separate test file is used as a whole.
fn load_data(
    trainer: &Trainer,
    path: &Path,
    test_path: Option<&Path>,
) -> Result<(Dataset, Option<Dataset>), Error> {
    let arrays = dlc::read_tensors(path)?;
    let all = trainer
        .dataset(&arrays)
        .map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
    let index = |key: &str| -> Result<Option<Vec<i64>>, Error> {
        match arrays.get(key) {
            None => Ok(None),
            Some(Value::Int(a)) if a.ndim() == 1 => Ok(Some(a.iter().copied().collect())),
            Some(v) => Err(Error::Data(format!(
                "{}: `{key}` must be a 1-D i64 array of example indices, not {}{:?}",
                path.display(),
                v.dtype(),
                v.shape()
            ))),
        }
    };
    let train = match index("train_idx")? {
        Some(idx) => all.subset(&idx)?,
        None => all.clone(),
    };
    let test = match (test_path, index("test_idx")?) {
        (Some(p), _) => {
            let arrays = dlc::read_tensors(p)?;
            Some(
                trainer
                    .dataset(&arrays)
                    .map_err(|e| Error::Data(format!("{}: {e}", p.display())))?,
            )
        }
        (None, Some(idx)) => Some(all.subset(&idx)?),
        (None, None) => None,
    };
    if train.len() < trainer.batch() {
        return Err(Error::Data(format!(
            "{}: {} training examples, fewer than one batch of {}",
            path.display(),
            train.len(),
            trainer.batch()
        )));
    }
    Ok((train, test))
}

/// The epoch count and history stored in a checkpoint (none in a plain
/// parameter file).
fn read_progress(ckpt: &Env) -> (usize, History) {
    let epoch = ckpt
        .get(EPOCH_KEY)
        .and_then(Value::as_float)
        .and_then(|a| a.iter().next().copied())
        .map_or(0, |e| e.max(0.0) as usize);
    let history = ckpt
        .get(HISTORY_KEY)
        .and_then(Value::as_float)
        .filter(|a| a.ndim() == 2 && a.shape()[1] == 4)
        .map(|a| {
            a.rows()
                .into_iter()
                .map(|r| [r[0], r[1], r[2], r[3]].map(f64::from))
                .collect()
        })
        .unwrap_or_default();
    (epoch, history)
}

/// Writes the checkpoint atomically (a temporary file renamed over the old
/// one), so an interrupted run keeps the previous epoch's.
fn save(path: &Path, mut params: Env, epoch: usize, history: &History) -> Result<(), Error> {
    params.insert(
        EPOCH_KEY.into(),
        Value::Float(ArrayD::from_elem(ndarray::IxDyn(&[]), epoch as f32)),
    );
    let rows: Vec<f32> = history.iter().flatten().map(|&x| x as f32).collect();
    let h = Array2::from_shape_vec((history.len(), 4), rows).expect("4 values per epoch");
    params.insert(HISTORY_KEY.into(), Value::Float(h.into_dyn()));
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let tmp = path.with_extension(format!("{ext}.tmp"));
    match ext {
        "npz" => dlc::write_npz(&tmp, &params)?,
        _ => dlc::write_safetensors(&tmp, &params)?,
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::File(format!("{}: {e}", path.display())))
}

fn write_plot(path: &Path, name: &str, history: &History) -> Result<(), Error> {
    let series = |col: usize, label: &'static str, color: &'static str, scale: f64| Series {
        label,
        color,
        points: history
            .iter()
            .enumerate()
            .map(|(i, r)| ((i + 1) as f64, r[col] * scale))
            .collect(),
    };
    let loss_title = format!("{name}: loss");
    let acc_title = format!("{name}: accuracy (%)");
    let panels = [
        Panel {
            title: &loss_title,
            x_label: "epoch",
            series: vec![
                series(0, "train", "#1f77b4", 1.0),
                series(2, "test", "#d62728", 1.0),
            ],
        },
        Panel {
            title: &acc_title,
            x_label: "epoch",
            series: vec![
                series(1, "train", "#1f77b4", 100.0),
                series(3, "test", "#d62728", 100.0),
            ],
        },
    ];
    std::fs::write(path, plot::svg(&panels))
        .map_err(|e| Error::File(format!("{}: {e}", path.display())))
}
