//! `kiln train`, `eval` and `predict` on tables and arrays of the user's: the course's CSV
//! files, the task that follows from the target, and the one-line errors of bad settings and
//! malformed files (exit status 2, nothing trained, nothing written).

mod common;

use common::{Outcome, kiln, path_str};
use kiln::compiler::Array;
use kiln::runtime::npy::write_npy;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// The project's copy of a course data set.
fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
}

/// `kiln train` on `file` with `args`, checkpoint and curves in `tmp`.
fn train(tmp: &TempDir, file: &Path, args: &[&str]) -> Outcome {
    let ck = tmp.path().join("ck.safetensors");
    let plot = tmp.path().join("curves.svg");
    let mut all = vec!["train", "--data", path_str(file)];
    all.extend(["--checkpoint", path_str(&ck), "--plot", path_str(&plot)]);
    all.extend(args);
    kiln(&all, Some(tmp))
}

/// The number after `prefix` in `line` (a percentage's sign dropped).
fn number_after(line: &str, prefix: &str) -> f64 {
    let rest = line
        .split(prefix)
        .nth(1)
        .unwrap_or_else(|| panic!("{prefix} in {line}"));
    let word = rest.split_whitespace().next().unwrap();
    word.trim_end_matches('%').parse().unwrap()
}

#[test]
fn iris_trains_linear_and_mlp_and_the_last_line_states_the_test_accuracy() {
    for model in ["linear", "mlp"] {
        let tmp = TempDir::new().unwrap();
        let out = train(
            &tmp,
            &data("iris.csv"),
            &["--target", "species", "--model", model],
        );
        assert_eq!(out.status, Some(0), "{}", out.stderr);
        assert!(
            out.stdout.contains(
                "data: 120 training and 30 test examples (x: f32[120,4], labels: i32[120])"
            ),
            "{}",
            out.stdout
        );
        let last = out.stdout.lines().last().unwrap();
        assert!(last.starts_with("final test accuracy "), "{last}");
        let acc = number_after(last, "final test accuracy");
        assert!(acc >= 85.0, "{model} on iris: {last}");
    }
}

#[test]
fn a_binary_target_trains_with_binary_cross_entropy() {
    let tmp = TempDir::new().unwrap();
    let file = data("breast_cancer.csv");
    let out = train(
        &tmp,
        &file,
        &["--target", "malignant_0_benign_1", "--epochs", "30"],
    );
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("  fc.w             f32[30,1]\n"),
        "one logit: {}",
        out.stdout
    );
    let acc = number_after(out.stdout.lines().last().unwrap(), "final test accuracy");
    assert!(acc >= 93.0, "{}", out.stdout);
}

#[test]
fn a_real_target_is_regressed_and_its_checkpoint_evaluated_and_asked_for_predictions() {
    let tmp = TempDir::new().unwrap();
    let file = data("diabetes.csv");
    let out = train(&tmp, &file, &["--target", "progression"]);
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    let last = out.stdout.lines().last().unwrap();
    assert!(last.starts_with("final test R² "), "{last}");
    let r2 = number_after(last, "final test R²");
    assert!(r2 > 0.3, "{last}");

    // The whole file, measured by the checkpoint alone: its features, standardization and
    // target come with it.
    let ck = tmp.path().join("ck.safetensors");
    let out = kiln(
        &[
            "eval",
            "--checkpoint",
            path_str(&ck),
            "--data",
            path_str(&file),
        ],
        Some(&tmp),
    );
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.starts_with("linear after 100 epochs"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("on 442 examples of"), "{}", out.stdout);
    let r2_all = number_after(&out.stdout, "R²");
    assert!(r2_all > 0.4, "{}", out.stdout);

    // Three rows without the target, their columns in another order: predictions by name.
    let rows = tmp.path().join("rows.csv");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut out_csv = String::new();
    let order: Vec<usize> = (0..header.len() - 1).rev().collect();
    let pick = |cells: &[&str]| {
        order
            .iter()
            .map(|&i| cells[i])
            .collect::<Vec<_>>()
            .join(",")
    };
    out_csv += &(pick(&header) + "\n");
    for line in lines.take(3) {
        out_csv += &(pick(&line.split(',').collect::<Vec<_>>()) + "\n");
    }
    std::fs::write(&rows, out_csv).unwrap();
    let out = kiln(
        &[
            "predict",
            "--checkpoint",
            path_str(&ck),
            "--input",
            path_str(&rows),
        ],
        Some(&tmp),
    );
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    let values: Vec<f64> = out.stdout.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(values.len(), 3, "{}", out.stdout);
    // The first rows' targets are 151, 75 and 141: a fitted linear model is off by tens.
    for (v, y) in values.iter().zip([151.0, 75.0, 141.0]) {
        assert!((v - y).abs() < 80.0, "{v} for {y}");
    }
}

#[test]
fn arrays_of_images_of_another_size_train_a_cnn() {
    let tmp = TempDir::new().unwrap();
    // 3-channel 12x12 images: class 1 is bright in its upper half, class 0 in its lower.
    let n = 96;
    let mut rng = common::Rng::new(5);
    let labels: Vec<i32> = (0..n).map(|i| (i % 2) as i32).collect();
    let x: Vec<f32> = (0..n * 3 * 144)
        .map(|k| {
            let (i, r) = (k / 432, (k % 144) / 12);
            let bright = (r < 6) == (labels[i] == 1);
            (if bright { 0.6 } else { 0.1 }) + 0.3 * rng.uniform() as f32
        })
        .collect();
    let dir = tmp.path().join("images");
    std::fs::create_dir(&dir).unwrap();
    write_npy(
        dir.join("x.npy"),
        &Array::from_f32([n, 3, 12, 12], x).unwrap(),
    )
    .unwrap();
    write_npy(
        dir.join("labels.npy"),
        &Array::from_i32([n], labels).unwrap(),
    )
    .unwrap();
    let out = train(
        &tmp,
        &dir,
        &[
            "--model",
            "lenet",
            "--epochs",
            "8",
            "--batch",
            "16",
            "--augment",
            "1",
        ],
    );
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("  conv1.w          f32[6,3,5,5]\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("images shifted by up to 1 pixels"),
        "{}",
        out.stdout
    );
    let acc = number_after(out.stdout.lines().last().unwrap(), "final test accuracy");
    assert!(acc >= 90.0, "{}", out.stdout);
}

/// Runs `kiln train` with `args` on `file` and checks it fails with exit status 2, one line
/// on stderr containing `expected`, and nothing written.
fn refused(file: &Path, args: &[&str], expected: &str) {
    let tmp = TempDir::new().unwrap();
    let out = train(&tmp, file, args);
    assert_eq!(out.status, Some(2), "{args:?}: {}", out.stdout);
    assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert!(out.stderr.contains(expected), "{args:?}: {}", out.stderr);
    assert!(
        !out.stdout.contains("epoch"),
        "nothing trained: {}",
        out.stdout
    );
    assert!(!tmp.path().join("ck.safetensors").exists());
}

#[test]
fn bad_settings_are_refused_in_one_line_before_anything_trains() {
    let mnist = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let iris = data("iris.csv");
    let t = ["--target", "species"];
    refused(
        &mnist,
        &["--batch", "0"],
        "--batch 0: a step needs one example at least",
    );
    refused(&iris, &[&t[..], &["--batch", "0"]].concat(), "--batch 0");
    refused(
        &iris,
        &[&t[..], &["--batch", "1000"]].concat(),
        "the training data has 120 examples",
    );
    refused(
        &mnist,
        &["--width", "0"],
        "--width 0: a layer needs one unit at least",
    );
    refused(
        &mnist,
        &["--lr", "nan"],
        "--lr NaN: the learning rate is a positive number",
    );
    refused(&mnist, &["--lr=-1"], "--lr -1");
    refused(&mnist, &["--lr", "inf"], "--lr inf");
    refused(
        &mnist,
        &["--augment", "100"],
        "--augment 100: the images are 28x28, so a shift must be less than 28",
    );
    refused(
        &iris,
        &[&t[..], &["--augment", "2"]].concat(),
        "--augment shifts images; this data holds no images",
    );
    refused(&mnist, &["--threads", "0"], "--threads 0");
    refused(
        &mnist,
        &["--model", "alexnet"],
        "`alexnet` is neither a file nor a built-in model",
    );
    refused(
        &iris,
        &[],
        "name the column to predict with --target (its columns: sepal_length,",
    );
    refused(
        &iris,
        &["--target", "colour"],
        "column `colour`: no such column",
    );
    refused(
        &iris,
        &[&t[..], &["--model", "lenet"]].concat(),
        "model `lenet` cannot take examples of shape [4]",
    );
    refused(
        &mnist,
        &["--target", "species"],
        "--target and --val apply to tables and arrays",
    );
}

/// Writes `text` to `name` in `tmp`.
fn file(tmp: &TempDir, name: &str, text: &[u8]) -> PathBuf {
    let p = tmp.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn malformed_files_are_refused_naming_the_file_row_and_column() {
    let tmp = TempDir::new().unwrap();
    let t = ["--target", "y"];
    let cases: Vec<(PathBuf, &str)> = vec![
        (
            file(&tmp, "cell.csv", b"a,b,y\n1,2,0\n3,x,1\n"),
            "cell.csv: line 3, column `b`: `x` is not a number",
        ),
        (
            file(&tmp, "ragged.csv", b"a,b,y\n1,2,0\n3,1\n"),
            "ragged.csv: line 3",
        ),
        (
            file(&tmp, "empty.csv", b"a,b,y\n1,,0\n"),
            "empty.csv: line 2, column `b`",
        ),
        (
            file(&tmp, "nan.csv", b"a,b,y\n1,NaN,0\n"),
            "nan.csv: line 2, column `b`",
        ),
        (
            file(&tmp, "bytes.npz", b"PK\x03\x04 not a zip"),
            "bytes.npz",
        ),
        (
            file(
                &tmp,
                "trunc.npy",
                b"\x93NUMPY\x01\x00\x76\x00{'descr': '<f4'",
            ),
            "trunc.npy",
        ),
    ];
    for (path, expected) in cases {
        refused(&path, &t, expected);
    }
    let labels = file(&tmp, "label.csv", b"a,y\n1,0\n2,1\n3,-1\n4,1\n5,0\n");
    refused(
        &labels,
        &["--target", "y", "--task", "classify"],
        "label.csv`: line 4 has the label -1; classes are whole numbers from 0",
    );
    // A label out of the training classes in a separate test file names the example.
    let train_csv = file(&tmp, "train.csv", b"a,y\n1,0\n2,1\n3,0\n4,1\n");
    let val_csv = file(&tmp, "val.csv", b"a,y\n1,0\n2,7\n");
    refused(
        &train_csv,
        &["--target", "y", "--val", path_str(&val_csv), "--batch", "2"],
        "val.csv`: line 3 has the label 7, but the training data has 2 classes",
    );
    // Arrays whose columns disagree in length.
    let dir = tmp.path().join("arrays");
    std::fs::create_dir(&dir).unwrap();
    write_npy(
        dir.join("x.npy"),
        &Array::from_f32([4, 2], vec![0.0; 8]).unwrap(),
    )
    .unwrap();
    write_npy(
        dir.join("labels.npy"),
        &Array::from_i32([3], vec![0, 1, 0]).unwrap(),
    )
    .unwrap();
    refused(
        &dir,
        &[],
        "column `x`: 4 examples, but column `labels` has 3",
    );
}
