//! The report: every workload in kiln fused, kiln unfused and each available peer, side by
//! side in one run, written as BENCHMARKS.md with a bar chart per workload.
//!
//! A peer's training step is timed only after its losses over the first
//! [`trajectory::STEPS`] steps matched kiln's; otherwise the report says where they parted and
//! shows no time for it. A peer that is not built in (feature `peers`) or not installed
//! (Python) is skipped with a note; an engine that fails is reported as failed, and the rest
//! of the report goes on.

use crate::chart::{self, Bar};
use crate::data::mnist_train;
use crate::distributed;
use crate::harness::{self, Config, Spread, Summary};
use crate::machine::{self, Machine};
use crate::memory::{self, Measurement};
use crate::python::{self, Peak, PeerProcess, Script, Setup, Shared};
use crate::trajectory::{self, Verdict};
use crate::workloads::{self, Throughput, Workload};
use crate::{BenchError, Engine};
use kiln_runtime::data::Dataset;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::rc::Rc;

/// What to run and where to write.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How to time each engine.
    pub config: Config,
    /// Run only the workloads whose id contains this (or one of these, separated by commas).
    pub only: Option<String>,
    /// The Python interpreter for the Python peers; `None` skips them.
    pub python: Option<String>,
    /// Measure peak memory.
    pub memory: bool,
    /// The directory that receives BENCHMARKS.md and `docs/bench/*.svg`.
    pub out: PathBuf,
    /// The command line that made the report, quoted in it.
    pub command: String,
}

/// How one engine fared on one workload.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Timed: per-iteration seconds.
    Timed(Summary),
    /// Not timed, and why (a loss mismatch, a failure).
    NotTimed(String),
}

/// One engine on one workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The engine: `kiln fused`, `candle`, `jax`, ...
    pub engine: String,
    /// Its result.
    pub outcome: Outcome,
    /// Seconds per iteration in each round of the round-robin timing (empty for an engine
    /// not timed).
    pub rounds: Vec<f64>,
}

/// A loss-trajectory check of one engine against kiln fused.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// The engine checked.
    pub engine: String,
    /// How its losses compared.
    pub verdict: Verdict,
}

/// One workload's results.
#[derive(Clone, Debug)]
pub struct Row {
    /// The workload.
    pub workload: Workload,
    /// Each engine's result, kiln first.
    pub entries: Vec<Entry>,
    /// The trajectory checks (training steps only).
    pub checks: Vec<Check>,
    /// Each engine's peak memory running it, in a process of its own (the workloads of
    /// [`Workload::measures_peak_memory`] only), or why it could not be measured.
    pub peaks: Vec<(String, Result<Peak, String>)>,
}

impl Row {
    /// The timed summary of `engine`.
    pub fn summary(&self, engine: &str) -> Option<&Summary> {
        self.entries.iter().find_map(|e| match &e.outcome {
            Outcome::Timed(s) if e.engine == engine => Some(s),
            _ => None,
        })
    }

    /// The fastest timed peer (any engine but kiln's) and its median.
    pub fn best_peer(&self) -> Option<(&str, f64)> {
        (self.entries.iter())
            .filter(|e| !e.engine.starts_with("kiln"))
            .filter_map(|e| match &e.outcome {
                Outcome::Timed(s) => Some((e.engine.as_str(), s.median)),
                Outcome::NotTimed(_) => None,
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// The peak memory of `engine`, if measured.
    pub fn peak(&self, engine: &str) -> Option<&Peak> {
        (self.peaks.iter()).find_map(|(e, p)| p.as_ref().ok().filter(|_| e == engine))
    }

    /// The per-round seconds of `engine`.
    fn rounds(&self, engine: &str) -> &[f64] {
        (self.entries.iter())
            .find(|e| e.engine == engine)
            .map_or(&[], |e| &e.rounds)
    }

    /// `a`'s time over `b`'s: the median of the per-round ratios with their interquartile
    /// range when both were timed in the same rounds, else the ratio of the medians.
    pub fn ratio(&self, a: &str, b: &str) -> Option<Ratio> {
        if let Some(s) = Spread::of_ratios(self.rounds(a), self.rounds(b)) {
            return Some(Ratio::Rounds(s));
        }
        Some(Ratio::Medians(
            self.summary(a)?.median / self.summary(b)?.median,
        ))
    }
}

/// A ratio of two engines' times.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ratio {
    /// Over the rounds in which both were sampled.
    Rounds(Spread),
    /// Of their medians (not sampled in the same rounds).
    Medians(f64),
}

impl std::fmt::Display for Ratio {
    /// `1.23x (1.10-1.31)` (the median and interquartile range over the rounds), or `1.23x`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ratio::Rounds(s) => write!(f, "{:.2}x ({:.2}-{:.2})", s.median, s.q1, s.q3),
            Ratio::Medians(r) => write!(f, "{r:.2}x"),
        }
    }
}

/// Everything a run measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// The machine at the start.
    pub machine: Machine,
    /// The load averages at the end.
    pub load_at_end: String,
    /// The settings.
    pub settings: Settings,
    /// One row per workload.
    pub rows: Vec<Row>,
    /// The scaling figure's rows: the CIFAR CNN at each batch size, kiln fused and PyTorch
    /// eager (empty when not run).
    pub scaling: Vec<Row>,
    /// The data-parallel section (`None` when not run).
    pub distributed: Option<distributed::Section>,
    /// Peak memory per engine (empty when not measured).
    pub memory: Vec<(String, Result<Measurement, String>)>,
    /// Versions of the frameworks compared.
    pub versions: Vec<(String, String)>,
    /// Peers skipped as a whole, and why.
    pub notes: Vec<String>,
}

/// The Rust peers built into this binary.
#[cfg(feature = "peers")]
fn rust_peers() -> Vec<crate::peers::Peer> {
    crate::peers::Peer::ALL.to_vec()
}

/// An engine as built (or why it could not be, or why it does not run), by name.
type Built = (String, Result<Box<dyn Engine>, Outcome>);

/// An engine built, or why not, as an outcome.
fn built(name: &str, engine: Result<Box<dyn Engine>, BenchError>) -> Built {
    let engine = engine.map_err(|e| Outcome::NotTimed(format!("failed: {e}")));
    (name.to_string(), engine)
}

/// The loss trajectories, then the round-robin timing, of a workload's engines.
struct Run<'a> {
    config: &'a Config,
    /// The largest relative difference of losses accepted.
    tolerance: f64,
    /// kiln fused's losses, the reference of every check.
    reference: Option<Vec<f64>>,
}

impl Run<'_> {
    /// Checks (for a training step) each of `engines` on `w` in order, then times those that
    /// passed round-robin, and adds every engine's entry to `row` in the order given.
    fn engines(&mut self, w: &Workload, engines: Vec<Built>, row: &mut Row) {
        let mut checked: Vec<Built> = Vec::new();
        for (name, engine) in engines {
            let engine = engine.and_then(|mut e| match self.check(w, &name, &mut *e, row) {
                Ok(None) => Ok(e),
                Ok(Some(why)) => Err(Outcome::NotTimed(why)),
                Err(e) => Err(Outcome::NotTimed(format!("failed: {e}"))),
            });
            checked.push((name, engine));
        }
        let mut timed: Vec<&mut dyn Engine> = (checked.iter_mut())
            .filter_map(|(_, e)| e.as_mut().ok().map(|e| &mut **e as &mut dyn Engine))
            .collect();
        let mut samples = harness::round_robin(&mut timed, self.config).into_iter();
        drop(timed);
        for (name, engine) in checked {
            let (outcome, rounds) = match engine {
                Err(outcome) => (outcome, Vec::new()),
                Ok(_) => match samples.next().expect("one result per engine timed") {
                    Ok(s) => match s.summary() {
                        Some(summary) => (Outcome::Timed(summary), s.seconds),
                        None => (Outcome::NotTimed("no finite sample".into()), Vec::new()),
                    },
                    Err(e) => (Outcome::NotTimed(format!("failed: {e}")), Vec::new()),
                },
            };
            match &outcome {
                Outcome::Timed(s) => eprintln!("  {name:<16}{}", time(s.median)),
                Outcome::NotTimed(why) => eprintln!("  {name:<16}not timed: {why}"),
            }
            row.entries.push(Entry {
                engine: name,
                outcome,
                rounds,
            });
        }
    }

    /// Checks a training step's losses against kiln fused's; the reason not to time it.
    fn check(
        &mut self,
        w: &Workload,
        name: &str,
        engine: &mut dyn Engine,
        row: &mut Row,
    ) -> Result<Option<String>, BenchError> {
        if let Workload::Train(_) = w {
            let losses = trajectory::losses(engine, trajectory::STEPS)?;
            let shown: Vec<String> = losses.iter().map(|l| format!("{l:.5}")).collect();
            eprintln!("  {name:<16}losses {}", shown.join(" "));
            return Ok(self.judge(name, &losses, row));
        }
        Ok(None)
    }

    /// Records the check of `losses` (kiln fused's become the reference); the reason not to
    /// time on a mismatch.
    fn judge(&mut self, name: &str, losses: &[f64], row: &mut Row) -> Option<String> {
        if name == "kiln fused" {
            self.reference = Some(losses.to_vec());
            return None;
        }
        let Some(reference) = &self.reference else {
            return Some("kiln fused gave no losses to compare with".into());
        };
        let verdict = trajectory::compare_within(reference, losses, self.tolerance);
        row.checks.push(Check {
            engine: name.into(),
            verdict: verdict.clone(),
        });
        match verdict {
            Verdict::Match(_) => None,
            Verdict::Mismatch {
                step,
                reference,
                other,
            } => Some(format!(
                "its loss differs from kiln's at step {step} ({other:.6} against {reference:.6})"
            )),
        }
    }
}

/// The Python peers' processes, started once for the whole report.
struct Python {
    /// The interpreter.
    python: String,
    /// Each running script.
    processes: Vec<(Script, Shared)>,
    /// Where the workloads' inputs are written for them.
    dir: PathBuf,
}

impl Python {
    /// Starts every peer script whose framework `python` imports; notes the others.
    fn start(
        python: &str,
        versions: &mut Vec<(String, String)>,
        notes: &mut Vec<String>,
    ) -> Python {
        let mut processes = Vec::new();
        for script in python::SCRIPTS {
            if !python::available(python, script.module) {
                notes.push(format!(
                    "{}: not installed (`{python} -c \"import {}\"` failed); skipped",
                    script.module, script.module
                ));
                continue;
            }
            eprintln!("{}: starting {}", script.module, script.file);
            match PeerProcess::start_script(python, &script) {
                Ok(p) => {
                    let name = if p.framework == "torch" {
                        "pytorch".to_string()
                    } else {
                        p.framework.clone()
                    };
                    versions.push((name, p.version.clone()));
                    processes.push((script, Rc::new(RefCell::new(p))));
                }
                Err(e) => notes.push(format!(
                    "{}: cannot start {}: {e}",
                    script.module, script.file
                )),
            }
        }
        Python {
            python: python.to_string(),
            processes,
            dir: std::env::temp_dir().join(format!("kiln-bench-{}", std::process::id())),
        }
    }

    /// The Python engines of `w` whose names `wanted` accepts, set up in their processes.
    fn engines(&self, w: &Workload, data: &Dataset, wanted: &dyn Fn(&str) -> bool) -> Vec<Built> {
        let mut engines = Vec::new();
        if self.processes.is_empty() {
            return engines;
        }
        let spec = match python::write_inputs(&self.dir, w, data) {
            Ok(spec) => spec,
            Err(e) => {
                eprintln!("  Python peers: cannot write the inputs: {e}");
                return engines;
            }
        };
        let max_samples = matches!(w, Workload::Compile(_)).then_some(python::COMPILE_SAMPLES);
        for (_, process) in &self.processes {
            let names = process.borrow().engines.clone();
            for name in names.iter().filter(|n| wanted(n)) {
                match python::setup(process, name, &spec, &self.dir, max_samples) {
                    Ok(Setup::Ready(e)) => engines.push((name.clone(), Ok(Box::new(e) as _))),
                    Ok(Setup::Absent) => {}
                    Ok(Setup::Skipped(why)) => {
                        engines.push((name.clone(), Err(Outcome::NotTimed(why))));
                    }
                    Err(e) => engines.push(built(name, Err(e))),
                }
            }
        }
        engines
    }

    /// The peak memory of each of `engines` (Python engines' names) on `w`, each in a fresh
    /// process.
    fn peaks(
        &self,
        w: &Workload,
        data: &Dataset,
        engines: &[String],
    ) -> Vec<(String, Result<Peak, String>)> {
        let mut peaks = Vec::new();
        let Ok(spec) = python::write_inputs(&self.dir, w, data) else {
            return peaks;
        };
        for (script, process) in &self.processes {
            let names = process.borrow().engines.clone();
            for name in names.iter().filter(|n| engines.contains(n)) {
                eprintln!("  memory: {name}");
                let peak = python::peak_memory(
                    &self.python,
                    script,
                    name,
                    &spec,
                    &self.dir,
                    memory::PEAK_STEPS,
                );
                match peak {
                    Ok(Some(p)) => peaks.push((name.clone(), Ok(p))),
                    Ok(None) => {}
                    Err(e) => peaks.push((name.clone(), Err(e.to_string()))),
                }
            }
        }
        peaks
    }
}

impl Drop for Python {
    /// The inputs are scratch: a failure to delete them leaves a temporary directory.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What measures a row: the settings, the data, the Python peers.
struct Bench<'a> {
    settings: &'a Settings,
    data: &'a Dataset,
    python: Option<Python>,
}

impl Bench<'_> {
    /// Measures `w` in the engines `wanted` accepts (by name): loss checks, round-robin
    /// timing, and (for the workloads that measure it, when the settings do) peak memory.
    fn row(&self, w: &Workload, wanted: &dyn Fn(&str) -> bool) -> Row {
        let mut row = Row {
            workload: *w,
            entries: Vec::new(),
            checks: Vec::new(),
            peaks: Vec::new(),
        };
        let config = w.config(&self.settings.config);
        let mut run = Run {
            config: &config,
            tolerance: w.tolerance(),
            reference: None,
        };
        let mut engines: Vec<Built> = vec![built("kiln fused", w.kiln(true, self.data))];
        if w.runs_unfused() && wanted("kiln unfused") {
            engines.push(built("kiln unfused", w.kiln(false, self.data)));
        }
        #[cfg(feature = "peers")]
        for p in rust_peers().into_iter().filter(|p| wanted(p.name())) {
            if let Some(engine) = p.engine(w, self.data) {
                engines.push(built(p.name(), engine));
            }
        }
        let python_engines =
            (self.python.as_ref()).map_or(Vec::new(), |p| p.engines(w, self.data, wanted));
        let python_names: Vec<String> = (python_engines.iter())
            .filter(|(_, e)| e.is_ok())
            .map(|(n, _)| n.clone())
            .collect();
        engines.extend(python_engines);
        run.engines(w, engines, &mut row);
        if self.settings.memory && w.measures_peak_memory() {
            eprintln!("  memory: kiln fused");
            let kiln = memory::measure_workload("kiln fused", w).map_err(|e| e.to_string());
            row.peaks.push(("kiln fused".into(), kiln));
            if let Some(p) = &self.python {
                row.peaks.extend(p.peaks(w, self.data, &python_names));
            }
        }
        row
    }
}

/// The id of the scaling figure, for `--only`.
pub const SCALING_ID: &str = "scaling_cifar_cnn";

/// The engines of the scaling figure.
pub const SCALING_ENGINES: [&str; 2] = ["kiln fused", "pytorch eager"];

/// Runs the report.
pub fn run(settings: Settings) -> Result<Report, BenchError> {
    let machine = Machine::read();
    let data = mnist_train()?;
    let selected = |id: &str| {
        (settings.only.as_ref()).is_none_or(|o| o.split(',').any(|part| id.contains(part)))
    };
    let workloads: Vec<Workload> = (workloads::all().into_iter())
        .filter(|w| selected(&w.id()))
        .collect();
    let scaling = selected(SCALING_ID);
    let parallel = selected(distributed::ID);
    if workloads.is_empty() && !scaling && !parallel {
        return Err(BenchError::Protocol(format!(
            "no workload's id contains `{}` (`kiln-bench list` shows them)",
            settings.only.as_deref().unwrap_or_default()
        )));
    }
    let mut versions = machine::crate_versions(&["cranelift-codegen", "gemm"]);
    let mut notes = Vec::new();
    if cfg!(feature = "peers") {
        versions.extend(machine::crate_versions(&["candle-core", "burn"]));
    } else {
        notes.push(
            "candle and Burn: not built (run with `--features peers` to include them)".into(),
        );
    }
    // The peers' long-lived processes serve the workloads and the scaling figure only.
    let python = (settings.python.as_ref())
        .filter(|_| !workloads.is_empty() || scaling)
        .map(|py| Python::start(py, &mut versions, &mut notes));
    let bench = Bench {
        settings: &settings,
        data: &data,
        python,
    };
    let mut rows = Vec::new();
    for (i, w) in workloads.iter().enumerate() {
        eprintln!("[{}/{}] {}", i + 1, workloads.len(), w.id());
        rows.push(bench.row(w, &|_| true));
    }
    let mut scaling_rows = Vec::new();
    if scaling {
        for spec in workloads::scaling_specs() {
            let w = Workload::Train(spec);
            eprintln!("[scaling] {}", w.id());
            scaling_rows.push(bench.row(&w, &|name| SCALING_ENGINES.contains(&name)));
        }
    }
    drop(bench);
    let distributed = parallel.then(|| {
        let dir = std::env::temp_dir().join(format!("kiln-bench-ddp-{}", std::process::id()));
        let section = distributed::run(settings.python.as_deref(), &data, &dir);
        let _ = std::fs::remove_dir_all(&dir);
        if let Some(v) = &section.torch
            && !versions.iter().any(|(n, _)| n == "pytorch")
        {
            versions.push(("pytorch".into(), v.clone()));
        }
        section
    });
    let memory = if settings.memory && !workloads.is_empty() {
        (memory::engines().into_iter())
            .map(|e| {
                eprintln!("memory: {e}");
                (e.to_string(), memory::measure(e).map_err(|e| e.to_string()))
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Report {
        machine,
        load_at_end: machine::load(),
        settings,
        rows,
        scaling: scaling_rows,
        distributed,
        memory,
        versions,
        notes,
    })
}

/// `seconds` with three significant digits in s, ms or µs.
pub fn time(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "n/a".into();
    }
    let (unit, scale) = chart::unit(seconds);
    let v = seconds * scale;
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

/// The rate `t` of one iteration of `w` gives, if it has one.
fn rate(w: &Workload, seconds: f64) -> String {
    match w.throughput() {
        Some(Throughput::Bytes(b)) => {
            format!("{:.2} GiB/s", b as f64 / seconds / (1u64 << 30) as f64)
        }
        Some(Throughput::Flops(f)) => format!("{:.1} GFLOP/s", f as f64 / seconds / 1e9),
        None => String::new(),
    }
}

impl Report {
    /// Writes BENCHMARKS.md and the charts under the output directory.
    pub fn write(&self) -> Result<(), BenchError> {
        let charts = self.settings.out.join("docs/bench");
        let io = |path: &std::path::Path, source| BenchError::Io {
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(&charts).map_err(|e| io(&charts, e))?;
        for row in &self.rows {
            let bars: Vec<Bar> = (row.entries.iter())
                .filter_map(|e| match &e.outcome {
                    Outcome::Timed(s) => Some(Bar {
                        label: e.engine.clone(),
                        median: s.median,
                        min: s.min,
                        max: s.max,
                    }),
                    Outcome::NotTimed(_) => None,
                })
                .collect();
            let path = charts.join(format!("{}.svg", row.workload.id()));
            chart::write(&path, &row.workload.title(), &bars).map_err(BenchError::Protocol)?;
        }
        if !self.scaling.is_empty() {
            let path = charts.join(format!("{SCALING_ID}.svg"));
            let (batches, lines) = self.scaling_lines();
            let title = "CIFAR CNN training step (SGD) against batch size";
            chart::write_scaling(&path, title, &batches, &lines).map_err(BenchError::Protocol)?;
        }
        if let Some(d) = &self.distributed {
            d.write_figures(&charts)?;
        }
        // Figures measured by other commands (training accuracy, profiles) are kept by hand in
        // benches/NOTES.md and carried over below the generated part.
        let mut md = self.markdown();
        let notes = self.settings.out.join("benches/NOTES.md");
        if let Ok(text) = std::fs::read_to_string(&notes) {
            md.push('\n');
            md.push_str(&text);
        }
        let path = self.settings.out.join("BENCHMARKS.md");
        kiln_runtime::atomic::write(&path, |w| w.write_all(md.as_bytes())).map_err(|e| io(&path, e))
    }

    /// The text of BENCHMARKS.md.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        self.header(&mut s);
        self.summary(&mut s);
        self.scaling(&mut s);
        if let Some(d) = &self.distributed {
            d.markdown(&mut s);
        }
        self.checks(&mut s);
        self.peaks(&mut s);
        self.memory_table(&mut s);
        self.details(&mut s);
        s
    }

    fn header(&self, s: &mut String) {
        let m = &self.machine;
        let c = &self.settings.config;
        let versions: Vec<String> = (self.versions.iter())
            .map(|(n, v)| format!("{n} {v}"))
            .collect();
        let _ = write!(
            s,
            "# Benchmarks\n\n\
             Generated by `{}` on {}; rerun it rather than editing this file.\n\n\
             Every figure was measured in this one run, every engine side by side. Times are \
             per iteration: the median over the samples, with the fastest and slowest sample. \
             Every engine of a workload is sampled round-robin, one \
             sample of each per round, the Python peers (JAX, PyTorch) included: each runs in \
             a long-lived process of its own that the report asks for one sample at a time \
             (`benches/src/python.rs`). A burst of load thus lands on every engine of a \
             round; a ratio between two engines is the median of the per-round ratios, \
             followed by their interquartile range in parentheses. No absolute time is a claim on its own: \
             this is a virtual machine with neighbours, whose timings move by up to 2x from one \
             run to the next; the ratios within a run are what carries over.\n\n\
             - Machine: {} ({} logical cores), {:.0} GiB. Load averages (1, 5, 15 min): {} at \
             the start, {} at the end.\n\
             - Toolchain: {}; {}.\n\
             - Timing: each engine runs {:.1} s of warm-up, then {} samples (rounds), each of \
             as many iterations as last at least {:.0} ms; the large training steps on \
             generated images take fewer samples (the Keras CNN at 224x224 and batch 32: 5; \
             the other image models: 10; the per-workload tables give each count), and a \
             Python peer's compile time {} samples. After each sample of a Python peer the \
             machine idles {:.0} ms before the next engine's sample: the peer's OpenMP \
             threads keep spinning on the cores after its step returns (`benches/NOTES.md`). \
             kiln runs on every core (large kernels and GEMMs split across threads); each \
             peer with its own defaults.\n\
             - Training steps run on a fixed batch (the first rows of MNIST-10k's training \
             digits; for the models of RGB images, generated images with values in [0, 1) \
             and labels in 0..10, see `workloads::generated_images`) from kiln's initial \
             parameters (seed {}); the data inputs, parameters and \
             optimizer state stay in each engine between steps. A peer's step is timed only \
             after its losses over its first {} steps matched kiln's within {} relative (see \
             `benches/src/trajectory.rs` for why that bound).\n\
             - Compile time: building the model's graph, differentiating it, appending the \
             optimizer, optimizing, fusing, planning memory and generating machine code.\n",
            self.settings.command,
            m.date,
            m.cpu,
            m.cores,
            m.memory_gib,
            m.load,
            self.load_at_end,
            m.rustc,
            versions.join(", "),
            c.warm_up.as_secs_f64(),
            c.samples,
            c.min_sample.as_secs_f64() * 1e3,
            python::COMPILE_SAMPLES,
            c.settle.as_secs_f64() * 1e3,
            workloads::SEED,
            trajectory::STEPS,
            trajectory::TOLERANCE,
        );
        if cfg!(debug_assertions) {
            s.push_str(
                "- **A debug build made this report: its figures are not representative.**\n",
            );
        }
        for note in &self.notes {
            let _ = writeln!(s, "- Skipped: {note}.");
        }
    }

    fn summary(&self, s: &mut String) {
        if self.rows.is_empty() {
            return;
        }
        s.push_str(
            "\n## Summary\n\n\
             | workload | kiln fused | kiln unfused | unfused / fused | best peer | \
             kiln fused / best peer |\n|---|---|---|---|---|---|\n",
        );
        for row in &self.rows {
            let (f, u) = (row.summary("kiln fused"), row.summary("kiln unfused"));
            let cell = |x: Option<&Summary>| x.map_or("not timed".into(), |x| time(x.median));
            let ratio = |a, b| row.ratio(a, b).map_or(String::new(), |r| r.to_string());
            let speedup = ratio("kiln unfused", "kiln fused");
            let (best, vs) = match row.best_peer() {
                Some((name, t)) => (format!("{name} {}", time(t)), ratio("kiln fused", name)),
                None => ("none".into(), String::new()),
            };
            let _ = writeln!(
                s,
                "| [{}](#{}) | {} | {} | {speedup} | {best} | {vs} |",
                row.workload.title(),
                row.workload.id(),
                cell(f),
                cell(u),
            );
        }
    }

    /// The batch sizes of the scaling figure and each engine's line.
    fn scaling_lines(&self) -> (Vec<usize>, Vec<chart::Line>) {
        let batches = (self.scaling.iter())
            .map(|r| r.workload.train_spec().map_or(0, |s| s.batch))
            .collect();
        let lines = (SCALING_ENGINES.iter())
            .map(|&engine| chart::Line {
                label: engine.to_string(),
                seconds: (self.scaling.iter())
                    .map(|r| r.summary(engine).map(|s| s.median))
                    .collect(),
                peak_mib: (self.scaling.iter())
                    .map(|r| r.peak(engine).map(|p| p.peak_kib as f64 / 1024.0))
                    .collect(),
            })
            .collect();
        (batches, lines)
    }

    fn scaling(&self, s: &mut String) {
        if self.scaling.is_empty() {
            return;
        }
        let [kiln, torch] = SCALING_ENGINES;
        let _ = write!(
            s,
            "\n## How cost grows with the batch: the CIFAR CNN\n\n\
             <a id=\"{SCALING_ID}\"></a>![{SCALING_ID}](docs/bench/{SCALING_ID}.svg)\n\n\
             The CIFAR CNN's training step (3x32x32 generated images; conv 64, 64, pool, conv \
             128, 128, pool, all 3x3 with padding 1; dense 256; dense 10; SGD lr {}) at each \
             batch size, in {kiln} and {torch}, sampled round-robin as every row (samples \
             below), each checked against kiln's losses first. Peak memory is each engine's \
             peak resident set in a process of its own running {} steps (in parentheses, what \
             the process held before building the step: the binary and MNIST for kiln, the \
             interpreter with PyTorch imported for PyTorch).\n\n\
             | batch | {kiln} | {torch} | {torch} / {kiln} | per example, {kiln} | per example, {torch} | peak, {kiln} | peak, {torch} | samples |\n\
             |---|---|---|---|---|---|---|---|---|\n",
            (workloads::scaling_specs().first()).map_or(0.0, |s| s.opt.lr()),
            memory::PEAK_STEPS,
        );
        let mib = |p: Option<&Peak>| {
            p.map_or("n/a".into(), |p| {
                format!(
                    "{:.0} MiB ({:.0})",
                    p.peak_kib as f64 / 1024.0,
                    p.start_kib as f64 / 1024.0
                )
            })
        };
        for row in &self.scaling {
            let batch = row.workload.train_spec().map_or(0, |s| s.batch);
            let cell = |e: &str| {
                row.summary(e)
                    .map_or("not timed".into(), |t| time(t.median))
            };
            let per = |e: &str| {
                row.summary(e)
                    .map_or(String::new(), |t| time(t.median / batch.max(1) as f64))
            };
            let r = row
                .ratio(torch, kiln)
                .map_or(String::new(), |r| r.to_string());
            let samples = row.summary(kiln).map_or(0, |t| t.samples);
            let _ = writeln!(
                s,
                "| {batch} | {} | {} | {r} | {} | {} | {} | {} | {samples} |",
                cell(kiln),
                cell(torch),
                per(kiln),
                per(torch),
                mib(row.peak(kiln)),
                mib(row.peak(torch)),
            );
        }
        for row in &self.scaling {
            for e in &row.entries {
                if let Outcome::NotTimed(why) = &e.outcome {
                    let _ = writeln!(
                        s,
                        "\n{} at {}: not timed: {why}",
                        e.engine,
                        row.workload.title()
                    );
                }
            }
        }
    }

    fn peaks(&self, s: &mut String) {
        let rows: Vec<&Row> = self.rows.iter().filter(|r| !r.peaks.is_empty()).collect();
        if rows.is_empty() {
            return;
        }
        let _ = write!(
            s,
            "\n## Peak memory of the larger training steps\n\n\
             Each engine's peak resident set (`VmHWM`) in a process of its own that builds the \
             step and runs {} steps: for kiln a child of this binary, for a Python peer a \
             fresh process of its script (torch.compile's compiler workers are processes of \
             their own and not counted). \"At start\" is what the process held before it built the \
             step: the binary with MNIST loaded for kiln, the interpreter with its framework \
             imported for the Python peers.\n\n\
             | training step | engine | peak resident | at start | above start |\n|---|---|---|---|---|\n",
            memory::PEAK_STEPS,
        );
        let mib = |kib: u64| format!("{:.0} MiB", kib as f64 / 1024.0);
        for row in rows {
            for (engine, peak) in &row.peaks {
                let title = row.workload.title();
                let _ = match peak {
                    Ok(p) => writeln!(
                        s,
                        "| {title} | {engine} | {} | {} | {} |",
                        mib(p.peak_kib),
                        mib(p.start_kib),
                        mib(p.peak_kib.saturating_sub(p.start_kib))
                    ),
                    Err(e) => writeln!(s, "| {title} | {engine} | failed: {e} | | |"),
                };
            }
        }
    }

    fn checks(&self, s: &mut String) {
        let checks: Vec<(&Row, &Check)> = (self.rows.iter().chain(&self.scaling))
            .flat_map(|r| r.checks.iter().map(move |c| (r, c)))
            .collect();
        if checks.is_empty() {
            return;
        }
        let _ = write!(
            s,
            "\n## Loss trajectories against kiln fused\n\n\
             The largest relative difference between each engine's loss and kiln fused's over \
             the first {} steps (tolerance {}).\n\n\
             | training step | engine | verdict |\n|---|---|---|\n",
            trajectory::STEPS,
            trajectory::TOLERANCE
        );
        for (row, c) in checks {
            let tolerance = row.workload.tolerance();
            let within = if tolerance == trajectory::TOLERANCE {
                String::new()
            } else {
                format!(" (tolerance {tolerance:.0e} for this model, see `Workload::tolerance`)")
            };
            let verdict = match &c.verdict {
                Verdict::Match(d) => format!("match, largest difference {d:.1e}{within}"),
                Verdict::Mismatch {
                    step,
                    reference,
                    other,
                } => format!(
                    "**mismatch** at step {step}: {other:.6} against kiln's {reference:.6}; not timed{within}"
                ),
            };
            let _ = writeln!(s, "| {} | {} | {verdict} |", row.workload.title(), c.engine);
        }
    }

    fn memory_table(&self, s: &mut String) {
        if self.memory.is_empty() {
            return;
        }
        let spec = workloads::MEMORY_STEP;
        let _ = write!(
            s,
            "\n## Memory\n\n\
             Peak resident memory (`VmHWM`) of a {}-step training run of the {}, each engine \
             in a child process of its own. `baseline` loads the data and trains nothing: \
             what every child holds before it trains; the third column subtracts it. kiln's \
             peak includes compiling the step (Cranelift's working memory). The arena is the \
             one block kiln's compiled step allocates for parameters, optimizer state and every \
             temporary.\n\n\
             | engine | peak resident | above baseline | kiln arena |\n|---|---|---|---|\n",
            memory::STEPS,
            spec.title(),
        );
        let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
        let baseline = (self.memory.iter())
            .find(|(e, _)| e == "baseline")
            .and_then(|(_, m)| m.as_ref().ok())
            .map(|m| m.peak_kib);
        for (engine, m) in &self.memory {
            match m {
                Ok(m) => {
                    let above =
                        baseline.map_or(String::new(), |b| mib(m.peak_kib.saturating_sub(b)));
                    let arena = m.arena_bytes.map_or(String::new(), |a| mib(a / 1024));
                    let _ = writeln!(s, "| {engine} | {} | {above} | {arena} |", mib(m.peak_kib));
                }
                Err(e) => {
                    let _ = writeln!(s, "| {engine} | failed: {e} | | |");
                }
            }
        }
    }

    fn details(&self, s: &mut String) {
        if self.rows.is_empty() {
            return;
        }
        s.push_str("\n## Per workload\n");
        for row in &self.rows {
            let w = &row.workload;
            let best = row.best_peer().map(|(name, _)| name);
            let rated = w.throughput().is_some();
            let mut head = vec!["engine", "median", "min", "max", "samples x iterations"];
            if rated {
                head.push("rate");
            }
            head.extend(["/ kiln fused", "/ best peer"]);
            let _ = write!(
                s,
                "\n### {}\n\n<a id=\"{}\"></a>![{}](docs/bench/{}.svg)\n\n{}\n{}\n",
                w.title(),
                w.id(),
                w.id(),
                w.id(),
                table_row(head.iter().map(|h| h.to_string())),
                table_row(head.iter().map(|_| "---".to_string())),
            );
            for e in &row.entries {
                let mut cells = vec![e.engine.clone()];
                match &e.outcome {
                    Outcome::Timed(t) => {
                        cells.extend([time(t.median), time(t.min), time(t.max)]);
                        cells.push(format!("{} x {}", t.samples, t.iterations));
                        if rated {
                            cells.push(rate(w, t.median));
                        }
                        let to = |other: &str| {
                            (row.ratio(&e.engine, other)).map_or(String::new(), |r| r.to_string())
                        };
                        cells.push(to("kiln fused"));
                        cells.push(best.map_or(String::new(), to));
                    }
                    Outcome::NotTimed(why) => {
                        cells.push(format!("not timed: {why}"));
                        cells.resize(head.len(), String::new());
                    }
                }
                let _ = writeln!(s, "{}", table_row(cells.into_iter()));
            }
        }
    }
}

/// A Markdown table row of `cells`.
fn table_row(cells: impl Iterator<Item = String>) -> String {
    let cells: Vec<String> = cells.collect();
    format!("| {} |", cells.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_well() {
        assert_eq!(time(318e-6), "318 µs");
        assert_eq!(time(8.414e-3), "8.41 ms");
        assert_eq!(time(25.2e-3), "25.2 ms");
        assert_eq!(time(1.5), "1.50 s");
        assert_eq!(time(f64::NAN), "n/a");
    }

    #[test]
    fn a_filter_matching_nothing_is_an_error() {
        let settings = Settings {
            config: Config::default(),
            only: Some("no such workload".into()),
            python: None,
            memory: false,
            out: PathBuf::from("unused"),
            command: "test".into(),
        };
        let e = run(settings).unwrap_err().to_string();
        assert!(e.contains("no workload"), "{e}");
    }

    #[test]
    fn a_small_report_runs_and_renders() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            config: Config {
                warm_up: std::time::Duration::ZERO,
                samples: 2,
                min_sample: std::time::Duration::ZERO,
                settle: std::time::Duration::ZERO,
            },
            only: Some("softmax".into()),
            python: None,
            memory: false,
            out: dir.path().to_path_buf(),
            command: "test".into(),
        };
        let report = run(settings).unwrap();
        assert_eq!(report.rows.len(), 1);
        report.write().unwrap();
        let md = std::fs::read_to_string(dir.path().join("BENCHMARKS.md")).unwrap();
        assert!(md.contains("kiln unfused"), "{md}");
        assert!(
            dir.path()
                .join("docs/bench/softmax_xent_256x1000.svg")
                .exists()
        );
    }
}
