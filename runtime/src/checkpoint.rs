//! Checkpoints of a training run: every param and optimizer state tensor, and what the run was
//! (model, optimizer, hyperparameters, progress, history), in one safetensors file.
//!
//! # Format
//!
//! A [safetensors](https://huggingface.co/docs/safetensors) file: tensors little-endian as
//! `F32`, `F64`, `I32` or `BOOL` (one byte, 0 or 1), named as the graph names its params and
//! states (`fc1.w`, `fc1.w.m`, `optimizer.step`). Its `__metadata__` string map holds:
//!
//! | key | value |
//! | --- | --- |
//! | `format` | `kiln-checkpoint 2` (format and version; version 1 files are read too) |
//! | `model`, `optimizer`, `graph_hash`, `kiln_version` | text |
//! | `width` | a whole number, or `none` |
//! | `batch_size`, `seed`, `epoch`, `step` | whole numbers |
//! | `hyperparameters` | `name=value` pairs separated by spaces: `lr=0.1 momentum=0.9` |
//! | `history` | a line per epoch: `epoch=3 seconds=1.25 train.loss=0.5 test.loss=0.6 test.accuracy=0.8` (version 1: `epoch train_loss train_accuracy test_loss test_accuracy seconds`) |
//! | `graph.eval.<rows>` | the evaluation graph at `rows` rows per batch, as `.kir` text (optional) |
//! | `task`, `target` | what the model predicts (`classify`, `regress`, or empty) and from which column (optional) |
//! | `features` | the table columns that form the input `x`, a line each (optional) |
//! | `standardize` | the columns standardized before the model sees them, a line each (optional) |
//!
//! A standardized column's means and standard deviations are the tensors
//! `data.standardize.<column>.mean` and `.std` (`F64`). A checkpoint that holds evaluation
//! graphs is self-describing: evaluating or predicting needs the file alone, not the code
//! that built the model. [`load`] refuses one whose graph does not parse or reads a param or
//! state the file lacks, or has of another type.
//!
//! Floats are written as Rust's `{:?}` writes them, the shortest text that reads back to the
//! same value (`0.1`, `1e-7`, `-0.0`, `inf`, `NaN`), so every value but a NaN's payload
//! round-trips bit for bit.
//!
//! # Safety of the file
//!
//! [`save`] replaces the file atomically: the previous checkpoint survives a crash at any point
//! of a save. [`load`] reads nothing a header claims before checking it against the file's
//! length, and refuses a truncated, corrupt or foreign file with [`CheckpointError::Invalid`].

use crate::atomic::{self, Staged, Step};
use crate::data::Standardization;
use crate::history::EpochRecord;
use crate::train::Metrics;
use kiln_compiler::text::{PrintOptions, parse, print, print_with};
use kiln_compiler::{Array, DType, Data, Graph, Type};
use safetensors::tensor::TensorInfo;
use safetensors::{Dtype, SafeTensorError, SafeTensors, View};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The version of kiln that writes checkpoints, recorded in each.
pub const KILN_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The value of the `format` metadata key: the format's name and version.
const FORMAT: &str = "kiln-checkpoint 2";

/// The format of checkpoints before evaluation graphs and metrics by name; still read.
const FORMAT_1: &str = "kiln-checkpoint 1";

/// The prefix of the tensors that hold a standardization's means and deviations.
const STANDARDIZE: &str = "data.standardize.";

/// The longest header [`load`] reads (safetensors' own limit); a file claiming more is refused
/// unread.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// A training run's state at the end of an epoch.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// Every param and optimizer state by name (`fc1.w`, `fc1.w.m`, `optimizer.step`). Names are
    /// unique; [`load`] gives them sorted by name.
    pub tensors: Vec<(String, Array)>,
    /// What the run was and how far it got.
    pub meta: Metadata,
    /// The standardization of the data's columns the model was trained on (empty: none).
    pub standardization: Standardization,
}

/// What a training run was and how far it got.
#[derive(Clone, Debug)]
pub struct Metadata {
    /// The model's name (`mlp`, `lenet`).
    pub model: String,
    /// The model's width setting, for models that have one.
    pub width: Option<usize>,
    /// [`graph_hash`] of the graph the run trained.
    pub graph_hash: String,
    /// The optimizer's name (`sgd`, `adam`).
    pub optimizer: String,
    /// The optimizer's hyperparameters (`lr`, `momentum`, ...). Names are non-empty and hold no
    /// whitespace and no `=`.
    pub hyperparameters: Vec<(String, f64)>,
    /// How the learning rate changes over the epochs (`constant`, `cosine`).
    pub schedule: String,
    /// The largest shift, in pixels, of the training images' augmentation (0: none).
    pub augment: usize,
    /// Examples per training step.
    pub batch_size: usize,
    /// The seed of the run's initialization and shuffling.
    pub seed: u64,
    /// Epochs completed.
    pub epoch: usize,
    /// Training steps completed.
    pub step: u64,
    /// The kiln version that wrote the checkpoint ([`KILN_VERSION`] by default).
    pub kiln_version: String,
    /// One record per completed epoch, oldest first.
    pub history: Vec<EpochRecord>,
    /// The model's evaluation graph at some batch sizes (rows per batch, graph), largest
    /// first; empty in checkpoints written before kiln stored them.
    pub graphs: Vec<(usize, Graph)>,
    /// What the model predicts: `classify`, `regress`, or empty when not said.
    pub task: String,
    /// The table column the model predicts, when trained on a table.
    pub target: String,
    /// The table columns that form the input `x`, in order, when trained on a table.
    pub features: Vec<String>,
}

impl Default for Metadata {
    /// Empty names, zero numbers, no history or graphs, and this kiln's version.
    fn default() -> Metadata {
        Metadata {
            model: String::new(),
            width: None,
            graph_hash: String::new(),
            optimizer: String::new(),
            hyperparameters: Vec::new(),
            schedule: String::new(),
            augment: 0,
            batch_size: 0,
            seed: 0,
            epoch: 0,
            step: 0,
            kiln_version: KILN_VERSION.to_string(),
            history: Vec::new(),
            graphs: Vec::new(),
            task: String::new(),
            target: String::new(),
            features: Vec::new(),
        }
    }
}

/// A metadata field that [`Checkpoint::check_matches`] can require to be equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// [`Metadata::model`].
    Model,
    /// [`Metadata::width`].
    Width,
    /// [`Metadata::graph_hash`].
    GraphHash,
    /// [`Metadata::optimizer`].
    Optimizer,
    /// [`Metadata::hyperparameters`], in order.
    Hyperparameters,
    /// [`Metadata::schedule`].
    Schedule,
    /// [`Metadata::augment`].
    Augment,
    /// [`Metadata::batch_size`].
    BatchSize,
    /// [`Metadata::seed`].
    Seed,
}

impl Field {
    /// Every field: what a resumed run must match.
    pub const ALL: [Field; 9] = [
        Field::Model,
        Field::Width,
        Field::GraphHash,
        Field::Optimizer,
        Field::Hyperparameters,
        Field::Schedule,
        Field::Augment,
        Field::BatchSize,
        Field::Seed,
    ];

    /// The field's key in the file's metadata.
    fn key(self) -> &'static str {
        match self {
            Field::Model => "model",
            Field::Width => "width",
            Field::GraphHash => "graph_hash",
            Field::Optimizer => "optimizer",
            Field::Hyperparameters => "hyperparameters",
            Field::Schedule => "schedule",
            Field::Augment => "augment",
            Field::BatchSize => "batch_size",
            Field::Seed => "seed",
        }
    }

    /// The field's value in `meta` as the file stores it; equal texts are equal values.
    fn text(self, meta: &Metadata) -> String {
        match self {
            Field::Model => meta.model.clone(),
            Field::Width => meta.width.map_or_else(|| "none".into(), |w| w.to_string()),
            Field::GraphHash => meta.graph_hash.clone(),
            Field::Optimizer => meta.optimizer.clone(),
            Field::Hyperparameters => (meta.hyperparameters.iter())
                .map(|(name, v)| format!("{name}={v:?}"))
                .collect::<Vec<_>>()
                .join(" "),
            Field::Schedule => meta.schedule.clone(),
            Field::Augment => meta.augment.to_string(),
            Field::BatchSize => meta.batch_size.to_string(),
            Field::Seed => meta.seed.to_string(),
        }
    }
}

impl fmt::Display for Field {
    /// The field in words: `model`, `graph hash`, `hyperparameter list`, `batch size`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Model => "model",
            Field::Width => "width",
            Field::GraphHash => "graph hash",
            Field::Optimizer => "optimizer",
            Field::Hyperparameters => "hyperparameter list",
            Field::Schedule => "learning-rate schedule",
            Field::Augment => "augmentation shift",
            Field::BatchSize => "batch size",
            Field::Seed => "seed",
        })
    }
}

/// How a checkpoint differs from the run that wants to use it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// A metadata field differs.
    #[error("its {field} is `{checkpoint}`, not `{expected}`")]
    Field {
        /// The field.
        field: Field,
        /// Its value in the checkpoint, as the file stores it.
        checkpoint: String,
        /// The value expected.
        expected: String,
    },
    /// The checkpoint lacks a tensor the model has.
    #[error("it has no tensor `{0}`")]
    MissingTensor(String),
    /// A tensor has another element type or shape.
    #[error("tensor `{name}` is {checkpoint} in the checkpoint, {expected} in the model")]
    TensorType {
        /// The tensor's name.
        name: String,
        /// Its type in the checkpoint.
        checkpoint: Box<Type>,
        /// Its type in the model.
        expected: Box<Type>,
    },
}

impl Mismatch {
    /// This mismatch as an error naming the checkpoint file at `path`.
    pub fn at(self, path: impl AsRef<Path>) -> CheckpointError {
        CheckpointError::Mismatch {
            path: path.as_ref().to_path_buf(),
            source: self,
        }
    }
}

/// Why a checkpoint could not be saved, loaded or used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be opened or read.
    #[error("cannot read checkpoint `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The file is truncated, corrupt, or not a kiln checkpoint.
    #[error("`{}` is not a valid kiln checkpoint: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// The checkpoint cannot be stored as it is (two tensors of one name, say).
    #[error("cannot save checkpoint `{}`: {reason}", path.display())]
    Unsavable {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// The file could not be written; a previous checkpoint there is untouched.
    #[error("cannot write checkpoint `{}`: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The checkpoint is of another model, graph or run (see [`Mismatch::at`]).
    #[error("checkpoint `{}` does not fit this run: {source}", path.display())]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        source: Mismatch,
    },
}

/// A stable hash of `g` (FNV-1a, 64 bits, as 16 hex digits) over its text form without source
/// locations: equal for graphs that print alike, in any run, on any machine.
pub fn graph_hash(g: &Graph) -> String {
    let text = print_with(g, PrintOptions { locations: false });
    format!("{:016x}", fnv1a(text.as_bytes()))
}

/// The 64-bit FNV-1a hash of `bytes`.
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    (bytes.iter()).fold(OFFSET_BASIS, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

impl Checkpoint {
    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&Array> {
        (self.tensors.iter()).find_map(|(n, a)| (n == name).then_some(a))
    }

    /// Checks that this checkpoint fits a run: each of `fields` equal in `self.meta` and
    /// `expected` (other fields of `expected` are not looked at), and each of `state` (names and
    /// types, as [`crate::Executable::state_names`] gives them) present with its exact type.
    /// Tensors of the checkpoint that `state` does not name are allowed: evaluation needs the
    /// params, not the optimizer's state. The first difference found is the error.
    pub fn check_matches(
        &self,
        expected: &Metadata,
        fields: &[Field],
        state: &[(String, Type)],
    ) -> Result<(), Mismatch> {
        for &field in fields {
            let (checkpoint, expected) = (field.text(&self.meta), field.text(expected));
            if checkpoint != expected {
                return Err(Mismatch::Field {
                    field,
                    checkpoint,
                    expected,
                });
            }
        }
        for (name, ty) in state {
            let a = self
                .tensor(name)
                .ok_or_else(|| Mismatch::MissingTensor(name.clone()))?;
            if a.ty() != *ty {
                return Err(Mismatch::TensorType {
                    name: name.clone(),
                    checkpoint: Box::new(a.ty()),
                    expected: Box::new(ty.clone()),
                });
            }
        }
        Ok(())
    }
}

/// Saves `ck` to `path` atomically: a temporary file beside it is written, synced and renamed
/// over `path`, and the directory synced. On error, or a crash at any point, a previous
/// checkpoint at `path` is intact.
pub fn save(path: impl AsRef<Path>, ck: &Checkpoint) -> Result<(), CheckpointError> {
    save_through(path.as_ref(), ck, None).map(drop)
}

/// [`save`], stopping after `stop_after` if given (tests stop to simulate a crash).
fn save_through(
    path: &Path,
    ck: &Checkpoint,
    stop_after: Option<Step>,
) -> Result<Staged, CheckpointError> {
    let bytes = encode(path, ck)?;
    atomic::write_through(path, |w| w.write_all(&bytes), stop_after).map_err(|source| {
        CheckpointError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// The checkpoint as the bytes of a safetensors file.
fn encode(path: &Path, ck: &Checkpoint) -> Result<Vec<u8>, CheckpointError> {
    let unsavable = |reason: String| CheckpointError::Unsavable {
        path: path.to_path_buf(),
        reason,
    };
    let mut names = HashSet::new();
    for (name, _) in &ck.tensors {
        if name == "__metadata__" {
            return Err(unsavable(
                "a tensor is named `__metadata__`, which safetensors reserves".into(),
            ));
        }
        if !names.insert(name) {
            return Err(unsavable(format!("two tensors are named `{name}`")));
        }
    }
    if let Some((name, _)) = (ck.meta.hyperparameters.iter())
        .find(|(name, _)| name.is_empty() || name.contains(|c: char| c == '=' || c.is_whitespace()))
    {
        return Err(unsavable(format!(
            "hyperparameter name `{name}` is empty or holds whitespace or `=`"
        )));
    }
    if let Some(name) = (ck.meta.history.iter())
        .flat_map(|r| r.train.iter().chain(r.test.iter()))
        .map(|(n, _)| n)
        .find(|n| n.is_empty() || n.contains(|c: char| c == '=' || c.is_whitespace()))
    {
        return Err(unsavable(format!(
            "metric name `{name}` is empty or holds whitespace or `=`"
        )));
    }
    if let Some((name, _)) = ck.tensors.iter().find(|(n, _)| n.starts_with(STANDARDIZE)) {
        return Err(unsavable(format!(
            "tensor `{name}` begins with `{STANDARDIZE}`, which checkpoints reserve"
        )));
    }
    let bad_line = |n: &String| n.is_empty() || n.contains('\n');
    let standardized = ck.standardization.columns();
    if standardized.iter().any(|(n, ..)| bad_line(n)) || ck.meta.features.iter().any(bad_line) {
        return Err(unsavable(
            "a standardized or feature column's name is empty or holds a line break".into(),
        ));
    }
    let standardization: Vec<(String, &Array)> = (standardized.iter())
        .flat_map(|(n, mean, std)| {
            [
                (format!("{STANDARDIZE}{n}.mean"), mean),
                (format!("{STANDARDIZE}{n}.std"), std),
            ]
        })
        .collect();
    let tensors = (ck.tensors.iter())
        .map(|(name, a)| (name.as_str(), Tensor(a)))
        .chain(standardization.iter().map(|(n, a)| (n.as_str(), Tensor(a))));
    safetensors::serialize(tensors, Some(encode_metadata(ck))).map_err(|e| unsavable(e.to_string()))
}

/// The metadata of `ck` as the file's `__metadata__` map.
fn encode_metadata(ck: &Checkpoint) -> HashMap<String, String> {
    let meta = &ck.meta;
    let history = (meta.history.iter())
        .map(|r| {
            let mut line = format!("epoch={} seconds={:?}", r.epoch, r.seconds);
            for (split, metrics) in [("train", &r.train), ("test", &r.test)] {
                for (name, v) in metrics.iter() {
                    line += &format!(" {split}.{name}={v:?}");
                }
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n");
    let standardize = (ck.standardization.columns().iter())
        .map(|(n, ..)| n.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let fields = Field::ALL.map(|f| (f.key(), f.text(meta)));
    let rest = [
        ("format", FORMAT.to_string()),
        ("epoch", meta.epoch.to_string()),
        ("step", meta.step.to_string()),
        ("kiln_version", meta.kiln_version.clone()),
        ("history", history),
        ("task", meta.task.clone()),
        ("target", meta.target.clone()),
        ("features", meta.features.join("\n")),
        ("standardize", standardize),
    ];
    let graphs = (meta.graphs.iter()).map(|(rows, g)| (format!("graph.eval.{rows}"), print(g)));
    (fields.into_iter().chain(rest))
        .map(|(k, v)| (k.to_string(), v))
        .chain(graphs)
        .collect()
}

/// An array as safetensors sees it: little-endian bytes.
struct Tensor<'a>(&'a Array);

impl View for Tensor<'_> {
    fn dtype(&self) -> Dtype {
        match self.0.dtype() {
            DType::F32 => Dtype::F32,
            DType::F64 => Dtype::F64,
            DType::I32 => Dtype::I32,
            DType::Bool => Dtype::BOOL,
        }
    }

    fn shape(&self) -> &[usize] {
        self.0.shape()
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(match self.0.data() {
            Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::Bool(v) => v.iter().map(|&b| u8::from(b)).collect(),
        })
    }

    fn data_len(&self) -> usize {
        self.0.numel() * self.0.dtype().size_bytes()
    }
}

/// Loads the checkpoint at `path`, its tensors sorted by name. Refuses, naming the file and the
/// cause, a file that is truncated, corrupt, not safetensors, or safetensors but not a kiln
/// checkpoint.
pub fn load(path: impl AsRef<Path>) -> Result<Checkpoint, CheckpointError> {
    let path = path.as_ref();
    load_bytes(&read_file(path)?, path)
}

/// The checkpoint in `bytes`, the contents of a checkpoint file; errors name the file as
/// `path`. Checks and errors are [`load`]'s.
pub fn load_bytes(bytes: &[u8], path: impl AsRef<Path>) -> Result<Checkpoint, CheckpointError> {
    let path = path.as_ref();
    let (header_len, header) = SafeTensors::read_metadata(bytes).map_err(|e| {
        let reason = match e {
            SafeTensorError::MetadataIncompleteBuffer => {
                "its tensors' data does not end where the file does (truncated, or bytes added)"
                    .to_string()
            }
            e => e.to_string(),
        };
        invalid(path, reason)
    })?;
    let map = (header.metadata().as_ref()).ok_or_else(|| {
        invalid(
            path,
            "it is a safetensors file without metadata, not a kiln checkpoint",
        )
    })?;
    let fields = Fields { map, path };
    let mut meta = decode_metadata(&fields)?;
    // `read_metadata` checked that the header and the tensors' data fill the file exactly.
    let data = bytes.get(8 + header_len..).unwrap_or_default();
    let mut tensors = (header.tensors().into_iter())
        .map(|(name, info)| {
            let array = decode_tensor(&name, info, data).map_err(|e| invalid(path, e))?;
            Ok((name, array))
        })
        .collect::<Result<Vec<_>, CheckpointError>>()?;
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let standardization = standardization(&fields, &mut tensors)?;
    meta.graphs = graphs(&fields, &tensors)?;
    Ok(Checkpoint {
        tensors,
        meta,
        standardization,
    })
}

/// The standardization the metadata names, its tensors taken out of `tensors`.
fn standardization(
    fields: &Fields<'_>,
    tensors: &mut Vec<(String, Array)>,
) -> Result<Standardization, CheckpointError> {
    let names = fields.optional("standardize");
    let mut columns = Vec::new();
    for name in names.lines() {
        let mut take = |part: &str| {
            let key = format!("{STANDARDIZE}{name}.{part}");
            let i = tensors.iter().position(|(n, _)| *n == key).ok_or_else(|| {
                invalid(
                    fields.path,
                    format!("it standardizes `{name}` but has no `{key}`"),
                )
            })?;
            Ok::<_, CheckpointError>(tensors.remove(i).1)
        };
        let (mean, std) = (take("mean")?, take("std")?);
        columns.push((name.to_string(), mean, std));
    }
    if let Some((name, _)) = tensors.iter().find(|(n, _)| n.starts_with(STANDARDIZE)) {
        return Err(invalid(
            fields.path,
            format!("tensor `{name}` belongs to no standardized column"),
        ));
    }
    Standardization::from_parts(columns).map_err(|e| invalid(fields.path, e.to_string()))
}

/// The evaluation graphs of the metadata, largest batch first, each parsed and checked
/// against `tensors`: every param and state it reads is there, of its type.
fn graphs(
    fields: &Fields<'_>,
    tensors: &[(String, Array)],
) -> Result<Vec<(usize, Graph)>, CheckpointError> {
    let mut graphs = Vec::new();
    let mut keys: Vec<&String> = fields.map.keys().collect();
    keys.sort();
    for key in keys {
        let text = &fields.map[key];
        let Some(rows) = key.strip_prefix("graph.eval.") else {
            continue;
        };
        let bad = |reason: String| invalid(fields.path, format!("metadata `{key}`: {reason}"));
        let rows: usize = (rows.parse().ok())
            .filter(|&r| r > 0)
            .ok_or_else(|| bad("not a whole number of rows".into()))?;
        let g = parse(text).map_err(|e| bad(format!("the graph does not parse: {e}")))?;
        for id in g.inputs() {
            let node = g.node(id);
            let Some((kind, name)) = node.op.as_input() else {
                continue;
            };
            if kind == kiln_compiler::InputKind::Data {
                continue;
            }
            match tensors.iter().find(|(n, _)| n == name) {
                None => {
                    return Err(bad(format!(
                        "the graph reads `{name}`, a tensor the file lacks"
                    )));
                }
                Some((_, a)) if a.ty() != node.ty => {
                    return Err(bad(format!(
                        "the graph reads `{name}` as {}, the file holds {}",
                        node.ty,
                        a.ty()
                    )));
                }
                Some(_) => {}
            }
        }
        graphs.push((rows, g));
    }
    graphs.sort_by_key(|(rows, _)| std::cmp::Reverse(*rows));
    Ok(graphs)
}

/// [`CheckpointError::Invalid`] for the file at `path`.
fn invalid(path: &Path, reason: impl Into<String>) -> CheckpointError {
    CheckpointError::Invalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The bytes of the file at `path`, after checking that the header length its first 8 bytes
/// claim is within [`MAX_HEADER_BYTES`] and the file.
fn read_file(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    let read_err = |source| CheckpointError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let file_len = file.metadata().map_err(read_err)?.len();
    let mut prefix = [0; 8];
    if file_len < 8 {
        return Err(invalid(
            path,
            format!("it holds {file_len} bytes, fewer than a safetensors header's 8"),
        ));
    }
    file.read_exact(&mut prefix).map_err(read_err)?;
    let header_len = u64::from_le_bytes(prefix);
    if header_len > MAX_HEADER_BYTES {
        return Err(invalid(
            path,
            format!(
                "it claims a header of {header_len} bytes, more than the {MAX_HEADER_BYTES} \
                 kiln reads (not a safetensors file?)"
            ),
        ));
    }
    if header_len > file_len - 8 {
        return Err(invalid(
            path,
            format!(
                "it claims a header of {header_len} bytes and holds {file_len} bytes in all \
                 (truncated, or not a safetensors file)"
            ),
        ));
    }
    // `file_len` is what the file holds, not what it claims.
    let mut bytes = Vec::with_capacity(file_len as usize);
    bytes.extend_from_slice(&prefix);
    file.take(file_len - 8)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    Ok(bytes)
}

/// The tensor `name` described by `info` (checked by safetensors against the data's length)
/// from the data section `data`.
fn decode_tensor(name: &str, info: &TensorInfo, data: &[u8]) -> Result<Array, String> {
    let (start, end) = info.data_offsets;
    let bytes =
        (data.get(start..end)).ok_or_else(|| format!("tensor `{name}` lies outside the file"))?;
    let elements = match info.dtype {
        Dtype::F32 => Data::F32(from_le(bytes, f32::from_le_bytes)),
        Dtype::F64 => Data::F64(from_le(bytes, f64::from_le_bytes)),
        Dtype::I32 => Data::I32(from_le(bytes, i32::from_le_bytes)),
        Dtype::BOOL => Data::Bool(
            (bytes.iter())
                .map(|&b| match b {
                    0 => Ok(false),
                    1 => Ok(true),
                    _ => Err(format!("tensor `{name}` holds the byte {b} as a bool")),
                })
                .collect::<Result<_, _>>()?,
        ),
        other => {
            return Err(format!(
                "tensor `{name}` is of type {other:?}; kiln reads F32, F64, I32 and BOOL"
            ));
        }
    };
    Array::new(&info.shape, elements).map_err(|e| format!("tensor `{name}`: {e}"))
}

/// Little-endian elements of `N` bytes each (a partial last element is dropped, and then the
/// element count does not fill the shape).
fn from_le<const N: usize, T>(bytes: &[u8], element: fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .as_chunks::<N>()
        .0
        .iter()
        .map(|&b| element(b))
        .collect()
}

/// The `__metadata__` map of the checkpoint file at `path`, being loaded.
struct Fields<'a> {
    map: &'a HashMap<String, String>,
    path: &'a Path,
}

impl Fields<'_> {
    /// The value of `key`.
    fn text(&self, key: &str) -> Result<&str, CheckpointError> {
        (self.map.get(key).map(String::as_str))
            .ok_or_else(|| invalid(self.path, format!("its metadata has no `{key}`")))
    }

    /// The value of `key`, or empty when absent (keys added after version 1).
    fn optional(&self, key: &str) -> &str {
        self.map.get(key).map_or("", String::as_str)
    }

    /// The value of `key` read by `read`, which says `what` it reads.
    fn read<T>(
        &self,
        key: &str,
        what: &str,
        read: impl Fn(&str) -> Option<T>,
    ) -> Result<T, CheckpointError> {
        let text = self.text(key)?;
        read(text).ok_or_else(|| {
            invalid(
                self.path,
                format!("metadata `{key}` is not {what}: `{text}`"),
            )
        })
    }

    /// The value of `key` as a whole number.
    fn number<T: FromStr>(&self, key: &str) -> Result<T, CheckpointError> {
        self.read(key, "a whole number", |s| s.parse().ok())
    }

    /// The `history`, a line per epoch.
    fn history(&self, version: u32) -> Result<Vec<EpochRecord>, CheckpointError> {
        let text = self.text("history")?;
        (text.lines().enumerate())
            .map(|(i, line)| {
                let (record, what) = match version {
                    1 => (epoch_record_1(line), "an epoch and five numbers"),
                    _ => (
                        epoch_record(line),
                        "`epoch=N seconds=S` and `split.metric=value`s",
                    ),
                };
                record.ok_or_else(|| {
                    let reason = format!(
                        "line {} of metadata `history` is not {what}: `{line}`",
                        i + 1
                    );
                    invalid(self.path, reason)
                })
            })
            .collect()
    }
}

/// The metadata of a file being loaded.
fn decode_metadata(fields: &Fields<'_>) -> Result<Metadata, CheckpointError> {
    let format = (fields.text("format")).map_err(|_| {
        invalid(
            fields.path,
            "it is a safetensors file, not a kiln checkpoint",
        )
    })?;
    let version = match format {
        FORMAT => 2,
        FORMAT_1 => 1,
        _ => {
            return Err(invalid(
                fields.path,
                format!("its format is `{format}`; this kiln reads `{FORMAT}` and `{FORMAT_1}`"),
            ));
        }
    };
    Ok(Metadata {
        model: fields.text(Field::Model.key())?.to_string(),
        width: fields.read(Field::Width.key(), "a whole number or `none`", |s| {
            if s == "none" {
                Some(None)
            } else {
                s.parse().ok().map(Some)
            }
        })?,
        graph_hash: fields.text(Field::GraphHash.key())?.to_string(),
        optimizer: fields.text(Field::Optimizer.key())?.to_string(),
        hyperparameters: fields.read(
            Field::Hyperparameters.key(),
            "`name=value` pairs separated by spaces",
            |s| {
                (s.split_whitespace())
                    .map(|pair| {
                        let (name, value) = pair.split_once('=')?;
                        Some((name.to_string(), value.parse().ok()?))
                    })
                    .collect()
            },
        )?,
        schedule: fields.text(Field::Schedule.key())?.to_string(),
        augment: fields.number(Field::Augment.key())?,
        batch_size: fields.number(Field::BatchSize.key())?,
        seed: fields.number(Field::Seed.key())?,
        epoch: fields.number("epoch")?,
        step: fields.number("step")?,
        kiln_version: fields.text("kiln_version")?.to_string(),
        history: fields.history(version)?,
        graphs: Vec::new(),
        task: fields.optional("task").to_string(),
        target: fields.optional("target").to_string(),
        features: fields
            .optional("features")
            .lines()
            .map(String::from)
            .collect(),
    })
}

/// An [`EpochRecord`] from its line in the `history` metadata.
fn epoch_record(line: &str) -> Option<EpochRecord> {
    let mut record = EpochRecord::default();
    let (mut epoch, mut seconds) = (None, None);
    for word in line.split(' ') {
        let (key, value) = word.split_once('=')?;
        match key {
            "epoch" => epoch = Some(value.parse().ok()?),
            "seconds" => seconds = Some(value.parse().ok()?),
            _ => {
                let (split, name) = key.split_once('.')?;
                let metrics = match split {
                    "train" => &mut record.train,
                    "test" => &mut record.test,
                    _ => return None,
                };
                if name.is_empty() || metrics.get(name).is_some() {
                    return None;
                }
                metrics.set(name, value.parse().ok()?);
            }
        }
    }
    record.epoch = epoch?;
    record.seconds = seconds?;
    Some(record)
}

/// An [`EpochRecord`] from its line in a version 1 file's `history`: the epoch, the training
/// loss and accuracy, the test loss and accuracy, the seconds.
fn epoch_record_1(line: &str) -> Option<EpochRecord> {
    let mut words = line.split(' ');
    let epoch = words.next()?.parse().ok()?;
    let mut number = || words.next()?.parse::<f64>().ok();
    let mut pair = || -> Option<Metrics> {
        let (loss, accuracy) = (number()?, number()?);
        Some(Metrics::new(vec![
            ("loss".into(), loss),
            ("accuracy".into(), accuracy),
        ]))
    };
    let (train, test) = (pair()?, pair()?);
    let seconds = number()?;
    let record = EpochRecord {
        epoch,
        train,
        test,
        seconds,
    };
    words.next().is_none().then_some(record)
}

#[cfg(test)]
mod tests;
