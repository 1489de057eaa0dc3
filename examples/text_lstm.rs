//! A sequence task for an embedding and an LSTM, on data generated here: sequences of 12
//! token ids from a vocabulary of 20, each holding token A (id 0) and token B (id 1) once at
//! random places among filler tokens (ids 2 to 19); the label is 1 when A comes before B.
//! Every sequence holds the same tokens in some order, so a bag of words is at chance (50%):
//! only the order tells. The model (builder API): the ids through an `Embedding` into an LSTM,
//! its last hidden state to two logits, softmax cross-entropy; trained with
//! `kiln::fit::Learner` on a seeded 80/20 split of 4,000 sequences; prints the test accuracy.
//!
//! `cargo run --release --example text_lstm [--seed N]` (seed 0 by default; the data are the
//! same for every seed, which draws the split, the initial weights and the batch order).

use kiln::compiler::optim::Optimizer;
use kiln::compiler::{Array, DType};
use kiln::fit::Learner;
use kiln::frontend::layers::{Layers, Mode};
use kiln::frontend::losses::{Reduction, accuracy, cross_entropy};
use kiln::frontend::{BuildError, GraphBuilder, Model};
use kiln::runtime::data::{Dataset, mix};
use std::error::Error;

const SEQUENCES: usize = 4000;
const LENGTH: usize = 12;
const VOCAB: usize = 20;
const A: i32 = 0;
const B: i32 = 1;

/// The generated data: `tokens: i32[n, LENGTH]` and `labels: i32[n]` (1: A before B).
fn sequences() -> Result<Dataset, Box<dyn Error>> {
    // A fixed stream of random numbers below `k`: SplitMix64 over a counter.
    let mut counter = 0u64;
    let mut below = |k: usize| {
        counter += 1;
        (mix(0x5eed ^ counter) % k as u64) as usize
    };
    let (mut tokens, mut labels) = (Vec::new(), Vec::new());
    for _ in 0..SEQUENCES {
        let mut sequence: Vec<i32> = (0..LENGTH).map(|_| 2 + below(VOCAB - 2) as i32).collect();
        let a = below(LENGTH);
        let b = (a + 1 + below(LENGTH - 1)) % LENGTH; // any place but `a`
        (sequence[a], sequence[b]) = (A, B);
        tokens.extend(sequence);
        labels.push(i32::from(a < b));
    }
    Ok(Dataset::new(vec![
        (
            "tokens".into(),
            Array::from_i32([SEQUENCES, LENGTH], tokens)?,
        ),
        ("labels".into(), Array::from_i32([SEQUENCES], labels)?),
    ])?)
}

/// Embedding (16 per token), an LSTM of 32 over the sequence, and a linear head on its last
/// hidden state. Data inputs `tokens: i32[batch, LENGTH]` and `labels: i32[batch]`; outputs
/// `loss` and `accuracy`.
fn model(batch: usize, mode: Mode) -> Result<Model, BuildError> {
    let b = GraphBuilder::new("text_lstm");
    let nn = Layers::new(&b, mode);
    let tokens = b.input("tokens", DType::I32, [batch, LENGTH]);
    let labels = b.input("labels", DType::I32, [batch]);
    let embedded = nn.embedding("embed", &tokens, VOCAB, 16); // [batch, LENGTH, 16]
    let last = nn.lstm("lstm", &embedded, 32).hidden; // [batch, 32]
    let logits = nn.linear("fc", &last, 2);
    b.output("loss", &cross_entropy(&logits, &labels, Reduction::Mean));
    b.output("accuracy", &accuracy(&logits, &labels));
    b.finish_model()
}

/// Trains with `seed` and gives the test accuracy (0 to 1).
pub fn run(seed: u64) -> Result<f64, Box<dyn Error>> {
    let (train, test) = sequences()?.split(0.2, seed);
    let fitted = Learner::new(model, Optimizer::adam(0.01))
        .batch(32)
        .epochs(3)
        .seed(seed)
        .fit(&train, &test)?;
    let last = fitted.history.last().ok_or("no epoch trained")?;
    let accuracy = last.test("accuracy");
    println!(
        "A before B, seed {seed}: test accuracy {:.2}% ({} train, {} test sequences; chance 50%)",
        100.0 * accuracy,
        train.len(),
        test.len()
    );
    Ok(accuracy)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--seed").collect();
    let seed = args.first().map_or(Ok(0), |s| s.parse())?;
    run(seed)?;
    Ok(())
}
