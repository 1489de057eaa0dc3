//! `kiln train`: train a built-in model on MNIST, a table or arrays, through the general
//! trainer ([`kiln::fit::Learner`]).

use super::CliError;
use super::optimizer::OptimizerArg;
use super::problem::{DataArgs, Kind, Problem};
use clap::{Args, ValueEnum};
use kiln::fit::{Build, Learner, Schedule};
use kiln_compiler::collective::Communicator;
use kiln_compiler::optim::Optimizer;
use kiln_frontend::models::{BUILTINS, Settings, builtin};
use kiln_runtime::Options;
use kiln_runtime::checkpoint::{self, Field, Metadata};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

/// Arguments of `kiln train`.
#[derive(Args)]
pub struct TrainArgs {
    /// The built-in model to train (default: mlp on MNIST, linear on a table or arrays, or the
    /// checkpoint's when resuming).
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
    data: DataArgs,
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

/// How the programs are compiled.
#[derive(Args, Clone)]
pub struct MachineArgs {
    /// Worker threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// One kernel per primitive, to compare with fusion.
    #[arg(long)]
    pub no_fuse: bool,
    /// The most memory a compiled program may allocate (its arena and scratch), in bytes or
    /// with a suffix K, M, G or T (powers of 1024): `8G` (default 4G).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub max_memory: Option<usize>,
}

/// A size in bytes as `--max-memory` takes it: a whole number, or a number (with decimals)
/// followed by K, M, G or T, powers of 1024, with an optional `B` or `iB` (`8G`, `1.5GiB`,
/// `512MB`), case-insensitive.
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let bad = || format!("expected bytes, as 4294967296 or 4G (K, M, G, T), found `{s}`");
    let t = s.trim().to_ascii_uppercase();
    let t = t
        .strip_suffix("IB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(&t);
    let (number, shift) = match t.chars().last() {
        Some(c @ ('K' | 'M' | 'G' | 'T')) => {
            let shift = 10 * (1 + "KMGT".find(c).expect("one of KMGT"));
            (&t[..t.len() - 1], shift)
        }
        _ => (t, 0),
    };
    if shift == 0 {
        return number.parse().map_err(|_| bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let bytes = value * (1u64 << shift) as f64;
    let digits = number.starts_with(|c: char| c.is_ascii_digit());
    if !digits || !bytes.is_finite() || bytes >= usize::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as usize)
}

impl MachineArgs {
    /// The compile options these arguments ask for; 0 threads is refused.
    pub fn options(&self) -> Result<Options, CliError> {
        let default = Options::default();
        if self.threads == Some(0) {
            return Err(CliError::Setting(
                "--threads 0: a run needs one thread at least".into(),
            ));
        }
        Ok(Options {
            fuse: !self.no_fuse,
            threads: self.threads.unwrap_or(default.threads),
            max_memory: self.max_memory.unwrap_or(default.max_memory),
            ..default
        })
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

/// The defaults of the built-in `model` on data of `kind`: on MNIST, the settings its
/// accuracy in README.md was measured with (each chosen over a few runs on the embedded data;
/// see BENCHMARKS.md); on tables, Adam in batches of 16 (the course's data sets have a few
/// hundred rows), at 0.01 for 100 epochs for the linear models and at 0.001 for 50 epochs
/// for the MLP of 32 units, which overfits a few hundred rows at the linear models' pace
/// (diabetes, seed 0: test R² 0.32, against -0.02 at 0.01 for 100 epochs).
pub fn defaults(model: &str, kind: Kind) -> Defaults {
    if kind == Kind::Table {
        let mlp = model == "mlp";
        return Defaults {
            optimizer: OptimizerArg::Adam,
            lr: if mlp { 0.001 } else { 0.01 },
            batch: 16,
            epochs: if mlp { 50 } else { 100 },
            width: mlp.then_some(32),
            schedule: Schedule::Constant,
            augment: 0,
        };
    }
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
        // The course's Keras example: plain SGD at batch 32. On MNIST lr 0.1 reaches 95.8% in
        // 5 epochs (0.05: 91% in 3; 0.2: 96.6% in 5).
        "cnn" => (OptimizerArg::Sgd, 0.1, 32, 5, None, Schedule::Constant, 0),
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
    /// The run's settings for `model` on `problem`: these over the defaults, each checked.
    pub fn settings(&self, model: &str, problem: &Problem) -> Result<RunSettings, CliError> {
        let d = defaults(model, problem.kind);
        let settings = RunSettings {
            optimizer: self.optimizer.unwrap_or(d.optimizer),
            lr: self.lr.unwrap_or(d.lr),
            batch: self.batch.unwrap_or(d.batch),
            width: self.width.or(d.width),
            schedule: self.schedule.unwrap_or(d.schedule),
            augment: self.augment.unwrap_or(d.augment),
        };
        settings.check(problem)?;
        Ok(settings)
    }
}

/// A run's settings, defaults filled in.
#[derive(Clone, Debug)]
pub struct RunSettings {
    /// The optimizer.
    pub optimizer: OptimizerArg,
    /// The learning rate.
    pub lr: f64,
    /// Examples per step.
    pub batch: usize,
    /// The hidden width.
    pub width: Option<usize>,
    /// The learning-rate schedule.
    pub schedule: Schedule,
    /// The augmentation's largest shift in pixels.
    pub augment: usize,
}

impl RunSettings {
    /// Refuses a setting no run can use on `problem`, naming it.
    fn check(&self, problem: &Problem) -> Result<(), CliError> {
        let bad = |s: String| Err(CliError::Setting(s));
        if self.batch == 0 {
            return bad("--batch 0: a step needs one example at least".into());
        }
        if self.batch > problem.train.len() {
            return bad(format!(
                "--batch {}: the training data has {} examples",
                self.batch,
                problem.train.len()
            ));
        }
        if self.width == Some(0) {
            return bad("--width 0: a layer needs one unit at least".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!(
                "--lr {}: the learning rate is a positive number",
                self.lr
            ));
        }
        if self.augment > 0 {
            match *problem.input.as_slice() {
                [_, h, w] if self.augment < h.min(w) => {}
                [_, h, w] => {
                    return bad(format!(
                        "--augment {}: the images are {h}x{w}, so a shift must be less than {}",
                        self.augment,
                        h.min(w)
                    ));
                }
                _ => return bad("--augment shifts images; this data holds no images".into()),
            }
        }
        Ok(())
    }

    /// The optimizer with its learning rate.
    pub fn optimizer(&self) -> Optimizer {
        self.optimizer.with_lr(self.lr)
    }
}

/// The builder of the built-in `model` of `width` for `problem`'s input and task; an unknown
/// name, or a model that cannot take the input, is an error before anything is compiled.
pub fn build(model: &str, width: Option<usize>, problem: &Problem) -> Result<Build, CliError> {
    let (input, task) = (problem.input.clone(), problem.task);
    let settings = move |batch, mode| Settings {
        batch,
        mode,
        width,
        input: input.clone(),
        task,
    };
    let check = builtin(model, &settings(1, kiln_frontend::models::Mode::Eval))
        .ok_or_else(|| CliError::UnknownModel(model.to_string()))?;
    check.map_err(|e| CliError::ModelInput {
        model: model.into(),
        input: problem.input.clone(),
        source: Box::new(e),
    })?;
    let model = model.to_string();
    Ok(Rc::new(move |batch, mode| {
        builtin(&model, &settings(batch, mode)).expect("a built-in, checked above")
    }))
}

/// Runs `kiln train`.
pub fn train(args: &TrainArgs, comm: Arc<dyn Communicator>) -> Result<(), CliError> {
    let options = args.machine.options()?;
    let ck_path = |model: &str| match &args.checkpoint {
        Some(p) => p.clone(),
        None => run_dir(model, &args.data).join("checkpoint.safetensors"),
    };
    // Resuming: the checkpoint's settings stand in for the ones not given.
    // MNIST's default model is the MLP; a table's or arrays' is linear.
    let default_model = match args.data.data.is_dir() {
        true => "mlp",
        false => "linear",
    };
    let resumed = match args.resume {
        true => Some(checkpoint::load(ck_path(
            args.model.as_deref().unwrap_or(default_model),
        ))?),
        false => None,
    };
    let mut hyper = args.hyper.clone();
    let (model, seed) = match &resumed {
        Some(ck) => {
            let m = &ck.meta;
            hyper.optimizer = hyper
                .optimizer
                .or_else(|| OptimizerArg::from_str(&m.optimizer, true).ok());
            hyper.lr = (hyper.lr).or(m
                .hyperparameters
                .iter()
                .find(|(n, _)| n == "lr")
                .map(|h| h.1));
            hyper.batch = hyper.batch.or(Some(m.batch_size));
            hyper.width = hyper.width.or(m.width);
            hyper.schedule = hyper.schedule.or_else(|| Schedule::from_name(&m.schedule));
            hyper.augment = hyper.augment.or(Some(m.augment));
            (
                args.model.clone().unwrap_or(m.model.clone()),
                args.seed.unwrap_or(m.seed),
            )
        }
        None => (
            args.model.clone().unwrap_or(default_model.into()),
            args.seed.unwrap_or(0),
        ),
    };
    if !BUILTINS.contains(&model.as_str()) {
        return Err(CliError::UnknownModel(model));
    }
    let problem = Problem::load(&args.data, seed)?;
    let s = hyper.settings(&model, &problem)?;
    let epochs = args.epochs.unwrap_or(defaults(&model, problem.kind).epochs);
    let describe = Metadata {
        model: model.clone(),
        width: s.width,
        task: problem.task_text(),
        target: problem.target.clone(),
        features: problem.features.clone(),
        ..Metadata::default()
    };
    let ck_path = ck_path(&model);
    if let Some(ck) = &resumed {
        // The model first, so the message names it; the learner checks the rest.
        ck.check_matches(&describe, &[Field::Model, Field::Width], &[])
            .map_err(|m| m.at(&ck_path))?;
    }
    let plot = match args.no_plot {
        true => None,
        false => Some(
            args.plot
                .clone()
                .unwrap_or_else(|| run_dir(&model, &args.data).join("curves.svg")),
        ),
    };
    let mut learner = Learner::with_build(build(&model, s.width, &problem)?, s.optimizer())
        .batch(s.batch)
        .epochs(epochs)
        .seed(seed)
        .schedule(s.schedule)
        .options(options)
        .checkpoint(ck_path)
        .check_numerics(args.check_numerics)
        .resume(args.resume)
        .verbose(true)
        .describe(describe)
        .standardization(problem.standardization.clone())
        .communicator(comm);
    if s.augment > 0 {
        learner = learner.augment("x", s.augment);
    }
    if let Some(plot) = plot {
        learner = learner.curves(plot);
    }
    if problem.task.target() == "y" {
        learner = learner.r_squared("y");
    }
    learner.fit(&problem.train, &problem.test)?;
    Ok(())
}

/// Where a run of `model` on `data` keeps its checkpoint and curves: `runs/MODEL` on MNIST,
/// `runs/STEM-MODEL` on a file `STEM.EXT`.
fn run_dir(model: &str, data: &DataArgs) -> PathBuf {
    let runs = Path::new("runs");
    match data.data.is_dir() {
        true => runs.join(model),
        false => {
            let stem = data
                .data
                .file_stem()
                .map_or("data".into(), |s| s.to_string_lossy());
            runs.join(format!("{stem}-{model}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn max_memory_takes_bytes_or_binary_units() {
        assert_eq!(parse_bytes("4294967296"), Ok(1 << 32));
        assert_eq!(parse_bytes("8G"), Ok(8 << 30));
        assert_eq!(parse_bytes("8g"), Ok(8 << 30));
        assert_eq!(parse_bytes("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_bytes("512MB"), Ok(512 << 20));
        assert_eq!(parse_bytes("64K"), Ok(64 << 10));
        assert_eq!(parse_bytes("1T"), Ok(1 << 40));
        for bad in [
            "",
            "G",
            "-1G",
            "1.5",
            "four",
            "nanG",
            "1X",
            "1e999G",
            "99999999T",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
