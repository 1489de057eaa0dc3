//! `kiln train`: train a built-in model on MNIST with its compiled training step.

use super::CliError;
use super::optimizer::OptimizerArg;
use super::session::{Session, Spec, restore};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use kiln_runtime::checkpoint::{self, Checkpoint, Field, Metadata, graph_hash};
use kiln_runtime::data::{Dataset, Mnist};
use kiln_runtime::history::EpochRecord;
use kiln_runtime::plot::{training_curves, write_svg};
use kiln_runtime::train::StepReport;
use kiln_runtime::{Executable, Options};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The data directory of a fresh clone: the embedded MNIST-10k.
pub const EMBEDDED_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data");

/// Arguments of `kiln train`.
#[derive(Args)]
pub struct TrainArgs {
    /// The built-in model to train (default: mlp, or the checkpoint's when resuming).
    #[arg(long)]
    model: Option<String>,
    #[command(flatten)]
    hyper: HyperArgs,
    /// Epochs to have trained in all (a resumed run trains the ones missing).
    #[arg(long)]
    epochs: Option<usize>,
    /// Seed of the initial parameters, the batch order and dropout (default 0).
    #[arg(long)]
    seed: Option<u64>,
    /// Where the checkpoint is saved after every epoch (default
    /// runs/MODEL/checkpoint.safetensors).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Continue the run saved in the checkpoint; its settings are the defaults, and settings
    /// given that differ from them are refused (the learning rate may change).
    #[arg(long)]
    resume: bool,
    /// Where the loss and accuracy curves are drawn (default runs/MODEL/curves.svg).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Draw no curves.
    #[arg(long, conflicts_with = "plot")]
    no_plot: bool,
    /// Stop at the first NaN or infinity in an input, a parameter or a kernel's result, naming
    /// the kernel, the graph node and its source line.
    #[arg(long)]
    check_numerics: bool,
    #[command(flatten)]
    machine: MachineArgs,
}

/// The settings a model trains with, each defaulting to the model's best known value.
#[derive(Args, Clone)]
pub struct HyperArgs {
    /// The optimizer.
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,
    /// The learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Examples per training step.
    #[arg(long)]
    pub batch: Option<usize>,
    /// The hidden width (the MLP's hidden layer, the LSTM's state).
    #[arg(long)]
    pub width: Option<usize>,
    /// How the learning rate changes from epoch to epoch.
    #[arg(long, value_enum)]
    pub schedule: Option<Schedule>,
    /// Move each training image by up to this many pixels along each axis, a new shift every
    /// epoch (0: no augmentation).
    #[arg(long)]
    pub augment: Option<usize>,
}

/// How the learning rate changes over a run's epochs. It is a runtime input of the compiled
/// step, so a schedule never recompiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Schedule {
    /// The same rate every epoch.
    Constant,
    /// From the rate down along half a cosine: epoch `e` of `E` trains at
    /// `lr * (1 + cos(pi * (e - 1) / E)) / 2`.
    Cosine,
}

impl Schedule {
    /// The rate of epoch `epoch` (from 1) of `epochs` for base rate `lr`.
    pub fn lr(self, lr: f64, epoch: usize, epochs: usize) -> f64 {
        match self {
            Schedule::Constant => lr,
            Schedule::Cosine => {
                let t = (epoch - 1) as f64 / epochs.max(1) as f64;
                lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }

    /// Its name, as checkpoints store it.
    pub fn name(self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::Cosine => "cosine",
        }
    }
}

/// Where the data comes from and how the program is compiled.
#[derive(Args, Clone)]
pub struct MachineArgs {
    /// A directory of MNIST IDX files (the embedded MNIST-10k, or the full set's four files).
    #[arg(long, default_value = EMBEDDED_DATA)]
    pub data: PathBuf,
    /// Worker threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// One kernel per primitive, to compare with fusion.
    #[arg(long)]
    pub no_fuse: bool,
}

impl MachineArgs {
    /// The compile options these arguments ask for.
    pub fn options(&self) -> Options {
        let default = Options::default();
        Options {
            fuse: !self.no_fuse,
            threads: self.threads.unwrap_or(default.threads).max(1),
            ..default
        }
    }

    /// The data set.
    pub fn load(&self) -> Result<Mnist, CliError> {
        Ok(Mnist::load(&self.data)?)
    }
}

/// A model's default training settings: the ones its accuracy in the README was measured with.
pub struct Defaults {
    /// The optimizer.
    pub optimizer: OptimizerArg,
    /// The learning rate.
    pub lr: f64,
    /// Examples per step.
    pub batch: usize,
    /// Passes over the data.
    pub epochs: usize,
    /// The hidden width.
    pub width: Option<usize>,
    /// The learning-rate schedule.
    pub schedule: Schedule,
    /// The augmentation's largest shift in pixels.
    pub augment: usize,
}

/// The defaults of the built-in `model`: the settings its accuracy in README.md was measured
/// with (each chosen over a few runs on the embedded data; see BENCHMARKS.md).
pub fn defaults(model: &str) -> Defaults {
    let (optimizer, lr, batch, epochs, width, schedule, augment) = match model {
        "linreg" | "logreg" => (OptimizerArg::Sgd, 0.1, 64, 10, None, Schedule::Constant, 0),
        // Chosen by `kiln sweep` on the validation split (momentum, lr 0.02..0.1, batch 32
        // and 128, width 512 and 1024, 15 epochs).
        "mlp" => (
            OptimizerArg::Momentum,
            0.1,
            32,
            15,
            Some(1024),
            Schedule::Constant,
            0,
        ),
        "lenet" | "inception" => (OptimizerArg::Adam, 2e-3, 64, 15, None, Schedule::Cosine, 2),
        "resnet" => (OptimizerArg::Adam, 2e-3, 64, 12, None, Schedule::Cosine, 2),
        "lstm" => (
            OptimizerArg::Adam,
            5e-3,
            64,
            12,
            Some(128),
            Schedule::Cosine,
            0,
        ),
        _ => (OptimizerArg::Sgd, 0.1, 64, 5, None, Schedule::Constant, 0),
    };
    Defaults {
        optimizer,
        lr,
        batch,
        epochs,
        width,
        schedule,
        augment,
    }
}

impl HyperArgs {
    /// The compile specification of `model` with these settings over the defaults.
    pub fn spec(&self, model: &str, seed: u64, options: Options) -> Spec {
        let d = defaults(model);
        let optimizer = self.optimizer.unwrap_or(d.optimizer);
        Spec {
            model: model.to_string(),
            width: self.width.or(d.width),
            batch: self.batch.unwrap_or(d.batch),
            optimizer: optimizer.with_lr(self.lr.unwrap_or(d.lr)),
            seed,
            schedule: self.schedule.unwrap_or(d.schedule),
            augment: self.augment.unwrap_or(d.augment),
            options,
        }
    }
}

/// Runs `kiln train`.
pub fn train(args: &TrainArgs) -> Result<(), CliError> {
    let start = Instant::now();
    let default_path = |model: &str, file: &str| Path::new("runs").join(model).join(file);
    // Resuming: the checkpoint's settings stand in for the ones not given.
    let (resumed, ck_path) = match (&args.checkpoint, &args.model) {
        (Some(p), _) => (
            args.resume.then(|| checkpoint::load(p)).transpose()?,
            p.clone(),
        ),
        (None, m) => {
            let p = default_path(m.as_deref().unwrap_or("mlp"), "checkpoint.safetensors");
            (args.resume.then(|| checkpoint::load(&p)).transpose()?, p)
        }
    };
    let mut hyper = args.hyper.clone();
    let (model, seed) = match &resumed {
        Some(ck) => {
            let m = &ck.meta;
            hyper.optimizer = hyper
                .optimizer
                .or_else(|| OptimizerArg::from_str(&m.optimizer, true).ok());
            hyper.lr = hyper.lr.or(m
                .hyperparameters
                .iter()
                .find(|(n, _)| n == "lr")
                .map(|h| h.1));
            hyper.batch = hyper.batch.or(Some(m.batch_size));
            hyper.width = hyper.width.or(m.width);
            hyper.schedule = hyper
                .schedule
                .or_else(|| Schedule::from_str(&m.schedule, true).ok());
            hyper.augment = hyper.augment.or(Some(m.augment));
            (
                args.model.clone().unwrap_or(m.model.clone()),
                args.seed.unwrap_or(m.seed),
            )
        }
        None => (
            args.model.clone().unwrap_or("mlp".into()),
            args.seed.unwrap_or(0),
        ),
    };
    let plot = match args.no_plot {
        true => None,
        false => Some((args.plot.clone()).unwrap_or_else(|| default_path(&model, "curves.svg"))),
    };
    for file in std::iter::once(&ck_path).chain(&plot) {
        create_parent(file)?;
    }
    let data = args.machine.load()?;
    let spec = hyper.spec(&model, seed, args.machine.options());
    let epochs = args.epochs.unwrap_or(defaults(&model).epochs);
    let mut session = Session::new(&spec, &data.test)?;
    session.set_check_numerics(args.check_numerics);
    let hash = graph_hash(&session.step);
    let meta = |epoch: usize, step: u64, history: &[EpochRecord]| Metadata {
        model: model.clone(),
        width: spec.width,
        graph_hash: hash.clone(),
        optimizer: spec.optimizer.name().into(),
        hyperparameters: (spec.optimizer.hyperparameters().into_iter())
            .map(|(n, v)| (n.to_string(), v))
            .collect(),
        schedule: spec.schedule.name().into(),
        augment: spec.augment,
        batch_size: spec.batch,
        seed,
        epoch,
        step,
        history: history.to_vec(),
        ..Metadata::default()
    };
    let mut history = Vec::new();
    if let Some(ck) = &resumed {
        // Settings first, so the message names the one that differs; the learning rate may
        // change; the graph hash last, to catch a model that changed since.
        let fields = [
            Field::Model,
            Field::Width,
            Field::Optimizer,
            Field::Schedule,
            Field::Augment,
            Field::BatchSize,
            Field::Seed,
            Field::GraphHash,
        ];
        let exe = session.trainer.executable_mut();
        ck.check_matches(&meta(0, 0, &[]), &fields, &exe.state_names())
            .map_err(|m| m.at(&ck_path))?;
        restore(exe, ck, &ck_path)?;
        session.trainer.set_steps(ck.meta.step);
        history = ck.meta.history.clone();
    }
    print_summary(&session, &spec, &data);
    if let Some(ck) = &resumed {
        println!(
            "resuming from {} after epoch {} (step {})",
            ck_path.display(),
            ck.meta.epoch,
            ck.meta.step
        );
    }
    let first_step = session.trainer.steps();
    for epoch in history.len() + 1..=epochs {
        let t = Instant::now();
        let bar = progress_bar(session.trainer.batches(&data.train) as u64, epoch, epochs);
        let batch = spec.batch;
        let train = session.epoch(&data.train, epoch, epochs, &mut |r: &StepReport| {
            if r.batch.is_multiple_of(8) || r.batch == r.batches {
                bar.set_position(r.batch as u64);
                let rate = (r.batch * batch) as f64 / t.elapsed().as_secs_f64();
                bar.set_message(format!(
                    "loss {:.4}  acc {:5.1}%  {:>7.0} samples/s",
                    r.loss,
                    100.0 * r.accuracy,
                    rate
                ));
            }
        });
        bar.finish_and_clear();
        let train = train?;
        let secs = t.elapsed().as_secs_f64();
        let test = session.evaluate(&data.test)?;
        println!(
            "epoch {epoch:>3}/{epochs}  train loss {:.4} acc {:6.2}%  test loss {:.4} acc {:6.2}%  \
             {:>7.0} samples/s",
            train.loss,
            100.0 * train.accuracy,
            test.loss,
            100.0 * test.accuracy,
            (session.trainer.batches(&data.train) * batch) as f64 / secs,
        );
        history.push(EpochRecord {
            epoch,
            train_loss: train.loss,
            train_accuracy: train.accuracy,
            test_loss: test.loss,
            test_accuracy: test.accuracy,
            seconds: secs,
        });
        let exe = session.trainer.executable();
        let tensors = (exe.state_names().into_iter())
            .map(|(n, _)| {
                let value = exe.state(&n).expect("a state of the program");
                (n, value)
            })
            .collect();
        let meta = meta(epoch, session.trainer.steps(), &history);
        checkpoint::save(&ck_path, &Checkpoint { tensors, meta })?;
    }
    let best = (history.iter()).max_by(|a, b| a.test_accuracy.total_cmp(&b.test_accuracy));
    match best {
        Some(b) => println!(
            "best test accuracy {:.2}% (epoch {}); total {:.1} s",
            100.0 * b.test_accuracy,
            b.epoch,
            start.elapsed().as_secs_f64()
        ),
        None => println!("nothing to train: {epochs} epochs asked"),
    }
    println!("checkpoint: {}", ck_path.display());
    print_profile(
        session.trainer.executable(),
        session.trainer.steps() - first_step,
    );
    if let Some(plot) = plot.filter(|_| !history.is_empty()) {
        write_svg(&plot, &training_curves(&history))?;
        println!("curves: {}", plot.display());
    }
    Ok(())
}

/// The time per step of each kernel, when `KILN_PROFILE` was set (numbered as
/// `kiln dump --stage kernels` numbers them).
fn print_profile(exe: &Executable, steps: u64) {
    if let Some(report) = exe.profile_report(steps) {
        print!("{report}");
    }
}

/// Creates the directory `file` goes in, if missing.
fn create_parent(file: &Path) -> Result<(), CliError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| CliError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// The bar of one epoch: position in batches, the last batch's loss and accuracy, speed.
fn progress_bar(batches: u64, epoch: usize, epochs: usize) -> ProgressBar {
    let bar = ProgressBar::new(batches);
    let style = ProgressStyle::with_template(&format!(
        "epoch {epoch}/{epochs} [{{bar:30}}] {{pos}}/{{len}}  {{msg}}"
    ))
    .expect("the template is valid")
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

/// What is about to train: the model's parameters, the optimizer, the compiled program.
fn print_summary(session: &Session, spec: &Spec, data: &Mnist) {
    let exe = session.trainer.executable();
    let params: Vec<(String, kiln_compiler::Type)> =
        (session.step.inputs_of(kiln_compiler::InputKind::Param))
            .into_iter()
            .map(|id| {
                let n = session.step.node(id);
                let name = n.op.as_input().map_or("", |(_, name)| name).to_string();
                (name, n.ty.clone())
            })
            .collect();
    let count: usize = params.iter().map(|(_, t)| t.numel()).sum();
    println!(
        "model {} ({} parameters in {} tensors)",
        spec.model,
        count,
        params.len()
    );
    for (name, ty) in &params {
        println!("  {name:<16} {ty}");
    }
    let hyper: Vec<String> = (spec.optimizer.hyperparameters().iter())
        .map(|(n, v)| format!("{n} {v}"))
        .collect();
    println!(
        "optimizer {} ({}), {} schedule, batch {}, seed {}{}",
        spec.optimizer.name(),
        hyper.join(", "),
        spec.schedule.name(),
        spec.batch,
        spec.seed,
        match spec.augment {
            0 => String::new(),
            n => format!(", images shifted by up to {n} pixels"),
        }
    );
    let s = exe.stats();
    println!(
        "training step: {} loop kernels, {} matrix products, arena {} KiB, compiled in {:.1} ms \
         ({} threads, {})",
        s.loops,
        s.dots,
        s.arena_bytes / 1024,
        s.compile_time.as_secs_f64() * 1e3,
        spec.options.threads,
        if spec.options.fuse {
            "fused"
        } else {
            "unfused"
        }
    );
    println!(
        "data: {} training and {} test images",
        data.train.len(),
        data.test.len()
    );
}

#[cfg(test)]
mod tests {
    use super::Schedule;

    #[test]
    fn the_cosine_schedule_starts_at_the_rate_and_halves_at_mid_run() {
        assert_eq!(Schedule::Cosine.lr(0.1, 1, 10), 0.1);
        assert!((Schedule::Cosine.lr(0.1, 6, 10) - 0.05).abs() < 1e-15);
        let last = Schedule::Cosine.lr(0.1, 10, 10);
        assert!(last > 0.0 && last < 0.0025, "{last}");
        assert_eq!(Schedule::Constant.lr(0.1, 10, 10), 0.1);
    }
}
