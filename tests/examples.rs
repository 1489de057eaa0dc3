//! The examples in `examples/` reach the course's targets: each example's `run(seed)` trains
//! on the split its seed draws and gives the test metric; the median over seeds 0 to 9 must
//! reach the target (diabetes R² 0.40, breast cancer 95%, iris 90%), and the sequence task,
//! checked on three seeds, must be far above chance on every one.

#[allow(dead_code)]
#[path = "../examples/diabetes_regression.rs"]
mod diabetes;

#[allow(dead_code)]
#[path = "../examples/breast_cancer_logistic.rs"]
mod breast_cancer;

#[allow(dead_code)]
#[path = "../examples/iris_classification.rs"]
mod iris;

#[allow(dead_code)]
#[path = "../examples/text_lstm.rs"]
mod text_lstm;

use std::error::Error;

/// The metric `run` gives for each seed of `seeds`, in order.
fn over_seeds(run: fn(u64) -> Result<f64, Box<dyn Error>>, seeds: u64) -> Vec<f64> {
    (0..seeds)
        .map(|seed| run(seed).unwrap_or_else(|e| panic!("seed {seed}: {e}")))
        .collect()
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    (v[(n - 1) / 2] + v[n / 2]) / 2.0
}

#[test]
fn diabetes_linear_regression_has_a_median_test_r_squared_of_0_40_at_least() {
    let r2 = over_seeds(diabetes::run, 10);
    assert!(median(&r2) >= 0.40, "test R² over seeds 0 to 9: {r2:?}");
}

#[test]
fn breast_cancer_logistic_regression_has_a_median_test_accuracy_of_95_percent_at_least() {
    let accuracy = over_seeds(breast_cancer::run, 10);
    assert!(
        median(&accuracy) >= 0.95,
        "test accuracy over seeds 0 to 9: {accuracy:?}"
    );
}

#[test]
fn iris_softmax_regression_has_a_median_test_accuracy_of_90_percent_at_least() {
    let accuracy = over_seeds(iris::run, 10);
    assert!(
        median(&accuracy) >= 0.90,
        "test accuracy over seeds 0 to 9: {accuracy:?}"
    );
}

/// Chance is 50% (the classes are balanced, and every sequence holds the same tokens).
#[test]
fn the_text_lstm_tells_the_order_of_two_tokens_far_above_chance() {
    let accuracy = over_seeds(text_lstm::run, 3);
    assert!(
        accuracy.iter().all(|&a| a >= 0.9),
        "test accuracy over seeds 0 to 2: {accuracy:?}"
    );
}
