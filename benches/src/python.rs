//! The optional Python peers: JAX (the whole step under `jax.jit`) and PyTorch (eager and
//! `torch.compile`), run by the scripts in `benches/peers/` when their framework imports.
//!
//! Each script runs as one long-lived process ([`PeerProcess`]) that the report starts once
//! and keeps for the whole run. Its engines are [`PyEngine`]s, [`Engine`]s like kiln's and the
//! Rust peers', so the report samples them round-robin with the others
//! ([`crate::harness::round_robin`]): a ratio to a Python peer is a median of per-round
//! ratios with its spread, as between the Rust engines.
//!
//! # Protocol
//!
//! The report writes a workload's inputs (the batch, kiln's initial parameters, as `.npy`)
//! into a directory ([`write_inputs`]) and describes the workload as a JSON object (`kind`:
//! `train`, `compile`, `chain`, `softmax_xent` or `gemm`; for training steps `net`, `batch`,
//! `opt`, `lr`, ..., and the file names of `x`, `labels` and each of `params`).
//!
//! The script is started as `python3 SCRIPT` and talks in JSON lines: one request per line on
//! its stdin, exactly one reply per request on its stdout, in order. Anything else the script
//! or its libraries print goes to stderr (the script moves its file descriptor 1 there before
//! importing anything heavy, and keeps the original for replies). A reply with `"error": MSG`
//! is a failure of that request (its traceback on stderr); the process goes on.
//!
//! - On start, before any request, the script prints
//!   `{"framework": F, "version": V, "engines": [E, ..], "rss_kib": K}` (its engines; `K` its
//!   resident memory, its framework imported).
//! - `{"op": "setup", "engine": E, "workload": W, "dir": D}`: builds engine `E`'s version of
//!   workload `W` (inputs in directory `D`). Replies `{"handle": H}` (an integer naming it in
//!   later requests), `{"absent": true}` (the engine has no version of this kind of workload,
//!   PyTorch eager compiles nothing) or `{"skipped": REASON}` (a model it does not write).
//! - `{"op": "run", "handle": H}`: one iteration; `{"loss": L}` (a training step's loss,
//!   computed before its update, else `null`).
//! - `{"op": "warm_up", "handle": H, "seconds": S}`: runs iterations for at least `S` seconds
//!   (at least one); `{"seconds": T, "iterations": N}`, `T` per iteration.
//! - `{"op": "sample", "handle": H, "iterations": N}`: one sample, `N` iterations back to back
//!   timed by the script (`time.perf_counter`); `{"seconds": T}` per iteration.
//! - `{"op": "drop", "handle": H}`: forgets the engine and frees what it held; `{}`.
//! - `{"op": "peak_rss"}`: `{"peak_kib": K}`, the process's `VmHWM`.
//! - `{"op": "quit"}`: `{}`, then the script exits.
//!
//! Peak memory is measured in a process of its own per engine ([`peak_memory`]): a fresh
//! start of the script, one `setup`, a few `run`s, then `peak_rss`.

use crate::data::Batch;
use crate::workloads::{Net, Opt, Workload, f32_array};
use crate::{BenchError, Engine};
use kiln_compiler::Array;
use kiln_runtime::data::Dataset;
use kiln_runtime::npy::write_npy;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

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

/// Samples of a compile-time workload in a Python peer (each compiles from scratch, which
/// takes seconds): it sits out the later rounds.
pub const COMPILE_SAMPLES: usize = 3;

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

/// A running peer script.
pub struct PeerProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The script, for messages.
    path: PathBuf,
    /// The framework (`torch`, `jax`).
    pub framework: String,
    /// Its version.
    pub version: String,
    /// The engines it runs (`pytorch eager`, `pytorch compile`; `jax`).
    pub engines: Vec<String>,
    /// Its resident memory when it started (its framework imported), KiB.
    pub start_kib: u64,
}

/// What a setup gave.
pub enum Setup {
    /// The engine, ready.
    Ready(PyEngine),
    /// The engine has no version of this kind of workload.
    Absent,
    /// The engine does not run this workload, and why.
    Skipped(String),
}

impl PeerProcess {
    /// Starts `script` (a path) with `python` and reads its first line.
    pub fn start(python: &str, script: &Path) -> Result<PeerProcess, BenchError> {
        let io = |source| BenchError::Io {
            path: script.to_path_buf(),
            source,
        };
        let mut child = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(io)?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(BenchError::Protocol("no pipes to the peer".into()));
        };
        let mut p = PeerProcess {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            path: script.to_path_buf(),
            framework: String::new(),
            version: String::new(),
            engines: Vec::new(),
            start_kib: 0,
        };
        let hello = p.read()?;
        let s = |k: &str| hello.get(k).and_then(Value::as_str).unwrap_or("unknown");
        p.framework = s("framework").to_string();
        p.version = s("version").to_string();
        p.engines = (hello.get("engines").and_then(Value::as_array))
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        p.start_kib = hello.get("rss_kib").and_then(Value::as_u64).unwrap_or(0);
        Ok(p)
    }

    /// The script of `script` started with `python`.
    pub fn start_script(python: &str, script: &Script) -> Result<PeerProcess, BenchError> {
        PeerProcess::start(python, &scripts_dir().join(script.file))
    }

    /// The next reply: the next line that is a JSON object (an error if it names one).
    fn read(&mut self) -> Result<Value, BenchError> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = (self.stdout.read_line(&mut line)).map_err(|source| BenchError::Io {
                path: self.path.clone(),
                source,
            })?;
            if n == 0 {
                return Err(BenchError::Protocol(format!(
                    "{} ended without replying",
                    self.path.display()
                )));
            }
            if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(line.trim()) {
                if let Some(e) = v.get("error") {
                    let e = e.as_str().map_or(e.to_string(), str::to_string);
                    return Err(BenchError::Peer {
                        engine: self.framework.clone(),
                        reason: e,
                    });
                }
                return Ok(v);
            }
        }
    }

    /// Sends `request` and reads its reply.
    pub fn call(&mut self, request: &Value) -> Result<Value, BenchError> {
        let line = format!("{request}\n");
        (self.stdin.write_all(line.as_bytes()))
            .and_then(|()| self.stdin.flush())
            .map_err(|source| BenchError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.read()
    }

    /// The process's peak resident memory so far, KiB.
    pub fn peak_kib(&mut self) -> Result<u64, BenchError> {
        let v = self.call(&json!({"op": "peak_rss"}))?;
        (v.get("peak_kib").and_then(Value::as_u64))
            .ok_or_else(|| BenchError::Protocol(format!("no peak in `{v}`")))
    }
}

impl Drop for PeerProcess {
    /// Asks the script to quit, and ends it if it does not within a few seconds.
    fn drop(&mut self) {
        let _ = self.stdin.write_all(b"{\"op\": \"quit\"}\n");
        let _ = self.stdin.flush();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A peer process shared by its engines.
pub type Shared = Rc<RefCell<PeerProcess>>;

/// Builds `engine`'s version of the workload described by `workload` (inputs in `dir`) in the
/// process `process`; `max_samples` caps its samples (see [`Engine::max_samples`]).
pub fn setup(
    process: &Shared,
    engine: &str,
    workload: &Value,
    dir: &Path,
    max_samples: Option<usize>,
) -> Result<Setup, BenchError> {
    let request = json!({"op": "setup", "engine": engine, "workload": workload, "dir": dir.to_string_lossy()});
    let v = process.borrow_mut().call(&request)?;
    if let Some(h) = v.get("handle").and_then(Value::as_u64) {
        return Ok(Setup::Ready(PyEngine {
            process: process.clone(),
            handle: h,
            max_samples,
        }));
    }
    if v.get("absent").is_some() {
        return Ok(Setup::Absent);
    }
    match v.get("skipped").and_then(Value::as_str) {
        Some(why) => Ok(Setup::Skipped(why.to_string())),
        None => Err(BenchError::Protocol(format!("unexpected reply `{v}`"))),
    }
}

/// An engine of a Python peer, run in its process.
pub struct PyEngine {
    process: Shared,
    handle: u64,
    max_samples: Option<usize>,
}

impl PyEngine {
    fn call(&mut self, mut request: Value) -> Result<Value, BenchError> {
        request["handle"] = json!(self.handle);
        self.process.borrow_mut().call(&request)
    }

    fn seconds(v: &Value) -> Result<f64, BenchError> {
        (v.get("seconds").and_then(Value::as_f64))
            .ok_or_else(|| BenchError::Protocol(format!("no seconds in `{v}`")))
    }
}

impl Engine for PyEngine {
    fn run(&mut self) -> Result<Option<f64>, BenchError> {
        let v = self.call(json!({"op": "run"}))?;
        Ok(v.get("loss").and_then(Value::as_f64))
    }

    fn warm_up(&mut self, duration: Duration) -> Result<f64, BenchError> {
        let v = self.call(json!({"op": "warm_up", "seconds": duration.as_secs_f64()}))?;
        PyEngine::seconds(&v)
    }

    fn sample(&mut self, iterations: usize) -> Result<f64, BenchError> {
        let v = self.call(json!({"op": "sample", "iterations": iterations}))?;
        PyEngine::seconds(&v)
    }

    fn max_samples(&self) -> Option<usize> {
        self.max_samples
    }

    fn in_other_process(&self) -> bool {
        true
    }
}

impl Drop for PyEngine {
    /// Frees the engine in its process (a process that died has nothing to free).
    fn drop(&mut self) {
        let _ = self.call(json!({"op": "drop"}));
    }
}

/// Peak memory of one engine, KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peak {
    /// The process's peak resident memory while it ran the workload.
    pub peak_kib: u64,
    /// Resident before it built the engine: the interpreter with its framework imported (for
    /// kiln, the binary with MNIST loaded).
    pub start_kib: u64,
}

/// The peak memory of `engine` running `steps` iterations of the workload `workload` (inputs
/// in `dir`) in a fresh process of `script`; `None` if the engine does not run it.
pub fn peak_memory(
    python: &str,
    script: &Script,
    engine: &str,
    workload: &Value,
    dir: &Path,
    steps: usize,
) -> Result<Option<Peak>, BenchError> {
    let process = Rc::new(RefCell::new(PeerProcess::start_script(python, script)?));
    let start_kib = process.borrow().start_kib;
    let mut e = match setup(&process, engine, workload, dir, None)? {
        Setup::Ready(e) => e,
        Setup::Absent | Setup::Skipped(_) => return Ok(None),
    };
    for _ in 0..steps {
        e.run()?;
    }
    let peak_kib = process.borrow_mut().peak_kib()?;
    Ok(Some(Peak {
        peak_kib,
        start_kib,
    }))
}

/// The labels of the softmax workload, the same kiln gets.
fn softmax_labels(rows: usize, classes: usize) -> Array {
    let labels = (0..rows).map(|i| (i * 7 % classes) as i32).collect();
    Array::from_i32([rows], labels).expect("one label per row")
}

/// Writes the inputs of `w` into `dir` and gives the workload's description for `setup` (see
/// the module docs); training steps take their batch from `data` as kiln does.
pub fn write_inputs(dir: &Path, w: &Workload, data: &Dataset) -> Result<Value, BenchError> {
    std::fs::create_dir_all(dir).map_err(|source| BenchError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let id = w.id();
    let npy = |name: String, a: &Array| -> Result<String, BenchError> {
        write_npy(dir.join(&name), a).map_err(|e| BenchError::Protocol(e.to_string()))?;
        Ok(name)
    };
    let mut spec = match *w {
        Workload::Chain { n } => json!({"kind": "chain", "n": n,
            "x": npy(format!("{id}.x.npy"), &f32_array(&[n], 1))?}),
        Workload::SoftmaxXent { rows, classes } => json!({"kind": "softmax_xent",
            "logits": npy(format!("{id}.logits.npy"), &f32_array(&[rows, classes], 2))?,
            "labels": npy(format!("{id}.labels.npy"), &softmax_labels(rows, classes))?}),
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
            let b: Batch = s.data(data);
            let x = Array::from_f32([s.batch, b.features()], b.x).expect("a full batch");
            let labels = Array::from_i32([s.batch], b.labels).expect("a full batch");
            let (net, sizes): (&str, &[usize]) = match s.net {
                Net::Mlp(sizes) => ("mlp", sizes),
                Net::Builtin(name) => (name, &[]),
                Net::Lstm32 => ("lstm_32x32", &[]),
                Net::KerasCnn { .. } => ("keras_cnn", &[]),
                Net::CifarCnn { .. } => ("cifar_cnn", &[]),
                Net::ResNet18 { .. } => ("resnet18", &[]),
            };
            let opt = match s.opt {
                Opt::Sgd | Opt::SgdSlow => "sgd",
                Opt::Adam => "adam",
            };
            let lr = s.opt.lr();
            json!({"kind": kind, "net": net, "sizes": sizes, "batch": s.batch,
                "image": s.net.image(), "hidden": 128,
                "opt": opt, "lr": lr, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                "params": params,
                "x": npy(format!("{id}.x.npy"), &x)?,
                "labels": npy(format!("{id}.labels.npy"), &labels)?})
        }
    };
    spec["id"] = json!(id);
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::MAIN_STEP;

    #[test]
    fn a_missing_module_is_not_available() {
        assert!(!available("python3", "no_such_module_kiln"));
        assert!(!available("/nonexistent/python", "sys"));
    }

    /// `python3` with only its standard library, to run the protocol's test peer.
    fn python() -> Option<&'static str> {
        available("python3", "json").then_some("python3")
    }

    #[test]
    fn the_protocol_round_trips() {
        let Some(py) = python() else {
            eprintln!("no python3: the protocol is not tested");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let script = scripts_dir().join("echo_peer.py");
        let p = Rc::new(RefCell::new(PeerProcess::start(py, &script).unwrap()));
        assert_eq!(p.borrow().framework, "echo");
        assert_eq!(p.borrow().engines, ["echo", "echo compile"]);
        let spec = json!({"kind": "train", "net": "mlp", "id": "w"});
        let Setup::Ready(mut e) = setup(&p, "echo", &spec, dir.path(), None).unwrap() else {
            panic!("the echo engine runs training steps");
        };
        // The echo engine's losses count down from 2.
        assert_eq!(e.run().unwrap(), Some(2.0));
        assert_eq!(e.run().unwrap(), Some(1.5));
        let per = e.warm_up(Duration::from_millis(5)).unwrap();
        assert!(per >= 1e-3, "each iteration sleeps 1 ms: {per}");
        assert!(e.sample(3).unwrap() >= 1e-3);
        assert!(matches!(
            setup(&p, "echo compile", &spec, dir.path(), None).unwrap(),
            Setup::Absent
        ));
        let other = json!({"kind": "train", "net": "no_such_net", "id": "w"});
        assert!(matches!(
            setup(&p, "echo", &other, dir.path(), None).unwrap(),
            Setup::Skipped(ref why) if why.contains("no_such_net")
        ));
        // A failing request is an error, and the process goes on.
        let e2 = p
            .borrow_mut()
            .call(&json!({"op": "no such op"}))
            .unwrap_err();
        assert!(e2.to_string().contains("no such op"), "{e2}");
        assert!(p.borrow_mut().peak_kib().unwrap() > 0);
        drop(e);
        let peak = peak_memory(
            py,
            &Script {
                module: "json",
                file: "echo_peer.py",
            },
            "echo",
            &spec,
            dir.path(),
            2,
        )
        .unwrap()
        .unwrap();
        assert!(
            peak.peak_kib >= peak.start_kib && peak.start_kib > 0,
            "{peak:?}"
        );
    }

    #[test]
    fn workload_inputs_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let data = crate::data::mnist_train().unwrap();
        let spec = write_inputs(dir.path(), &Workload::Train(MAIN_STEP), &data).unwrap();
        assert_eq!(spec["id"], "train_mlp_784_128_10_b64_sgd");
        assert_eq!(spec["net"], "mlp");
        for p in spec["params"].as_array().unwrap() {
            assert!(dir.path().join(p["file"].as_str().unwrap()).exists(), "{p}");
        }
        assert!(dir.path().join(spec["x"].as_str().unwrap()).exists());
    }
}
