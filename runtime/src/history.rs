//! The history of a training run: one record per completed epoch. Checkpoints carry it, so a
//! resumed run can redraw its curves ([`crate::plot::training_curves`]).

use crate::train::Metrics;

/// What one epoch of training measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochRecord {
    /// The epoch's number, counting from 1.
    pub epoch: usize,
    /// The mean of each metric over the epoch's training batches (`loss` among them).
    pub train: Metrics,
    /// Each metric over the test (or validation) set after the epoch.
    pub test: Metrics,
    /// Wall-clock seconds the epoch took.
    pub seconds: f64,
}

impl EpochRecord {
    /// The test metric `name`, or NaN when it was not measured.
    pub fn test(&self, name: &str) -> f64 {
        self.test.get(name).unwrap_or(f64::NAN)
    }

    /// The training metric `name`, or NaN when it was not measured.
    pub fn train(&self, name: &str) -> f64 {
        self.train.get(name).unwrap_or(f64::NAN)
    }
}
