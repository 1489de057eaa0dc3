//! Standardization of float columns: each element of an example shifted by its mean and
//! scaled by its standard deviation over the training examples.

use super::{DataError, Dataset, is_float};
use kiln_compiler::{Array, DType, Data};

/// The mean and standard deviation of every element of some float columns' examples, fitted
/// on the training split alone and applied alike to every split, to evaluation and to
/// prediction (checkpoints store it).
///
/// Invariant: each column's `mean` and `std` are `f64` arrays of the column's example shape,
/// and every `std` is positive and finite (a constant element gets 1, so it becomes 0).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Standardization {
    columns: Vec<(String, Array, Array)>,
}

impl Standardization {
    /// Fits the columns `names` of `data`, each a float column; an empty data set, a missing
    /// column or one of another type is refused naming it.
    pub fn fit(data: &Dataset, names: &[&str]) -> Result<Standardization, DataError> {
        let mut columns = Vec::new();
        for &name in names {
            let values = column(data, name)?;
            let n = data.len();
            if n == 0 {
                return Err(DataError::Column {
                    column: name.into(),
                    reason: "no examples to standardize over".into(),
                });
            }
            let width = values.numel() / n;
            let v = values.to_f64_vec();
            let mut mean = vec![0.0; width];
            for row in v.chunks_exact(width.max(1)) {
                for (m, x) in mean.iter_mut().zip(row) {
                    *m += x;
                }
            }
            mean.iter_mut().for_each(|m| *m /= n as f64);
            let mut var = vec![0.0; width];
            for row in v.chunks_exact(width.max(1)) {
                for ((s, x), m) in var.iter_mut().zip(row).zip(&mean) {
                    *s += (x - m) * (x - m);
                }
            }
            let std: Vec<f64> = (var.iter())
                .map(|s| (s / n as f64).sqrt())
                .map(|s| if s > 0.0 && s.is_finite() { s } else { 1.0 })
                .collect();
            let shape = &values.shape()[1..];
            let array = |v: Vec<f64>| Array::from_f64(shape, v).expect("one per element");
            columns.push((name.to_string(), array(mean), array(std)));
        }
        Ok(Standardization { columns })
    }

    /// Standardization rebuilt from its parts (a checkpoint's tensors); refused unless each
    /// mean and std are `f64` of one shape with every std positive and finite.
    pub fn from_parts(columns: Vec<(String, Array, Array)>) -> Result<Standardization, DataError> {
        for (name, mean, std) in &columns {
            let ok = mean.dtype() == DType::F64
                && std.dtype() == DType::F64
                && mean.shape() == std.shape()
                && std.to_f64_vec().iter().all(|s| *s > 0.0 && s.is_finite());
            if !ok {
                return Err(DataError::Column {
                    column: name.clone(),
                    reason: "its standardization needs f64 means and positive finite standard \
                             deviations of one shape"
                        .into(),
                });
            }
        }
        Ok(Standardization { columns })
    }

    /// Each standardized column's name, means and standard deviations.
    pub fn columns(&self) -> &[(String, Array, Array)] {
        &self.columns
    }

    /// Whether no column is standardized.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// `data` with each standardized column replaced by `(x - mean) / std`, in the column's
    /// own element type; a missing column, or one whose examples have another shape, is
    /// refused naming it.
    pub fn apply(&self, mut data: Dataset) -> Result<Dataset, DataError> {
        for (name, mean, std) in &self.columns {
            let values = column(&data, name)?;
            if values.shape()[1..] != *mean.shape() {
                return Err(DataError::Column {
                    column: name.clone(),
                    reason: format!(
                        "examples of shape {:?}, but it was standardized with shape {:?}",
                        &values.shape()[1..],
                        mean.shape()
                    ),
                });
            }
            let (mean, std) = (mean.to_f64_vec(), std.to_f64_vec());
            let mut values = values.clone();
            let scale = |i: usize, x: f64| {
                let j = i % mean.len().max(1);
                (x - mean[j]) / std[j]
            };
            match values.data_mut() {
                Data::F32(v) => (v.iter_mut().enumerate())
                    .for_each(|(i, x)| *x = scale(i, f64::from(*x)) as f32),
                Data::F64(v) => v
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, x)| *x = scale(i, *x)),
                Data::I32(_) | Data::Bool(_) => unreachable!("checked by `column`"),
            }
            data = data.with_column(name, values)?;
        }
        Ok(data)
    }
}

/// The float column `name` of `data`, or the error naming it.
fn column<'d>(data: &'d Dataset, name: &str) -> Result<&'d Array, DataError> {
    let values = data.column(name).ok_or_else(|| DataError::Column {
        column: name.into(),
        reason: format!("no such column (the data has {})", data.names().join(", ")),
    })?;
    if !is_float(values.dtype()) {
        return Err(DataError::Column {
            column: name.into(),
            reason: format!("{} values cannot be standardized", values.dtype()),
        });
    }
    Ok(values)
}
