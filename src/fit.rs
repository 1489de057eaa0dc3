//! Training a model of your own on data of your own: the short path.
//!
//! A [`Learner`] takes a function that builds the model for a batch size and a [`Mode`] (any
//! graph with a scalar output `loss`; its data inputs are bound to the data's columns by name),
//! an optimizer and settings, and [`Learner::fit`] trains it: the training step derived,
//! optimized and compiled once, epochs over the training data in a seeded order, every other
//! scalar output averaged as a metric, the evaluation graph run over every example of the
//! validation data after each epoch (a program per batch size, compiled on first use), and,
//! as asked, progress bars, a checkpoint after every epoch (self-describing: it holds the
//! evaluation graph), curves, a learning-rate schedule, the numerics check and resumption.
//!
//! ```no_run
//! use kiln::fit::Learner;
//! use kiln::compiler::optim::Optimizer;
//! use kiln::frontend::models::{Mode, Settings, Task, builtin};
//! # fn data() -> (kiln::runtime::data::Dataset, kiln::runtime::data::Dataset) { todo!() }
//! let (train, test) = data();
//! let model = |batch, mode| {
//!     let task = Task::Classify { classes: 3 };
//!     let settings = Settings { batch, mode, width: Some(16), input: vec![4], task };
//!     builtin("mlp", &settings).expect("a built-in")
//! };
//! let fitted = Learner::new(model, Optimizer::adam(0.01)).batch(16).epochs(50).fit(&train, &test)?;
//! println!("{:?}", fitted.history.last());
//! # Ok::<(), kiln::fit::FitError>(())
//! ```

mod progress;
mod schedule;
pub mod session;

pub use schedule::Schedule;
pub use session::Session;

use crate::compiler::collective::{Communicator, Single};
use crate::compiler::optim::Optimizer;
use crate::frontend::models::Mode;
use crate::frontend::{BuildError, Model};
use crate::runtime::checkpoint::{self, Checkpoint, CheckpointError, Field, Metadata};
use crate::runtime::data::{Dataset, Standardization};
use crate::runtime::history::EpochRecord;
use crate::runtime::plot::{PlotError, training_curves, write_svg};
use crate::runtime::train::{Augment, Metrics, TrainError};
use crate::runtime::{Options, StateError};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

/// A function that builds a model for a batch size and a mode.
pub type Build = Rc<dyn Fn(usize, Mode) -> Result<Model, BuildError>>;

/// Why fitting stopped.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// A setting is out of its range; names it and says why, before anything trains.
    #[error("{0}")]
    Setting(String),
    /// The model could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The training step could not be derived.
    #[error(transparent)]
    Derive(#[from] crate::compiler::train::TrainError),
    /// The step could not be compiled.
    #[error(transparent)]
    Compile(#[from] crate::runtime::CompileError),
    /// Training or evaluation stopped.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// A parameter could not be set.
    #[error(transparent)]
    State(#[from] StateError),
    /// The checkpoint could not be read, written or resumed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The curves could not be drawn.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// The ranks of a data-parallel job disagree (run, settings, data or parameters): names
    /// the first rank that differs from rank 0 and in what.
    #[error("{0}")]
    Ranks(String),
    /// A directory could not be created.
    #[error("cannot create directory `{}`: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
}

/// What to train and how: the model, the optimizer and the run's settings.
#[derive(Clone)]
pub struct Learner {
    build: Build,
    optimizer: Optimizer,
    batch: usize,
    epochs: usize,
    seed: u64,
    schedule: Schedule,
    augment: Option<Augment>,
    options: Options,
    eval_batch: usize,
    checkpoint: Option<PathBuf>,
    curves: Option<PathBuf>,
    check_numerics: bool,
    resume: bool,
    verbose: bool,
    r_squared: Option<String>,
    meta: Metadata,
    standardization: Standardization,
    comm: Arc<dyn Communicator>,
}

impl Learner {
    /// A learner of the model `build` makes, trained with `optimizer`: batch 32, 10 epochs,
    /// seed 0, a constant learning rate, evaluation in batches of up to 500, every core, no
    /// checkpoint, no curves, no output.
    pub fn new(
        build: impl Fn(usize, Mode) -> Result<Model, BuildError> + 'static,
        optimizer: Optimizer,
    ) -> Learner {
        Learner::with_build(Rc::new(build), optimizer)
    }

    /// [`Learner::new`] with a builder already shared.
    pub fn with_build(build: Build, optimizer: Optimizer) -> Learner {
        Learner {
            build,
            optimizer,
            batch: 32,
            epochs: 10,
            seed: 0,
            schedule: Schedule::Constant,
            augment: None,
            options: Options::default(),
            eval_batch: 500,
            checkpoint: None,
            curves: None,
            check_numerics: false,
            resume: false,
            verbose: false,
            r_squared: None,
            meta: Metadata::default(),
            standardization: Standardization::default(),
            comm: Arc::new(Single),
        }
    }

    /// Examples per training step (at least 1).
    pub fn batch(mut self, batch: usize) -> Learner {
        self.batch = batch;
        self
    }

    /// Epochs to have trained in all (a resumed run trains the ones missing).
    pub fn epochs(mut self, epochs: usize) -> Learner {
        self.epochs = epochs;
        self
    }

    /// The seed of the initial parameters, the batch order, dropout and augmentation.
    pub fn seed(mut self, seed: u64) -> Learner {
        self.seed = seed;
        self
    }

    /// How the learning rate changes over the epochs.
    pub fn schedule(mut self, schedule: Schedule) -> Learner {
        self.schedule = schedule;
        self
    }

    /// Moves the images of the column `column` (`[n, channels, height, width]`) by up to
    /// `max_shift` pixels along each axis, a new shift every epoch (0: none).
    pub fn augment(mut self, column: &str, max_shift: usize) -> Learner {
        self.augment = Some(Augment {
            column: column.into(),
            max_shift,
        });
        self
    }

    /// How the programs are compiled (threads, fusion).
    pub fn options(mut self, options: Options) -> Learner {
        self.options = options;
        self
    }

    /// The most rows an evaluation batch takes (at least 1).
    pub fn eval_batch(mut self, rows: usize) -> Learner {
        self.eval_batch = rows;
        self
    }

    /// Saves a checkpoint at `path` after every epoch, atomically.
    pub fn checkpoint(mut self, path: impl Into<PathBuf>) -> Learner {
        self.checkpoint = Some(path.into());
        self
    }

    /// Draws the loss and metric curves at `path` (SVG) at the end.
    pub fn curves(mut self, path: impl Into<PathBuf>) -> Learner {
        self.curves = Some(path.into());
        self
    }

    /// Stops at the first NaN or infinity, naming the kernel, node and source line.
    pub fn check_numerics(mut self, on: bool) -> Learner {
        self.check_numerics = on;
        self
    }

    /// Continues the run saved in the checkpoint, if there is one: the checkpoint must be of
    /// the same model, optimizer, batch size, seed, schedule and augmentation.
    pub fn resume(mut self, on: bool) -> Learner {
        self.resume = on;
        self
    }

    /// Prints a summary, a progress bar per epoch (on a terminal) and a line per epoch.
    pub fn verbose(mut self, on: bool) -> Learner {
        self.verbose = on;
        self
    }

    /// Adds `r2`, the coefficient of determination of the real-valued column `target`, to
    /// the evaluation's metrics, from its `mse` metric: `1 - mse / var(target)`.
    pub fn r_squared(mut self, target: &str) -> Learner {
        self.r_squared = Some(target.into());
        self
    }

    /// What the checkpoint records of the run besides its settings: the model's name, width,
    /// task, target and feature columns (`Metadata`'s other fields are the learner's).
    pub fn describe(mut self, meta: Metadata) -> Learner {
        self.meta = meta;
        self
    }

    /// The standardization the data went through, stored with the checkpoint so evaluation
    /// and prediction apply the same.
    pub fn standardization(mut self, s: Standardization) -> Learner {
        self.standardization = s;
        self
    }

    /// The learning rate the schedule starts from (0 when the optimizer has none).
    fn lr(&self) -> f64 {
        (self.optimizer.hyperparameters().into_iter())
            .find_map(|(n, v)| (n == "lr").then_some(v))
            .unwrap_or(0.0)
    }

    /// Trains as one rank of the data-parallel job `comm` (an MPI job, `kiln::mpi`): the
    /// batch stays the global batch, each rank steps on its share of it and the gradients are
    /// averaged over the ranks, so the ranks train the model one process would train at that
    /// batch, up to the order of float sums. Every rank starts from rank 0's parameters (also
    /// when resuming) and checks at the start that every rank runs the same model, settings,
    /// data and kiln; rank 0 alone prints, writes the checkpoints and draws the curves.
    pub fn communicator(mut self, comm: Arc<dyn Communicator>) -> Learner {
        self.comm = comm;
        self
    }

    /// Refuses settings no run can use, naming the setting.
    fn check_settings(&self) -> Result<(), FitError> {
        let bad = |s: String| Err(FitError::Setting(s));
        if self.batch == 0 {
            return bad("the batch size is 0; a step needs one example at least".into());
        }
        if self.eval_batch == 0 {
            return bad("the evaluation batch size is 0".into());
        }
        for (name, v) in self.optimizer.hyperparameters() {
            let ok = match name {
                "lr" => v.is_finite() && v > 0.0,
                "momentum" | "beta1" | "beta2" => (0.0..1.0).contains(&v),
                "eps" => v.is_finite() && v > 0.0,
                _ => v.is_finite() && v >= 0.0,
            };
            if !ok {
                return bad(format!("the optimizer's {name} is {v}, out of its range"));
            }
        }
        if self.options.threads == 0 {
            return bad("0 threads".into());
        }
        Ok(())
    }

    /// The checkpoint's metadata for the run at `epoch` and `step` with `history`.
    fn metadata(&self, session: &Session, epoch: usize, history: &[EpochRecord]) -> Metadata {
        Metadata {
            graph_hash: session.identity.clone(),
            optimizer: self.optimizer.name().into(),
            hyperparameters: (self.optimizer.hyperparameters().into_iter())
                .map(|(n, v)| (n.to_string(), v))
                .collect(),
            schedule: self.schedule.name().into(),
            augment: self.augment.as_ref().map_or(0, |a| a.max_shift),
            batch_size: self.batch,
            seed: self.seed,
            epoch,
            step: session.trainer.steps(),
            history: history.to_vec(),
            ..self.meta.clone()
        }
    }

    /// Trains on `train`, evaluating on `test` after every epoch; gives the trained model and
    /// its history. Every setting and the data's columns are checked before any step runs.
    pub fn fit(&self, train: &Dataset, test: &Dataset) -> Result<Fitted, FitError> {
        let start = Instant::now();
        self.check_settings()?;
        let mut session = Session::new(self)?;
        session.trainer.check(train)?;
        let root = self.comm.rank() == 0;
        let mut history = Vec::new();
        let resumed = match (&self.checkpoint, self.resume) {
            (Some(path), true) if path.exists() => Some(checkpoint::load(path)?),
            _ => None,
        };
        if let (Some(ck), Some(path)) = (&resumed, &self.checkpoint) {
            let fields = [
                Field::Optimizer,
                Field::Schedule,
                Field::Augment,
                Field::BatchSize,
                Field::Seed,
                Field::GraphHash,
            ];
            let expected = self.metadata(&session, 0, &[]);
            let state = session.trainer.executable().state_names();
            (ck.check_matches(&expected, &fields, &state)).map_err(|m| m.at(path))?;
            session.restore(ck)?;
            history = ck.meta.history.clone();
        }
        self.check_ranks_agree(&session, train, test, history.len())?;
        session.trainer.broadcast_state();
        let out = progress::Printer::new(self.verbose && root);
        out.summary(&session, self, train, test);
        if let (Some(ck), Some(path)) = (&resumed, &self.checkpoint) {
            out.line(&format!(
                "resuming from {} after epoch {} (step {})",
                path.display(),
                ck.meta.epoch,
                ck.meta.step
            ));
        }
        for file in self.checkpoint.iter().chain(&self.curves).filter(|_| root) {
            create_parent(file)?;
        }
        let first_step = session.trainer.steps();
        let lr = self.lr();
        for epoch in history.len() + 1..=self.epochs {
            let t = Instant::now();
            let rate = self.schedule.lr(lr, epoch, self.epochs);
            if session.trainer.hyperparameter("lr").is_some() {
                session.trainer.set_hyperparameter("lr", rate)?;
            }
            let bar = out.bar(session.trainer.batches(train.len()), epoch, self.epochs);
            let batch = self.batch;
            let trained = session.trainer.epoch(train, epoch, &mut |r| {
                progress::step(&bar, r, batch, t);
            });
            bar.finish_and_clear();
            let trained = trained?;
            let seconds = t.elapsed().as_secs_f64();
            let tested = self.evaluate(&mut session, test)?;
            let record = EpochRecord {
                epoch,
                train: trained,
                test: tested,
                seconds,
            };
            let samples = (session.trainer.batches(train.len()) * batch) as f64 / seconds;
            out.epoch(&record, self.epochs, samples);
            history.push(record);
            self.check_same_state(&session, epoch)?;
            if let Some(path) = self.checkpoint.as_ref().filter(|_| root) {
                let ck = self.snapshot(&mut session, epoch, &history)?;
                checkpoint::save(path, &ck)?;
            }
        }
        if let Some(path) = &self.checkpoint {
            out.line(&format!("checkpoint: {}", path.display()));
        }
        if let Some(path) = (self.curves.as_ref()).filter(|_| root && !history.is_empty()) {
            write_svg(path, &training_curves(&history))?;
            out.line(&format!("curves: {}", path.display()));
        }
        let steps = session.trainer.steps() - first_step;
        if let Some(report) = session.trainer.executable().profile_report(steps) {
            out.line(report.trim_end());
        }
        out.last(&history, self.epochs, start.elapsed().as_secs_f64());
        Ok(Fitted { session, history })
    }

    /// On several ranks, checks that every rank runs the same kiln, training step, settings
    /// and data as rank 0 and starts after the same epoch (`resumed`, 0 for a new run: a
    /// rank that found no checkpoint to resume from would train more epochs), comparing
    /// hashes before any rank waits for another in a step.
    fn check_ranks_agree(
        &self,
        session: &Session,
        train: &Dataset,
        test: &Dataset,
        resumed: usize,
    ) -> Result<(), FitError> {
        if self.comm.size() == 1 {
            return Ok(());
        }
        let hash = |f: &dyn Fn(&mut std::hash::DefaultHasher)| {
            let mut h = std::hash::DefaultHasher::new();
            f(&mut h);
            h.finish()
        };
        let settings = format!(
            "{:?} {:?} {} {} {} {} {:?} {} {:?} {:?}",
            self.optimizer.name(),
            self.optimizer.hyperparameters(),
            self.batch,
            self.epochs,
            self.seed,
            self.schedule.name(),
            self.augment,
            self.eval_batch,
            self.resume,
            self.checkpoint,
        );
        let aspects: [(&str, u64); 5] = [
            ("kiln version", hash(&|h| env!("CARGO_PKG_VERSION").hash(h))),
            ("training step", hash(&|h| session.identity.hash(h))),
            ("settings", hash(&|h| settings.hash(h))),
            (
                "data",
                hash(&|h| [train, test].iter().for_each(|d| hash_data(d, h))),
            ),
            ("epoch to resume after", hash(&|h| resumed.hash(h))),
        ];
        for (what, mine) in aspects {
            let all = self.comm.all_gather(mine);
            if let Some(rank) = all.iter().position(|&h| h != all[0]) {
                return Err(FitError::Ranks(format!(
                    "rank {rank}'s {what} differs from rank 0's; every rank of a job must run \
                     the same kiln with the same model, settings and data"
                )));
            }
        }
        Ok(())
    }

    /// On several ranks, checks that every rank holds the same parameters and optimizer
    /// state after `epoch` (they take the same averaged steps from the same start).
    fn check_same_state(&self, session: &Session, epoch: usize) -> Result<(), FitError> {
        if self.comm.size() == 1 {
            return Ok(());
        }
        let all = self.comm.all_gather(session.trainer.state_hash());
        match all.iter().position(|&h| h != all[0]) {
            Some(rank) => Err(FitError::Ranks(format!(
                "after epoch {epoch}, rank {rank}'s parameters differ from rank 0's"
            ))),
            None => Ok(()),
        }
    }

    /// The metrics of the session's model on `data`, with `r2` when asked.
    fn evaluate(&self, session: &mut Session, data: &Dataset) -> Result<Metrics, FitError> {
        let mut metrics = session.evaluate(data)?;
        if let Some(target) = &self.r_squared {
            add_r_squared(&mut metrics, data, target);
        }
        Ok(metrics)
    }

    /// The checkpoint of the session after `epoch`: state, metadata and evaluation graphs.
    fn snapshot(
        &self,
        session: &mut Session,
        epoch: usize,
        history: &[EpochRecord],
    ) -> Result<Checkpoint, FitError> {
        let exe = session.trainer.executable();
        let tensors = (exe.state_names().into_iter())
            .map(|(n, _)| {
                let value = exe.state(&n).expect("a state of the program");
                (n, value)
            })
            .collect();
        let mut meta = self.metadata(session, epoch, history);
        meta.graphs = session.eval_graphs()?;
        Ok(Checkpoint {
            tensors,
            meta,
            standardization: self.standardization.clone(),
        })
    }
}

/// Feeds every column of `data` (name, type, bits) to `h`.
fn hash_data(data: &Dataset, h: &mut std::hash::DefaultHasher) {
    for (name, values) in data.columns() {
        name.hash(h);
        values.hash_bits(h);
    }
}

/// Adds `r2 = 1 - mse / var(target)` to `metrics` when they hold `mse` and `data` has the
/// float column `target` with some spread.
pub fn add_r_squared(metrics: &mut Metrics, data: &Dataset, target: &str) {
    let (Some(mse), Some(y)) = (metrics.get("mse"), data.column(target)) else {
        return;
    };
    let y = y.to_f64_vec();
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let var = y.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    if var > 0.0 {
        metrics.set("r2", 1.0 - mse / var);
    }
}

/// Creates the directory `file` goes in, if missing.
fn create_parent(file: &Path) -> Result<(), FitError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| FitError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// A trained model: its compiled programs and the history of its run.
pub struct Fitted {
    /// The compiled training step and evaluator, with the trained parameters.
    pub session: Session,
    /// One record per epoch.
    pub history: Vec<EpochRecord>,
}

impl Fitted {
    /// The mean of each metric of the evaluation graph over every example of `data`.
    pub fn evaluate(&mut self, data: &Dataset) -> Result<Metrics, FitError> {
        self.session.evaluate(data)
    }
}
