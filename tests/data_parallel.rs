//! Data-parallel training with ranks as threads of this process (`collective::Threads`): the
//! same trainer and steps an MPI job runs (`tests/mpi_train.rs` runs them under `mpirun`), so
//! these checks run in every test build, without MPI.
//!
//! Two ranks at a global batch of 64 must train the model one process trains at batch 64:
//! each rank's loss is the mean over both shares, and it may differ from the single process's
//! only by the order of float sums (a mean over two means of 32 instead of one mean of 64,
//! gradients summed in two halves): 1e-5 relative over 100 steps, where the losses are near 1
//! and a float32 rounding is 6e-8, leaves room for the differences to grow a hundredfold
//! through the steps without allowing a wrong gradient (a missing 1/2 or a rank's share
//! counted twice changes the loss by percents within a few steps). The ranks' parameters
//! must be equal bit for bit after every epoch.
//!
//! The optimizer is SGD at 0.01, where the largest difference measured was 3.3e-7. With
//! momentum 0.9 at 0.05, LeNet's losses agreed to 1e-7 for 37 steps, then the difference grew
//! about 1.3-fold a step, to 0.3 at step 99 (at 0.01, from step 76, to 1.4e-5): as a model
//! leaves its first plateau, its trajectory amplifies any change in the order of its sums.

#[path = "data_parallel/ranks.rs"]
mod ranks;

use kiln::compiler::collective::{Single, Threads};
use kiln::compiler::optim::Optimizer;
use kiln::fit::Session;
use kiln::runtime::Options;
use ranks::{build, digits, train};
use std::sync::Arc;

/// Two thread ranks against one process, on `model`, over `steps` steps in two epochs.
fn two_ranks_match_one_process(model: &'static str, steps: usize) {
    let data = digits(steps / 2 * 64);
    let (want, _, want_accuracy) = train(model, &data, 2, Arc::new(Single));
    assert_eq!(want.len(), steps);
    let ranks: Vec<_> = (Threads::group(2).into_iter())
        .map(|c| {
            let data = data.clone();
            std::thread::spawn(move || train(model, &data, 2, Arc::new(c)))
        })
        .collect();
    let ranks: Vec<_> = ranks.into_iter().map(|h| h.join().unwrap()).collect();
    for (rank, (losses, hashes, accuracy)) in ranks.iter().enumerate() {
        assert_eq!(hashes, &ranks[0].1, "{model}: rank {rank}'s state differs");
        assert_eq!(losses, &ranks[0].0, "{model}: rank {rank}'s losses differ");
        assert_eq!(*accuracy, ranks[0].2);
        if let Some(e) = ranks::differs(model, losses, &want) {
            panic!("{e}");
        }
    }
    // The evaluation is split between the ranks and summed: the same mean up to rounding.
    assert!((ranks[0].2 - want_accuracy).abs() < 1e-9);
}

#[test]
fn two_ranks_train_the_mlp_one_process_trains() {
    two_ranks_match_one_process("mlp", 100);
}

#[test]
fn two_ranks_train_lenet_as_one_process_does() {
    two_ranks_match_one_process("lenet", 100);
}

#[test]
fn a_batch_that_does_not_split_over_the_ranks_is_refused() {
    let handles: Vec<_> = (Threads::group(3).into_iter())
        .map(|c| {
            std::thread::spawn(move || {
                let opt = Optimizer::sgd(0.1);
                let options = Options::default();
                let s = Session::compile(&build("mlp"), &opt, 64, 0, 100, &options, Arc::new(c));
                s.err().unwrap().to_string()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(
            h.join().unwrap(),
            "the batch of 64 rows does not split evenly over 3 ranks"
        );
    }
}
