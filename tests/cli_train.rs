//! `kiln train` and `kiln sweep` end to end on the embedded MNIST-10k, with small models so
//! that each run takes a moment, and their user errors.

mod common;

use common::{kiln, path_str};
use tempfile::TempDir;

/// A short training run's arguments: one epoch of a narrow MLP.
const SHORT: &[&str] = &["train", "--epochs", "1", "--width", "16", "--batch", "100"];

#[test]
fn train_prints_a_summary_and_one_line_per_epoch() {
    let out = kiln(SHORT, None);
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    let s = &out.stdout;
    assert!(
        s.starts_with("model mlp (12730 parameters in 4 tensors)\n"),
        "{s}"
    );
    assert!(s.contains("  fc1.w            f32[784,16]\n"), "{s}");
    assert!(
        s.contains("optimizer momentum (lr 0.05, momentum 0.9), batch 100, seed 0"),
        "{s}"
    );
    assert!(
        s.contains("data: 8000 training and 2000 test images"),
        "{s}"
    );
    let epoch = s.lines().find(|l| l.starts_with("epoch   1/1")).expect(s);
    let acc: f64 = epoch
        .split("test loss")
        .nth(1)
        .unwrap()
        .split("acc")
        .nth(1)
        .unwrap()
        .trim()
        .split('%')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        acc > 80.0,
        "one epoch of a 16-wide MLP reaches 80%: {epoch}"
    );
    assert!(s.contains("best test accuracy"), "{s}");
}

#[test]
fn train_refuses_a_directory_without_mnist() {
    let tmp = TempDir::new().unwrap();
    let out = kiln(&["train", "--data", path_str(tmp.path())], Some(&tmp));
    assert_eq!(out.status, Some(2));
    assert!(
        out.stderr
            .starts_with("error: `[TMP]` holds no MNIST data: expected mnist10k-images"),
        "{}",
        out.stderr
    );
}

#[test]
fn train_refuses_an_unknown_model_listing_the_builtins() {
    let out = kiln(&["train", "--model", "gpt"], None);
    assert_eq!(out.status, Some(2));
    assert!(
        out.stderr
            .starts_with("error: `gpt` is neither a file nor a built-in model"),
        "{}",
        out.stderr
    );
}

#[test]
fn train_stops_a_diverging_run_with_a_hint() {
    let out = kiln(
        &["train", "--epochs", "1", "--width", "16", "--lr", "1e30"],
        None,
    );
    assert_eq!(out.status, Some(2));
    assert!(
        out.stderr
            .contains("training diverged; try a lower learning rate (--lr is now 1e30)"),
        "{}",
        out.stderr
    );
}

#[test]
fn sweep_ranks_trials_and_compiles_once_per_shape() {
    let tmp = TempDir::new().unwrap();
    let csv = tmp.path().join("sweeps/s.csv");
    let out = kiln(
        &[
            "sweep",
            "--epochs",
            "1",
            "--width",
            "8,16",
            "--lr",
            "0.01,0.1",
            "--out",
            path_str(&csv),
        ],
        Some(&tmp),
    );
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("4 trials, 2 compiled training steps"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("ranked on 800 validation images"),
        "{}",
        out.stdout
    );
    let table = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(
        rows[0],
        "rank,optimizer,lr,batch,width,train_loss,val_loss,val_accuracy,seconds"
    );
    assert_eq!(rows.len(), 5);
    let acc = |r: &str| r.split(',').nth(7).unwrap().parse::<f64>().unwrap();
    assert!(
        rows[1..].windows(2).all(|w| acc(w[0]) >= acc(w[1])),
        "{table}"
    );
}
