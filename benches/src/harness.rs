//! The report's timing harness: warm up, choose how many iterations make a sample long enough
//! to time, take samples, summarize them by median, minimum and maximum.
//!
//! The engines of one workload are sampled round-robin ([`round_robin`]): round `r` takes one
//! sample of each engine in turn, starting from engine `r mod n`, so a burst of load on a
//! shared machine lands on every engine of the round rather than on one engine's whole run,
//! and the per-round ratios between two engines ([`Spread::of_ratios`]) cancel most of it.

use crate::{BenchError, Engine};
use std::time::Duration;

/// How to time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Run for at least this long before the first sample (caches, page faults, thread
    /// pools, lazy initialization).
    pub warm_up: Duration,
    /// Samples taken: with several engines, the rounds, each of one sample per engine.
    pub samples: usize,
    /// Each sample runs enough iterations to last at least this long (one iteration if one
    /// takes longer), so the clock's resolution does not matter.
    pub min_sample: Duration,
    /// The machine is left idle this long after each sample of an engine in another process
    /// ([`Engine::in_other_process`]), before the next engine's sample: a Python peer's
    /// OpenMP threads keep spinning on the cores after its step returns, and would slow
    /// whichever engine is sampled next (benches/NOTES.md).
    pub settle: Duration,
}

impl Default for Config {
    /// 0.5 s of warm-up, 30 samples of at least 10 ms, 300 ms to settle.
    fn default() -> Config {
        Config {
            warm_up: Duration::from_millis(500),
            samples: 30,
            min_sample: Duration::from_millis(10),
            settle: Duration::from_millis(300),
        }
    }
}

/// Times per iteration over the samples, in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The median.
    pub median: f64,
    /// The fastest sample.
    pub min: f64,
    /// The slowest sample.
    pub max: f64,
    /// Samples taken.
    pub samples: usize,
    /// Iterations per sample.
    pub iterations: usize,
}

impl Summary {
    /// The summary of per-iteration times `seconds` (samples of `iterations` iterations each),
    /// or `None` without a finite sample.
    pub fn of(seconds: &[f64], iterations: usize) -> Option<Summary> {
        let s = sorted_finite(seconds);
        let n = s.len();
        Some(Summary {
            median: quantile(&s, 0.5)?,
            min: s[0],
            max: s[n - 1],
            samples: n,
            iterations,
        })
    }
}

/// A median with its interquartile range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The median.
    pub median: f64,
    /// The first quartile.
    pub q1: f64,
    /// The third quartile.
    pub q3: f64,
    /// How many values it summarizes.
    pub count: usize,
}

impl Spread {
    /// The spread of the finite `values`, or `None` without one.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let s = sorted_finite(values);
        Some(Spread {
            median: quantile(&s, 0.5)?,
            q1: quantile(&s, 0.25)?,
            q3: quantile(&s, 0.75)?,
            count: s.len(),
        })
    }

    /// The spread of the per-round ratios `a[r] / b[r]` (rounds where either has no sample
    /// are left out).
    pub fn of_ratios(a: &[f64], b: &[f64]) -> Option<Spread> {
        let ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
        Spread::of(&ratios)
    }
}

/// The finite values of `v`, in increasing order.
fn sorted_finite(v: &[f64]) -> Vec<f64> {
    let mut s: Vec<f64> = v.iter().copied().filter(|t| t.is_finite()).collect();
    s.sort_by(f64::total_cmp);
    s
}

/// The `q` quantile of the sorted `s`, interpolating linearly between neighbours (the median
/// of an even count is the mean of the middle two).
fn quantile(s: &[f64], q: f64) -> Option<f64> {
    let last = s.len().checked_sub(1)?;
    let at = q * last as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    Some(s[lo] + (s[hi] - s[lo]) * (at - lo as f64))
}

/// One engine's samples from [`round_robin`].
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    /// Seconds per iteration, one per round.
    pub seconds: Vec<f64>,
    /// Iterations per sample.
    pub iterations: usize,
}

impl Samples {
    /// Their summary (`None` without a finite sample).
    pub fn summary(&self) -> Option<Summary> {
        Summary::of(&self.seconds, self.iterations)
    }
}

/// Times `engines` as `config` says, round-robin: each warms up in turn (and gets the number
/// of iterations that makes its sample last `config.min_sample`), then round `r` of
/// `config.samples` times one sample of each engine, starting from engine `r mod n` (an
/// engine with [`Engine::max_samples`] sits out the rounds after its last), leaving the
/// machine idle for `config.settle` after each sample of an engine in another process. An engine that
/// fails is left out of the later rounds and gets its error; the others go on.
pub fn round_robin(
    engines: &mut [&mut dyn Engine],
    config: &Config,
) -> Vec<Result<Samples, BenchError>> {
    let n = engines.len();
    let mut results: Vec<Result<Samples, BenchError>> = (engines.iter_mut())
        .map(|e| {
            let per_iteration = e.warm_up(config.warm_up)?;
            let iterations = (config.min_sample.as_secs_f64() / per_iteration.max(1e-9)).ceil();
            Ok(Samples {
                seconds: Vec::with_capacity(config.samples),
                iterations: (iterations as usize).clamp(1, 1 << 24),
            })
        })
        .collect();
    for r in 0..config.samples.max(1) {
        for j in 0..n {
            let i = (r + j) % n;
            let Ok(samples) = &mut results[i] else {
                continue;
            };
            if engines[i].max_samples().is_some_and(|m| r >= m.max(1)) {
                continue;
            }
            match engines[i].sample(samples.iterations) {
                Ok(t) => samples.seconds.push(t),
                Err(e) => results[i] = Err(e),
            }
            if engines[i].in_other_process() {
                std::thread::sleep(config.settle);
            }
        }
    }
    results
}

/// Times `engine` alone as `config` says.
pub fn measure(engine: &mut dyn Engine, config: &Config) -> Result<Summary, BenchError> {
    let samples = round_robin(&mut [engine], config)
        .pop()
        .expect("one engine")?;
    samples
        .summary()
        .ok_or_else(|| BenchError::Protocol("no samples".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[test]
    fn summaries_take_the_median_and_skip_non_finite_samples() {
        let s = Summary::of(&[3.0, 1.0, f64::NAN, 2.0, 10.0], 4).unwrap();
        assert_eq!((s.median, s.min, s.max, s.samples), (2.5, 1.0, 10.0, 4));
        assert_eq!(Summary::of(&[2.0, 1.0, 3.0], 1).unwrap().median, 2.0);
        assert_eq!(Summary::of(&[f64::INFINITY], 1), None);
    }

    #[test]
    fn ratios_are_taken_round_by_round() {
        let s = Spread::of_ratios(&[2.0, 4.0, 9.0, 8.0, 1.0], &[1.0, 2.0, 3.0, 4.0, 0.0]).unwrap();
        // 2, 2, 3, 2 (and an infinite ratio left out): median 2, quartiles 2 and 2.25.
        assert_eq!((s.median, s.q1, s.q3, s.count), (2.0, 2.0, 2.25, 4));
        assert_eq!(Spread::of_ratios(&[1.0], &[]), None);
    }

    struct Sleeper(u32);

    impl Engine for Sleeper {
        fn run(&mut self) -> Result<Option<f64>, BenchError> {
            self.0 += 1;
            std::thread::sleep(Duration::from_micros(200));
            Ok(None)
        }
    }

    #[test]
    fn samples_time_every_iteration() {
        let config = Config {
            warm_up: Duration::from_millis(2),
            samples: 3,
            min_sample: Duration::from_millis(2),
            settle: Duration::ZERO,
        };
        let mut e = Sleeper(0);
        let s = measure(&mut e, &config).unwrap();
        // Each iteration sleeps 200 µs at least; how many make a sample depends on the
        // machine's load, so only the bounds that hold under any load are checked.
        assert!(s.min >= 200e-6 && s.iterations >= 1, "{s:?}");
        assert_eq!(s.samples, 3);
        assert!(e.0 as usize > 3 * s.iterations, "warm-up and samples ran");
    }

    /// Logs each of its calls by its number; fails on call `fail_at`.
    struct Counter {
        id: usize,
        calls: usize,
        fail_at: Option<usize>,
        log: Rc<RefCell<Vec<usize>>>,
    }

    impl Engine for Counter {
        fn run(&mut self) -> Result<Option<f64>, BenchError> {
            self.calls += 1;
            self.log.borrow_mut().push(self.id);
            if Some(self.calls) == self.fail_at {
                return Err(BenchError::Protocol("failed".into()));
            }
            Ok(None)
        }
    }

    #[test]
    fn rounds_sample_every_engine_in_rotating_order() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let counter = |id, fail_at| Counter {
            id,
            calls: 0,
            fail_at,
            log: log.clone(),
        };
        let (mut a, mut b, mut c) = (counter(0, None), counter(1, None), counter(2, Some(3)));
        // No warm-up and no minimum length: one warm-up call and one iteration per sample.
        let config = Config {
            warm_up: Duration::ZERO,
            samples: 4,
            min_sample: Duration::ZERO,
            settle: Duration::ZERO,
        };
        let results = round_robin(&mut [&mut a, &mut b, &mut c], &config);
        // Warm-up in order, then rounds starting at engine 0, 1, 2, 0; engine 2 fails on its
        // third call (its second sample, in round 1) and is left out from then on.
        let expected = [
            0, 1, 2, /**/ 0, 1, 2, /**/ 1, 2, 0, /**/ 0, 1, /**/ 0, 1,
        ];
        assert_eq!(*log.borrow(), expected);
        assert_eq!((a.calls, b.calls, c.calls), (5, 5, 3));
        for r in &results[..2] {
            let s = r.as_ref().unwrap();
            assert_eq!((s.seconds.len(), s.iterations), (4, 1));
        }
        assert!(results[2].is_err());
    }
}
