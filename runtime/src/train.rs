//! Running compiled programs over a [`Dataset`]: a [`Trainer`] runs epochs of training steps,
//! an [`Evaluator`] measures loss and accuracy over every example.
//!
//! Both drive programs with one interface (the built-in models' contract): data inputs `x:
//! f32[rows, features]` and `labels: i32[rows]`, optionally `step_seed: i32[]` (a new value
//! each step, for dropout), and the optimizer's hyperparameters as scalar inputs; outputs
//! `loss` and `accuracy` (scalars). A step binds its inputs by position and allocates nothing.
//!
//! Determinism: a step's inputs are a function of the seed and the step number alone (the
//! epoch's order comes from [`epoch_order`], the step seed from the step number), so two runs
//! with the same seed compute the same losses, and a run resumed from a checkpoint continues
//! exactly as the uninterrupted run would.

use crate::data::{Dataset, epoch_order, mix};
use crate::executable::{Executable, StateError};
use kiln_compiler::interp::RunError;
use kiln_compiler::{Array, DType, Data, Type};
use smallvec::SmallVec;

/// Why training or evaluation stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The program has a data input the trainer cannot feed.
    #[error(
        "the program's input `{0}` is none of x, labels, step_seed or the optimizer's \
         hyperparameters"
    )]
    UnknownInput(String),
    /// `x`, `labels`, `loss` or `accuracy` is missing or of another type than the contract's.
    #[error("the program's {what} `{name}` is {found}, expected {expected}")]
    Interface {
        /// `input` or `output`.
        what: &'static str,
        /// Its name.
        name: &'static str,
        /// What the contract says.
        expected: String,
        /// What the program has (`missing` when absent).
        found: String,
    },
    /// The data set's examples do not fit the program's `x`.
    #[error("the data has {data} features per example, the model takes {model}")]
    Features {
        /// Features per example in the data.
        data: usize,
        /// Features per row of `x`.
        model: usize,
    },
    /// The data set is smaller than one batch.
    #[error("the data has {data} examples, fewer than one batch of {batch}")]
    TooFewExamples {
        /// Examples in the data.
        data: usize,
        /// Rows per batch.
        batch: usize,
    },
    /// The loss became NaN or infinite.
    #[error(
        "the loss is {loss} at step {step} (epoch {epoch}): training diverged; try a lower \
         learning rate{lr}"
    )]
    NonFinite {
        /// The loss.
        loss: f64,
        /// The step, counting from 1 over the whole run.
        step: u64,
        /// The epoch, counting from 1.
        epoch: usize,
        /// `" (--lr is now X)"` when the program has a learning rate.
        lr: String,
    },
    /// A hyperparameter the program does not take.
    #[error("the program has no hyperparameter `{0}`")]
    UnknownHyperparameter(String),
    /// Parameters could not be handed from one program to another.
    #[error(transparent)]
    State(#[from] StateError),
    /// The numerics check found NaN or an infinity during a training step.
    #[error("at step {step} (epoch {epoch}): {source}")]
    Numerics {
        /// The step, counting from 1 over the whole run.
        step: u64,
        /// The epoch, counting from 1.
        epoch: usize,
        /// What the check found, and where.
        source: RunError,
    },
    /// A program refused its inputs (a bug in the binding, reported rather than hidden), or
    /// the numerics check stopped an evaluation.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// Mean loss and accuracy over some examples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    /// Mean loss.
    pub loss: f64,
    /// Fraction classified correctly, in `[0, 1]`.
    pub accuracy: f64,
}

/// What a training step reports as it finishes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    /// Steps completed in the whole run, this one included.
    pub step: u64,
    /// Batches completed in this epoch, this one included.
    pub batch: usize,
    /// Batches in this epoch.
    pub batches: usize,
    /// This batch's loss.
    pub loss: f64,
    /// This batch's accuracy.
    pub accuracy: f64,
}

/// Where one data input of a program gets its value.
#[derive(Clone, Debug)]
enum Source {
    X,
    Labels,
    StepSeed,
    /// A hyperparameter: its value as given, and as the program takes it.
    Value(f64, Array),
}

/// The data inputs of one program: the batch buffers it reads and the order it takes them in.
struct Feed {
    sources: Vec<Source>,
    x: Array,
    labels: Array,
    step_seed: Array,
}

impl Feed {
    /// The feed of `exe`, whose inputs beyond `x`, `labels` and `step_seed` must be among
    /// `hyperparameters`.
    fn new(exe: &Executable, hyperparameters: &[(&str, f64)]) -> Result<Feed, TrainError> {
        let inputs = exe.input_names();
        let find = |name: &str| inputs.iter().find(|(n, _)| n == name).map(|(_, t)| t);
        let x = expect(find("x"), "input", "x", |t| {
            t.dtype == DType::F32 && t.rank() == 2
        })?;
        let rows = x.shape[0];
        let labels_ty = Type::new(DType::I32, [rows]);
        expect(find("labels"), "input", "labels", |t| *t == labels_ty)?;
        for name in ["loss", "accuracy"] {
            expect(exe.output_type(name), "output", name, |t| {
                t.dtype.is_float() && t.rank() == 0
            })?;
        }
        let sources = (inputs.iter())
            .map(|(name, ty)| match name.as_str() {
                "x" => Ok(Source::X),
                "labels" => Ok(Source::Labels),
                "step_seed" if *ty == Type::scalar(DType::I32) => Ok(Source::StepSeed),
                _ => match hyperparameters.iter().find(|(h, _)| h == name) {
                    Some(&(_, v)) if ty.rank() == 0 => {
                        Ok(Source::Value(v, Array::scalar(ty.dtype, v)))
                    }
                    _ => Err(TrainError::UnknownInput(name.clone())),
                },
            })
            .collect::<Result<_, _>>()?;
        Ok(Feed {
            sources,
            x: Array::full(DType::F32, [rows, x.shape[1]], 0.0),
            labels: Array::full(DType::I32, [rows], 0.0),
            step_seed: Array::scalar(DType::I32, 0.0),
        })
    }

    /// Rows per batch.
    fn rows(&self) -> usize {
        self.labels.numel()
    }

    /// Features per row.
    fn features(&self) -> usize {
        self.x.shape()[1]
    }

    /// Copies the examples `indices` (one per row) into the batch buffers.
    fn fill(&mut self, data: &dyn Dataset, indices: &[usize]) {
        let features = self.features();
        let (Data::F32(x), Data::I32(labels)) = (self.x.data_mut(), self.labels.data_mut()) else {
            unreachable!("x is f32 and labels i32 by construction");
        };
        for ((row, label), &i) in x.chunks_exact_mut(features).zip(labels).zip(indices) {
            *label = data.example(i, row);
        }
    }

    /// Sets the step seed.
    fn seed(&mut self, value: i32) {
        if let Data::I32(s) = self.step_seed.data_mut() {
            s[0] = value;
        }
    }

    /// Sets the hyperparameter `name`; false if the program does not take it.
    fn set(&mut self, name: &str, value: f64, names: &[(String, Type)]) -> bool {
        let mut found = false;
        for (source, (n, ty)) in self.sources.iter_mut().zip(names) {
            if n == name && matches!(source, Source::Value(..)) {
                *source = Source::Value(value, Array::scalar(ty.dtype, value));
                found = true;
            }
        }
        found
    }

    /// The value of the hyperparameter `name`, if the program takes it.
    fn get(&self, name: &str, names: &[(String, Type)]) -> Option<f64> {
        (self.sources.iter().zip(names)).find_map(|(s, (n, _))| match s {
            Source::Value(v, _) if n == name => Some(*v),
            _ => None,
        })
    }

    /// Runs `exe` on the batch buffers.
    fn run(&self, exe: &mut Executable) -> Result<(), RunError> {
        let args: SmallVec<[&Array; 8]> = (self.sources.iter())
            .map(|s| match s {
                Source::X => &self.x,
                Source::Labels => &self.labels,
                Source::StepSeed => &self.step_seed,
                Source::Value(_, a) => a,
            })
            .collect();
        exe.execute_ordered(&args)
    }
}

/// `ty` if present and `ok`, else the interface error naming `what` and `name`.
fn expect<'t>(
    ty: Option<&'t Type>,
    what: &'static str,
    name: &'static str,
    ok: impl Fn(&Type) -> bool,
) -> Result<&'t Type, TrainError> {
    let expected = match (what, name) {
        ("input", "x") => "f32[rows, features]",
        ("input", "labels") => "i32[rows]",
        _ => "a float scalar",
    };
    match ty {
        Some(t) if ok(t) => Ok(t),
        found => Err(TrainError::Interface {
            what,
            name,
            expected: expected.into(),
            found: found.map_or("missing".into(), |t| t.to_string()),
        }),
    }
}

/// A compiled training step and what it needs to run over a data set.
pub struct Trainer {
    exe: Executable,
    feed: Feed,
    names: Vec<(String, Type)>,
    seed: u64,
    step: u64,
}

impl Trainer {
    /// A trainer of the compiled step `exe`, whose hyperparameter inputs take the values
    /// `hyperparameters`, with batch orders and step seeds drawn from `seed`. The parameters
    /// and optimizer state are `exe`'s as they are.
    pub fn new(
        exe: Executable,
        hyperparameters: &[(&str, f64)],
        seed: u64,
    ) -> Result<Trainer, TrainError> {
        Ok(Trainer {
            feed: Feed::new(&exe, hyperparameters)?,
            names: exe.input_names(),
            exe,
            seed,
            step: 0,
        })
    }

    /// The compiled step, for its state and statistics.
    pub fn executable(&self) -> &Executable {
        &self.exe
    }

    /// The compiled step, to set its state.
    pub fn executable_mut(&mut self) -> &mut Executable {
        &mut self.exe
    }

    /// Rows per batch.
    pub fn batch(&self) -> usize {
        self.feed.rows()
    }

    /// Turns the compiled step's numerics check on or off
    /// ([`Executable::set_check_numerics`]); a step it stops fails with
    /// [`TrainError::Numerics`].
    pub fn set_check_numerics(&mut self, on: bool) {
        self.exe.set_check_numerics(on);
    }

    /// Steps taken so far over the whole run.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Sets the count of steps taken (resuming a run).
    pub fn set_steps(&mut self, step: u64) {
        self.step = step;
    }

    /// Sets a hyperparameter (a learning rate in a sweep or a schedule) without recompiling.
    pub fn set_hyperparameter(&mut self, name: &str, value: f64) -> Result<(), TrainError> {
        if self.feed.set(name, value, &self.names) {
            Ok(())
        } else {
            Err(TrainError::UnknownHyperparameter(name.into()))
        }
    }

    /// Batches in one epoch over `data`.
    pub fn batches(&self, data: &dyn Dataset) -> usize {
        data.len() / self.batch()
    }

    /// Trains one epoch (`epoch` counts from 1) over `data` in its shuffled order, calling
    /// `on_step` after every step; gives the mean loss and accuracy over the epoch's batches.
    /// A non-finite loss stops training with [`TrainError::NonFinite`].
    pub fn epoch(
        &mut self,
        data: &dyn Dataset,
        epoch: usize,
        on_step: &mut dyn FnMut(&StepReport),
    ) -> Result<Metrics, TrainError> {
        check_data(data, &self.feed)?;
        let batch = self.batch();
        let batches = self.batches(data);
        let order = epoch_order(data.len(), self.seed, epoch);
        let (mut loss_sum, mut accuracy_sum) = (0.0, 0.0);
        for (b, indices) in order.chunks_exact(batch).enumerate() {
            self.feed.fill(data, indices);
            self.step += 1;
            self.feed.seed(mix(self.seed ^ mix(self.step)) as i32);
            self.feed.run(&mut self.exe).map_err(|e| match e {
                RunError::NonFiniteInput { .. } | RunError::NonFiniteResult { .. } => {
                    TrainError::Numerics {
                        step: self.step,
                        epoch,
                        source: e,
                    }
                }
                e => TrainError::Run(e),
            })?;
            let (loss, accuracy) = metrics(&self.exe);
            if !loss.is_finite() {
                let lr = self.feed.get("lr", &self.names);
                return Err(TrainError::NonFinite {
                    loss,
                    step: self.step,
                    epoch,
                    lr: lr.map_or(String::new(), |lr| format!(" (--lr is now {lr:?})")),
                });
            }
            loss_sum += loss;
            accuracy_sum += accuracy;
            on_step(&StepReport {
                step: self.step,
                batch: b + 1,
                batches,
                loss,
                accuracy,
            });
        }
        Ok(Metrics {
            loss: loss_sum / batches as f64,
            accuracy: accuracy_sum / batches as f64,
        })
    }
}

/// The `loss` and `accuracy` outputs of the last run.
fn metrics(exe: &Executable) -> (f64, f64) {
    let read = |name| exe.scalar_output(name).expect("checked by Feed::new");
    (read("loss"), read("accuracy"))
}

/// `data` fits `feed` and holds one batch at least.
fn check_data(data: &dyn Dataset, feed: &Feed) -> Result<(), TrainError> {
    if data.features() != feed.features() {
        return Err(TrainError::Features {
            data: data.features(),
            model: feed.features(),
        });
    }
    if data.len() < feed.rows() {
        return Err(TrainError::TooFewExamples {
            data: data.len(),
            batch: feed.rows(),
        });
    }
    Ok(())
}

/// Loss and accuracy over every example of a data set: a program compiled at a batch size
/// and, for the examples left over, one compiled at the remainder.
pub struct Evaluator {
    parts: Vec<(Feed, Executable)>,
}

impl Evaluator {
    /// An evaluator running `full` over as many whole batches as fit and `rest` (whose batch
    /// is the remainder) over the rest; `rest` may be `None` when nothing remains.
    pub fn new(full: Executable, rest: Option<Executable>) -> Result<Evaluator, TrainError> {
        let parts = std::iter::once(full)
            .chain(rest)
            .map(|exe| Ok((Feed::new(&exe, &[])?, exe)))
            .collect::<Result<_, TrainError>>()?;
        Ok(Evaluator { parts })
    }

    /// Copies every param and state the evaluation programs read from `from`.
    pub fn load_state(&mut self, from: &Executable) -> Result<(), TrainError> {
        for (_, exe) in &mut self.parts {
            for (name, _) in exe.state_names() {
                let value = from
                    .state(&name)
                    .ok_or_else(|| StateError::Unknown(name.clone()))?;
                exe.set_state(&name, &value)?;
            }
        }
        Ok(())
    }

    /// Turns the numerics check of every program on or off
    /// ([`Executable::set_check_numerics`]).
    pub fn set_check_numerics(&mut self, on: bool) {
        self.executables_mut()
            .for_each(|e| e.set_check_numerics(on));
    }

    /// The programs, to set their state from elsewhere (a checkpoint).
    pub fn executables_mut(&mut self) -> impl Iterator<Item = &mut Executable> {
        self.parts.iter_mut().map(|(_, e)| e)
    }

    /// The mean loss and accuracy over every example of `data`, in order.
    pub fn evaluate(&mut self, data: &dyn Dataset) -> Result<Metrics, TrainError> {
        let (mut loss, mut correct, mut start) = (0.0, 0.0, 0);
        for (feed, exe) in &mut self.parts {
            check_data(data, feed)?;
            let rows = feed.rows();
            while data.len() - start >= rows {
                let indices: Vec<usize> = (start..start + rows).collect();
                feed.fill(data, &indices);
                feed.run(exe)?;
                let (l, a) = metrics(exe);
                loss += l * rows as f64;
                correct += a * rows as f64;
                start += rows;
            }
        }
        let n = start.max(1) as f64;
        Ok(Metrics {
            loss: loss / n,
            accuracy: correct / n,
        })
    }
}
