//! `kiln train` under `mpirun` (the `mpi` feature; `.ci/run` installs Open MPI and runs these):
//! one rank is a plain run, ranks that disagree stop with one message, a killed rank ends the
//! job with the last checkpoint intact, and a checkpoint written by two ranks resumes on one.
//! That two ranks train what one process trains is checked step by step in
//! `tests/data_parallel.rs` (ranks as threads, the same trainer).
//!
//! Skipped, with a note, where `mpirun` is not installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The MLP on the diabetes table: small enough for a test build.
fn train_args(ck: &Path, extra: &[&str]) -> Vec<String> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/diabetes.csv");
    let mut args: Vec<String> = ["train", "--data", &data.display().to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for a in [
        "--target",
        "progression",
        "--model",
        "mlp",
        "--batch",
        "32",
        "--threads",
        "1",
        "--no-plot",
        "--checkpoint",
    ] {
        args.push(a.into());
    }
    args.push(ck.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// A directory for a test's files and the checkpoint path in it, or `None` (with a note)
/// where `mpirun` is not installed and the test is skipped.
fn setup() -> Option<(TempDir, PathBuf)> {
    if Command::new("mpirun").arg("--version").output().is_err() {
        eprintln!("note: mpirun not found; the MPI tests are skipped (see .ci/run)");
        return None;
    }
    let tmp = TempDir::new().unwrap();
    let ck = tmp.path().join("ck.safetensors");
    Some((tmp, ck))
}

/// `kiln ARGS`, without a launcher.
fn plain(args: &[String]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
    c.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// `mpirun -np ranks kiln ARGS`: every rank runs the same command.
fn mpirun(ranks: usize, args: &[String]) -> Command {
    let mut c = Command::new("mpirun");
    c.args([
        "--allow-run-as-root",
        "--oversubscribe",
        "-np",
        &ranks.to_string(),
    ]);
    c.arg(env!("CARGO_BIN_EXE_kiln")).args(args);
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run(mut c: Command) -> Output {
    c.output().expect("the command starts")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every tensor of the checkpoint at `path`, by name, as bits.
fn tensors(path: &Path) -> Vec<(String, Vec<u64>)> {
    let ck = kiln::runtime::checkpoint::load(path).unwrap();
    let mut out: Vec<_> = (ck.tensors.iter())
        .map(|(n, a)| {
            (
                n.clone(),
                a.to_f64_vec().iter().map(|v| v.to_bits()).collect(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn one_rank_under_mpirun_is_a_plain_run() {
    let Some((tmp, _)) = setup() else {
        return;
    };
    let (a, b) = (
        tmp.path().join("a.safetensors"),
        tmp.path().join("b.safetensors"),
    );
    let alone = run(plain(&train_args(&a, &["--epochs", "3"])));
    assert!(alone.status.success(), "{}", text(&alone));
    let one = run(mpirun(1, &train_args(&b, &["--epochs", "3"])));
    assert!(one.status.success(), "{}", text(&one));
    assert_eq!(tensors(&a), tensors(&b));
}

#[test]
fn two_ranks_train_checkpoint_and_resume_on_one() {
    let Some((_tmp, ck)) = setup() else {
        return;
    };
    let two = run(mpirun(2, &train_args(&ck, &["--epochs", "2"])));
    let out = text(&two);
    assert!(two.status.success(), "{out}");
    // Rank 0 alone prints: one line per epoch.
    assert_eq!(out.matches("epoch   1/2").count(), 1, "{out}");
    let resumed = run(plain(&train_args(&ck, &["--epochs", "4", "--resume"])));
    let out = text(&resumed);
    assert!(resumed.status.success(), "{out}");
    assert!(
        out.contains("resuming from") && out.contains("epoch   4/4"),
        "{out}"
    );
}

#[test]
fn ranks_with_different_settings_stop_with_one_message() {
    let Some((_tmp, ck)) = setup() else {
        return;
    };
    // A launch of two commands, one rank each, that differ in the learning rate.
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--oversubscribe"]);
    for (i, lr) in ["0.1", "0.2"].iter().enumerate() {
        if i > 0 {
            c.arg(":");
        }
        c.args(["-np", "1", env!("CARGO_BIN_EXE_kiln")]);
        c.args(train_args(&ck, &["--epochs", "1", "--lr", lr]));
    }
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    let o = run(c);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    let message = "rank 1's settings differs from rank 0's";
    assert_eq!(out.matches(message).count(), 1, "{out}");
    assert!(!ck.exists());
}

#[test]
fn a_loss_that_diverges_on_every_rank_is_reported_once() {
    let Some((_tmp, ck)) = setup() else {
        return;
    };
    let o = run(mpirun(
        2,
        &train_args(&ck, &["--epochs", "1", "--lr", "1e30"]),
    ));
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert_eq!(out.matches("training diverged").count(), 1, "{out}");
    assert!(!out.contains("rank 1 of 2"), "{out}");
}

#[test]
fn a_failing_rank_names_itself_and_ends_the_job() {
    let Some((tmp, ck)) = setup() else {
        return;
    };
    // Rank 1 is given a data file that is not there.
    let mut missing = train_args(&ck, &["--epochs", "2"]);
    missing[2] = tmp.path().join("missing.csv").display().to_string();
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--oversubscribe"]);
    c.args(["-np", "1", env!("CARGO_BIN_EXE_kiln")]);
    c.args(train_args(&ck, &["--epochs", "2"]));
    c.args([":", "-np", "1", env!("CARGO_BIN_EXE_kiln")]);
    c.args(missing);
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    let start = Instant::now();
    let o = run(c);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("rank 1 of 2: error"), "{out}");
    assert!(start.elapsed() < Duration::from_secs(60), "{out}");
}

#[test]
fn a_killed_rank_ends_the_job_and_the_last_checkpoint_loads() {
    let Some((_tmp, ck)) = setup() else {
        return;
    };
    let mut c = mpirun(2, &train_args(&ck, &["--epochs", "100000"]));
    let mut job = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for a checkpoint, then kill a rank: the newest process naming this test's
    // checkpoint (mpirun starts before its ranks).
    let start = Instant::now();
    while !ck.exists() {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pids = Command::new("pgrep")
        .args(["-n", "-f", &ck.display().to_string()])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&pids.stdout).trim().to_string();
    assert!(!pid.is_empty(), "no rank found");
    let killed = Instant::now();
    Command::new("kill").args(["-9", &pid]).status().unwrap();
    let status = loop {
        if let Some(s) = job.try_wait().unwrap() {
            break s;
        }
        if killed.elapsed() > Duration::from_secs(30) {
            job.kill().unwrap();
            panic!("the job still runs 30 s after a rank was killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success());
    // Written atomically by rank 0: whole, whenever the job ended.
    assert!(!tensors(&ck).is_empty());
}
