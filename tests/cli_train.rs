//! `kiln train`, `eval`, `predict` and `sweep` end to end on the embedded MNIST-10k, with
//! small models so that each run takes a moment, and their user errors.

mod common;

use common::{Outcome, kiln, path_str};
use kiln::compiler::Array;
use kiln::runtime::checkpoint::load;
use kiln::runtime::data::Mnist;
use kiln::runtime::npy::write_npy;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// Runs `kiln train` for a narrow MLP with `args` added, saving into `tmp`'s `name`.
fn train(tmp: &TempDir, name: &str, args: &[&str]) -> Outcome {
    let ck = tmp.path().join(name).join("ck.safetensors");
    let plot = tmp.path().join(name).join("curves.svg");
    let mut all = vec!["train", "--width", "16", "--batch", "100"];
    all.extend(["--checkpoint", path_str(&ck), "--plot", path_str(&plot)]);
    all.extend(args);
    kiln(&all, Some(tmp))
}

fn checkpoint(tmp: &TempDir, name: &str) -> PathBuf {
    tmp.path().join(name).join("ck.safetensors")
}

#[test]
fn train_prints_a_summary_and_one_line_per_epoch() {
    let tmp = TempDir::new().unwrap();
    let out = train(&tmp, "run", &["--epochs", "1"]);
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    let s = &out.stdout;
    assert!(
        s.starts_with("model mlp (12730 parameters in 4 tensors)\n"),
        "{s}"
    );
    assert!(s.contains("  fc1.w            f32[784,16]\n"), "{s}");
    assert!(
        s.contains(
            "optimizer momentum (lr 0.1, momentum 0.9), constant schedule, batch 100, seed 0"
        ),
        "{s}"
    );
    assert!(
        s.contains(
            "data: 8000 training and 2000 test examples (x: f32[8000,1,28,28], labels: \
             i32[8000])"
        ),
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
    assert!(
        s.contains("checkpoint: [TMP]/run/ck.safetensors\ncurves: [TMP]/run/curves.svg\n"),
        "{s}"
    );
    let last = s.lines().last().unwrap();
    assert!(
        last.starts_with(&format!(
            "final test accuracy {acc:.2}% (best {acc:.2}% at epoch 1)"
        )),
        "{s}"
    );
    let svg = std::fs::read_to_string(tmp.path().join("run/curves.svg")).unwrap();
    assert!(svg.starts_with("<svg"), "{svg}");
}

/// `kiln predict` of the image file `input` with the checkpoint `ck`.
fn predict(ck: &Path, input: &Path, tmp: &TempDir) -> Outcome {
    let args = [
        "predict",
        "--checkpoint",
        path_str(ck),
        "--input",
        path_str(input),
    ];
    kiln(&args, Some(tmp))
}

/// Every tensor of the checkpoint at `path`, as bits.
fn bits(path: &Path) -> Vec<(String, Vec<u64>)> {
    let ck = load(path).unwrap();
    (ck.tensors.into_iter())
        .map(|(n, a)| (n, a.to_f64_vec().iter().map(|v| v.to_bits()).collect()))
        .collect()
}

#[test]
fn a_resumed_run_ends_bit_identical_to_an_uninterrupted_one() {
    let tmp = TempDir::new().unwrap();
    let adam = [
        "--optimizer",
        "adam",
        "--lr",
        "0.002",
        "--seed",
        "5",
        "--schedule",
        "cosine",
    ];
    let straight = train(&tmp, "straight", &[&["--epochs", "2"][..], &adam].concat());
    assert_eq!(straight.status, Some(0), "{}", straight.stderr);
    let first = train(&tmp, "split", &[&["--epochs", "1"][..], &adam].concat());
    assert_eq!(first.status, Some(0), "{}", first.stderr);
    // Resuming takes every setting from the checkpoint.
    let second = train(&tmp, "split", &["--epochs", "2", "--resume"]);
    assert_eq!(second.status, Some(0), "{}", second.stderr);
    assert!(
        second
            .stdout
            .contains("resuming from [TMP]/split/ck.safetensors after epoch 1 (step 80)"),
        "{}",
        second.stdout
    );
    assert!(
        second.stdout.contains(
            "optimizer adam (lr 0.002, beta1 0.9, beta2 0.999, eps 0.00000001), cosine schedule, batch 100, seed 5"
        ),
        "{}",
        second.stdout
    );
    let (a, b) = (
        bits(&checkpoint(&tmp, "straight")),
        bits(&checkpoint(&tmp, "split")),
    );
    assert!(a.iter().any(|(n, _)| n == "fc1.w.m") && a.iter().any(|(n, _)| n == "optimizer.step"));
    assert_eq!(a, b, "parameters and optimizer state");
    let epoch2 = |o: &Outcome| {
        o.stdout
            .lines()
            .find(|l| l.starts_with("epoch   2/2"))
            .unwrap()
            .split("  ")
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(epoch2(&straight), epoch2(&second), "the same losses");
    let (ma, mb) = (
        load(checkpoint(&tmp, "straight")).unwrap().meta,
        load(checkpoint(&tmp, "split")).unwrap().meta,
    );
    assert_eq!((ma.epoch, ma.step), (mb.epoch, mb.step));
    assert_eq!(mb.history.len(), 2);
    assert_eq!(ma.history[1].train, mb.history[1].train);
}

#[test]
fn resuming_refuses_another_setting_or_a_damaged_checkpoint() {
    let tmp = TempDir::new().unwrap();
    assert_eq!(train(&tmp, "run", &["--epochs", "1"]).status, Some(0));
    let out = train(&tmp, "run", &["--epochs", "2", "--resume", "--seed", "3"]);
    assert_eq!(out.status, Some(2));
    assert_eq!(
        out.stderr,
        "error: checkpoint `[TMP]/run/ck.safetensors` does not fit this run: its seed is `0`, not `3`\n"
    );
    let out = train(
        &tmp,
        "run",
        &["--epochs", "2", "--resume", "--optimizer", "sgd"],
    );
    assert!(
        out.stderr
            .contains("its optimizer is `momentum`, not `sgd`"),
        "{}",
        out.stderr
    );
    let ck = checkpoint(&tmp, "run");
    let bytes = std::fs::read(&ck).unwrap();
    std::fs::write(&ck, &bytes[..bytes.len() / 2]).unwrap();
    let out = train(&tmp, "run", &["--epochs", "2", "--resume"]);
    assert_eq!(out.status, Some(2));
    assert!(
        out.stderr
            .starts_with("error: `[TMP]/run/ck.safetensors` is not a valid kiln checkpoint"),
        "{}",
        out.stderr
    );
    let out = kiln(&["eval", "--checkpoint", path_str(&ck)], Some(&tmp));
    assert_eq!(out.status, Some(2));
    let out = train(&tmp, "none", &["--resume"]);
    assert!(
        out.stderr
            .starts_with("error: cannot read checkpoint `[TMP]/none/ck.safetensors`"),
        "{}",
        out.stderr
    );
}

#[test]
fn eval_and_predict_use_a_trained_checkpoint() {
    let tmp = TempDir::new().unwrap();
    assert_eq!(train(&tmp, "run", &["--epochs", "2"]).status, Some(0));
    let ck = checkpoint(&tmp, "run");
    let out = kiln(&["eval", "--checkpoint", path_str(&ck)], Some(&tmp));
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    let data_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let head = format!(
        "mlp after 2 epochs (160 steps) on 2000 examples of `{}`: loss ",
        data_dir.display()
    );
    assert!(out.stdout.starts_with(&head), "{}", out.stdout);
    let trained = load(&ck).unwrap().meta.history[1].test("accuracy");
    assert!(
        out.stdout
            .ends_with(&format!("accuracy {:.2}%\n", 100.0 * trained)),
        "the accuracy training measured: {}",
        out.stdout
    );

    // Test image 1000 of the embedded set, as .npy and as an 8-bit grayscale PNG.
    let data = Mnist::load(&data_dir).unwrap().test.select(&[1000]);
    let pixels = data.column("x").unwrap().as_f32().unwrap().to_vec();
    let label = data.column("labels").unwrap().as_i32().unwrap()[0];
    let npy = tmp.path().join("digit.npy");
    write_npy(&npy, &Array::from_f32([28, 28], pixels.clone()).unwrap()).unwrap();
    let png = tmp.path().join("digit.png");
    let mut enc = png::Encoder::new(std::fs::File::create(&png).unwrap(), 28, 28);
    enc.set_color(png::ColorType::Grayscale);
    let bytes: Vec<u8> = pixels.iter().map(|p| (p * 255.0).round() as u8).collect();
    enc.write_header()
        .unwrap()
        .write_image_data(&bytes)
        .unwrap();
    for input in [&npy, &png] {
        let out = predict(&ck, input, &tmp);
        assert_eq!(out.status, Some(0), "{}", out.stderr);
        assert!(
            out.stdout.starts_with(&format!("{label} (probability 0.")),
            "{label}: {}",
            out.stdout
        );
    }
    let wrong = tmp.path().join("wrong.npy");
    write_npy(&wrong, &Array::from_f32([10, 10], vec![0.5; 100]).unwrap()).unwrap();
    let out = predict(&ck, &wrong, &tmp);
    assert_eq!(
        out.stderr,
        "error: `[TMP]/wrong.npy` holds an array of shape [10, 10]; the model reads examples of \
         shape [1, 28, 28]\n"
    );
    write_npy(&wrong, &Array::from_f32([784], vec![255.0; 784]).unwrap()).unwrap();
    let out = predict(&ck, &wrong, &tmp);
    assert!(
        out.stderr
            .contains("holds the pixel value 255; pixels lie in [0, 1]"),
        "{}",
        out.stderr
    );
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
        out.stdout.contains("ranked on 800 validation examples"),
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

#[test]
fn the_numerics_check_changes_no_result_and_stops_a_diverging_run_where_it_diverges() {
    let tmp = TempDir::new().unwrap();
    let plain = train(&tmp, "plain", &["--epochs", "1"]);
    assert_eq!(plain.status, Some(0), "{}", plain.stderr);
    let checked = train(&tmp, "checked", &["--epochs", "1", "--check-numerics"]);
    assert_eq!(checked.status, Some(0), "{}", checked.stderr);
    assert_eq!(
        bits(&checkpoint(&tmp, "plain")),
        bits(&checkpoint(&tmp, "checked"))
    );
    let args = ["--epochs", "1", "--lr", "1e30", "--check-numerics"];
    let out = train(&tmp, "diverging", &args);
    assert_eq!(out.status, Some(2));
    let err = out.stderr.trim_end();
    assert!(
        err.starts_with("error: at step ") && err.contains(" (epoch 1): kernel k"),
        "{err}"
    );
    assert!(err.contains(" produced ") && err.ends_with(')'), "{err}");
}
