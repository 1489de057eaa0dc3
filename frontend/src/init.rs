//! Parameter initializers: how a parameter's first value is drawn, reproducibly from a seed.

use kiln_compiler::types::numel;
use kiln_compiler::{Array, DType, Data};

/// How to draw a parameter's initial value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Every element 0.
    Zeros,
    /// Every element the given value.
    Constant(f64),
    /// Uniform in `[low, high)`.
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound (excluded).
        high: f64,
    },
    /// Normal with this mean and standard deviation.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// Glorot/Xavier uniform: `U(-a, a)` with `a = sqrt(6 / (fan_in + fan_out))`.
    GlorotUniform {
        /// Inputs feeding each output unit.
        fan_in: usize,
        /// Outputs each input unit feeds.
        fan_out: usize,
    },
    /// Glorot/Xavier normal: `N(0, 2 / (fan_in + fan_out))`.
    GlorotNormal {
        /// Inputs feeding each output unit.
        fan_in: usize,
        /// Outputs each input unit feeds.
        fan_out: usize,
    },
    /// He/Kaiming uniform for ReLU: `U(-a, a)` with `a = sqrt(6 / fan_in)`.
    HeUniform {
        /// Inputs feeding each output unit.
        fan_in: usize,
    },
    /// He/Kaiming normal for ReLU: `N(0, 2 / fan_in)`.
    HeNormal {
        /// Inputs feeding each output unit.
        fan_in: usize,
    },
}

impl Init {
    /// A tensor of `dtype[shape]` drawn from this initializer. The stream depends only on
    /// `seed` and the parameter's `name`, so adding a parameter leaves the others' values
    /// unchanged.
    pub fn sample(&self, name: &str, dtype: DType, shape: &[usize], seed: u64) -> Array {
        let n = numel(shape);
        let mut rng = SplitMix64::new(seed ^ fnv1a(name.as_bytes()));
        let uniform = |rng: &mut SplitMix64, a: f64, b: f64| a + (b - a) * rng.next_f64();
        let values: Vec<f64> = match *self {
            Init::Zeros => vec![0.0; n],
            Init::Constant(c) => vec![c; n],
            Init::Uniform { low, high } => (0..n).map(|_| uniform(&mut rng, low, high)).collect(),
            Init::Normal { mean, std } => (0..n).map(|_| mean + std * rng.normal()).collect(),
            Init::GlorotUniform { fan_in, fan_out } => {
                let a = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt();
                (0..n).map(|_| uniform(&mut rng, -a, a)).collect()
            }
            Init::GlorotNormal { fan_in, fan_out } => {
                let std = (2.0 / (fan_in + fan_out).max(1) as f64).sqrt();
                (0..n).map(|_| std * rng.normal()).collect()
            }
            Init::HeUniform { fan_in } => {
                let a = (6.0 / fan_in.max(1) as f64).sqrt();
                (0..n).map(|_| uniform(&mut rng, -a, a)).collect()
            }
            Init::HeNormal { fan_in } => {
                let std = (2.0 / fan_in.max(1) as f64).sqrt();
                (0..n).map(|_| std * rng.normal()).collect()
            }
        };
        Array::new(shape, Data::from_f64(dtype, values)).expect("one value per element")
    }
}

/// FNV-1a, to derive a parameter's stream from its name.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Steele, Lea and Flood's SplitMix64: small, fast, and good enough to initialize weights.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal, by the Box-Muller transform.
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // in (0, 1], so the logarithm is finite
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(a: &Array) -> (f64, f64) {
        let v = a.to_f64_vec();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        (mean, var.sqrt())
    }

    #[test]
    fn he_normal_has_the_right_spread() {
        let a = Init::HeNormal { fan_in: 200 }.sample("w", DType::F64, &[200, 100], 1);
        let (mean, std) = stats(&a);
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((std - 0.1).abs() < 0.002, "{std}");
    }

    #[test]
    fn glorot_uniform_stays_in_its_bounds() {
        let a = Init::GlorotUniform {
            fan_in: 30,
            fan_out: 70,
        }
        .sample("w", DType::F32, &[30, 70], 7);
        let bound = (6.0f64 / 100.0).sqrt();
        assert!(a.to_f64_vec().iter().all(|x| x.abs() <= bound));
        let (_, std) = stats(&a);
        assert!((std - bound / 3f64.sqrt()).abs() < 0.01, "{std}");
    }

    #[test]
    fn draws_are_reproducible_and_differ_by_name_and_seed() {
        let init = Init::Normal {
            mean: 0.0,
            std: 1.0,
        };
        let a = init.sample("w1", DType::F32, &[10], 3);
        assert_eq!(a, init.sample("w1", DType::F32, &[10], 3));
        assert_ne!(a, init.sample("w2", DType::F32, &[10], 3));
        assert_ne!(a, init.sample("w1", DType::F32, &[10], 4));
        assert_eq!(
            Init::Zeros.sample("b", DType::F32, &[3], 0),
            Array::full(DType::F32, [3], 0.0)
        );
    }
}
