//! A model compiled for training and evaluation: what [`super::Learner::fit`] and a sweep's
//! trials run.

use super::{Build, FitError, Learner};
use crate::compiler::Graph;
use crate::compiler::collective::Communicator;
use crate::compiler::optim::Optimizer;
use crate::compiler::train::{train_step, train_step_on_ranks};
use crate::frontend::Model;
use crate::frontend::models::Mode;
use crate::runtime::checkpoint::{Checkpoint, graph_hash};
use crate::runtime::data::Dataset;
use crate::runtime::train::{Evaluator, GraphSource, Metrics, Trainer};
use crate::runtime::{Executable, Options};
use std::sync::Arc;

/// A model's training step compiled, with an evaluator of its evaluation graph.
pub struct Session {
    /// The compiled training step.
    pub trainer: Trainer,
    /// The evaluation graph over every example of some data.
    pub evaluator: Evaluator,
    /// This rank's training step's graph.
    pub step: Graph,
    /// The hash of the training step one process would run at the whole batch: what
    /// identifies the run's checkpoints, whatever the number of ranks that trains it.
    pub identity: String,
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
            learner.comm.clone(),
        )
        .map(|mut s| {
            s.trainer.set_augment(learner.augment.clone());
            s.set_check_numerics(learner.check_numerics);
            s
        })
    }

    /// Builds and compiles the training step of `build`'s model at `batch` rows with
    /// `optimizer`, parameters drawn with `seed`, and an evaluator in batches of up to
    /// `eval_batch` rows, as one rank of the data-parallel job `comm`: each rank's step takes
    /// its share of the `batch` rows and averages the gradients over the ranks
    /// ([`train_step_on_ranks`]), and the evaluator splits the examples between the ranks.
    pub fn compile(
        build: &Build,
        optimizer: &Optimizer,
        batch: usize,
        seed: u64,
        eval_batch: usize,
        options: &Options,
        comm: Arc<dyn Communicator>,
    ) -> Result<Session, FitError> {
        let ranks = comm.size();
        if !batch.is_multiple_of(ranks) {
            return Err(FitError::Setting(format!(
                "the batch of {batch} rows does not split evenly over {ranks} ranks"
            )));
        }
        let model = build(batch / ranks, Mode::Train)?;
        let step = train_step_on_ranks(&model.graph, "loss", optimizer, ranks)?;
        let identity = match ranks {
            1 => graph_hash(&step),
            _ => graph_hash(&train_step(
                &build(batch, Mode::Train)?.graph,
                "loss",
                optimizer,
            )?),
        };
        let exe = Executable::compile(&step, options)?;
        let mut trainer = Trainer::new(exe, &optimizer.hyperparameters(), seed)?;
        trainer.set_communicator(comm.clone());
        let eval = build.clone();
        let graphs: GraphSource = Box::new(move |rows| Ok(Some(eval(rows, Mode::Eval)?.graph)));
        let mut evaluator = Evaluator::new(eval_batch, graphs, options.clone());
        evaluator.set_communicator(comm);
        let mut session = Session {
            trainer,
            evaluator,
            step,
            identity,
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
