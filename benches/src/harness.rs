//! The report's timing harness: warm up, choose how many iterations make a sample long enough
//! to time, take samples, summarize them by median, minimum and maximum.

use crate::{BenchError, Engine};
use std::time::{Duration, Instant};

/// How to time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Run for at least this long before the first sample (caches, page faults, thread
    /// pools, lazy initialization).
    pub warm_up: Duration,
    /// Samples taken.
    pub samples: usize,
    /// Each sample runs enough iterations to last at least this long (one iteration if one
    /// takes longer), so the clock's resolution does not matter.
    pub min_sample: Duration,
}

impl Default for Config {
    /// 0.5 s of warm-up, 30 samples of at least 10 ms.
    fn default() -> Config {
        Config {
            warm_up: Duration::from_millis(500),
            samples: 30,
            min_sample: Duration::from_millis(10),
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
        let mut s: Vec<f64> = seconds.iter().copied().filter(|t| t.is_finite()).collect();
        if s.is_empty() {
            return None;
        }
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        Some(Summary {
            median,
            min: s[0],
            max: s[n - 1],
            samples: n,
            iterations,
        })
    }
}

/// Times `engine` as `config` says.
pub fn measure(engine: &mut dyn Engine, config: &Config) -> Result<Summary, BenchError> {
    let start = Instant::now();
    let mut warm = 0u32;
    while warm == 0 || start.elapsed() < config.warm_up {
        engine.run()?;
        warm += 1;
    }
    let per_iteration = start.elapsed().as_secs_f64() / f64::from(warm);
    let iterations = (config.min_sample.as_secs_f64() / per_iteration.max(1e-9)).ceil();
    let iterations = (iterations as usize).clamp(1, 1 << 24);
    let mut seconds = Vec::with_capacity(config.samples);
    for _ in 0..config.samples.max(1) {
        let t = Instant::now();
        for _ in 0..iterations {
            engine.run()?;
        }
        seconds.push(t.elapsed().as_secs_f64() / iterations as f64);
    }
    Summary::of(&seconds, iterations).ok_or_else(|| BenchError::Protocol("no samples".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_take_the_median_and_skip_non_finite_samples() {
        let s = Summary::of(&[3.0, 1.0, f64::NAN, 2.0, 10.0], 4).unwrap();
        assert_eq!((s.median, s.min, s.max, s.samples), (2.5, 1.0, 10.0, 4));
        assert_eq!(Summary::of(&[2.0, 1.0, 3.0], 1).unwrap().median, 2.0);
        assert_eq!(Summary::of(&[f64::INFINITY], 1), None);
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
        };
        let mut e = Sleeper(0);
        let s = measure(&mut e, &config).unwrap();
        // Each iteration sleeps 200 µs at least; how many make a sample depends on the
        // machine's load, so only the bounds that hold under any load are checked.
        assert!(s.min >= 200e-6 && s.iterations >= 1, "{s:?}");
        assert_eq!(s.samples, 3);
        assert!(e.0 as usize > 3 * s.iterations, "warm-up and samples ran");
    }
}
