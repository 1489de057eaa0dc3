//! Peak memory of a training run, each engine in a child process of its own so that peaks do
//! not mix: the child (`kiln-bench memory ENGINE`) runs [`STEPS`] steps of
//! [`MEMORY_STEP`] and prints one JSON line with its peak resident set (`VmHWM` of
//! `/proc/self/status`) and, for kiln, the compiled program's arena size.
//!
//! The `baseline` engine loads the data and trains nothing: its peak is what every child
//! holds before training (the binary, the MNIST images), subtracted in the report.
//!
//! The larger training steps ([`Workload::measures_peak_memory`]) get a peak of their own per
//! engine: `kiln-bench memory "kiln fused" --workload ID` runs [`PEAK_STEPS`] steps of that
//! workload ([`child_workload`]), and the Python peers do the same in a fresh process of
//! their script ([`crate::python::peak_memory`]).

use crate::data::{batch, mnist_train};
use crate::python::Peak;
use crate::workloads::{self, MEMORY_STEP, Workload};
use crate::{BenchError, Engine};
use std::path::PathBuf;
use std::process::Command;

/// Training steps of the measured run.
pub const STEPS: usize = 200;

/// Steps run for the peak memory of one workload: the first step allocates what a step needs
/// (and compiles, for torch.compile and JAX), the later ones show whether it keeps growing.
pub const PEAK_STEPS: usize = 3;

/// The engines a child can measure; the peers only with the `peers` feature.
pub fn engines() -> Vec<&'static str> {
    let mut e = vec!["baseline", "kiln fused", "kiln unfused"];
    if cfg!(feature = "peers") {
        e.extend(["candle", "burn"]);
    }
    e
}

/// The peak resident set of this process so far, in KiB (Linux only).
pub fn peak_rss_kib() -> Option<u64> {
    status_kib("VmHWM:")
}

/// The resident set of this process now, in KiB (Linux only).
pub fn rss_kib() -> Option<u64> {
    status_kib("VmRSS:")
}

/// The field `key` of `/proc/self/status`, in KiB.
fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What one child measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// The engine.
    pub engine: String,
    /// Peak resident set, KiB.
    pub peak_kib: u64,
    /// The compiled program's arena, bytes (kiln only).
    pub arena_bytes: Option<u64>,
}

/// In the child: trains `engine` for [`STEPS`] steps on the first batch and gives the JSON
/// line to print.
pub fn child(engine: &str) -> Result<String, BenchError> {
    let data = mnist_train()?;
    let b = batch(&data, 0, MEMORY_STEP.batch);
    let mut arena = None;
    let mut run: Box<dyn Engine> = match engine {
        "baseline" => return line(engine, None),
        "kiln fused" | "kiln unfused" => {
            let p = MEMORY_STEP.kiln(engine == "kiln fused", &b)?;
            arena = Some(p.executable().stats().arena_bytes as u64);
            Box::new(p)
        }
        _ => peer(engine, &b)?,
    };
    for _ in 0..STEPS {
        run.run()?;
    }
    line(engine, arena)
}

#[cfg(feature = "peers")]
fn peer(engine: &str, b: &crate::data::Batch) -> Result<Box<dyn Engine>, BenchError> {
    use crate::peers::Peer;
    match Peer::ALL.into_iter().find(|p| p.name() == engine) {
        Some(p) => p.train(&MEMORY_STEP, b),
        None => Err(unknown(engine)),
    }
}

#[cfg(not(feature = "peers"))]
fn peer(engine: &str, _: &crate::data::Batch) -> Result<Box<dyn Engine>, BenchError> {
    Err(unknown(engine))
}

fn unknown(engine: &str) -> BenchError {
    BenchError::Protocol(format!(
        "no engine `{engine}` to measure (known: {})",
        engines().join(", ")
    ))
}

/// The JSON line of a finished child.
fn line(engine: &str, arena: Option<u64>) -> Result<String, BenchError> {
    let peak = peak_rss_kib()
        .ok_or_else(|| BenchError::Protocol("no VmHWM in /proc/self/status".into()))?;
    Ok(serde_json::json!({"engine": engine, "peak_kib": peak, "arena_bytes": arena}).to_string())
}

/// In the child: builds `engine` (`kiln fused` or `kiln unfused`) for workload `id` and runs
/// `steps` iterations; the JSON line to print, with the resident set before the engine was
/// built (after loading MNIST, which only the MNIST models use) as `start_kib`.
pub fn child_workload(engine: &str, id: &str, steps: usize) -> Result<String, BenchError> {
    let w = workloads::by_id(id).ok_or_else(|| {
        BenchError::Protocol(format!("no workload `{id}` (see `kiln-bench list`)"))
    })?;
    let fuse = match engine {
        "kiln fused" => true,
        "kiln unfused" => false,
        _ => return Err(unknown(engine)),
    };
    let data = mnist_train()?;
    let start = rss_kib().unwrap_or(0);
    let mut run = w.kiln(fuse, &data)?;
    for _ in 0..steps {
        run.run()?;
    }
    let peak = peak_rss_kib()
        .ok_or_else(|| BenchError::Protocol("no VmHWM in /proc/self/status".into()))?;
    Ok(serde_json::json!({"engine": engine, "peak_kib": peak, "start_kib": start}).to_string())
}

/// In the parent: the peak memory of `engine` (`kiln fused` or `kiln unfused`) running
/// [`PEAK_STEPS`] iterations of `w`, in a child process of this executable.
pub fn measure_workload(engine: &str, w: &Workload) -> Result<Peak, BenchError> {
    let steps = PEAK_STEPS.to_string();
    let stdout = run_child(engine, &["--workload", &w.id(), "--steps", &steps])?;
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .map_err(|_| BenchError::Protocol(format!("unreadable memory line `{stdout}`")))?;
    let kib = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
    match (kib("peak_kib"), kib("start_kib")) {
        (Some(peak_kib), Some(start_kib)) => Ok(Peak {
            peak_kib,
            start_kib,
        }),
        _ => Err(BenchError::Protocol(format!(
            "unreadable memory line `{stdout}`"
        ))),
    }
}

/// Runs `kiln-bench memory ENGINE ARGS..` and gives what it printed.
fn run_child(engine: &str, args: &[&str]) -> Result<String, BenchError> {
    let exe = std::env::current_exe().map_err(|source| BenchError::Io {
        path: PathBuf::from("the current executable"),
        source,
    })?;
    let out = Command::new(&exe)
        .args(["memory", engine])
        .args(args)
        .output()
        .map_err(|source| BenchError::Io { path: exe, source })?;
    if !out.status.success() {
        return Err(BenchError::Protocol(format!(
            "the memory child for {engine} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// In the parent: measures `engine` in a child process of this executable.
pub fn measure(engine: &str) -> Result<Measurement, BenchError> {
    let stdout = run_child(engine, &[])?;
    parse(stdout.lines().last().unwrap_or_default())
        .ok_or_else(|| BenchError::Protocol(format!("unreadable memory line `{stdout}`")))
}

/// A child's JSON line.
fn parse(line: &str) -> Option<Measurement> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    Some(Measurement {
        engine: v.get("engine")?.as_str()?.to_string(),
        peak_kib: v.get("peak_kib")?.as_u64()?,
        arena_bytes: v.get("arena_bytes").and_then(|a| a.as_u64()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_peak() {
        assert!(peak_rss_kib().unwrap() > 100);
    }

    #[test]
    fn a_workload_child_reports_its_peak() {
        let l = child_workload("kiln fused", "train_mlp_784_128_10_b64_sgd", 2).unwrap();
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        let (peak, start) = (
            v["peak_kib"].as_u64().unwrap(),
            v["start_kib"].as_u64().unwrap(),
        );
        assert!(peak >= start && start > 0, "{l}");
    }

    #[test]
    fn lines_round_trip() {
        let l = line("kiln fused", Some(42)).unwrap();
        let m = parse(&l).unwrap();
        assert_eq!((m.engine.as_str(), m.arena_bytes), ("kiln fused", Some(42)));
        assert_eq!(parse("{}"), None);
        assert!(child("nobody").is_err());
        assert!(child_workload("nobody", "train_mlp_784_128_10_b64_sgd", 1).is_err());
        assert!(child_workload("kiln fused", "no such workload", 1).is_err());
    }
}
