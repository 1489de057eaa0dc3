//! What `tests/data_parallel.rs` (ranks as threads) and `tests/mpi_ranks.rs` (ranks under
//! mpirun) share: a built-in model trained at a global batch of 64 as one rank of a job.

use kiln::compiler::collective::Communicator;
use kiln::compiler::optim::Optimizer;
use kiln::fit::{Build, Session};
use kiln::frontend::models::{Settings, builtin};
use kiln::runtime::Options;
use kiln::runtime::data::{Dataset, Mnist};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

/// The first `n` training digits of the embedded MNIST.
pub fn digits(n: usize) -> Dataset {
    let m = Mnist::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data")).unwrap();
    m.train.select(&(0..n).collect::<Vec<_>>())
}

/// The built-in `model` for MNIST's images.
pub fn build(model: &'static str) -> Build {
    Rc::new(move |batch, mode| {
        let settings = Settings {
            batch,
            mode,
            ..Settings::default()
        };
        builtin(model, &settings).expect("a built-in")
    })
}

/// Trains `model` for `epochs` epochs of `data` at a global batch of 64 as rank `comm.rank()`
/// of `comm.size()`; every step's loss, the state's hash after each epoch, and the mean
/// accuracy of the last evaluation.
pub fn train(
    model: &'static str,
    data: &Dataset,
    epochs: usize,
    comm: Arc<dyn Communicator>,
) -> (Vec<f64>, Vec<u64>, f64) {
    let options = Options {
        threads: 1,
        ..Options::default()
    };
    let opt = Optimizer::sgd(0.01);
    let mut s = Session::compile(&build(model), &opt, 64, 7, 100, &options, comm).unwrap();
    s.trainer.broadcast_state();
    let (mut losses, mut hashes) = (Vec::new(), Vec::new());
    for epoch in 1..=epochs {
        s.trainer
            .epoch(data, epoch, &mut |r| {
                losses.push(r.metrics.get("loss").unwrap())
            })
            .unwrap();
        hashes.push(s.trainer.state_hash());
    }
    let accuracy = s.evaluate(data).unwrap().get("accuracy").unwrap();
    (losses, hashes, accuracy)
}

/// Why `losses` (a rank's) differ from `want` (one process's) by more than the order of
/// float sums explains: 1e-5 relative at some step (see tests/data_parallel.rs).
pub fn differs(model: &str, losses: &[f64], want: &[f64]) -> Option<String> {
    if losses.len() != want.len() {
        return Some(format!(
            "{model}: {} steps, not {}",
            losses.len(),
            want.len()
        ));
    }
    let step = (0..want.len()).find(|&i| (losses[i] - want[i]).abs() / want[i].abs() >= 1e-5)?;
    Some(format!(
        "{model} step {step}: {} against {}",
        losses[step], want[step]
    ))
}
