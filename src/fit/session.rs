//! A model compiled for training and evaluation: what [`super::Learner::fit`] and a sweep's
//! trials run.

use super::{Build, FitError, Learner};
use crate::compiler::Graph;
use crate::compiler::optim::Optimizer;
use crate::compiler::train::train_step;
use crate::frontend::Model;
use crate::frontend::models::Mode;
use crate::runtime::checkpoint::Checkpoint;
use crate::runtime::data::Dataset;
use crate::runtime::train::{Evaluator, GraphSource, Metrics, Trainer};
use crate::runtime::{Executable, Options};

/// A model's training step compiled, with an evaluator of its evaluation graph.
pub struct Session {
    /// The compiled training step.
    pub trainer: Trainer,
    /// The evaluation graph over every example of some data.
    pub evaluator: Evaluator,
    /// The training step's graph (its hash identifies checkpoints).
    pub step: Graph,
    /// The model in training mode (its initializers).
    pub model: Model,
    build: Build,
    eval_batch: usize,
}

impl Session {
    /// Builds and compiles `learner`'s training step, with the parameters at their initial
    /// values for its seed, and its evaluator.
    pub fn new(learner: &Learner) -> Result<Session, FitError> {
        Session::compile(
            &learner.build,
            &learner.optimizer,
            learner.batch,
            learner.seed,
            learner.eval_batch,
            &learner.options,
        )
        .map(|mut s| {
            s.trainer.set_augment(learner.augment.clone());
            s.set_check_numerics(learner.check_numerics);
            s
        })
    }

    /// Builds and compiles the training step of `build`'s model at `batch` rows with
    /// `optimizer`, parameters drawn with `seed`, and an evaluator in batches of up to
    /// `eval_batch` rows.
    pub fn compile(
        build: &Build,
        optimizer: &Optimizer,
        batch: usize,
        seed: u64,
        eval_batch: usize,
        options: &Options,
    ) -> Result<Session, FitError> {
        let model = build(batch, Mode::Train)?;
        let step = train_step(&model.graph, "loss", optimizer)?;
        let exe = Executable::compile(&step, options)?;
        let trainer = Trainer::new(exe, &optimizer.hyperparameters(), seed)?;
        let eval = build.clone();
        let graphs: GraphSource = Box::new(move |rows| Ok(Some(eval(rows, Mode::Eval)?.graph)));
        let mut session = Session {
            trainer,
            evaluator: Evaluator::new(eval_batch, graphs, options.clone()),
            step,
            model,
            build: build.clone(),
            eval_batch,
        };
        session.reset(seed)?;
        Ok(session)
    }

    /// Turns the numerics check of the training step and the evaluator on or off.
    pub fn set_check_numerics(&mut self, on: bool) {
        self.trainer.set_check_numerics(on);
        self.evaluator.set_check_numerics(on);
    }

    /// Puts every parameter and optimizer state back to its initial value for `seed` and the
    /// step count to zero (a sweep's next trial on the same compiled step).
    pub fn reset(&mut self, seed: u64) -> Result<(), FitError> {
        for (name, value) in self.model.initial_values(&self.step, seed) {
            self.trainer.executable_mut().set_state(&name, &value)?;
        }
        self.trainer.set_steps(0);
        Ok(())
    }

    /// Sets every param and optimizer state from the checkpoint `ck`, and the step count.
    pub fn restore(&mut self, ck: &Checkpoint) -> Result<(), FitError> {
        let exe = self.trainer.executable_mut();
        for (name, _) in exe.state_names() {
            let value = ck.tensor(&name).ok_or_else(|| {
                FitError::State(crate::runtime::StateError::Unknown(name.clone()))
            })?;
            exe.set_state(&name, value)?;
        }
        self.trainer.set_steps(ck.meta.step);
        Ok(())
    }

    /// The mean of each metric of the evaluation graph over every example of `data`, with the
    /// training step's current parameters.
    pub fn evaluate(&mut self, data: &Dataset) -> Result<Metrics, FitError> {
        self.evaluator.load_state(self.trainer.executable())?;
        Ok(self.evaluator.evaluate(data)?)
    }

    /// The evaluation graph at the evaluation batch size and at one row: what a checkpoint
    /// stores so that it can be evaluated on any number of examples without the model's code.
    pub fn eval_graphs(&self) -> Result<Vec<(usize, Graph)>, FitError> {
        let mut sizes = vec![self.eval_batch];
        if self.eval_batch > 1 {
            sizes.push(1);
        }
        (sizes.into_iter())
            .map(|rows| Ok((rows, (self.build)(rows, Mode::Eval)?.graph)))
            .collect()
    }
}

/// An evaluator of the model saved in `ck`, from the evaluation graphs it holds, with its
/// parameters: batches of the largest graph's rows, and the rest one row at a time. `None`
/// when the checkpoint holds no graph (written before kiln stored them).
pub fn stored_evaluator(ck: &Checkpoint, options: &Options) -> Result<Option<Evaluator>, FitError> {
    let Some(&(batch, _)) = ck.meta.graphs.first() else {
        return Ok(None);
    };
    let graphs = ck.meta.graphs.clone();
    let source: GraphSource = Box::new(move |rows| {
        Ok((graphs.iter())
            .find(|(r, _)| *r == rows)
            .map(|(_, g)| g.clone()))
    });
    let mut evaluator = Evaluator::new(batch, source, options.clone());
    evaluator.set_state(ck.tensors.clone())?;
    Ok(Some(evaluator))
}
