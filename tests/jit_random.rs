//! Differential testing of the JIT against the interpreter on random graphs covering every
//! primitive, optimized and fused, fused without optimization, and unfused. The comparison and
//! its tolerance rule are `kiln_runtime::testing`'s (shared with the `graphs` fuzz target):
//! bit for bit without approximated arithmetic, within a tolerance scaled by the interpreter's
//! own sensitivity to its inputs with it.

use kiln::compiler::testing::{config, random_graph};
use kiln::runtime::testing::{approximated, check_against_interpreter};
use proptest::prelude::*;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn jit_matches_the_interpreter_on_random_graphs(seed in any::<u64>(), steps in 0usize..40) {
        let g = random_graph(seed, steps);
        if let Err(e) = check_against_interpreter(&g, seed) {
            return Err(TestCaseError::fail(e.to_string()));
        }
    }
}

#[test]
fn both_kinds_of_graph_are_generated() {
    let approx = (0..200)
        .filter(|&s| approximated(&random_graph(s, 30)))
        .count();
    assert!(
        approx > 20 && approx < 180,
        "{approx} of 200 graphs are approximated"
    );
}
