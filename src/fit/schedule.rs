//! Learning-rate schedules.

/// How the learning rate changes over a run's epochs. It is a runtime input of the compiled
/// step, so a schedule never recompiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Schedule {
    /// The same rate every epoch.
    Constant,
    /// From the rate down along half a cosine: epoch `e` of `E` trains at
    /// `lr * (1 + cos(pi * (e - 1) / E)) / 2`.
    Cosine,
}

impl Schedule {
    /// The rate of epoch `epoch` (from 1) of `epochs` for base rate `lr`.
    pub fn lr(self, lr: f64, epoch: usize, epochs: usize) -> f64 {
        match self {
            Schedule::Constant => lr,
            Schedule::Cosine => {
                let t = epoch.saturating_sub(1) as f64 / epochs.max(1) as f64;
                lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }

    /// Its name, as checkpoints store it.
    pub fn name(self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::Cosine => "cosine",
        }
    }

    /// The schedule called `name` ([`Schedule::name`]).
    pub fn from_name(name: &str) -> Option<Schedule> {
        [Schedule::Constant, Schedule::Cosine]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::Schedule;

    #[test]
    fn the_cosine_schedule_starts_at_the_rate_and_halves_at_mid_run() {
        assert_eq!(Schedule::Cosine.lr(0.1, 1, 10), 0.1);
        assert!((Schedule::Cosine.lr(0.1, 6, 10) - 0.05).abs() < 1e-15);
        let last = Schedule::Cosine.lr(0.1, 10, 10);
        assert!(last > 0.0 && last < 0.0025, "{last}");
        assert_eq!(Schedule::Constant.lr(0.1, 10, 10), 0.1);
        assert_eq!(Schedule::from_name("cosine"), Some(Schedule::Cosine));
    }
}
