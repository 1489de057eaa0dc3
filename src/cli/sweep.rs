//! `kiln sweep`: hyperparameter search over learning rate, batch size, optimizer and width.
//!
//! Trials that differ only in learning rate share one compiled training step: the learning
//! rate is a runtime input, so the sweep compiles once per (optimizer, batch, width) and
//! resets the parameters between trials.
//!
//! Trials are ranked on a validation split, a seeded tenth of the training examples, which no
//! trial trains on; the test examples are left for the chosen settings' final measurement.

use super::CliError;
use super::optimizer::OptimizerArg;
use super::output::write_file;
use super::problem::{DataArgs, Problem};
use super::train::{MachineArgs, build, defaults};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use kiln::compiler::collective::Single;
use kiln::fit::Session;
use kiln_runtime::data::mix;
use kiln_runtime::train::Augment;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

/// Arguments of `kiln sweep`.
#[derive(Args)]
pub struct SweepArgs {
    /// The built-in model.
    #[arg(long, default_value = "mlp")]
    model: String,
    /// Learning rates: a list (`0.01,0.1`) or a range (`0.001..0.3`, drawn log-uniformly in a
    /// random search, three log-spaced points in a grid).
    #[arg(long)]
    lr: Option<Values<f64>>,
    /// Batch sizes, a list.
    #[arg(long)]
    batch: Option<Values<usize>>,
    /// Optimizers, a list.
    #[arg(long, value_delimiter = ',')]
    optimizer: Vec<OptimizerArg>,
    /// Hidden widths: a list or a range (`64..512`, drawn uniformly or three points).
    #[arg(long)]
    width: Option<Values<usize>>,
    /// Every combination, or random draws.
    #[arg(long, value_enum, default_value_t = Search::Grid)]
    search: Search,
    /// Trials of a random search.
    #[arg(long, default_value_t = 8)]
    trials: usize,
    /// Passes over the training data per trial.
    #[arg(long)]
    epochs: Option<usize>,
    /// Seed of every trial's initial parameters and batch order, and of the random search.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where the ranked table is written as CSV.
    #[arg(long, default_value = "sweep.csv")]
    out: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    machine: MachineArgs,
}

/// How trials are chosen.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Search {
    /// Every combination of the values given.
    Grid,
    /// `--trials` independent draws.
    Random,
}

/// A list of values or a range `lo..hi`.
#[derive(Clone, Debug, PartialEq)]
enum Values<T> {
    List(Vec<T>),
    Range(T, T),
}

impl<T: FromStr + PartialOrd + Copy> FromStr for Values<T> {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parse = |v: &str| {
            v.trim()
                .parse::<T>()
                .map_err(|_| format!("`{v}` is not a valid value"))
        };
        if let Some((lo, hi)) = s.split_once("..") {
            let (lo, hi) = (parse(lo)?, parse(hi)?);
            if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
                return Err(format!("the range `{s}` is empty"));
            }
            return Ok(Values::Range(lo, hi));
        }
        Ok(Values::List(
            s.split(',').map(parse).collect::<Result<_, _>>()?,
        ))
    }
}

/// A number a range can be sampled over.
trait Sample: Copy {
    /// The point at `t` in `[0, 1]` of the range from `lo` to `hi`.
    fn at(lo: Self, hi: Self, t: f64) -> Self;
}

impl Sample for f64 {
    /// Log-uniform: learning rates span decades.
    fn at(lo: f64, hi: f64, t: f64) -> f64 {
        if lo > 0.0 {
            (lo.ln() + t * (hi.ln() - lo.ln())).exp()
        } else {
            lo + t * (hi - lo)
        }
    }
}

impl Sample for usize {
    fn at(lo: usize, hi: usize, t: f64) -> usize {
        lo + (t * (hi - lo) as f64).round() as usize
    }
}

impl<T: Sample> Values<T> {
    /// The grid's points: the list, or three points spanning the range.
    fn points(&self) -> Vec<T> {
        match self {
            Values::List(v) => v.clone(),
            Values::Range(lo, hi) => [0.0, 0.5, 1.0].map(|t| T::at(*lo, *hi, t)).to_vec(),
        }
    }

    /// A random draw given a uniform `u` in `[0, 1)`.
    fn draw(&self, u: f64) -> T {
        match self {
            Values::List(v) => v[((u * v.len() as f64) as usize).min(v.len() - 1)],
            Values::Range(lo, hi) => T::at(*lo, *hi, u),
        }
    }
}

/// One trial's settings.
#[derive(Clone, Copy, Debug)]
struct Trial {
    optimizer: OptimizerArg,
    batch: usize,
    width: Option<usize>,
    lr: f64,
}

/// A trial's results.
struct Outcome {
    trial: Trial,
    train_loss: f64,
    val_loss: f64,
    val_accuracy: f64,
    seconds: f64,
}

/// Runs `kiln sweep`.
pub fn sweep(args: &SweepArgs) -> Result<(), CliError> {
    let options = args.machine.options()?;
    let problem = Problem::load(&args.data, args.seed)?;
    let d = defaults(&args.model, problem.kind);
    let lrs = args.lr.clone().unwrap_or(Values::List(vec![d.lr]));
    let batches = args.batch.clone().unwrap_or(Values::List(vec![d.batch]));
    let optimizers = match args.optimizer.as_slice() {
        [] => vec![d.optimizer],
        o => o.to_vec(),
    };
    let widths = args.width.clone().map(|w| match w {
        Values::List(v) => Values::List(v.into_iter().map(Some).collect()),
        Values::Range(lo, hi) => Values::Range(Some(lo), Some(hi)),
    });
    let widths = widths.unwrap_or(Values::List(vec![d.width]));
    let mut trials = match args.search {
        Search::Grid => grid(&lrs, &batches, &optimizers, &widths),
        Search::Random => random(args, &lrs, &batches, &optimizers, &widths),
    };
    // Trials that share a compiled step run one after another.
    trials.sort_by_key(|t| (t.optimizer as u8, t.batch, t.width));
    let epochs = args.epochs.unwrap_or(d.epochs);
    let (train, validation) = problem.train.split(0.1, args.seed);
    if let Some(t) = trials
        .iter()
        .find(|t| t.batch == 0 || t.batch > train.len())
    {
        return Err(CliError::Setting(format!(
            "--batch {}: the training split has {} examples",
            t.batch,
            train.len()
        )));
    }
    if let Some(t) = trials.iter().find(|t| !(t.lr.is_finite() && t.lr > 0.0)) {
        return Err(CliError::Setting(format!(
            "--lr {}: not a positive number",
            t.lr
        )));
    }
    if trials.iter().any(|t| t.width == Some(0)) {
        return Err(CliError::Setting(
            "--width 0: a layer needs one unit at least".into(),
        ));
    }
    println!(
        "sweep of {} trials of {} for {epochs} epochs each, on {} training examples, ranked on {} \
         validation examples",
        trials.len(),
        args.model,
        train.len(),
        validation.len()
    );
    let bar = ProgressBar::new((trials.len() * epochs) as u64);
    bar.set_style(
        ProgressStyle::with_template("[{bar:30}] {pos}/{len} epochs  {msg}")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    let mut outcomes = Vec::with_capacity(trials.len());
    let mut session: Option<(Trial, Session)> = None;
    let mut compiled = 0;
    for trial in trials {
        let reusable = session.as_ref().is_some_and(|(t, _)| {
            (t.optimizer as u8, t.batch, t.width)
                == (trial.optimizer as u8, trial.batch, trial.width)
        });
        if !reusable {
            let model = build(&args.model, trial.width, &problem)?;
            let optimizer = trial.optimizer.with_lr(trial.lr);
            let mut s = Session::compile(
                &model,
                &optimizer,
                trial.batch,
                args.seed,
                500,
                &options,
                Arc::new(Single),
            )?;
            s.trainer.set_augment(Some(Augment {
                column: "x".into(),
                max_shift: d.augment,
            }));
            session = Some((trial, s));
            compiled += 1;
        }
        let (_, s) = session.as_mut().expect("set above");
        s.reset(args.seed)?;
        bar.set_message(format!(
            "{} lr {:.3e} batch {} width {}",
            trial.optimizer.optimizer().name(),
            trial.lr,
            trial.batch,
            width_text(trial.width)
        ));
        let t = Instant::now();
        let mut train_loss = f64::NAN;
        let mut failed = false;
        for epoch in 1..=epochs {
            let lr = d.schedule.lr(trial.lr, epoch, epochs);
            s.trainer.set_hyperparameter("lr", lr)?;
            match s.trainer.epoch(&train, epoch, &mut |_| {}) {
                Ok(m) => train_loss = m.get("loss").unwrap_or(f64::NAN),
                Err(kiln_runtime::train::TrainError::NonFinite { .. }) => {
                    failed = true;
                    bar.inc((epochs - epoch + 1) as u64);
                    break;
                }
                Err(e) => return Err(e.into()),
            }
            bar.inc(1);
        }
        let val = if failed {
            None
        } else {
            Some(s.evaluate(&validation)?)
        };
        let metric = |name| val.as_ref().and_then(|m| m.get(name)).unwrap_or(f64::NAN);
        outcomes.push(Outcome {
            trial,
            train_loss,
            val_loss: metric("loss"),
            val_accuracy: metric("accuracy"),
            seconds: t.elapsed().as_secs_f64(),
        });
    }
    bar.finish_and_clear();
    // Best first; diverged trials (NaN) last.
    let rank = |o: &Outcome| match o.val_accuracy {
        a if a.is_nan() => f64::NEG_INFINITY,
        a => a,
    };
    outcomes.sort_by(|a, b| rank(b).total_cmp(&rank(a)));
    print!("{}", table(&outcomes));
    println!(
        "{} trials, {compiled} compiled training steps; table written to {}",
        outcomes.len(),
        args.out.display()
    );
    write_file(&args.out, csv(&outcomes).as_bytes())
}

/// Every combination.
fn grid(
    lrs: &Values<f64>,
    batches: &Values<usize>,
    optimizers: &[OptimizerArg],
    widths: &Values<Option<usize>>,
) -> Vec<Trial> {
    let mut trials = Vec::new();
    for &optimizer in optimizers {
        for batch in batches.points() {
            for width in widths.points() {
                for lr in lrs.points() {
                    trials.push(Trial {
                        optimizer,
                        batch,
                        width,
                        lr,
                    });
                }
            }
        }
    }
    trials
}

/// `args.trials` independent draws, reproducible from the seed.
fn random(
    args: &SweepArgs,
    lrs: &Values<f64>,
    batches: &Values<usize>,
    optimizers: &[OptimizerArg],
    widths: &Values<Option<usize>>,
) -> Vec<Trial> {
    let mut state = mix(args.seed ^ 0x5eed);
    let mut uniform = move || {
        state = mix(state);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..args.trials)
        .map(|_| Trial {
            optimizer: optimizers
                [((uniform() * optimizers.len() as f64) as usize).min(optimizers.len() - 1)],
            batch: batches.draw(uniform()),
            width: widths.draw(uniform()),
            lr: lrs.draw(uniform()),
        })
        .collect()
}

impl Sample for Option<usize> {
    fn at(lo: Option<usize>, hi: Option<usize>, t: f64) -> Option<usize> {
        Some(usize::at(lo.unwrap_or(0), hi.unwrap_or(0), t))
    }
}

fn width_text(w: Option<usize>) -> String {
    w.map_or("default".into(), |w| w.to_string())
}

/// The ranked table as printed.
fn table(outcomes: &[Outcome]) -> String {
    let mut s = format!(
        "{:>4}  {:<9} {:>10} {:>6} {:>8} {:>10} {:>10} {:>9} {:>8}\n",
        "rank", "optimizer", "lr", "batch", "width", "train loss", "val loss", "val acc", "seconds"
    );
    for (i, o) in outcomes.iter().enumerate() {
        let _ = writeln!(
            s,
            "{:>4}  {:<9} {:>10.3e} {:>6} {:>8} {:>10.4} {:>10.4} {:>8.2}% {:>8.2}",
            i + 1,
            o.trial.optimizer.optimizer().name(),
            o.trial.lr,
            o.trial.batch,
            width_text(o.trial.width),
            o.train_loss,
            o.val_loss,
            100.0 * o.val_accuracy,
            o.seconds
        );
    }
    s
}

/// The ranked table as CSV.
fn csv(outcomes: &[Outcome]) -> String {
    let mut s =
        String::from("rank,optimizer,lr,batch,width,train_loss,val_loss,val_accuracy,seconds\n");
    for (i, o) in outcomes.iter().enumerate() {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{:.3}",
            i + 1,
            o.trial.optimizer.optimizer().name(),
            o.trial.lr,
            o.trial.batch,
            width_text(o.trial.width),
            o.train_loss,
            o.val_loss,
            o.val_accuracy,
            o.seconds
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_lists_and_ranges() {
        assert_eq!("0.1".parse::<Values<f64>>(), Ok(Values::List(vec![0.1])));
        assert_eq!(
            "1,2, 3".parse::<Values<usize>>(),
            Ok(Values::List(vec![1, 2, 3]))
        );
        assert_eq!(
            "0.001..0.1".parse::<Values<f64>>(),
            Ok(Values::Range(0.001, 0.1))
        );
        assert!("0.1..0.01".parse::<Values<f64>>().is_err());
        assert!("x".parse::<Values<f64>>().is_err());
    }

    #[test]
    fn ranges_give_log_spaced_rates_and_even_widths() {
        let p = Values::Range(0.001, 0.1).points();
        assert!((p[1] - 0.01).abs() < 1e-12, "{p:?}");
        assert_eq!(Values::Range(64usize, 512).points(), vec![64, 288, 512]);
        for u in [0.0, 0.3, 0.999] {
            let lr = Values::Range(0.001, 0.1).draw(u);
            assert!((0.001..=0.1).contains(&lr));
        }
    }
}
