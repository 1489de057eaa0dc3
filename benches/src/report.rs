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
use crate::harness::{self, Config, Spread, Summary};
use crate::machine::{self, Machine};
use crate::memory::{self, Measurement};
use crate::python::{self, Line};
use crate::trajectory::{self, Verdict};
use crate::workloads::{self, Throughput, Workload};
use crate::{BenchError, Engine};
use kiln_runtime::data::Dataset;
use std::fmt::Write as _;
use std::path::PathBuf;

/// What to run and where to write.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How to time each engine.
    pub config: Config,
    /// Run only the workloads whose id contains this.
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
    /// not timed round-robin with the others: the Python peers).
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

/// An engine as built, or why it could not be.
type Built = Result<Box<dyn Engine>, BenchError>;

/// An engine that passed its loss check, or its outcome without timing.
type Checked = Result<Box<dyn Engine>, Outcome>;

/// The loss trajectories, then the round-robin timing, of a workload's in-process engines.
struct Run<'a> {
    config: &'a Config,
    /// kiln fused's losses, the reference of every check.
    reference: Option<Vec<f64>>,
}

impl Run<'_> {
    /// Checks (for a training step) each of `engines` on `w` in order, then times those that
    /// passed round-robin, and adds every engine's entry to `row` in the order given.
    fn engines(&mut self, w: &Workload, engines: Vec<(&str, Built)>, row: &mut Row) {
        let mut checked: Vec<(&str, Checked)> = Vec::new();
        for (name, engine) in engines {
            let engine = engine
                .map_err(|e| Outcome::NotTimed(format!("failed: {e}")))
                .and_then(|mut e| match self.check(w, name, &mut *e, row) {
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
                engine: name.into(),
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
        let verdict = trajectory::compare(reference, losses);
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

/// Runs the report.
pub fn run(settings: Settings) -> Result<Report, BenchError> {
    let machine = Machine::read();
    let data = mnist_train()?;
    let workloads: Vec<Workload> = (workloads::all().into_iter())
        .filter(|w| {
            settings
                .only
                .as_ref()
                .is_none_or(|o| w.id().contains(o.as_str()))
        })
        .collect();
    if workloads.is_empty() {
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
    let mut rows = Vec::new();
    for (i, w) in workloads.iter().enumerate() {
        eprintln!("[{}/{}] {}", i + 1, workloads.len(), w.id());
        let mut row = Row {
            workload: *w,
            entries: Vec::new(),
            checks: Vec::new(),
        };
        let mut run = Run {
            config: &settings.config,
            reference: None,
        };
        #[allow(unused_mut)] // Without the Rust peers, only kiln's engines.
        let mut engines: Vec<(&str, Built)> = vec![
            ("kiln fused", w.kiln(true, &data)),
            ("kiln unfused", w.kiln(false, &data)),
        ];
        #[cfg(feature = "peers")]
        for p in rust_peers() {
            if let Some(engine) = p.engine(w, &data) {
                engines.push((p.name(), engine));
            }
        }
        run.engines(w, engines, &mut row);
        rows.push((row, run.reference));
    }
    if let Some(py) = &settings.python {
        python_peers(
            py,
            &workloads,
            &data,
            &settings.config,
            &mut rows,
            &mut versions,
            &mut notes,
        );
    }
    let memory = if settings.memory {
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
        rows: rows.into_iter().map(|(r, _)| r).collect(),
        memory,
        versions,
        notes,
    })
}

/// Runs each installed Python peer over `workloads` and adds its results to `rows` (each with
/// kiln fused's losses, the reference of the checks).
fn python_peers(
    python: &str,
    workloads: &[Workload],
    data: &Dataset,
    config: &Config,
    rows: &mut [(Row, Option<Vec<f64>>)],
    versions: &mut Vec<(String, String)>,
    notes: &mut Vec<String>,
) {
    let dir = std::env::temp_dir().join(format!("kiln-bench-{}", std::process::id()));
    let mut spec_written = false;
    for script in python::SCRIPTS {
        if !python::available(python, script.module) {
            notes.push(format!(
                "{}: not installed (`{python} -c \"import {}\"` failed); skipped",
                script.module, script.module
            ));
            continue;
        }
        if !spec_written {
            if let Err(e) = python::write_spec(&dir, workloads, data, config) {
                notes.push(format!("Python peers: cannot write their inputs: {e}"));
                return;
            }
            spec_written = true;
        }
        eprintln!("{}: running {}", script.module, script.file);
        let mut on_line = |line: Line| python_line(line, config, rows, versions);
        if let Err(e) = python::run(python, &script, &dir, &mut on_line) {
            notes.push(format!("{}: {e}", script.module));
        }
    }
    // The inputs are scratch: a failure to delete them leaves a temporary directory.
    let _ = std::fs::remove_dir_all(&dir);
}

/// Adds one line of a Python peer to its row.
fn python_line(
    line: Line,
    config: &Config,
    rows: &mut [(Row, Option<Vec<f64>>)],
    versions: &mut Vec<(String, String)>,
) {
    let find = |rows: &[(Row, Option<Vec<f64>>)], id: &str| {
        rows.iter().position(|(r, _)| r.workload.id() == id)
    };
    match line {
        Line::Version { engine, version } => versions.push((engine, version)),
        Line::Losses {
            workload,
            engine,
            losses,
        } => {
            let Some(i) = find(rows, &workload) else {
                return;
            };
            let (row, reference) = &mut rows[i];
            let mut run = Run {
                config,
                reference: reference.clone(),
            };
            if let Some(why) = run.judge(&engine, &losses, row) {
                eprintln!("  {engine:<16}not timed: {why}");
                row.entries.push(Entry {
                    engine,
                    outcome: Outcome::NotTimed(why),
                    rounds: Vec::new(),
                });
            }
        }
        Line::Seconds {
            workload,
            engine,
            seconds,
            iterations,
        } => {
            let Some(i) = find(rows, &workload) else {
                return;
            };
            let row = &mut rows[i].0;
            if row.entries.iter().any(|e| e.engine == engine) {
                return; // Not timed after a mismatch: the script's times are dropped.
            }
            let outcome = match Summary::of(&seconds, iterations) {
                Some(s) => {
                    eprintln!("  {engine:<16}{}", time(s.median));
                    Outcome::Timed(s)
                }
                None => Outcome::NotTimed("no finite sample".into()),
            };
            row.entries.push(Entry {
                engine,
                outcome,
                rounds: Vec::new(),
            });
        }
        Line::Skipped {
            workload,
            engine,
            reason,
        } => {
            let Some(i) = find(rows, &workload) else {
                return;
            };
            rows[i].0.entries.push(Entry {
                engine,
                outcome: Outcome::NotTimed(reason),
                rounds: Vec::new(),
            });
        }
    }
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

/// `a / b` as `1.23x`.
fn ratio(a: f64, b: f64) -> String {
    Ratio::Medians(a / b).to_string()
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
        self.checks(&mut s);
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
             The engines run in this process (kiln, candle, Burn) are sampled round-robin, one \
             sample of each per round, so a burst of load lands on all of them; a ratio \
             between two of them is the median of the per-round ratios, followed by their \
             interquartile range in parentheses. The Python peers (JAX, PyTorch) still run \
             after them in a process of their own, not interleaved: a ratio to one of them is \
             between medians, without a range. No absolute time is a claim on its own: \
             this is a virtual machine with neighbours, whose timings move by up to 2x from one \
             run to the next; the ratios within a run are what carries over.\n\n\
             - Machine: {} ({} logical cores), {:.0} GiB. Load averages (1, 5, 15 min): {} at \
             the start, {} at the end.\n\
             - Toolchain: {}; {}.\n\
             - Timing: each engine runs {:.1} s of warm-up, then {} samples (rounds), each of \
             as many iterations as last at least {:.0} ms. kiln runs on every core (large \
             kernels and GEMMs split across threads); each peer with its own defaults.\n\
             - Training steps run on a fixed batch (the first rows of MNIST-10k's training \
             digits) from kiln's initial parameters (seed {}); the data inputs, parameters and \
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

    fn checks(&self, s: &mut String) {
        let checks: Vec<(&Row, &Check)> = (self.rows.iter())
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
            let verdict = match &c.verdict {
                Verdict::Match(d) => format!("match, largest difference {d:.1e}"),
                Verdict::Mismatch {
                    step,
                    reference,
                    other,
                } => format!(
                    "**mismatch** at step {step}: {other:.6} against kiln's {reference:.6}; not timed"
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
        s.push_str("\n## Per workload\n");
        for row in &self.rows {
            let w = &row.workload;
            let best = row.best_peer().map(|(_, t)| t);
            let rated = w.throughput().is_some();
            let mut head = vec!["engine", "median", "min", "max"];
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
                        if rated {
                            cells.push(rate(w, t.median));
                        }
                        cells.push(
                            (row.ratio(&e.engine, "kiln fused"))
                                .map_or(String::new(), |r| r.to_string()),
                        );
                        cells.push(best.map_or(String::new(), |b| ratio(t.median, b)));
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
