//! What a command trains on or measures: a data file read and shaped into the columns the
//! built-in models take (`x`, and `labels` or `y`), split into training and test examples,
//! with the task its target calls for.
//!
//! - A directory of MNIST IDX files (the default: the embedded MNIST-10k): `x: f32[n, 1, 28,
//!   28]`, `labels`, ten classes, its own train and test split.
//! - A CSV table: `--target` names the column to predict; every other column is a feature,
//!   in the file's order, and together they form `x: f32[n, features]`, standardized with
//!   the training rows' means and deviations. Whole non-negative targets with at most
//!   [`MAX_AUTO_CLASSES`] distinct values are classes (two classes: binary cross-entropy),
//!   any other target a value to regress (`--task` overrides).
//! - Arrays (`.npz`, `.safetensors`, `.npy` files or a directory of them): columns `x` (float
//!   images `[n, channels, height, width]`, or rows of features, standardized) and `labels`
//!   (classes) or `y` (values).
//!
//! Without `--val`, a seeded fifth of the examples is held out for testing.

use super::CliError;
use clap::{Args, ValueEnum};
use kiln_compiler::{Array, DType};
use kiln_frontend::models::Task;
use kiln_runtime::checkpoint::Checkpoint;
use kiln_runtime::data::{DataError, Dataset, Mnist, Standardization, read_data};
use std::path::{Path, PathBuf};

/// The data directory of a fresh clone: the embedded MNIST-10k.
pub const EMBEDDED_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data");

/// The share of examples held out for testing when no `--val` file is given.
pub const HELD_OUT: f64 = 0.2;

/// The most distinct values a whole-numbered target may have to be taken for classes.
pub const MAX_AUTO_CLASSES: usize = 100;

/// Where the data comes from and what it asks of the model.
#[derive(Args, Clone, Debug)]
pub struct DataArgs {
    /// The data: a directory of MNIST IDX files (the embedded MNIST-10k by default), a CSV
    /// table, an .npz, .safetensors or .npy file, or a directory of .npy columns.
    #[arg(long, default_value = EMBEDDED_DATA)]
    pub data: PathBuf,
    /// The column of a table to predict.
    #[arg(long)]
    pub target: Option<String>,
    /// Test on this file's examples instead of a seeded fifth of the data's.
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Classify or regress the target (default: classes when its values are whole numbers
    /// from 0 with few distinct values).
    #[arg(long, value_enum)]
    pub task: Option<TaskArg>,
}

/// What to do with the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TaskArg {
    /// Predict a class: cross-entropy (binary cross-entropy for two classes).
    Classify,
    /// Predict a real value: mean squared error.
    Regress,
}

/// What the data is, for the defaults of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// MNIST digits from IDX files.
    Mnist,
    /// Rows of a table, or arrays of features.
    Table,
    /// Arrays of images.
    Images,
}

/// Data ready for a built-in model.
pub struct Problem {
    /// The examples that train.
    pub train: Dataset,
    /// The examples that test.
    pub test: Dataset,
    /// One example's shape of `x`.
    pub input: Vec<usize>,
    /// What the model predicts.
    pub task: Task,
    /// What the data is.
    pub kind: Kind,
    /// The table column predicted (empty for arrays).
    pub target: String,
    /// The table columns that form `x`, in order (empty for arrays).
    pub features: Vec<String>,
    /// The standardization of `x` fitted on the training examples (empty for images).
    pub standardization: Standardization,
}

impl Problem {
    /// Reads and shapes the data `args` names; the split is drawn with `seed`.
    pub fn load(args: &DataArgs, seed: u64) -> Result<Problem, CliError> {
        if args.data.is_dir() && is_mnist(&args.data) {
            if args.target.is_some() || args.val.is_some() {
                return Err(CliError::Setting(
                    "--target and --val apply to tables and arrays, not to MNIST's IDX files"
                        .into(),
                ));
            }
            let m = Mnist::load(&args.data)?;
            return Ok(Problem {
                train: m.train,
                test: m.test,
                input: vec![1, 28, 28],
                task: Task::Classify { classes: 10 },
                kind: Kind::Mnist,
                target: String::new(),
                features: Vec::new(),
                standardization: Standardization::default(),
            });
        }
        if args.data.is_dir() && !has_npy(&args.data) {
            // Neither layout: the MNIST loader's error names its files.
            Mnist::load(&args.data)?;
        }
        let raw = read_data(&args.data)?;
        let layout = Layout::of(&args.data, &raw, args.target.as_deref())?;
        let all = layout.shape(&raw, &args.data)?;
        let task = task_of(&all, args.task, matches!(layout, Layout::Arrays));
        let (all, classes) = target_column(all, task, &args.data)?;
        let (train, test) = match &args.val {
            Some(path) => {
                let val = layout.shape(&read_data(path)?, path)?;
                let (val, _) = target_column(val, task, path)?;
                check_classes(&val, classes, path)?;
                (all, val)
            }
            None => all.split(HELD_OUT, seed),
        };
        Problem::new(layout, classes, train, test)
    }

    /// The examples of `path` shaped as the checkpoint `ck`'s model was trained on (its
    /// features, target and standardization), for `kiln eval` and `kiln predict`; the columns
    /// as they are for a model of the user's own (one whose checkpoint names no task).
    pub fn for_checkpoint(ck: &Checkpoint, path: &Path) -> Result<Dataset, CliError> {
        let raw = read_data(path)?;
        let data = match (ck.meta.features.is_empty(), ck.meta.task.is_empty()) {
            // A model of the user's own: its inputs are the data's columns as they are.
            (true, true) => return Ok(ck.standardization.apply(raw)?),
            (true, false) => Layout::Arrays.shape(&raw, path)?,
            (false, _) => Layout::Table {
                features: ck.meta.features.clone(),
                target: ck.meta.target.clone(),
            }
            .shape(&raw, path)?,
        };
        let data = ck.standardization.apply(data)?;
        let (task, classes) = task_of_text(&ck.meta.task);
        let (data, _) = target_column(data, task, path)?;
        check_classes(&data, classes.unwrap_or(0), path)?;
        Ok(data)
    }

    /// The problem of `train` and `test` shaped by `layout`, with `classes` classes (0 for
    /// a real-valued target): `x` standardized, a real target's mean and deviation taken from
    /// the training examples.
    fn new(
        layout: Layout,
        classes: usize,
        train: Dataset,
        test: Dataset,
    ) -> Result<Problem, CliError> {
        let task = match (classes, train.column("y")) {
            (0, Some(y)) => {
                let v = y.to_f64_vec();
                let n = v.len().max(1) as f64;
                let mean = v.iter().sum::<f64>() / n;
                let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
                let std = if var > 0.0 { var.sqrt() } else { 1.0 };
                Task::Regress { mean, std }
            }
            (0..=2, _) => Task::Binary,
            (c, _) => Task::Classify { classes: c },
        };
        let x = train.example_type("x").expect("checked by the layout");
        let kind = match x.rank() {
            3 => Kind::Images,
            _ => Kind::Table,
        };
        let standardization = match kind {
            Kind::Table => Standardization::fit(&train, &["x"])?,
            _ => Standardization::default(),
        };
        let (train, test) = (standardization.apply(train)?, standardization.apply(test)?);
        let (target, features) = match layout {
            Layout::Table { features, target } => (target, features),
            Layout::Arrays => (String::new(), Vec::new()),
        };
        Ok(Problem {
            input: x.shape.to_vec(),
            train,
            test,
            task,
            kind,
            target,
            features,
            standardization,
        })
    }

    /// The task as checkpoints record it: `classify N`, `binary` or `regress`.
    pub fn task_text(&self) -> String {
        task_text(self.task)
    }
}

/// The task as checkpoints record it: `classify N`, `binary` or `regress`.
fn task_text(task: Task) -> String {
    match task {
        Task::Classify { classes } => format!("classify {classes}"),
        Task::Binary => "binary".into(),
        Task::Regress { .. } => "regress".into(),
    }
}

/// The task a checkpoint records, for shaping data: `Some(classify)` or `Some(regress)`,
/// with the classes of `classify N`.
fn task_of_text(text: &str) -> (Option<TaskArg>, Option<usize>) {
    match text.split_once(' ') {
        Some(("classify", n)) => (Some(TaskArg::Classify), n.parse().ok()),
        _ if text == "binary" => (Some(TaskArg::Classify), Some(2)),
        _ if text == "regress" => (Some(TaskArg::Regress), None),
        _ => (None, None),
    }
}

/// Whether `dir` holds MNIST's IDX files.
fn is_mnist(dir: &Path) -> bool {
    dir.join(kiln_runtime::data::MNIST10K_IMAGES).exists()
        || ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"]
            .iter()
            .any(|f| dir.join(f).exists())
}

/// Whether `dir` holds an `.npy` file (a column of arrays).
fn has_npy(dir: &Path) -> bool {
    (std::fs::read_dir(dir).into_iter().flatten().flatten())
        .any(|e| e.path().extension().is_some_and(|x| x == "npy"))
}

/// How a file's columns become `x` and the target.
enum Layout {
    /// A table: the features by name form `x`; the target column is kept by its name.
    Table {
        features: Vec<String>,
        target: String,
    },
    /// Arrays already named `x` and `labels` or `y`.
    Arrays,
}

impl Layout {
    /// The layout of the data read from `path`: a table when it is a CSV file.
    fn of(path: &Path, raw: &Dataset, target: Option<&str>) -> Result<Layout, CliError> {
        let is_csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if !is_csv {
            if target.is_some() {
                return Err(CliError::Setting(
                    "--target applies to tables; arrays name their target `labels` or `y`".into(),
                ));
            }
            return Ok(Layout::Arrays);
        }
        let names = raw.names();
        let Some(target) = target else {
            return Err(CliError::Setting(format!(
                "`{}` is a table: name the column to predict with --target (its columns: {})",
                path.display(),
                names.join(", ")
            )));
        };
        if !names.contains(&target) {
            return Err(DataError::Column {
                column: target.into(),
                reason: format!(
                    "no such column in `{}` (its columns: {})",
                    path.display(),
                    names.join(", ")
                ),
            }
            .into());
        }
        let features: Vec<String> = (names.iter().filter(|n| **n != target))
            .map(|n| n.to_string())
            .collect();
        if features.is_empty() {
            return Err(CliError::Setting(format!(
                "`{}` has no column besides the target `{target}` to predict it from",
                path.display()
            )));
        }
        Ok(Layout::Table {
            features,
            target: target.into(),
        })
    }

    /// `raw` (read from `path`) as columns `x` and the target (by its own name for tables,
    /// `labels` or `y` for arrays), `x` as `f32`.
    fn shape(&self, raw: &Dataset, path: &Path) -> Result<Dataset, CliError> {
        let missing = |column: &str, names: Vec<&str>| DataError::Column {
            column: column.into(),
            reason: format!(
                "no such column in `{}` (its columns: {})",
                path.display(),
                names.join(", ")
            ),
        };
        match self {
            Layout::Table { features, target } => {
                let names: Vec<&str> = features.iter().map(String::as_str).collect();
                let x = raw.stack(&names, DType::F32).map_err(|e| match e {
                    DataError::Column { column, .. } => missing(&column, raw.names()),
                    e => e,
                })?;
                let mut columns = vec![("x".to_string(), x)];
                if let Some(t) = raw.column(target) {
                    columns.push((target.clone(), t.clone()));
                }
                Ok(Dataset::new(columns)?)
            }
            Layout::Arrays => {
                let x = raw.column("x").ok_or_else(|| missing("x", raw.names()))?;
                let x = match x.dtype() {
                    DType::F32 => x.clone(),
                    DType::F64 => {
                        let v = x.to_f64_vec().into_iter().map(|v| v as f32).collect();
                        Array::from_f32(x.shape(), v).expect("the same shape")
                    }
                    d => {
                        return Err(DataError::Column {
                            column: "x".into(),
                            reason: format!(
                                "`{}` holds {d} values; the models read f32 or f64 (scale \
                                 8-bit pixels to [0, 1] first)",
                                path.display()
                            ),
                        }
                        .into());
                    }
                };
                if !matches!(x.shape().len(), 2 | 4) {
                    return Err(DataError::Column {
                        column: "x".into(),
                        reason: format!(
                            "`{}` holds x of shape {:?}; the built-in models read rows of \
                             features [n, features] or images [n, channels, height, width]",
                            path.display(),
                            x.shape()
                        ),
                    }
                    .into());
                }
                let mut columns = vec![("x".to_string(), x)];
                for name in ["labels", "y"] {
                    if let Some(t) = raw.column(name) {
                        columns.push((name.to_string(), t.clone()));
                    }
                }
                Ok(Dataset::new(columns)?)
            }
        }
    }
}

/// The task `arg` asks for, or the one the target calls for: classes for arrays' `labels`,
/// values for their `y`, and for a table's column classes when every value is a whole number
/// from 0 and there are at most [`MAX_AUTO_CLASSES`] of them.
fn task_of(train: &Dataset, arg: Option<TaskArg>, arrays: bool) -> Option<TaskArg> {
    if arg.is_some() {
        return arg;
    }
    let (name, target) = target_of(train)?;
    match (arrays, name) {
        (true, "labels") => return Some(TaskArg::Classify),
        (true, "y") => return Some(TaskArg::Regress),
        _ => {}
    }
    let v = target.to_f64_vec();
    let whole = v.iter().all(|x| *x >= 0.0 && x.fract() == 0.0);
    let mut distinct: Vec<u64> = v.iter().map(|x| x.to_bits()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    match whole && distinct.len() <= MAX_AUTO_CLASSES {
        true => Some(TaskArg::Classify),
        false => Some(TaskArg::Regress),
    }
}

/// The target column of shaped data: the one column besides `x`.
fn target_of(data: &Dataset) -> Option<(&str, &Array)> {
    (data.columns().iter())
        .find(|(n, _)| n != "x")
        .map(|(n, a)| (n.as_str(), a))
}

/// `data` with its target as the model takes it (`labels: i32` for classes, `y: f32` for
/// values, as `task` says; data without a target is left as it is) and the number of
/// classes (0 for values). A class that is not a whole number from 0, or a value that is
/// not finite, is an error naming the example.
fn target_column(
    data: Dataset,
    task: Option<TaskArg>,
    path: &Path,
) -> Result<(Dataset, usize), CliError> {
    let Some((name, values)) = target_of(&data).map(|(n, a)| (n.to_string(), a.clone())) else {
        return Ok((data, 0));
    };
    let data = data.without_column(&name)?;
    let v = values.to_f64_vec();
    let n = v.len();
    let bad = |reason: String| DataError::Column {
        column: name.clone(),
        reason: format!("`{}`: {reason}", path.display()),
    };
    if values.shape().len() != 1 {
        let shape = values.shape();
        return Err(bad(format!("targets of shape {shape:?}; one value per example")).into());
    }
    if task == Some(TaskArg::Regress) {
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(bad(format!("{} has the value {}", row(path, i), v[i])).into());
        }
        let y = Array::from_f32([n], v.iter().map(|&x| x as f32).collect()).expect("n values");
        return Ok((data.with_column("y", y)?, 0));
    }
    let class = |x: &f64| x.fract() == 0.0 && (0.0..f64::from(1 << 20)).contains(x);
    if let Some(i) = v.iter().position(|x| !class(x)) {
        let reason = format!(
            "{} has the label {}; classes are whole numbers from 0",
            row(path, i),
            v[i]
        );
        return Err(bad(reason).into());
    }
    let classes = v.iter().fold(0.0f64, |m, &x| m.max(x)) as usize + 1;
    let labels = Array::from_i32([n], v.iter().map(|&x| x as i32).collect()).expect("n labels");
    Ok((data.with_column("labels", labels)?, classes.max(2)))
}

/// Where example `i` of the file at `path` is: its line in a CSV table (after the header),
/// else its index.
fn row(path: &Path, i: usize) -> String {
    match path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        true => format!("line {}", i + 2),
        false => format!("example {i}"),
    }
}

/// Refuses a label of `data` at or above `classes` (0: no classes), naming the example.
fn check_classes(data: &Dataset, classes: usize, path: &Path) -> Result<(), CliError> {
    let Some(labels) = data.column("labels").and_then(|a| a.as_i32()) else {
        return Ok(());
    };
    if classes == 0 {
        return Ok(());
    }
    match labels.iter().position(|&l| l as usize >= classes) {
        Some(i) => Err(DataError::Column {
            column: "labels".into(),
            reason: format!(
                "`{}`: {} has the label {}, but the training data has {classes} classes",
                path.display(),
                row(path, i),
                labels[i]
            ),
        }
        .into()),
        None => Ok(()),
    }
}
