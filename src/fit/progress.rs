//! What a verbose run prints: a summary of the model and program, a progress bar per epoch
//! (on a terminal), a line per epoch, and a last line with the final test metric.

use super::{Learner, Session};
use crate::compiler::InputKind;
use crate::runtime::data::Dataset;
use crate::runtime::history::EpochRecord;
use crate::runtime::train::{Metrics, StepReport};
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Instant;

/// Prints a run's progress, or nothing.
pub struct Printer {
    verbose: bool,
}

impl Printer {
    /// A printer that prints when `verbose`.
    pub fn new(verbose: bool) -> Printer {
        Printer { verbose }
    }

    /// Prints `line`.
    pub fn line(&self, line: &str) {
        if self.verbose {
            println!("{line}");
        }
    }

    /// What is about to train: the model's parameters, the optimizer, the compiled program,
    /// the data.
    pub fn summary(&self, session: &Session, learner: &Learner, train: &Dataset, test: &Dataset) {
        if !self.verbose {
            return;
        }
        let step = &session.step;
        let params: Vec<(String, String)> = (step.inputs_of(InputKind::Param).into_iter())
            .map(|id| {
                let n = step.node(id);
                let name = n.op.as_input().map_or("", |(_, name)| name).to_string();
                (name, n.ty.to_string())
            })
            .collect();
        let count: usize = (step.inputs_of(InputKind::Param).into_iter())
            .map(|id| step.node(id).ty.numel())
            .sum();
        let name = match learner.meta.model.as_str() {
            "" => step.name(),
            m => m,
        };
        println!(
            "model {name} ({count} parameters in {} tensors)",
            params.len()
        );
        for (name, ty) in &params {
            println!("  {name:<16} {ty}");
        }
        let hyper: Vec<String> = (learner.optimizer.hyperparameters().iter())
            .map(|(n, v)| format!("{n} {v}"))
            .collect();
        let augment = match &learner.augment {
            Some(a) if a.max_shift > 0 => {
                format!(", images shifted by up to {} pixels", a.max_shift)
            }
            _ => String::new(),
        };
        println!(
            "optimizer {} ({}), {} schedule, batch {}, seed {}{augment}",
            learner.optimizer.name(),
            hyper.join(", "),
            learner.schedule.name(),
            learner.batch,
            learner.seed,
        );
        let s = session.trainer.executable().stats();
        println!(
            "training step: {} loop kernels, {} matrix products, arena {} KiB, compiled in \
             {:.1} ms ({} threads, {})",
            s.loops,
            s.dots,
            s.arena_bytes / 1024,
            s.compile_time.as_secs_f64() * 1e3,
            learner.options.threads,
            if learner.options.fuse {
                "fused"
            } else {
                "unfused"
            }
        );
        let columns: Vec<String> = (train.columns().iter())
            .map(|(n, a)| format!("{n}: {}", a.ty()))
            .collect();
        println!(
            "data: {} training and {} test examples ({})",
            train.len(),
            test.len(),
            columns.join(", ")
        );
    }

    /// The bar of one epoch of `batches` batches (hidden when not verbose).
    pub fn bar(&self, batches: usize, epoch: usize, epochs: usize) -> ProgressBar {
        if !self.verbose {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(batches as u64);
        let style = ProgressStyle::with_template(&format!(
            "epoch {epoch}/{epochs} [{{bar:30}}] {{pos}}/{{len}}  {{msg}}"
        ))
        .expect("the template is valid")
        .progress_chars("=> ");
        bar.set_style(style);
        bar
    }

    /// The line of a finished epoch.
    pub fn epoch(&self, r: &EpochRecord, epochs: usize, samples_per_second: f64) {
        self.line(&format!(
            "epoch {:>3}/{epochs}  train {}  test {}  {samples_per_second:>7.0} samples/s",
            r.epoch,
            format_metrics(&r.train),
            format_metrics(&r.test),
        ));
    }

    /// The last line: the final test accuracy (with the best), or R², or loss.
    pub fn last(&self, history: &[EpochRecord], epochs: usize, seconds: f64) {
        let Some(last) = history.last() else {
            self.line(&format!("nothing to train: {epochs} epochs asked"));
            return;
        };
        let line = if let Some(acc) = last.test.get("accuracy") {
            let best = (history.iter())
                .max_by(|a, b| a.test("accuracy").total_cmp(&b.test("accuracy")))
                .expect("a history");
            format!(
                "final test accuracy {:.2}% (best {:.2}% at epoch {}); total {seconds:.1} s",
                100.0 * acc,
                100.0 * best.test("accuracy"),
                best.epoch
            )
        } else if let Some(r2) = last.test.get("r2") {
            let mse = last.test("mse");
            format!("final test R² {r2:.4} (MSE {mse:.4}); total {seconds:.1} s")
        } else {
            let loss = last.test("loss");
            format!("final test loss {loss:.4}; total {seconds:.1} s")
        };
        self.line(&line);
    }
}

/// Moves `bar` to the step `r` reports, with its metrics and the speed since `start`.
pub fn step(bar: &ProgressBar, r: &StepReport, batch: usize, start: Instant) {
    if bar.is_hidden() || !(r.batch.is_multiple_of(8) || r.batch == r.batches) {
        return;
    }
    bar.set_position(r.batch as u64);
    let rate = (r.batch * batch) as f64 / start.elapsed().as_secs_f64();
    bar.set_message(format!(
        "{}  {rate:>7.0} samples/s",
        format_metrics(r.metrics)
    ));
}

/// Metrics as `loss 0.1234 acc  96.70%`: accuracy as a percentage, the rest to 4 places.
fn format_metrics(m: &Metrics) -> String {
    (m.iter())
        .map(|(name, v)| match name {
            "accuracy" => format!("acc {:6.2}%", 100.0 * v),
            "r2" => format!("R² {v:.4}"),
            _ => format!("{name} {v:.4}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}
