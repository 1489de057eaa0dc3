//! A built-in model compiled for training and evaluation: what `kiln train`, `kiln sweep`,
//! `kiln eval` and `kiln predict` share.

use super::CliError;
use super::train::Schedule;
use kiln_compiler::Graph;
use kiln_compiler::optim::Optimizer;
use kiln_compiler::train::train_step;
use kiln_frontend::Model;
use kiln_frontend::models::{Mode, Settings, builtin};
use kiln_runtime::checkpoint::{Checkpoint, Metadata};
use kiln_runtime::data::{Dataset, Images, Shifted};
use kiln_runtime::train::{Evaluator, Metrics, StepReport, Trainer};
use kiln_runtime::{Executable, Options};
use std::path::Path;

/// Rows per evaluation batch at most (the remainder runs in a second program).
pub const EVAL_BATCH: usize = 500;

/// What a model is compiled with.
#[derive(Clone, Debug)]
pub struct Spec {
    /// A built-in model's name.
    pub model: String,
    /// Its hidden width, `None` for its default.
    pub width: Option<usize>,
    /// Rows per training batch.
    pub batch: usize,
    /// The optimizer, with the hyperparameter values to train with.
    pub optimizer: Optimizer,
    /// Seed of the initial parameters, the batch order and the step seeds.
    pub seed: u64,
    /// How the learning rate changes over the epochs (a runtime input: not compiled).
    pub schedule: Schedule,
    /// The training images' largest random shift in pixels (0: none).
    pub augment: usize,
    /// How to compile.
    pub options: Options,
}

/// The built-in `name` built with `settings`.
pub fn model(name: &str, settings: &Settings) -> Result<Model, CliError> {
    builtin(name, settings)
        .ok_or_else(|| CliError::UnknownModel(name.to_string()))?
        .map_err(CliError::Build)
}

/// A model's training step compiled, with its evaluator over `test`.
pub struct Session {
    /// The compiled training step.
    pub trainer: Trainer,
    /// Loss and accuracy over the test data.
    pub evaluator: Evaluator,
    /// The training step's graph (its hash identifies checkpoints).
    pub step: Graph,
    /// The model in training mode (its initializers).
    pub model: Model,
    /// The base learning rate the schedule starts from.
    pub lr: f64,
    /// How the learning rate changes over the epochs.
    pub schedule: Schedule,
    /// The training images' largest random shift in pixels.
    pub augment: usize,
    /// The run's seed (it draws the shifts).
    pub seed: u64,
}

impl Session {
    /// Builds and compiles `spec`'s training step and an evaluator for `test`, with the
    /// parameters at their initial values.
    pub fn new(spec: &Spec, test: &dyn Dataset) -> Result<Session, CliError> {
        let settings = Settings {
            batch: spec.batch,
            mode: Mode::Train,
            width: spec.width,
        };
        let model = model(&spec.model, &settings)?;
        let step = train_step(&model.graph, "loss", &spec.optimizer)?;
        let exe = Executable::compile(&step, &spec.options)?;
        let mut trainer = Trainer::new(exe, &spec.optimizer.hyperparameters(), spec.seed)?;
        for (name, value) in model.initial_values(&step, spec.seed) {
            trainer.executable_mut().set_state(&name, &value)?;
        }
        let evaluator = evaluator(&spec.model, spec.width, test.len(), &spec.options)?;
        let lr = (spec.optimizer.hyperparameters().into_iter())
            .find_map(|(n, v)| (n == "lr").then_some(v))
            .unwrap_or(0.0);
        Ok(Session {
            trainer,
            evaluator,
            step,
            model,
            lr,
            schedule: spec.schedule,
            augment: spec.augment,
            seed: spec.seed,
        })
    }

    /// Turns the numerics check of the training step and the evaluator on or off.
    pub fn set_check_numerics(&mut self, on: bool) {
        self.trainer.set_check_numerics(on);
        self.evaluator.set_check_numerics(on);
    }

    /// Puts every parameter and optimizer state back to its initial value for `seed` and the
    /// step count to zero (a sweep's next trial on the same compiled step).
    pub fn reset(&mut self, seed: u64) -> Result<(), CliError> {
        for (name, value) in self.model.initial_values(&self.step, seed) {
            self.trainer.executable_mut().set_state(&name, &value)?;
        }
        self.trainer.set_steps(0);
        Ok(())
    }

    /// Trains epoch `epoch` of `epochs` over `train` (shifted as the run augments) at the
    /// schedule's learning rate for it.
    pub fn epoch(
        &mut self,
        train: &Images,
        epoch: usize,
        epochs: usize,
        on_step: &mut dyn FnMut(&StepReport),
    ) -> Result<Metrics, CliError> {
        let lr = self.schedule.lr(self.lr, epoch, epochs);
        self.trainer.set_hyperparameter("lr", lr)?;
        let train = Shifted::new(train, self.augment, self.seed, epoch);
        Ok(self.trainer.epoch(&train, epoch, on_step)?)
    }

    /// The loss and accuracy on `test` with the current parameters.
    pub fn evaluate(&mut self, test: &dyn Dataset) -> Result<Metrics, CliError> {
        self.evaluator.load_state(self.trainer.executable())?;
        Ok(self.evaluator.evaluate(test)?)
    }
}

/// Sets every param and state of `exe` from the checkpoint `ck` read from `path`; a missing
/// tensor or one of another type is an error naming it.
pub fn restore(exe: &mut Executable, ck: &Checkpoint, path: &Path) -> Result<(), CliError> {
    let state = exe.state_names();
    ck.check_matches(&Metadata::default(), &[], &state)
        .map_err(|m| m.at(path))?;
    for (name, _) in state {
        let value = ck.tensor(&name).expect("checked just above");
        exe.set_state(&name, value)?;
    }
    Ok(())
}

/// An evaluator of the built-in `name` over `examples` examples: batches of up to
/// [`EVAL_BATCH`] rows and a second program for the remainder.
pub fn evaluator(
    name: &str,
    width: Option<usize>,
    examples: usize,
    options: &Options,
) -> Result<Evaluator, CliError> {
    let full = EVAL_BATCH.min(examples).max(1);
    let compile = |batch: usize| -> Result<Executable, CliError> {
        let settings = Settings {
            batch,
            mode: Mode::Eval,
            width,
        };
        Ok(Executable::compile(
            &model(name, &settings)?.graph,
            options,
        )?)
    };
    let rest = match examples % full {
        0 => None,
        r => Some(compile(r)?),
    };
    Ok(Evaluator::new(compile(full)?, rest)?)
}
