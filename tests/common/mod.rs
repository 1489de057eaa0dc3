//! Helpers shared by the integration tests.
#![allow(dead_code)]

use kiln::compiler::interp::{self, Evaluation};
use kiln::compiler::{Array, Graph, InputKind};
use kiln::runtime::{Executable, Options};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// A deterministic stream of pseudo-random numbers for test inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// `n` values uniform in `[lo, hi)`.
    pub fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n).map(|_| self.range(lo, hi)).collect()
    }

    /// `n` values with magnitude in `[lo, hi)` and random sign: away from kinks at 0.
    pub fn away_from_zero(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n)
            .map(|_| {
                let m = self.range(lo, hi);
                if self.uniform() < 0.5 { -m } else { m }
            })
            .collect()
    }
}

/// Runs `g` in the interpreter on named inputs; panics with the error on failure.
pub fn run(g: &Graph, inputs: &[(String, Array)]) -> Evaluation {
    let map: HashMap<String, Array> = inputs.iter().cloned().collect();
    interp::run(g, &map).unwrap_or_else(|e| panic!("{e}"))
}

/// The output `name` of an evaluation.
pub fn output<'a>(e: &'a Evaluation, name: &str) -> &'a Array {
    &e.outputs
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no output {name}"))
        .1
}

/// Runs one training step in the interpreter: binds `data` and `state`, then replaces each
/// updated state value by its update. Returns the evaluation.
pub fn step(g: &Graph, state: &mut HashMap<String, Array>, data: &[(String, Array)]) -> Evaluation {
    let mut inputs: HashMap<String, Array> = data.iter().cloned().collect();
    inputs.extend(state.iter().map(|(k, v)| (k.clone(), v.clone())));
    let e = interp::run(g, &inputs).unwrap_or_else(|e| panic!("{e}"));
    for (name, value) in &e.updates {
        state.insert(name.clone(), value.clone());
    }
    e
}

/// The scalar output `name` of an evaluation, as `f64`.
pub fn scalar(e: &Evaluation, name: &str) -> f64 {
    output(e, name).to_f64_vec()[0]
}

/// Values for every input of `g`: i32 labels in 0..10, f32 scalars 0.05 (learning rates),
/// other f32 elements in [-0.5, 0.5).
pub fn training_inputs(g: &Graph, seed: u64) -> HashMap<String, Array> {
    let mut rng = Rng::new(seed);
    g.inputs()
        .into_iter()
        .map(|id| {
            let n = g.node(id);
            let (_, name) = n.op.as_input().expect("an input");
            let count = n.ty.numel();
            let a = match n.ty.dtype {
                kiln::compiler::DType::I32 => Array::from_i32(
                    &n.ty.shape,
                    (0..count).map(|_| rng.range(0.0, 10.0) as i32).collect(),
                ),
                kiln::compiler::DType::F32 if n.ty.rank() == 0 => Array::from_f32([], vec![0.05]),
                kiln::compiler::DType::F32 => Array::from_f32(
                    &n.ty.shape,
                    (0..count).map(|_| rng.range(-0.5, 0.5) as f32).collect(),
                ),
                d => panic!("no generator for {d}"),
            };
            (name.to_string(), a.expect("sized"))
        })
        .collect()
}

/// What a run of `kiln` printed and returned.
pub struct Outcome {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `kiln` with `args` from the package root (so fixture paths in messages are relative);
/// `tmp` is replaced by `[TMP]` in what it prints.
pub fn kiln(args: &[&str], tmp: Option<&tempfile::TempDir>) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("kiln runs");
    let redact = |bytes: &[u8]| {
        let s = String::from_utf8_lossy(bytes).into_owned();
        match tmp {
            Some(t) => s.replace(&t.path().display().to_string(), "[TMP]"),
            None => s,
        }
    };
    Outcome {
        status: out.status.code(),
        stdout: redact(&out.stdout),
        stderr: redact(&out.stderr),
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// Runs `g` on `values` (every input, data and state alike) once in the interpreter and once
/// compiled (fused or not, on `threads` threads); returns the largest difference relative to
/// `max(1, |expected|)` over outputs and updated state. Panics if one side is NaN or infinite
/// where the other is not.
pub fn jit_error(g: &Graph, values: &HashMap<String, Array>, fuse: bool, threads: usize) -> f64 {
    let want = interp::run(g, values).unwrap_or_else(|e| panic!("{e}"));
    let options = Options {
        optimize: true,
        fuse,
        threads,
        keep_text: false,
        ..Options::default()
    };
    let mut exe = Executable::compile(g, &options).unwrap();
    let mut data = HashMap::new();
    for id in g.inputs() {
        let (kind, name) = g.node(id).op.as_input().unwrap();
        if kind == InputKind::Data {
            data.insert(name.to_string(), values[name].clone());
        } else {
            exe.set_state(name, &values[name]).unwrap();
        }
    }
    let got = exe.run(&data).unwrap();
    let mut worst: f64 = 0.0;
    let mut diff = |name: &str, a: &Array, b: &Array| {
        assert_eq!(a.ty(), b.ty(), "{name}");
        for (x, y) in a.to_f64_vec().iter().zip(b.to_f64_vec()) {
            let d = (x - y).abs() / y.abs().max(1.0);
            assert!(
                d.is_finite() || (x.is_nan() && y.is_nan()),
                "{name}: {x} vs {y}"
            );
            worst = worst.max(if d.is_nan() { 0.0 } else { d });
        }
    };
    for ((n, a), (_, b)) in got.iter().zip(&want.outputs) {
        diff(n, a, b);
    }
    for (n, b) in &want.updates {
        diff(n, &exe.state(n).unwrap(), b);
    }
    worst
}

/// MNIST-10k (in data/) as the built-in models take it, through the runtime's loader.
pub struct Mnist(kiln::runtime::data::Dataset);

impl Mnist {
    /// Reads the embedded set's 8,000 training digits.
    pub fn load() -> Mnist {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
        let m = kiln::runtime::data::Mnist::load(&root).unwrap();
        Mnist(m.train)
    }

    /// The inputs `x: f32[batch, 1, 28, 28]` and `labels: i32[batch]` of the `batch` digits
    /// from `start` on.
    pub fn batch(&self, start: usize, batch: usize) -> HashMap<String, Array> {
        let indices: Vec<usize> = (start..start + batch).collect();
        self.0.select(&indices).columns().iter().cloned().collect()
    }

    /// [`Mnist::batch`] with each image as a row of 784 pixels (`x: f32[batch, 784]`).
    pub fn rows(&self, start: usize, batch: usize) -> HashMap<String, Array> {
        let mut b = self.batch(start, batch);
        let x = b.remove("x").unwrap().reshape([batch, 784]).unwrap();
        b.insert("x".into(), x);
        b
    }
}
