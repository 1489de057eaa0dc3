//! Examples for training and evaluation: a [`Dataset`] of named columns, the files it is read
//! from, the seeded order of an epoch ([`epoch_order`]), seeded splits, standardization and
//! augmentation.
//!
//! A data set is a set of named columns (tensors) that share their first axis, the example
//! axis; example `i` is slice `i` of every column. A training program's data inputs are bound
//! to columns by name (`train::Trainer`), so a model of any inputs trains on any data that has
//! columns of those names and types.
//!
//! Batching: a training epoch takes `len / batch` full batches in a fresh shuffled order and
//! drops the last partial batch (its examples land in other batches in other epochs, and the
//! training step keeps one compiled shape); evaluation covers every example, the remainder in a
//! program compiled at the remainder's size (see `train::Evaluator`).

mod augment;
mod csv;
mod files;
mod mnist;
mod standardize;

pub use self::csv::{MAX_CSV_BYTES, MAX_CSV_CELLS, read_csv, read_csv_bytes};
pub use augment::shift_images;
pub use files::{
    MAX_COLUMNS, MAX_DATA_FILE_BYTES, MAX_NPZ_BYTES, read_data, read_npy_columns, read_npz,
    read_npz_bytes, read_safetensors, read_safetensors_bytes,
};
pub use mnist::{MNIST10K_IMAGES, MNIST10K_LABELS, MNIST10K_TRAIN, Mnist};
pub use standardize::Standardization;

use crate::idx::IdxError;
use kiln_compiler::{Array, DType, Data, Type};
use std::path::PathBuf;

/// Examples as named columns sharing their first axis.
///
/// Invariants (kept by [`Dataset::new`]): at least one column; names unique and non-empty;
/// every column has rank 1 or more and the same first extent, the number of examples.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    columns: Vec<(String, Array)>,
    len: usize,
}

impl Dataset {
    /// The data set of `columns`; refused if there are none, a name repeats or is empty, a
    /// column is a scalar, or the columns differ in length (naming both).
    pub fn new(columns: Vec<(String, Array)>) -> Result<Dataset, DataError> {
        let Some((first, first_values)) = columns.first() else {
            return Err(DataError::NoColumns);
        };
        let len = first_values.shape().first().copied().unwrap_or(0);
        for (i, (name, values)) in columns.iter().enumerate() {
            if name.is_empty() {
                return Err(DataError::Column {
                    column: name.clone(),
                    reason: "a column needs a name".into(),
                });
            }
            if columns[..i].iter().any(|(n, _)| n == name) {
                return Err(DataError::Column {
                    column: name.clone(),
                    reason: "two columns have this name".into(),
                });
            }
            match values.shape().first() {
                None => {
                    return Err(DataError::Column {
                        column: name.clone(),
                        reason: "a column is a scalar; it needs an example axis".into(),
                    });
                }
                Some(&n) if n != len => {
                    return Err(DataError::Column {
                        column: name.clone(),
                        reason: format!(
                            "{n} examples, but column `{first}` has {len}: columns share their \
                             first axis"
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(Dataset { columns, len })
    }

    /// How many examples.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The columns, in the order given.
    pub fn columns(&self) -> &[(String, Array)] {
        &self.columns
    }

    /// The column `name`.
    pub fn column(&self, name: &str) -> Option<&Array> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }

    /// The names of the columns, in order.
    pub fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The type of one example of column `name`: its element type and its shape without the
    /// first axis.
    pub fn example_type(&self, name: &str) -> Option<Type> {
        let a = self.column(name)?;
        Some(Type::new(a.dtype(), &a.shape()[1..]))
    }

    /// The column `name` replaced by `values` (or added when there is none), which must have
    /// as many examples.
    pub fn with_column(mut self, name: &str, values: Array) -> Result<Dataset, DataError> {
        match self.columns.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = values,
            None => self.columns.push((name.to_string(), values)),
        }
        Dataset::new(self.columns)
    }

    /// The data set without the column `name` (unchanged when there is none).
    pub fn without_column(mut self, name: &str) -> Result<Dataset, DataError> {
        self.columns.retain(|(n, _)| n != name);
        Dataset::new(self.columns)
    }

    /// The columns `names`, one value per example each (a table's columns), side by side as
    /// `[len, names.len()]` in the float type `dtype`: a table's features as the matrix `x`.
    /// A missing name, a column of another shape, or an element type that is not a float is
    /// refused naming it.
    pub fn stack(&self, names: &[&str], dtype: DType) -> Result<Array, DataError> {
        let bad = |column: &str, reason: String| DataError::Column {
            column: column.into(),
            reason,
        };
        if !is_float(dtype) {
            return Err(bad(
                names.first().copied().unwrap_or(""),
                format!("{dtype} is not a float type to stack into"),
            ));
        }
        let k = names.len();
        let mut values = vec![0.0; self.len * k];
        for (j, &name) in names.iter().enumerate() {
            let column = self.column(name).ok_or_else(|| {
                bad(
                    name,
                    format!("no such column (the data has {})", self.names().join(", ")),
                )
            })?;
            if column.shape().len() != 1 {
                let shape = column.shape();
                return Err(bad(
                    name,
                    format!("shape {shape:?}, not one value per example"),
                ));
            }
            for (i, v) in column.to_f64_vec().into_iter().enumerate() {
                values[i * k + j] = v;
            }
        }
        let data = Data::from_f64(dtype, values);
        Ok(Array::new([self.len, k], data).expect("len rows of k values"))
    }

    /// The examples `indices`, in that order. Panics if an index is out of range.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let columns = (self.columns.iter())
            .map(|(name, values)| {
                let mut shape = values.shape().to_vec();
                shape[0] = indices.len();
                let mut out = Array::full(values.dtype(), &shape, 0.0);
                copy_rows(values, indices, &mut out);
                (name.clone(), out)
            })
            .collect();
        Dataset {
            columns,
            len: indices.len(),
        }
    }

    /// A seeded split: `fraction` of the examples (rounded to the nearest whole number),
    /// drawn with `seed`, as the second part, the rest as the first, each in its original
    /// order. The same seed gives the same split.
    pub fn split(&self, fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let held = ((self.len as f64 * fraction.clamp(0.0, 1.0)).round() as usize).min(self.len);
        let order = epoch_order(self.len, seed ^ 0x5b1d_0fa1, 0);
        let mut held_out = order[..held].to_vec();
        let mut kept = order[held..].to_vec();
        held_out.sort_unstable();
        kept.sort_unstable();
        (self.select(&kept), self.select(&held_out))
    }
}

/// Copies the examples `indices` of `column` into consecutive rows of `into`, whose rows
/// have the column's element type and example shape and which has `indices.len()` rows at
/// least. Panics if they differ or an index is out of range (callers check the types once).
pub fn copy_rows(column: &Array, indices: &[usize], into: &mut Array) {
    let width = column.shape()[1..].iter().product::<usize>();
    fn rows<T: Copy>(src: &[T], dst: &mut [T], width: usize, indices: &[usize]) {
        for (out, &i) in dst.chunks_exact_mut(width.max(1)).zip(indices) {
            out.copy_from_slice(&src[i * width..(i + 1) * width]);
        }
    }
    match (column.data(), into.data_mut()) {
        (Data::F32(s), Data::F32(d)) => rows(s, d, width, indices),
        (Data::F64(s), Data::F64(d)) => rows(s, d, width, indices),
        (Data::I32(s), Data::I32(d)) => rows(s, d, width, indices),
        (Data::Bool(s), Data::Bool(d)) => rows(s, d, width, indices),
        (s, d) => panic!("rows of {} copied into {}", s.dtype(), d.dtype()),
    }
}

/// Why a data set cannot be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file exists but cannot be read as IDX.
    #[error(transparent)]
    Idx(#[from] IdxError),
    /// The directory holds neither MNIST layout.
    #[error(
        "`{}` holds no MNIST data: expected {MNIST10K_IMAGES} and {MNIST10K_LABELS} (the \
         embedded MNIST-10k), or train-images-idx3-ubyte, train-labels-idx1-ubyte, \
         t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each optionally .gz)",
        .0.display()
    )]
    Layout(PathBuf),
    /// A file's contents disagree with themselves or with what the reader expects.
    #[error("{}: {reason}", path.display())]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What disagrees.
        reason: String,
    },
    /// A data set was given no columns.
    #[error("the data has no columns")]
    NoColumns,
    /// A column cannot be part of the data set, or cannot be used as asked.
    #[error("column `{column}`: {reason}")]
    Column {
        /// The column's name.
        column: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `.npy` file (a column of its own, or one of a directory's) cannot be read; the error
    /// names the file.
    #[error(transparent)]
    Npy(#[from] crate::npy::NpyError),
    /// A file or directory could not be opened or read.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A CSV file is malformed or holds something other than finite numbers: names the file,
    /// the line (counting from 1, where the offending row starts) and, when one cell is at
    /// fault, its column.
    #[error("{}: line {line}{}: {reason}", path.display(), self::csv::in_column(column.as_deref()))]
    Csv {
        /// The file.
        path: PathBuf,
        /// The line, counting from 1.
        line: u64,
        /// The header's name of the cell's column, when one cell is at fault.
        column: Option<String>,
        /// What is wrong, in words.
        reason: String,
    },
    /// A member of an `.npz` archive cannot be read as a column.
    #[error("{}: member `{member}`: {reason}", path.display())]
    Member {
        /// The archive.
        path: PathBuf,
        /// The member's name in the archive (`x.npy`).
        member: String,
        /// What is wrong, in words.
        reason: String,
    },
    /// A tensor of a safetensors file cannot be read as a column.
    #[error("{}: tensor `{tensor}`: {reason}", path.display())]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// What is wrong, in words.
        reason: String,
    },
    /// A file claims or holds more than a reader's stated limit (`MAX_CSV_BYTES`,
    /// `MAX_CSV_CELLS`, `MAX_DATA_FILE_BYTES`, `MAX_NPZ_BYTES`, `MAX_COLUMNS`); refused before
    /// anything of that size is allocated.
    #[error("{}: {reason}", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// What is over which limit.
        reason: String,
    },
    /// A path is neither a file of a data format kiln reads nor a directory of `.npy` files.
    #[error(
        "{}: {reason}; kiln reads data from .csv, .npz, .safetensors and .npy files, and from \
         directories of .npy files (one column each)",
        path.display()
    )]
    Format {
        /// The path.
        path: PathBuf,
        /// Why it is not read, in words.
        reason: String,
    },
}

/// The order of `len` examples in epoch `epoch` (counting from 1) of a run seeded with `seed`:
/// a Fisher-Yates shuffle driven by a counter-based generator, so that the order depends on the
/// seed and the epoch alone (a resumed run sees the orders an uninterrupted one would).
pub fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let key = mix(seed ^ mix(epoch as u64));
    for i in (1..len).rev() {
        let r = mix(key ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        // Multiply-shift maps the 64-bit draw onto 0..=i without modulo bias worth measuring.
        let j = ((u128::from(r) * (i as u128 + 1)) >> 64) as usize;
        order.swap(i, j);
    }
    order
}

/// SplitMix64's finalizer: a bijective mix of 64 bits.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `true` for the element types standardization and augmentation apply to.
fn is_float(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::F64)
}

#[cfg(test)]
mod tests;
