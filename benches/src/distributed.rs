//! The report's data-parallel section: the training steps of the MLP 784-1024-10 (`kiln
//! train`'s default model) and of LeNet at a global batch of 64 with SGD, as one process of
//! one thread, as two ranks of one thread each, and as one process of two threads, in kiln
//! (ranks under MPI) and in PyTorch (DistributedDataParallel over Gloo).
//!
//! Every configuration runs as a job of its own, launched by the report: kiln's under
//! `mpirun` as the hidden `kiln-bench rank-worker` command ([`rank_worker`]; ranks need the
//! feature `mpi`), PyTorch's as `benches/peers/torch_ddp.py`. A job builds its rank's step
//! (its share of the batch, gradients averaged over the ranks), runs [`LOSS_STEPS`] steps
//! whose losses it keeps and [`WARM_UP_STEPS`] more, then times [`WINDOWS`] windows of
//! [`STEPS`] steps each, and its rank 0 prints one JSON line ([`Job`]). kiln then runs one more
//! window with kernel timing on, for the time of its all-reduce kernels. The report launches
//! the configurations of a model round-robin ([`ROUNDS`] rounds, round `r` starting at
//! configuration `r mod n`, as the harness samples engines), each job with a timeout, and
//! reports medians over the rounds with their interquartile range.

use crate::data::{Batch, mnist_train};
use crate::harness::Spread;
use crate::python;
use crate::workloads::{Net, Opt, SEED, TrainSpec, Workload};
use crate::{BenchError, chart};
use kiln_compiler::collective::Communicator;
use kiln_compiler::kernel::Kernel;
use kiln_compiler::train::train_step_on_ranks;
use kiln_runtime::data::Dataset;
use kiln_runtime::{Executable, Options};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The section's id, for `--only`.
pub const ID: &str = "distributed_data_parallel";

/// The training steps measured.
pub const SPECS: [TrainSpec; 2] = [
    TrainSpec {
        net: Net::Mlp(&[784, 1024, 10]),
        batch: 64,
        opt: Opt::Sgd,
    },
    TrainSpec {
        net: Net::Builtin("lenet"),
        batch: 64,
        opt: Opt::Sgd,
    },
];

/// Rounds of the round-robin: jobs per configuration.
pub const ROUNDS: usize = 5;
/// Steps whose losses a job reports, first of all.
pub const LOSS_STEPS: usize = 3;
/// Untimed steps after those.
pub const WARM_UP_STEPS: usize = 100;
/// Timed windows per job.
pub const WINDOWS: usize = 7;
/// Steps per window.
pub const STEPS: usize = 100;
/// A configuration stops after this many failed jobs (a failure does not stop it at once:
/// Gloo now and then aborts a rank at the end of a job).
pub const MAX_FAILURES: usize = 2;
/// A job still running after this long is ended and counted as failed.
pub const TIMEOUT: Duration = Duration::from_secs(180);

/// Who trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framework {
    /// kiln: ranks are MPI processes.
    Kiln,
    /// PyTorch: ranks are DistributedDataParallel processes over Gloo.
    Torch,
}

/// One configuration: a framework, its ranks and each rank's threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The framework.
    pub framework: Framework,
    /// Processes, each with its share of the batch.
    pub ranks: usize,
    /// Threads per process.
    pub threads: usize,
}

/// The configurations, in the tables' order.
pub const LAYOUTS: [Layout; 6] = {
    const fn l(framework: Framework, ranks: usize, threads: usize) -> Layout {
        Layout {
            framework,
            ranks,
            threads,
        }
    }
    [
        l(Framework::Kiln, 1, 1),
        l(Framework::Kiln, 2, 1),
        l(Framework::Kiln, 1, 2),
        l(Framework::Torch, 1, 1),
        l(Framework::Torch, 2, 1),
        l(Framework::Torch, 1, 2),
    ]
};

impl Layout {
    /// `kiln, 2 ranks x 1 thread (MPI)`.
    pub fn name(&self) -> String {
        let threads = match self.threads {
            1 => "1 thread".to_string(),
            t => format!("{t} threads"),
        };
        match (self.framework, self.ranks) {
            (Framework::Kiln, 1) => format!("kiln, 1 process x {threads}"),
            (Framework::Kiln, r) => format!("kiln, {r} ranks x {threads} (MPI)"),
            (Framework::Torch, 1) => format!("PyTorch, 1 process x {threads}"),
            (Framework::Torch, r) => format!("PyTorch DDP, {r} ranks x {threads} (Gloo)"),
        }
    }

    /// The configuration its speed-up is over: the same framework, one process of one thread.
    pub fn baseline(&self) -> Layout {
        Layout {
            ranks: 1,
            threads: 1,
            ..*self
        }
    }
}

/// What a job's rank 0 measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// Seconds per step in each timed window.
    pub windows: Vec<f64>,
    /// Seconds per step spent summing the gradients over the ranks (`None` with one rank):
    /// for kiln, its all-reduce kernels in a window of their own with kernel timing on; for
    /// PyTorch, an `all_reduce` of as many floats as the gradients hold, timed apart from the
    /// steps (DistributedDataParallel overlaps its own with the backward pass).
    pub allreduce: Option<f64>,
    /// The loss of the whole batch at each of the first steps.
    pub losses: Vec<f64>,
    /// The framework's version (PyTorch).
    pub version: Option<String>,
}

impl Job {
    /// The median seconds per step over the windows.
    pub fn step(&self) -> f64 {
        Spread::of(&self.windows).map_or(f64::NAN, |s| s.median)
    }

    /// The JSON line a worker prints.
    pub fn to_json(&self) -> String {
        json!({"windows": self.windows, "allreduce": self.allreduce, "losses": self.losses,
            "version": self.version})
        .to_string()
    }

    /// The job of the last JSON object line of `out`.
    pub fn parse(out: &str) -> Result<Job, BenchError> {
        let v = (out.lines().rev())
            .find_map(|l| {
                serde_json::from_str::<Value>(l.trim())
                    .ok()
                    .filter(Value::is_object)
            })
            .ok_or_else(|| BenchError::Protocol(format!("no JSON line in `{}`", out.trim())))?;
        let floats = |k: &str| -> Vec<f64> {
            (v.get(k).and_then(Value::as_array))
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        };
        let windows = floats("windows");
        if windows.is_empty() {
            return Err(BenchError::Protocol(format!("no timed window in `{v}`")));
        }
        Ok(Job {
            windows,
            allreduce: v.get("allreduce").and_then(Value::as_f64),
            losses: floats("losses"),
            version: v.get("version").and_then(Value::as_str).map(String::from),
        })
    }
}

/// The name a job is told its model by: `mlp` or `lenet`.
pub fn net_name(spec: &TrainSpec) -> &'static str {
    match spec.net {
        Net::Mlp(_) => "mlp",
        Net::Builtin(name) => name,
        _ => "other",
    }
}

/// The spec of [`SPECS`] called `name`.
fn spec_named(name: &str) -> Result<TrainSpec, BenchError> {
    (SPECS.iter().find(|s| net_name(s) == name).copied()).ok_or_else(|| {
        let names: Vec<&str> = SPECS.iter().map(net_name).collect();
        BenchError::Protocol(format!("no model `{name}` (one of {})", names.join(", ")))
    })
}

/// This process's rank: of the MPI job it was started in.
#[cfg(feature = "mpi")]
fn communicator() -> Result<Arc<dyn Communicator>, BenchError> {
    let mpi = kiln::mpi::Mpi::init().map_err(|e| BenchError::Protocol(e.to_string()))?;
    Ok(Arc::new(mpi))
}

/// This process's rank: the only one (built without MPI).
#[cfg(not(feature = "mpi"))]
fn communicator() -> Result<Arc<dyn Communicator>, BenchError> {
    Ok(Arc::new(kiln_compiler::collective::Single))
}

/// How long a worker runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Steps {
    /// Untimed steps after the first [`LOSS_STEPS`].
    pub warm_up: usize,
    /// Timed windows.
    pub windows: usize,
    /// Steps per window.
    pub steps: usize,
}

impl Default for Steps {
    fn default() -> Steps {
        Steps {
            warm_up: WARM_UP_STEPS,
            windows: WINDOWS,
            steps: STEPS,
        }
    }
}

/// `kiln-bench rank-worker`: one rank of a kiln job on the model `net` with `threads` threads;
/// rank 0's [`Job`] as a JSON line, other ranks `None`. A rank that fails aborts the whole
/// job, so that no other rank waits for it.
pub fn rank_worker(net: &str, threads: usize, steps: Steps) -> Result<Option<String>, BenchError> {
    let spec = spec_named(net)?;
    let comm = communicator()?;
    match run_rank(&spec, &comm, threads, steps) {
        Ok(job) => Ok(job.map(|j| j.to_json())),
        Err(e) if comm.size() > 1 => {
            eprintln!("error on rank {}: {e}", comm.rank());
            comm.abort(2)
        }
        Err(e) => Err(e),
    }
}

/// One rank's share of `spec`'s step, compiled for `threads` threads, run as [`Steps`] says.
fn run_rank(
    spec: &TrainSpec,
    comm: &Arc<dyn Communicator>,
    threads: usize,
    steps: Steps,
) -> Result<Option<Job>, BenchError> {
    let (ranks, rank) = (comm.size(), comm.rank());
    if !spec.batch.is_multiple_of(ranks) {
        return Err(BenchError::build(
            spec.id(),
            format!(
                "a batch of {} does not split over {ranks} ranks",
                spec.batch
            ),
        ));
    }
    let share = TrainSpec {
        batch: spec.batch / ranks,
        ..*spec
    };
    let model = share.model()?;
    let step = train_step_on_ranks(&model.graph, "loss", &spec.opt.optimizer(), ranks)
        .map_err(|e| BenchError::build(spec.id(), e))?;
    let options = Options {
        threads: threads.max(1),
        ..Options::default()
    };
    let mut exe =
        Executable::compile(&step, &options).map_err(|e| BenchError::build(spec.id(), e))?;
    exe.set_communicator(comm.clone());
    for (name, value) in model.initial_values(&step, SEED) {
        exe.set_state(&name, &value)
            .map_err(|e| BenchError::build(spec.id(), e))?;
    }
    let whole = spec.data(&mnist_train()?);
    let (rows, features) = (share.batch, whole.features());
    let mine = Batch {
        x: whole.x[rank * rows * features..(rank + 1) * rows * features].to_vec(),
        labels: whole.labels[rank * rows..(rank + 1) * rows].to_vec(),
    };
    let wanted: Vec<String> = exe.input_names().into_iter().map(|(n, _)| n).collect();
    let inputs: HashMap<String, _> = (share.step_inputs(&step, &mine)?.into_iter())
        .filter(|(name, _)| wanted.contains(name))
        .collect();
    let mut losses = Vec::new();
    for _ in 0..LOSS_STEPS {
        exe.execute(&inputs)?;
        losses.push(exe.scalar_output("loss").unwrap_or(f64::NAN));
    }
    for _ in 0..steps.warm_up {
        exe.execute(&inputs)?;
    }
    let per_window = steps.steps.max(1);
    let mut windows = Vec::new();
    for _ in 0..steps.windows.max(1) {
        let t = Instant::now();
        for _ in 0..per_window {
            exe.execute(&inputs)?;
        }
        windows.push(t.elapsed().as_secs_f64() / per_window as f64);
    }
    exe.start_profile();
    for _ in 0..per_window {
        exe.execute(&inputs)?;
    }
    let allreduce: f64 = (exe.profile().unwrap_or_default().iter())
        .zip(&exe.program().kernels)
        .filter(|(_, k)| matches!(k, Kernel::AllReduce(_)))
        .map(|(t, _)| t.as_secs_f64())
        .sum();
    Ok((rank == 0).then(|| Job {
        windows,
        allreduce: (ranks > 1).then_some(allreduce / per_window as f64),
        losses,
        version: None,
    }))
}

/// One configuration of one model over the rounds.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The configuration.
    pub layout: Layout,
    /// Each round's job (`None`: failed, or not run after [`MAX_FAILURES`]).
    pub rounds: Vec<Option<Job>>,
    /// Why its jobs failed.
    pub failures: Vec<String>,
}

impl Entry {
    /// Seconds per step in each round (NaN where it did not run).
    pub fn steps(&self) -> Vec<f64> {
        (self.rounds.iter())
            .map(|j| j.as_ref().map_or(f64::NAN, Job::step))
            .collect()
    }

    /// The jobs that ran.
    fn jobs(&self) -> impl Iterator<Item = &Job> {
        self.rounds.iter().flatten()
    }
}

/// One model's configurations.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelRows {
    /// The training step.
    pub spec: TrainSpec,
    /// Each configuration run.
    pub entries: Vec<Entry>,
}

/// The section's measurements.
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    /// One per model of [`SPECS`].
    pub models: Vec<ModelRows>,
    /// Configurations not run, and why.
    pub notes: Vec<String>,
    /// PyTorch's version, if it ran.
    pub torch: Option<String>,
}

/// Whether `mpirun` runs.
fn mpirun_available() -> bool {
    Command::new("mpirun")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Measures every configuration available: kiln's with the feature `mpi` and `mpirun`,
/// PyTorch's with `python` importing `torch.distributed`. The PyTorch jobs' inputs go to
/// `dir`.
pub fn run(python: Option<&str>, data: &Dataset, dir: &Path) -> Section {
    let mut notes = Vec::new();
    let kiln = if !cfg!(feature = "mpi") {
        notes.push("kiln: not built with MPI (run with `--features mpi`)".to_string());
        false
    } else if !mpirun_available() {
        notes.push("kiln: `mpirun --version` failed".to_string());
        false
    } else {
        true
    };
    let torch = match python {
        None => false,
        Some(py) if python::available(py, "torch.distributed") => true,
        Some(py) => {
            notes.push(format!(
                "PyTorch: `{py} -c \"import torch.distributed\"` failed"
            ));
            false
        }
    };
    let mut models = Vec::new();
    for spec in SPECS {
        eprintln!("[distributed] {}", spec.id());
        let input = match (torch, python) {
            (true, Some(_)) => match torch_inputs(dir, &spec, data) {
                Ok(path) => Some(path),
                Err(e) => {
                    notes.push(format!(
                        "PyTorch on {}: cannot write inputs: {e}",
                        spec.id()
                    ));
                    None
                }
            },
            _ => None,
        };
        let layouts: Vec<Layout> = (LAYOUTS.iter().copied())
            .filter(|l| match l.framework {
                Framework::Kiln => kiln,
                Framework::Torch => input.is_some(),
            })
            .collect();
        let mut entries: Vec<Entry> = (layouts.iter())
            .map(|&layout| Entry {
                layout,
                rounds: Vec::new(),
                failures: Vec::new(),
            })
            .collect();
        let n = entries.len();
        for r in 0..ROUNDS {
            for j in 0..n {
                let e = &mut entries[(r + j) % n];
                if e.failures.len() >= MAX_FAILURES {
                    e.rounds.push(None);
                    continue;
                }
                let job = launch(&e.layout, &spec, python, input.as_deref(), Steps::default());
                match job {
                    Ok(job) => {
                        eprintln!(
                            "  {:<40} {:>8.0} samples/s",
                            e.layout.name(),
                            spec.batch as f64 / job.step()
                        );
                        e.rounds.push(Some(job));
                    }
                    Err(err) => {
                        eprintln!("  {:<40} failed: {err}", e.layout.name());
                        e.failures.push(err.to_string());
                        e.rounds.push(None);
                    }
                }
            }
        }
        models.push(ModelRows { spec, entries });
    }
    let torch_version = (models.iter())
        .flat_map(|m| &m.entries)
        .flat_map(Entry::jobs)
        .find_map(|j| j.version.clone());
    Section {
        models,
        notes,
        torch: torch_version,
    }
}

/// Writes `spec`'s inputs for the PyTorch script into `dir`; the path of its description.
fn torch_inputs(dir: &Path, spec: &TrainSpec, data: &Dataset) -> Result<PathBuf, BenchError> {
    let description = python::write_inputs(dir, &Workload::Train(*spec), data)?;
    let path = dir.join(format!("{}.json", spec.id()));
    std::fs::write(&path, description.to_string()).map_err(|source| BenchError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Runs one job of `layout` on `spec` (PyTorch's described by the file `input`) and reads
/// its rank 0's line.
fn launch(
    layout: &Layout,
    spec: &TrainSpec,
    python: Option<&str>,
    input: Option<&Path>,
    steps: Steps,
) -> Result<Job, BenchError> {
    let (ranks, threads) = (layout.ranks.to_string(), layout.threads.to_string());
    let counts = [
        ("--warm-up-steps", steps.warm_up),
        ("--windows", steps.windows),
        ("--steps", steps.steps),
    ]
    .map(|(k, v)| [k.to_string(), v.to_string()]);
    let mut cmd = match layout.framework {
        Framework::Kiln => {
            let me = std::env::current_exe().map_err(|source| BenchError::Io {
                path: "kiln-bench".into(),
                source,
            })?;
            let mut c = Command::new("mpirun");
            // Without `--bind-to none`, Open MPI pins each rank of a small job to one core,
            // which would hold a rank's second thread on its first's core.
            c.args([
                "--allow-run-as-root",
                "--oversubscribe",
                "--bind-to",
                "none",
            ])
            .args(["--timeout", &TIMEOUT.as_secs().to_string(), "-np", &ranks])
            .arg(me)
            .args([
                "rank-worker",
                "--net",
                net_name(spec),
                "--threads",
                &threads,
            ]);
            c
        }
        Framework::Torch => {
            let (Some(py), Some(input)) = (python, input) else {
                return Err(BenchError::Protocol("no Python to run PyTorch".into()));
            };
            let mut c = Command::new(py);
            c.arg(python::scripts_dir().join("torch_ddp.py"))
                .arg("--spec")
                .arg(input)
                .args(["--ranks", &ranks, "--threads", &threads]);
            c
        }
    };
    cmd.args(counts.iter().flatten());
    let out = run_with_timeout(&mut cmd, TIMEOUT + Duration::from_secs(10))?;
    Job::parse(&out)
}

/// Runs `cmd` in a process group of its own and gives its stdout; one that fails or runs
/// over `timeout` (its group then ended) is an error with the end of its stderr.
fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<String, BenchError> {
    let what = format!("{cmd:?}");
    let io = |source| BenchError::Io {
        path: PathBuf::from(&what),
        source,
    };
    let dir = std::env::temp_dir();
    static JOBS: AtomicUsize = AtomicUsize::new(0);
    let n = JOBS.fetch_add(1, Ordering::Relaxed);
    let tag = format!("kiln-bench-job-{}-{n}", std::process::id());
    let (out_path, err_path) = (
        dir.join(format!("{tag}.out")),
        dir.join(format!("{tag}.err")),
    );
    let stdout = std::fs::File::create(&out_path).map_err(io)?;
    let stderr = std::fs::File::create(&err_path).map_err(io)?;
    let mut child = (cmd.stdin(Stdio::null()).stdout(stdout).stderr(stderr))
        .process_group(0)
        .spawn()
        .map_err(io)?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(io)? {
            break Some(status);
        }
        if start.elapsed() > timeout {
            // The job's processes are the group the child leads.
            let group = format!("-{}", child.id());
            for signal in ["-TERM", "-KILL"] {
                let _ = Command::new("kill").args([signal, "--", &group]).status();
                std::thread::sleep(Duration::from_secs(2));
            }
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    let tail = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let what = (cmd
        .get_args()
        .find(|a| a.to_string_lossy().ends_with(".py")))
    .map_or(cmd.get_program(), |a| a)
    .to_string_lossy()
    .into_owned();
    match status {
        Some(s) if s.success() => Ok(out),
        Some(s) => Err(BenchError::Protocol(format!(
            "{what} ended with {s}: {tail}"
        ))),
        None => Err(BenchError::Protocol(format!(
            "{what} ran over {} s and was ended: {tail}",
            timeout.as_secs(),
        ))),
    }
}

/// `1.23 (1.10-1.31)`, a spread with `digits` decimals.
fn spread(s: &Spread, digits: usize) -> String {
    format!(
        "{:.digits$} ({:.digits$}-{:.digits$})",
        s.median, s.q1, s.q3
    )
}

impl Section {
    /// The section's Markdown, appended to `s`; its figures are `docs/bench/ID_NET.svg`.
    pub fn markdown(&self, s: &mut String) {
        let _ = write!(
            s,
            "\n## Data-parallel training on one machine\n\n\
             <a id=\"{ID}\"></a>\
             Training steps at a global batch of 64 with SGD (lr 0.1) in one process of one \
             thread, in two ranks of one thread each (each rank takes 32 rows of the batch, \
             and the gradients are averaged over the ranks every step: kiln's ranks are MPI \
             processes under `mpirun --bind-to none`, PyTorch's DistributedDataParallel \
             processes over Gloo, started by `benches/peers/torch_ddp.py` with \
             `torch.set_num_threads(1)`), and in one process of two threads. **The two ranks \
             share the two cores of one machine, so this measures the overhead of data \
             parallelism (the gradients' all-reduce and keeping the ranks in step), not how it \
             scales over machines**; the one process of two threads is what the same cores \
             give without it. Each configuration runs as a job of its own ({ROUNDS} jobs each, \
             launched round-robin over the configurations); a job runs {LOSS_STEPS} + \
             {WARM_UP_STEPS} untimed steps, then {WINDOWS} windows of {STEPS} steps, and its \
             samples per second are 64 over its median step. Figures are medians over the \
             jobs, with the interquartile range in parentheses; a speed-up is the median of \
             the per-round ratios to the same framework's one process of one thread. kiln's \
             all-reduce is the time in its all-reduce kernels (timed in one more window with \
             kernel timing on, waiting for the other rank included); PyTorch overlaps its \
             all-reduce with the backward pass, so its column is an `all_reduce` of as many \
             floats as the gradients, timed apart from the steps (marked *apart*). \
             The losses are the whole batch's at the first steps, for every configuration \
             the same training up to the order of float sums.\n",
        );
        for model in &self.models {
            self.model_table(model, s);
        }
        for note in &self.notes {
            let _ = writeln!(s, "\n- Not run: {note}.");
        }
    }

    fn model_table(&self, model: &ModelRows, s: &mut String) {
        let spec = &model.spec;
        let figure = format!("{ID}_{}", net_name(spec));
        let _ = write!(
            s,
            "\n### {}\n\n![{figure}](docs/bench/{figure}.svg)\n\n\
             | configuration | samples/s | step | speed-up over 1 process x 1 thread | \
             all-reduce per step | its share of the step | losses of steps 1-{LOSS_STEPS} | jobs |\n\
             |---|---|---|---|---|---|---|---|\n",
            spec.title()
        );
        let batch = spec.batch as f64;
        for e in &model.entries {
            let steps = e.steps();
            let rate: Vec<f64> = steps.iter().map(|t| batch / t).collect();
            let Some(rate) = Spread::of(&rate) else {
                let why = e.failures.last().map_or("no job ran", String::as_str);
                let _ = writeln!(s, "| {} | failed: {why} | | | | | | 0 |", e.layout.name());
                continue;
            };
            let step = Spread::of(&steps).map_or(f64::NAN, |t| t.median);
            let baseline = (model.entries.iter()).find(|b| b.layout == e.layout.baseline());
            let speedup = match baseline {
                Some(b) if b.layout != e.layout => (Spread::of_ratios(&b.steps(), &steps))
                    .map_or(String::new(), |r| {
                        format!("{:.2}x ({:.2}-{:.2})", r.median, r.q1, r.q3)
                    }),
                Some(_) => "1".into(),
                None => String::new(),
            };
            let allreduce: Vec<f64> = (e.rounds.iter())
                .map(|j| j.as_ref().and_then(|j| j.allreduce).unwrap_or(f64::NAN))
                .collect();
            let apart = match e.layout.framework {
                Framework::Torch => " *apart*",
                Framework::Kiln => "",
            };
            let (ar, share) = match Spread::of(&allreduce) {
                Some(a) => {
                    let share = Spread::of_ratios(&allreduce, &steps).map_or(String::new(), |r| {
                        let pct = Spread {
                            median: r.median * 100.0,
                            q1: r.q1 * 100.0,
                            q3: r.q3 * 100.0,
                            count: r.count,
                        };
                        format!("{}%{apart}", spread(&pct, 0))
                    });
                    let ms = Spread {
                        median: a.median * 1e3,
                        q1: a.q1 * 1e3,
                        q3: a.q3 * 1e3,
                        count: a.count,
                    };
                    (format!("{} ms{apart}", spread(&ms, 2)), share)
                }
                None => ("none".into(), String::new()),
            };
            let losses = (e.jobs().next()).map_or(String::new(), |j| {
                let l: Vec<String> = j.losses.iter().map(|l| format!("{l:.4}")).collect();
                l.join(", ")
            });
            let failed = match e.failures.last() {
                Some(f) => format!(" ({} failed, the last: {f})", e.failures.len()),
                None => String::new(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {speedup} | {ar} | {share} | {losses} | {}{failed} |",
                e.layout.name(),
                spread(&rate, 0),
                crate::report::time(step),
                rate.count,
            );
        }
    }

    /// Draws each model's figure (time per step of each configuration: the median over the
    /// jobs, whiskers from the fastest to the slowest) into `charts`.
    pub fn write_figures(&self, charts: &Path) -> Result<(), BenchError> {
        for model in &self.models {
            let bars: Vec<chart::Bar> = (model.entries.iter())
                .filter_map(|e| {
                    let steps = e.steps();
                    let t = Spread::of(&steps)?;
                    let finite = steps.iter().copied().filter(|t| t.is_finite());
                    Some(chart::Bar {
                        label: e.layout.name(),
                        median: t.median,
                        min: finite.clone().fold(f64::INFINITY, f64::min),
                        max: finite.fold(0.0, f64::max),
                    })
                })
                .collect();
            let path = charts.join(format!("{ID}_{}.svg", net_name(&model.spec)));
            let title = format!("{}: time per step of 64 rows", model.spec.title());
            chart::write(&path, &title, &bars).map_err(BenchError::Protocol)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_line_round_trips() {
        let job = Job {
            windows: vec![2e-3, 3e-3, 1e-3],
            allreduce: Some(5e-4),
            losses: vec![2.3, 2.1],
            version: None,
        };
        let parsed = Job::parse(&format!("noise\n{}\n", job.to_json())).unwrap();
        assert_eq!(parsed, job);
        assert_eq!(parsed.step(), 2e-3);
        assert!(Job::parse("no json").is_err());
        assert!(Job::parse("{\"windows\": []}").is_err());
    }

    #[test]
    fn one_rank_trains_and_reports() {
        let steps = Steps {
            warm_up: 1,
            windows: 2,
            steps: 2,
        };
        let line = rank_worker("lenet", 1, steps).unwrap().unwrap();
        let job = Job::parse(&line).unwrap();
        assert_eq!(job.windows.len(), 2);
        assert_eq!(job.allreduce, None);
        assert_eq!(job.losses.len(), LOSS_STEPS);
        assert!(job.losses.iter().all(|l| l.is_finite()), "{job:?}");
        assert!(rank_worker("no_such_net", 1, steps).is_err());
    }

    #[test]
    fn a_job_over_its_time_is_ended() {
        let e = run_with_timeout(
            Command::new("sh").args(["-c", "sleep 30"]),
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert!(e.to_string().contains("was ended"), "{e}");
        let out = run_with_timeout(Command::new("echo").arg("hi"), TIMEOUT).unwrap();
        assert_eq!(out, "hi\n");
    }
}
