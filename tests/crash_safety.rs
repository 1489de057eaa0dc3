//! Crash-safe saves: `kiln train` is killed with SIGKILL at many points of a run, saves
//! included, and every time the newest complete checkpoint must load, be whole, and resume to
//! the very parameters of an uninterrupted run.
//!
//! The run is made mostly of saves: logistic regression on a tiny data set written here (two
//! steps per epoch), a checkpoint every epoch, many epochs. Kill times are drawn uniformly
//! over the length of a run (measured, and shortened when a run ends before its kill) by a
//! seeded generator. After each kill:
//!
//! - the checkpoint is absent only if the run printed no second epoch (a printed epoch `k`
//!   means the save of epoch `k - 1` returned), else it loads, its epoch is its history's
//!   length and at least the last printed epoch less one, its step count matches, and it holds
//!   every tensor of the model; anything else is a checkpoint lost;
//! - `kiln train --resume` from it (or a fresh run, when there is none) ends bit-identical to
//!   the uninterrupted run, beside the temporary files that earlier kills left.
//!
//! `KILN_KILL_POINTS` sets the number of kills (default 30, a few tens of seconds); run with
//! `--nocapture` to see the tally.
#![cfg(unix)]

mod common;

use common::{Rng, path_str};
use kiln::runtime::checkpoint::{Checkpoint, load};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Epochs of every run: each ends with a save.
const EPOCHS: usize = 40;
/// Training images (two batches of 32) and test images.
const TRAIN: usize = 64;
const TEST: usize = 32;
/// Steps per epoch.
const STEPS: u64 = 2;

/// An IDX file of unsigned bytes with dimensions `dims`.
fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

/// Writes a tiny MNIST-shaped data set in the full set's layout into `dir`.
fn tiny_mnist(dir: &Path) {
    let mut rng = Rng::new(7);
    let mut write = |images: &str, labels: &str, n: usize| {
        let pixels: Vec<u8> = (0..n * 784).map(|_| rng.range(0.0, 256.0) as u8).collect();
        let classes: Vec<u8> = (0..n).map(|_| rng.range(0.0, 10.0) as u8).collect();
        fs::write(dir.join(images), idx(&[n as u32, 28, 28], &pixels)).unwrap();
        fs::write(dir.join(labels), idx(&[n as u32], &classes)).unwrap();
    };
    write("train-images-idx3-ubyte", "train-labels-idx1-ubyte", TRAIN);
    write("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", TEST);
}

/// The command of a run saving to `ck`, fresh or resumed; its stdout goes to `log`, its
/// stderr beside it.
fn train(data: &Path, ck: &Path, resume: bool, log: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
    c.args([
        "train",
        "--data",
        path_str(data),
        "--checkpoint",
        path_str(ck),
    ]);
    c.args([
        "--epochs",
        &EPOCHS.to_string(),
        "--threads",
        "1",
        "--no-plot",
    ]);
    if resume {
        c.arg("--resume");
    } else {
        c.args(["--model", "logreg", "--batch", "32", "--seed", "3"]);
    }
    c.stdout(File::create(log).unwrap());
    c.stderr(File::create(log.with_extension("err")).unwrap());
    c
}

/// Runs `c`, whose output goes to `log`, to the end; panics unless it succeeds.
fn finish(mut c: Command, log: &Path) {
    let status = c.status().unwrap();
    let stderr = fs::read_to_string(log.with_extension("err")).unwrap();
    assert!(status.success(), "{status}: {stderr}");
}

/// Every tensor of a checkpoint, by name, with its type and its bits.
fn bits(ck: &Checkpoint) -> Vec<(String, String, Vec<u64>)> {
    (ck.tensors.iter())
        .map(|(n, a)| {
            let b = a.to_f64_vec().iter().map(|v| v.to_bits()).collect();
            (n.clone(), a.ty().to_string(), b)
        })
        .collect()
}

/// The last epoch a run's output says it trained (0 for none).
fn last_printed_epoch(log: &Path) -> usize {
    let out = fs::read_to_string(log).unwrap();
    (out.lines())
        .filter_map(|l| {
            l.strip_prefix("epoch ")?
                .split('/')
                .next()?
                .trim()
                .parse()
                .ok()
        })
        .max()
        .unwrap_or(0)
}

/// The temporary files atomic saves of `ck` left in its directory.
fn leftovers(ck: &Path) -> Vec<PathBuf> {
    let prefix = format!(".{}.", ck.file_name().unwrap().to_str().unwrap());
    (fs::read_dir(ck.parent().unwrap()).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with(&prefix) && name.ends_with(".tmp")
        })
        .collect()
}

#[test]
fn sigkill_at_any_point_never_loses_or_breaks_a_checkpoint() {
    let kills: usize = std::env::var("KILN_KILL_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let tmp = tempfile::TempDir::new().unwrap();
    let data = tmp.path().join("data");
    fs::create_dir(&data).unwrap();
    tiny_mnist(&data);
    let runs = tmp.path().join("runs");
    fs::create_dir(&runs).unwrap();
    let ck = runs.join("ck.safetensors");
    let log = tmp.path().join("stdout.txt");

    // The uninterrupted run: the parameters every interrupted one must end with, and the
    // length of a run, over which the kills are spread (a measure, never asserted on): the
    // shortest of three, as the first pays for a cold start the others do not.
    let measured = (0..3)
        .map(|_| {
            let started = Instant::now();
            finish(train(&data, &ck, false, &log), &log);
            started.elapsed()
        })
        .min()
        .unwrap();
    let mut length = measured;
    let reference = load(&ck).unwrap();
    assert_eq!(reference.meta.epoch, EPOCHS);
    let want = bits(&reference);

    let mut rng = Rng::new(2024);
    let (mut mid_save, mut before_first, mut finished, mut lost) = (0, 0, 0, 0);
    let mut epochs_seen = Vec::new();
    for kill in 0..kills {
        fs::remove_file(&ck).ok();
        let before: Vec<PathBuf> = leftovers(&ck);
        let at = length.mul_f64(rng.uniform());
        let started = Instant::now();
        let mut child = train(&data, &ck, false, &log).spawn().unwrap();
        while started.elapsed() < at && child.try_wait().unwrap().is_none() {
            std::thread::sleep(
                (at.saturating_sub(started.elapsed())).min(Duration::from_millis(1)),
            );
        }
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.success() {
            // The run ended before its kill: runs are shorter now (the time a sync takes
            // varies with the machine's load), so later kills spread over a shorter length.
            length = (length + started.elapsed()) / 2;
            finished += 1;
        }
        let new_temp = leftovers(&ck).into_iter().any(|p| !before.contains(&p));
        if new_temp {
            mid_save += 1;
        }
        let printed = last_printed_epoch(&log);
        let context = format!("kill {kill} at {at:?} ({status}), epoch {printed} printed");
        if !ck.exists() {
            if printed >= 2 {
                lost += 1;
                eprintln!("{context}: no checkpoint");
            }
            before_first += 1;
            finish(train(&data, &ck, false, &log), &log);
        } else {
            let saved = match load(&ck) {
                Ok(saved) => saved,
                Err(e) => panic!("{context}: the checkpoint does not load: {e}"),
            };
            let m = &saved.meta;
            assert_eq!(m.history.len(), m.epoch, "{context}");
            assert!(
                (1..=EPOCHS).contains(&m.epoch),
                "{context}: epoch {}",
                m.epoch
            );
            assert_eq!(m.step, m.epoch as u64 * STEPS, "{context}");
            assert!(m.epoch <= printed, "{context}: epoch {} saved", m.epoch);
            if m.epoch + 1 < printed {
                lost += 1;
                eprintln!("{context}: the checkpoint holds epoch {}", m.epoch);
            }
            let names = |c: &Checkpoint| -> Vec<(String, String)> {
                (c.tensors.iter())
                    .map(|(n, a)| (n.clone(), a.ty().to_string()))
                    .collect()
            };
            assert_eq!(names(&saved), names(&reference), "{context}");
            epochs_seen.push(m.epoch);
            finish(train(&data, &ck, true, &log), &log);
        }
        let resumed = load(&ck).unwrap();
        assert_eq!(resumed.meta.epoch, EPOCHS, "{context}");
        assert!(bits(&resumed) == want, "{context}: the run ends elsewhere");
    }
    epochs_seen.sort_unstable();
    epochs_seen.dedup();
    println!(
        "crash safety: {kills} kill points over a run of {EPOCHS} epochs ({measured:.0?} \
         uninterrupted): {mid_save} landed mid-save (a temporary file left), {before_first} \
         before the first save, {finished} after the run ended, {} distinct epochs resumed \
         from; checkpoints lost: {lost}; temporary files left: {}",
        epochs_seen.len(),
        leftovers(&ck).len()
    );
    assert_eq!(lost, 0, "checkpoints lost");
}
