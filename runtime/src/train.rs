//! Running compiled programs over a [`Dataset`]: a [`Trainer`] runs epochs of training steps,
//! an [`Evaluator`] measures a model over every example.
//!
//! Both bind a program's data inputs by name: an input named like a column of the data takes
//! that column's examples (its element type and example shape must be the input's, less the
//! first axis, the batch); `step_seed: i32[]` takes a new value each step (for dropout); any
//! other input must be one of the optimizer's hyperparameters, fed as given. Every scalar
//! float output is a metric (`loss`, `accuracy`, `mse`, ...): a trainer averages them over an
//! epoch's batches, an evaluator over every example. A step binds its inputs by position into
//! batch buffers allocated once, and allocates nothing.
//!
//! Determinism: a step's inputs are a function of the seed and the step number alone (the
//! epoch's order comes from [`epoch_order`], the step seed from the step number, an image's
//! shift from the seed, the epoch and its index), so two runs with the same seed compute the
//! same losses, and a run resumed from a checkpoint continues exactly as the uninterrupted run
//! would.

use crate::data::{Dataset, copy_rows, epoch_order, mix, shift_images};
use crate::executable::{Executable, Options, StateError};
use kiln_compiler::collective::{Communicator, Single};
use kiln_compiler::interp::RunError;
use kiln_compiler::{Array, DType, Data, Graph, Type};
use smallvec::SmallVec;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// An error from outside the runtime (building a graph), carried as it is.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why training or evaluation stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A data input of the program is not a column of the data, nor anything the trainer feeds.
    #[error(
        "the program's input `{input}` takes {takes}, but it is not a column of the data (its \
         columns: {columns}), nor step_seed, nor a hyperparameter{hyperparameters}"
    )]
    MissingColumn {
        /// The program's input.
        input: String,
        /// What it takes: `examples of type f32[3]`, or `a scalar f32[]`.
        takes: String,
        /// The data's columns, by name, separated by commas.
        columns: String,
        /// `" (the optimizer's: lr, momentum)"`, or nothing when there are none.
        hyperparameters: String,
    },
    /// A column's examples are not of the type the program's input takes.
    #[error(
        "the program's input `{input}` takes examples of type {expected}, but column \
         `{input}` of the data holds {found}"
    )]
    ColumnType {
        /// The input's and the column's name.
        input: String,
        /// One example as the program takes it.
        expected: Box<Type>,
        /// One example as the column holds it.
        found: Box<Type>,
    },
    /// The program's data inputs disagree on the batch, or one has no batch axis.
    #[error("the program's data inputs disagree on the batch: {0}")]
    Batch(String),
    /// An output the trainer needs is missing or not a float scalar.
    #[error("the program's output `{name}` is {found}, expected a float scalar")]
    Output {
        /// Its name.
        name: String,
        /// What the program has (`missing` when absent).
        found: String,
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
    /// The program of some batch size could not be built or compiled.
    #[error("the program for batches of {batch}: {source}")]
    Program {
        /// Its rows per batch.
        batch: usize,
        /// Why.
        source: BoxError,
    },
    /// A program refused its inputs (a bug in the binding, reported rather than hidden), or
    /// the numerics check stopped an evaluation.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// The mean of each metric (every scalar float output) over some examples, in the program's
/// output order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    values: Vec<(String, f64)>,
}

impl Metrics {
    /// Metrics of these names and values.
    pub fn new(values: Vec<(String, f64)>) -> Metrics {
        Metrics { values }
    }

    /// The metric `name`.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// Every metric by name, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.values.iter().map(|(n, v)| (n.as_str(), *v))
    }

    /// The metric `name` set to `value` (added after the others when absent).
    pub fn set(&mut self, name: &str, value: f64) {
        match self.values.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.values.push((name.to_string(), value)),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// What a training step reports as it finishes.
#[derive(Clone, Copy, Debug)]
pub struct StepReport<'a> {
    /// Steps completed in the whole run, this one included.
    pub step: u64,
    /// Batches completed in this epoch, this one included.
    pub batch: usize,
    /// Batches in this epoch.
    pub batches: usize,
    /// This batch's metrics.
    pub metrics: &'a Metrics,
}

/// Where one data input of a program gets its value.
#[derive(Clone, Debug)]
enum Source {
    /// A column of the data, by its batch buffer's index in `Feed::columns`.
    Column(usize),
    StepSeed,
    /// A hyperparameter: its value as given, and as the program takes it.
    Value(f64, Array),
    /// A scalar nothing feeds (`Feed::bind` refuses to run such a program).
    Unfed(Array),
}

/// The data inputs of one program: the batch buffers it reads, the order it takes them in,
/// and the metrics it reports.
struct Feed {
    sources: Vec<Source>,
    /// The columns the program reads, by name, with their batch buffers.
    columns: Vec<(String, Array)>,
    /// Scalar inputs that neither the trainer nor a column can feed.
    unfed: Vec<(String, Type)>,
    step_seed: Array,
    rows: usize,
    /// The scalar float outputs, by name, with their values after the last run.
    metrics: Metrics,
}

impl Feed {
    /// The feed of `exe`: inputs named `step_seed` (an `i32` scalar) and in `hyperparameters`
    /// are fed by the trainer, every other one by the column of its name.
    fn new(exe: &Executable, hyperparameters: &[(&str, f64)]) -> Result<Feed, TrainError> {
        let mut columns: Vec<(String, Array)> = Vec::new();
        let mut unfed = Vec::new();
        let mut sources = Vec::new();
        for (name, ty) in exe.input_names() {
            let source = if name == "step_seed" && ty == Type::scalar(DType::I32) {
                Source::StepSeed
            } else if let Some(&(_, v)) = hyperparameters.iter().find(|(h, _)| *h == name) {
                if ty.rank() != 0 {
                    return Err(TrainError::Batch(format!(
                        "the hyperparameter `{name}` is {ty}, not a scalar"
                    )));
                }
                Source::Value(v, Array::scalar(ty.dtype, v))
            } else if ty.rank() == 0 {
                // No column can feed a scalar: `bind` reports it, naming the data's columns.
                unfed.push((name.clone(), ty.clone()));
                Source::Unfed(Array::scalar(ty.dtype, 0.0))
            } else {
                columns.push((name.clone(), Array::full(ty.dtype, &ty.shape, 0.0)));
                Source::Column(columns.len() - 1)
            };
            sources.push(source);
        }
        let rows = match columns.first() {
            None => return Err(TrainError::Batch("none is a column of examples".into())),
            Some((first, a)) => {
                let rows = a.shape()[0];
                if let Some((other, b)) = columns.iter().find(|(_, b)| b.shape()[0] != rows) {
                    return Err(TrainError::Batch(format!(
                        "`{first}` has {rows} rows, `{other}` has {}",
                        b.shape()[0]
                    )));
                }
                rows
            }
        };
        let metrics = (exe.output_names().into_iter())
            .filter(|(_, t)| t.rank() == 0 && t.dtype.is_float())
            .map(|(n, _)| (n, f64::NAN))
            .collect();
        Ok(Feed {
            sources,
            columns,
            unfed,
            step_seed: Array::scalar(DType::I32, 0.0),
            rows,
            metrics: Metrics::new(metrics),
        })
    }

    /// The index in `data`'s columns of each column this feed reads, after checking that
    /// every one is there with the input's example type.
    fn bind(&self, data: &Dataset, hyperparameters: &str) -> Result<Vec<usize>, TrainError> {
        if let Some((input, ty)) = self.unfed.first() {
            return Err(TrainError::MissingColumn {
                input: input.clone(),
                takes: format!("a scalar {ty}"),
                columns: data.names().join(", "),
                hyperparameters: hyperparameters.to_string(),
            });
        }
        (self.columns.iter())
            .map(|(name, buffer)| {
                let expected = Type::new(buffer.dtype(), &buffer.shape()[1..]);
                let Some(found) = data.example_type(name) else {
                    return Err(TrainError::MissingColumn {
                        input: name.clone(),
                        takes: format!("examples of type {expected}"),
                        columns: data.names().join(", "),
                        hyperparameters: hyperparameters.to_string(),
                    });
                };
                if found != expected {
                    return Err(TrainError::ColumnType {
                        input: name.clone(),
                        expected: Box::new(expected),
                        found: Box::new(found),
                    });
                }
                let index = data.names().iter().position(|n| n == name);
                Ok(index.expect("found by name just above"))
            })
            .collect()
    }

    /// Copies the examples `indices` (one per row) of the bound columns into the batch
    /// buffers.
    fn fill(&mut self, data: &Dataset, bound: &[usize], indices: &[usize]) {
        for ((_, buffer), &c) in self.columns.iter_mut().zip(bound) {
            copy_rows(&data.columns()[c].1, indices, buffer);
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

    /// The hyperparameters, for messages: `" (the optimizer's: lr, momentum)"` or nothing.
    fn hyperparameters(&self, names: &[(String, Type)]) -> String {
        let given: Vec<&str> = (self.sources.iter().zip(names))
            .filter(|(s, _)| matches!(s, Source::Value(..)))
            .map(|(_, (n, _))| n.as_str())
            .collect();
        match given.is_empty() {
            true => String::new(),
            false => format!(" (the optimizer's: {})", given.join(", ")),
        }
    }

    /// Runs `exe` on the batch buffers and reads the metrics.
    fn run(&mut self, exe: &mut Executable) -> Result<(), RunError> {
        let args: SmallVec<[&Array; 8]> = (self.sources.iter())
            .map(|s| match s {
                Source::Column(c) => &self.columns[*c].1,
                Source::StepSeed => &self.step_seed,
                Source::Value(_, a) | Source::Unfed(a) => a,
            })
            .collect();
        exe.execute_ordered(&args)?;
        for (name, value) in &mut self.metrics.values {
            *value = exe
                .scalar_output(name)
                .expect("a scalar output, found by Feed::new");
        }
        Ok(())
    }
}

/// The largest shift of an image column's augmentation ([`shift_images`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Augment {
    /// The column of images, `[n, channels, height, width]`.
    pub column: String,
    /// The largest shift in pixels along each axis (0: none).
    pub max_shift: usize,
}

/// A compiled training step and what it needs to run over a data set.
pub struct Trainer {
    exe: Executable,
    feed: Feed,
    names: Vec<(String, Type)>,
    seed: u64,
    step: u64,
    augment: Option<Augment>,
    /// The data-parallel job this trainer is one rank of.
    comm: Arc<dyn Communicator>,
}

impl Trainer {
    /// A trainer of the compiled step `exe`, whose hyperparameter inputs take the values
    /// `hyperparameters`, with batch orders and step seeds drawn from `seed`. The parameters
    /// and optimizer state are `exe`'s as they are. The step must have a float scalar output
    /// `loss`.
    pub fn new(
        exe: Executable,
        hyperparameters: &[(&str, f64)],
        seed: u64,
    ) -> Result<Trainer, TrainError> {
        let feed = Feed::new(&exe, hyperparameters)?;
        if feed.metrics.get("loss").is_none() {
            return Err(TrainError::Output {
                name: "loss".into(),
                found: exe
                    .output_type("loss")
                    .map_or("missing".into(), |t| t.to_string()),
            });
        }
        Ok(Trainer {
            feed,
            names: exe.input_names(),
            exe,
            seed,
            step: 0,
            augment: None,
            comm: Arc::new(Single),
        })
    }

    /// Makes this trainer one rank of the data-parallel job `comm`: each global batch of
    /// [`Trainer::global_batch`] rows, drawn from the same seeded epoch order on every rank,
    /// is split into the ranks' shares of [`Trainer::batch`] rows in rank order, and the
    /// compiled step's `all_reduce`s sum over `comm` (a step built by
    /// `kiln_compiler::train::train_step_on_ranks` for `comm.size()` ranks).
    pub fn set_communicator(&mut self, comm: Arc<dyn Communicator>) {
        self.exe.set_communicator(comm.clone());
        self.comm = comm;
    }

    /// Gives every rank rank 0's parameters and optimizer state (the start of a data-parallel
    /// run, from initial values or a checkpoint).
    pub fn broadcast_state(&mut self) {
        if self.comm.size() == 1 {
            return;
        }
        for (name, _) in self.exe.state_names() {
            let a = self.exe.state(&name).expect("a state of the program");
            // Every element type widens to f64 exactly and back.
            let values = a.to_f64_vec();
            let mut bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.comm.broadcast(&mut bytes);
            let values =
                (bytes.chunks_exact(8)).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")));
            let b = Array::new(a.shape(), Data::from_f64(a.dtype(), values)).expect("its shape");
            self.exe.set_state(&name, &b).expect("its type");
        }
    }

    /// A hash of the bits of every parameter and optimizer state: equal on every rank of a
    /// data-parallel run whose ranks took the same steps.
    pub fn state_hash(&self) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        for (name, _) in self.exe.state_names() {
            let a = self.exe.state(&name).expect("a state of the program");
            name.hash(&mut h);
            a.hash_bits(&mut h);
        }
        h.finish()
    }

    /// The job this trainer is one rank of.
    pub fn communicator(&self) -> &Arc<dyn Communicator> {
        &self.comm
    }

    /// Rows per step over all ranks: [`Trainer::batch`] times the ranks.
    pub fn global_batch(&self) -> usize {
        self.batch() * self.comm.size()
    }

    /// The compiled step, for its state and statistics.
    pub fn executable(&self) -> &Executable {
        &self.exe
    }

    /// The compiled step, to set its state.
    pub fn executable_mut(&mut self) -> &mut Executable {
        &mut self.exe
    }

    /// Rows per step on this rank.
    pub fn batch(&self) -> usize {
        self.feed.rows
    }

    /// Moves the training images of a column by a few pixels, a new shift every epoch
    /// ([`shift_images`]); `None` turns it off.
    pub fn set_augment(&mut self, augment: Option<Augment>) {
        self.augment = augment.filter(|a| a.max_shift > 0);
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

    /// The current value of the hyperparameter `name`, if the step takes it.
    pub fn hyperparameter(&self, name: &str) -> Option<f64> {
        self.feed.get(name, &self.names)
    }

    /// Batches (steps) in one epoch over `len` examples.
    pub fn batches(&self, len: usize) -> usize {
        len / self.global_batch()
    }

    /// Checks that `data` has every column the step reads, of the right types, and one batch
    /// of examples at least; the error names the input and the column.
    pub fn check(&self, data: &Dataset) -> Result<(), TrainError> {
        self.bind(data).map(|_| ())
    }

    /// [`Trainer::check`], giving the bound columns' indices.
    fn bind(&self, data: &Dataset) -> Result<Vec<usize>, TrainError> {
        let bound = self
            .feed
            .bind(data, &self.feed.hyperparameters(&self.names))?;
        if data.len() < self.global_batch() {
            return Err(TrainError::TooFewExamples {
                data: data.len(),
                batch: self.global_batch(),
            });
        }
        Ok(bound)
    }

    /// Trains one epoch (`epoch` counts from 1) over `data` in its shuffled order, calling
    /// `on_step` after every step; gives the mean of each metric over the epoch's batches.
    /// A non-finite loss stops training with [`TrainError::NonFinite`].
    pub fn epoch(
        &mut self,
        data: &Dataset,
        epoch: usize,
        on_step: &mut dyn FnMut(&StepReport),
    ) -> Result<Metrics, TrainError> {
        let bound = self.bind(data)?;
        let (batch, rank) = (self.batch(), self.comm.rank());
        let batches = self.batches(data.len());
        let order = epoch_order(data.len(), self.seed, epoch);
        let augmented = (self.augment.as_ref()).and_then(|a| {
            Some((
                self.feed.columns.iter().position(|(n, _)| *n == a.column)?,
                a,
            ))
        });
        let mut sums = self.feed.metrics.clone();
        sums.values.iter_mut().for_each(|(_, v)| *v = 0.0);
        for (b, global) in order.chunks_exact(self.global_batch()).enumerate() {
            let indices = &global[rank * batch..(rank + 1) * batch];
            self.feed.fill(data, &bound, indices);
            if let Some((c, a)) = augmented {
                let images = &mut self.feed.columns[c].1;
                shift_images(images, indices, a.max_shift, self.seed, epoch);
            }
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
            let loss = self
                .feed
                .metrics
                .get("loss")
                .expect("checked by Trainer::new");
            if !loss.is_finite() {
                let lr = self.feed.get("lr", &self.names);
                return Err(TrainError::NonFinite {
                    loss,
                    step: self.step,
                    epoch,
                    lr: lr.map_or(String::new(), |lr| format!(" (--lr is now {lr:?})")),
                });
            }
            for ((_, sum), (_, v)) in sums.values.iter_mut().zip(&self.feed.metrics.values) {
                *sum += v;
            }
            on_step(&StepReport {
                step: self.step,
                batch: b + 1,
                batches,
                metrics: &self.feed.metrics,
            });
        }
        sums.values
            .iter_mut()
            .for_each(|(_, v)| *v /= batches as f64);
        Ok(sums)
    }
}

/// Where an evaluator's programs come from: a graph of the evaluation model for a batch size,
/// or `None` when there is none of that size.
pub type GraphSource = Box<dyn FnMut(usize) -> Result<Option<Graph>, BoxError>>;

/// A model measured over every example of a data set: programs compiled per batch size on
/// first use and cached (a full batch, and the remainder, or batches of one where no graph of
/// the remainder's size can be had).
pub struct Evaluator {
    batch: usize,
    graphs: GraphSource,
    options: Options,
    check_numerics: bool,
    /// The programs compiled so far, by rows per batch.
    programs: Vec<(Feed, Executable)>,
    /// The params and state every program runs with.
    state: Vec<(String, Array)>,
    /// The data-parallel job whose ranks share the examples.
    comm: Arc<dyn Communicator>,
}

impl Evaluator {
    /// An evaluator running batches of at most `batch` rows, whose programs are the graphs of
    /// `graphs` compiled with `options`.
    pub fn new(batch: usize, graphs: GraphSource, options: Options) -> Evaluator {
        Evaluator {
            batch: batch.max(1),
            graphs,
            options,
            check_numerics: false,
            programs: Vec::new(),
            state: Vec::new(),
            comm: Arc::new(Single),
        }
    }

    /// Makes this evaluator one rank of the job `comm`: [`Evaluator::evaluate`] measures this
    /// rank's share of the examples and sums the shares' results over the ranks.
    pub fn set_communicator(&mut self, comm: Arc<dyn Communicator>) {
        self.comm = comm;
    }

    /// Sets the params and state every program runs with (those a program does not read are
    /// kept for later programs).
    pub fn set_state(&mut self, state: Vec<(String, Array)>) -> Result<(), TrainError> {
        for (_, exe) in &mut self.programs {
            load(exe, &state)?;
        }
        self.state = state;
        Ok(())
    }

    /// Copies every param and state of `from`.
    pub fn load_state(&mut self, from: &Executable) -> Result<(), TrainError> {
        let state = (from.state_names().into_iter())
            .map(|(n, _)| {
                let value = from.state(&n).expect("a state of the program");
                (n, value)
            })
            .collect();
        self.set_state(state)
    }

    /// Turns the numerics check of every program on or off
    /// ([`Executable::set_check_numerics`]).
    pub fn set_check_numerics(&mut self, on: bool) {
        self.check_numerics = on;
        self.programs
            .iter_mut()
            .for_each(|(_, e)| e.set_check_numerics(on));
    }

    /// The program of `rows` rows per batch, compiled on first use; `None` if there is no
    /// graph of that size.
    fn program(&mut self, rows: usize) -> Result<Option<usize>, TrainError> {
        if let Some(i) = self.programs.iter().position(|(f, _)| f.rows == rows) {
            return Ok(Some(i));
        }
        let program = |source: BoxError| TrainError::Program {
            batch: rows,
            source,
        };
        let Some(graph) = (self.graphs)(rows).map_err(program)? else {
            return Ok(None);
        };
        let mut exe =
            Executable::compile(&graph, &self.options).map_err(|e| program(Box::new(e)))?;
        load(&mut exe, &self.state)?;
        exe.set_check_numerics(self.check_numerics);
        let feed = Feed::new(&exe, &[])?;
        if feed.rows != rows {
            return Err(program(
                format!("its graph takes batches of {} rows", feed.rows).into(),
            ));
        }
        self.programs.push((feed, exe));
        Ok(Some(self.programs.len() - 1))
    }

    /// The programs and how many rows each runs, covering `len` examples in order: full
    /// batches, then the remainder in one program or, without one, in batches of one.
    fn cover(&mut self, len: usize) -> Result<Vec<(usize, usize)>, TrainError> {
        let mut runs = Vec::new();
        let mut start = 0;
        while start < len {
            let rows = self.batch.min(len - start);
            let (p, rows) = match self.program(rows)? {
                Some(p) => (p, rows),
                None => match self.program(1)? {
                    Some(p) => (p, 1),
                    None => {
                        return Err(TrainError::Program {
                            batch: rows,
                            source: "there is no graph of that size, nor of one row".into(),
                        });
                    }
                },
            };
            runs.push((p, start));
            start += rows;
        }
        Ok(runs)
    }

    /// The mean of each metric over every example of `data`. On several ranks, each rank
    /// measures its contiguous share of the examples, and the sums are summed over the ranks.
    pub fn evaluate(&mut self, data: &Dataset) -> Result<Metrics, TrainError> {
        let (rank, size) = (self.comm.rank(), self.comm.size());
        let share = rank * data.len() / size..(rank + 1) * data.len() / size;
        let mut sums: Option<Metrics> = None;
        for (p, start) in self.cover(share.len())? {
            let (feed, exe) = &mut self.programs[p];
            let bound = feed.bind(data, "")?;
            let first = share.start + start;
            let indices: Vec<usize> = (first..first + feed.rows).collect();
            feed.fill(data, &bound, &indices);
            feed.run(exe)?;
            let sums = sums.get_or_insert_with(|| {
                let zeros = feed.metrics.iter().map(|(n, _)| (n.to_string(), 0.0));
                Metrics::new(zeros.collect())
            });
            for (name, v) in feed.metrics.iter() {
                let sum = sums.get(name).unwrap_or(0.0);
                sums.set(name, sum + v * feed.rows as f64);
            }
        }
        if size > 1 && !data.is_empty() {
            // A rank with no examples still takes part in the sum, with zeros.
            let mine = match sums.take() {
                Some(s) => s,
                None => self.zero_metrics(data.len().min(self.batch))?,
            };
            let mut values: Vec<f64> = mine.iter().map(|(_, v)| v).collect();
            self.comm.all_reduce_f64(&mut values);
            let names = mine.iter().map(|(n, _)| n.to_string());
            sums = Some(Metrics::new(names.zip(values).collect()));
        }
        let mut means = sums.unwrap_or_default();
        let n = data.len().max(1) as f64;
        means.values.iter_mut().for_each(|(_, v)| *v /= n);
        Ok(means)
    }

    /// Every metric of the program of `rows` rows (or of one row), at zero.
    fn zero_metrics(&mut self, rows: usize) -> Result<Metrics, TrainError> {
        let p = match self.program(rows)? {
            Some(p) => p,
            None => self.program(1)?.ok_or_else(|| TrainError::Program {
                batch: rows,
                source: "there is no graph of that size, nor of one row".into(),
            })?,
        };
        let names = self.programs[p]
            .0
            .metrics
            .iter()
            .map(|(n, _)| (n.to_string(), 0.0));
        Ok(Metrics::new(names.collect()))
    }

    /// The output `name` over every example of `data`, the batches' results joined along
    /// the first axis. Inputs that no column of `data` feeds (the target, when predicting)
    /// are fed zeros: an output that does not depend on them is what it would be with any
    /// other values.
    pub fn predict(&mut self, data: &Dataset, name: &str) -> Result<Array, TrainError> {
        let mut parts: Vec<Array> = Vec::new();
        for (p, start) in self.cover(data.len())? {
            let (feed, exe) = &mut self.programs[p];
            let indices: Vec<usize> = (start..start + feed.rows).collect();
            for (column, buffer) in &mut feed.columns {
                match data.column(column) {
                    Some(values)
                        if values.shape()[1..] == buffer.shape()[1..]
                            && values.dtype() == buffer.dtype() =>
                    {
                        copy_rows(values, &indices, buffer)
                    }
                    Some(values) => {
                        return Err(TrainError::ColumnType {
                            input: column.clone(),
                            expected: Box::new(Type::new(buffer.dtype(), &buffer.shape()[1..])),
                            found: Box::new(Type::new(values.dtype(), &values.shape()[1..])),
                        });
                    }
                    None => *buffer = Array::full(buffer.dtype(), buffer.shape(), 0.0),
                }
            }
            feed.run(exe)?;
            let out = exe.output(name).ok_or_else(|| TrainError::Output {
                name: name.into(),
                found: "missing".into(),
            })?;
            parts.push(out);
        }
        concat_rows(parts)
    }
}

/// Sets every param and state of `exe` from `state`; one it lacks is an error naming it.
fn load(exe: &mut Executable, state: &[(String, Array)]) -> Result<(), TrainError> {
    for (name, _) in exe.state_names() {
        let value = (state.iter().find(|(n, _)| *n == name)).ok_or(StateError::Unknown(name))?;
        exe.set_state(&value.0, &value.1)?;
    }
    Ok(())
}

/// Arrays of one type but the first extent joined along the first axis.
fn concat_rows(parts: Vec<Array>) -> Result<Array, TrainError> {
    let Some(first) = parts.first() else {
        return Err(TrainError::Output {
            name: "predictions".into(),
            found: "empty: there are no examples".into(),
        });
    };
    if first.shape().is_empty() {
        return Err(TrainError::Output {
            name: "predictions".into(),
            found: "a scalar, with no batch axis".into(),
        });
    }
    let mut shape = first.shape().to_vec();
    shape[0] = parts.iter().map(|p| p.shape()[0]).sum();
    let mut values = Vec::with_capacity(shape.iter().product());
    for p in &parts {
        values.extend(p.to_f64_vec());
    }
    let data = Data::from_f64(first.dtype(), values);
    Ok(Array::new(shape, data).expect("the parts fill the shape"))
}
