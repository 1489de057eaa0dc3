//! The history of a training run: one record per completed epoch. Checkpoints carry it, so a
//! resumed run can redraw its curves ([`crate::plot::training_curves`]).

/// What one epoch of training measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EpochRecord {
    /// The epoch's number, counting from 1.
    pub epoch: usize,
    /// Mean loss over the epoch's training batches.
    pub train_loss: f64,
    /// Fraction of training examples classified correctly, in [0, 1].
    pub train_accuracy: f64,
    /// Mean loss over the test set after the epoch.
    pub test_loss: f64,
    /// Fraction of test examples classified correctly, in [0, 1].
    pub test_accuracy: f64,
    /// Wall-clock seconds the epoch took.
    pub seconds: f64,
}
