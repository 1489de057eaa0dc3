//! The optional Python peers: JAX (the whole step under `jax.jit`) and PyTorch (eager and
//! `torch.compile`), run by the scripts in `benches/peers/` when their framework imports.
//!
//! The report writes every workload's inputs and kiln's initial parameters as `.npy` files
//! and a `spec.json` describing the workloads into a directory; a script reads them, times
//! each workload with the same harness as [`crate::harness`] (warm-up, samples of at least a
//! minimum duration), and prints JSON lines:
//!
//! - `{"engine": E, "version": V}` once per engine;
//! - `{"workload": W, "engine": E, "losses": [..]}` for a training step's first steps;
//! - `{"workload": W, "engine": E, "seconds": [..], "iterations": N}`: per-iteration times;
//! - `{"workload": W, "engine": E, "skipped": REASON}`.
//!
//! The report checks the losses against kiln's exactly as it checks the Rust peers'.

use crate::BenchError;
use crate::data::{Batch, batch};
use crate::harness::Config;
use crate::trajectory;
use crate::workloads::{Net, Opt, Workload, f32_array};
use kiln_compiler::Array;
use kiln_runtime::data::Dataset;
use kiln_runtime::npy::write_npy;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A framework's script in `benches/peers/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Script {
    /// The module the framework imports as (`jax`, `torch`).
    pub module: &'static str,
    /// The script's file name.
    pub file: &'static str,
}

/// The Python peers.
pub const SCRIPTS: [Script; 2] = [
    Script {
        module: "jax",
        file: "jax_peer.py",
    },
    Script {
        module: "torch",
        file: "torch_peer.py",
    },
];

/// The directory of the scripts.
pub fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// Whether `python` can import `module`.
pub fn available(python: &str, module: &str) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// One line a script printed.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// An engine's framework version.
    Version {
        /// The engine.
        engine: String,
        /// Its version.
        version: String,
    },
    /// The losses of a training step's first steps.
    Losses {
        /// The workload's id.
        workload: String,
        /// The engine.
        engine: String,
        /// The losses.
        losses: Vec<f64>,
    },
    /// Per-iteration times of the samples.
    Seconds {
        /// The workload's id.
        workload: String,
        /// The engine.
        engine: String,
        /// Seconds per iteration, one per sample.
        seconds: Vec<f64>,
        /// Iterations per sample.
        iterations: usize,
    },
    /// A workload the engine did not run.
    Skipped {
        /// The workload's id.
        workload: String,
        /// The engine.
        engine: String,
        /// Why.
        reason: String,
    },
}

/// Parses a script's output line; `None` for anything else it printed.
pub fn parse(line: &str) -> Option<Line> {
    let v: Value = serde_json::from_str(line).ok()?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let floats =
        |k: &str| -> Option<Vec<f64>> { v.get(k)?.as_array()?.iter().map(Value::as_f64).collect() };
    let engine = s("engine")?;
    if let Some(version) = s("version") {
        return Some(Line::Version { engine, version });
    }
    let workload = s("workload")?;
    if let Some(losses) = floats("losses") {
        return Some(Line::Losses {
            workload,
            engine,
            losses,
        });
    }
    if let Some(seconds) = floats("seconds") {
        let iterations = v.get("iterations").and_then(Value::as_u64).unwrap_or(1) as usize;
        return Some(Line::Seconds {
            workload,
            engine,
            seconds,
            iterations,
        });
    }
    Some(Line::Skipped {
        workload,
        engine,
        reason: s("skipped")?,
    })
}

/// Writes the inputs of `workloads` and `spec.json` into `dir` for the scripts.
pub fn write_spec(
    dir: &Path,
    workloads: &[Workload],
    data: &Dataset,
    config: &Config,
) -> Result<(), BenchError> {
    let io = |path: &Path, source| BenchError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let npy = |name: String, a: &Array| -> Result<String, BenchError> {
        write_npy(dir.join(&name), a).map_err(|e| BenchError::Protocol(e.to_string()))?;
        Ok(name)
    };
    let mut specs = Vec::new();
    for w in workloads {
        let id = w.id();
        let mut spec = match *w {
            Workload::Chain { n } => json!({"kind": "chain", "n": n,
                "x": npy(format!("{id}.x.npy"), &f32_array(&[n], 1))?}),
            Workload::SoftmaxXent { rows, classes } => {
                let labels = (0..rows).map(|i| (i * 7 % classes) as i32).collect();
                let labels = Array::from_i32([rows], labels).expect("one label per row");
                json!({"kind": "softmax_xent",
                    "logits": npy(format!("{id}.logits.npy"), &f32_array(&[rows, classes], 2))?,
                    "labels": npy(format!("{id}.labels.npy"), &labels)?})
            }
            Workload::Gemm { m, k, n } => json!({"kind": "gemm", "m": m, "k": k, "n": n,
                "a": npy(format!("{id}.a.npy"), &f32_array(&[m, k], 4))?,
                "b": npy(format!("{id}.b.npy"), &f32_array(&[k, n], 5))?}),
            Workload::Train(s) | Workload::Compile(s) => {
                let kind = if matches!(w, Workload::Train(_)) {
                    "train"
                } else {
                    "compile"
                };
                let mut params = Vec::new();
                for (name, value) in s.initial_params()? {
                    let file = npy(format!("{id}.{name}.npy"), &value)?;
                    params.push(json!({"name": name, "file": file}));
                }
                let b: Batch = batch(data, 0, s.batch);
                let x = Array::from_f32([s.batch, b.features()], b.x).expect("a full batch");
                let labels = Array::from_i32([s.batch], b.labels).expect("a full batch");
                let (net, sizes): (&str, &[usize]) = match s.net {
                    Net::Mlp(sizes) => ("mlp", sizes),
                    Net::Builtin(name) => (name, &[]),
                    Net::Lstm32 => ("lstm_32x32", &[]),
                };
                let (opt, lr) = match s.opt {
                    Opt::Sgd => ("sgd", 0.1),
                    Opt::Adam => ("adam", 1e-3),
                };
                json!({"kind": kind, "net": net, "sizes": sizes, "batch": s.batch,
                    "opt": opt, "lr": lr, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                    "params": params,
                    "x": npy(format!("{id}.x.npy"), &x)?,
                    "labels": npy(format!("{id}.labels.npy"), &labels)?})
            }
        };
        spec["id"] = json!(id);
        specs.push(spec);
    }
    let doc = json!({
        "warm_up_s": config.warm_up.as_secs_f64(),
        "samples": config.samples,
        "min_sample_s": config.min_sample.as_secs_f64(),
        "trajectory_steps": trajectory::STEPS,
        "workloads": specs,
    });
    let path = dir.join("spec.json");
    std::fs::write(&path, doc.to_string()).map_err(|e| io(&path, e))
}

/// Runs `script` with `python` on the spec in `dir`, passing each line it prints to
/// `on_line` as it comes (so a long run shows progress).
pub fn run(
    python: &str,
    script: &Script,
    dir: &Path,
    on_line: &mut dyn FnMut(Line),
) -> Result<(), BenchError> {
    use std::io::BufRead;
    let path = scripts_dir().join(script.file);
    let mut child = Command::new(python)
        .arg(&path)
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| BenchError::Io {
            path: path.clone(),
            source,
        })?;
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(l) = parse(&line) {
                on_line(l);
            }
        }
    }
    let status = child.wait().map_err(|source| BenchError::Io {
        path: path.clone(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(BenchError::Protocol(format!(
            "{} exited with {status}",
            path.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse() {
        let l = parse(r#"{"engine": "jax", "version": "0.4"}"#);
        assert!(matches!(l, Some(Line::Version { .. })));
        let l =
            parse(r#"{"workload": "w", "engine": "jax", "seconds": [0.5, 1], "iterations": 3}"#);
        assert!(
            matches!(l, Some(Line::Seconds { ref seconds, iterations: 3, .. }) if seconds == &[0.5, 1.0])
        );
        let l = parse(r#"{"workload": "w", "engine": "jax", "losses": [2.3]}"#);
        assert!(matches!(l, Some(Line::Losses { .. })));
        let l = parse(r#"{"workload": "w", "engine": "jax", "skipped": "no"}"#);
        assert!(matches!(l, Some(Line::Skipped { .. })));
        assert_eq!(parse("warming up"), None);
        assert_eq!(parse(r#"{"workload": "w"}"#), None);
    }

    #[test]
    fn a_missing_module_is_not_available() {
        assert!(!available("python3", "no_such_module_kiln"));
        assert!(!available("/nonexistent/python", "sys"));
    }
}
