//! A model defined only in this file, on data of its own: it trains through the general
//! trainer, its checkpoint is evaluated and asked for predictions by `kiln eval` and `kiln
//! predict` in another process (which has never seen this code), and its graphs are pinned
//! with insta snapshots exactly as README.md's "Your own model and data" shows.

mod common;

use common::{kiln, path_str};
use kiln::compiler::optim::Optimizer;
use kiln::compiler::{Array, DType};
use kiln::fit::Learner;
use kiln::frontend::layers::Layers;
use kiln::frontend::losses::{Reduction, l1, mse};
use kiln::frontend::models::Mode;
use kiln::frontend::{BuildError, GraphBuilder, Model};
use kiln::runtime::data::{Dataset, Standardization};
use kiln::runtime::npy::write_npy;
use tempfile::TempDir;

/// A small regression network over inputs named as this data names them: `features: f32[batch,
/// 3]` and `target: f32[batch]`; outputs `loss` (MSE), `mae` and, in evaluation, `prediction`.
fn my_model(batch: usize, mode: Mode) -> Result<Model, BuildError> {
    let b = GraphBuilder::new("my_model");
    let features = b.input("features", DType::F32, [batch, 3]);
    let target = b.input("target", DType::F32, [batch]);
    let nn = Layers::new(&b, mode);
    let hidden = nn.linear("hidden", &features, 8).tanh();
    let prediction = nn.linear("out", &hidden, 1).reshape(&[-1]);
    b.output("loss", &mse(&prediction, &target, Reduction::Mean));
    b.output("mae", &l1(&prediction, &target, Reduction::Mean));
    if mode == Mode::Eval {
        b.output("prediction", &prediction);
    }
    b.finish_model()
}

/// `n` examples of `target = sin(a) + b * c / 2` over features drawn from the seed, on
/// scales far from 1 (so standardization matters).
fn data(n: usize, seed: u64) -> Dataset {
    let mut rng = common::Rng::new(seed);
    let mut features = Vec::with_capacity(3 * n);
    let mut target = Vec::with_capacity(n);
    for _ in 0..n {
        let (a, b, c) = (
            rng.range(-2.0, 2.0),
            rng.range(-1.0, 1.0),
            rng.range(-1.0, 1.0),
        );
        features.extend([a as f32 * 10.0, b as f32 + 5.0, c as f32 * 0.1]);
        target.push((a.sin() + b * c / 2.0) as f32);
    }
    Dataset::new(vec![
        (
            "features".into(),
            Array::from_f32([n, 3], features).unwrap(),
        ),
        ("target".into(), Array::from_f32([n], target).unwrap()),
    ])
    .unwrap()
}

#[test]
fn a_model_of_ones_own_trains_checkpoints_and_is_evaluated_and_predicted_elsewhere() {
    let tmp = TempDir::new().unwrap();
    let (train, test) = (data(512, 1), data(100, 2));
    let s = Standardization::fit(&train, &["features"]).unwrap();
    let (train, test) = (s.apply(train).unwrap(), s.apply(test).unwrap());
    let ck = tmp.path().join("run/ck.safetensors");
    let mut fitted = Learner::new(my_model, Optimizer::adam(0.01))
        .batch(32)
        .epochs(30)
        .eval_batch(64)
        .checkpoint(&ck)
        .standardization(s)
        .fit(&train, &test)
        .unwrap();
    let last = fitted.history.last().unwrap();
    assert_eq!((last.epoch, fitted.history.len()), (30, 30));
    let (first_mse, mse) = (fitted.history[0].test("loss"), last.test("loss"));
    assert!(mse < 0.02 && mse < first_mse / 10.0, "{first_mse} -> {mse}");
    assert!(
        last.train("mae") > 0.0 && last.test("mae") < 0.15,
        "{last:?}"
    );

    // The test examples as another program sees them: raw columns, standardized by the
    // checkpoint's own statistics.
    let raw = data(100, 2);
    let dir = tmp.path().join("test");
    std::fs::create_dir(&dir).unwrap();
    for (name, values) in raw.columns() {
        write_npy(dir.join(format!("{name}.npy")), values).unwrap();
    }
    let out = kiln(
        &[
            "eval",
            "--checkpoint",
            path_str(&ck),
            "--data",
            path_str(&dir),
        ],
        Some(&tmp),
    );
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    let metrics = fitted.evaluate(&test).unwrap();
    assert_eq!(
        out.stdout,
        format!(
            "my_model after 30 epochs (480 steps) on 100 examples of `[TMP]/test`: loss {:.4}, \
             mae {:.4}\n",
            metrics.get("loss").unwrap(),
            metrics.get("mae").unwrap()
        )
    );

    // Predictions, without the target column: one line per example, as computed here.
    std::fs::remove_file(dir.join("target.npy")).unwrap();
    let out = kiln(
        &[
            "predict",
            "--checkpoint",
            path_str(&ck),
            "--input",
            path_str(&dir),
        ],
        Some(&tmp),
    );
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    let here = fitted
        .session
        .evaluator
        .predict(&test, "prediction")
        .unwrap();
    let lines: Vec<String> = here.to_f64_vec().iter().map(|v| v.to_string()).collect();
    assert_eq!(out.stdout, lines.join("\n") + "\n");
}

#[test]
fn a_checkpoint_names_what_its_model_lacks_in_the_data() {
    let tmp = TempDir::new().unwrap();
    let train = data(64, 3);
    let ck = tmp.path().join("ck.safetensors");
    Learner::new(my_model, Optimizer::sgd(0.01))
        .batch(16)
        .epochs(1)
        .checkpoint(&ck)
        .fit(&train, &train)
        .unwrap();
    let dir = tmp.path().join("other");
    std::fs::create_dir(&dir).unwrap();
    let x = Array::full(DType::F32, [4, 3], 0.0);
    write_npy(dir.join("x.npy"), &x).unwrap();
    let out = kiln(
        &[
            "eval",
            "--checkpoint",
            path_str(&ck),
            "--data",
            path_str(&dir),
        ],
        Some(&tmp),
    );
    assert_eq!(out.status, Some(2));
    assert_eq!(
        out.stderr,
        "error: the program's input `features` takes examples of type f32[3], but it is not a \
         column of the data (its columns: x), nor step_seed, nor a hyperparameter\n"
    );
}

/// What README.md shows: a model's graphs pinned in snapshot tests, stage by stage.
#[test]
fn my_model_graphs() {
    use kiln::compiler::kernel::lower;
    use kiln::compiler::passes::optimize;
    use kiln::compiler::text::{PrintOptions, print_with};
    use kiln::compiler::train::train_step;

    // Without source locations, so that editing the file moves no snapshot.
    let text = |g: &kiln::compiler::Graph| print_with(g, PrintOptions { locations: false });
    let model = my_model(4, Mode::Train).unwrap();
    insta::assert_snapshot!("my_model_source", text(&model.graph));
    let mut step = train_step(&model.graph, "loss", &Optimizer::sgd(0.1)).unwrap();
    insta::assert_snapshot!("my_model_train", text(&step));
    optimize(&mut step);
    insta::assert_snapshot!("my_model_optimized", text(&step));
    insta::assert_snapshot!("my_model_kernels", lower(&step, true).to_string());
}
