//! Semantics preservation: on random graphs and random inputs, each pass alone and the whole
//! pipeline compute the same outputs and updates as the graph they started from, bit for bit
//! (any NaN equal to any NaN: the interpreter does not define NaN payloads).

use super::{PASSES, optimize};
use crate::array::Array;
use crate::graph::Graph;
use crate::interp::run;
use crate::testing::{config, random_graph, random_inputs};
use crate::text::print;
use crate::verify::verify;
use proptest::prelude::*;

/// Equal bit for bit, except that any NaN equals any NaN.
fn same_bits(a: &Array, b: &Array) -> bool {
    let (x, y) = (a.to_f64_vec(), b.to_f64_vec());
    a.ty() == b.ty()
        && x.iter()
            .zip(&y)
            .all(|(u, v)| u.to_bits() == v.to_bits() || (u.is_nan() && v.is_nan()))
}

/// Why `after` does not compute what `before` does on the random inputs picked by `seed`, if
/// it does not: the first output or update that differs.
pub(super) fn difference(before: &Graph, after: &Graph, seed: u64) -> Option<String> {
    let inputs = random_inputs(before, seed);
    let expected = run(before, &inputs).expect("the inputs fit the graph");
    let got = run(after, &inputs).expect("optimizing keeps the inputs");
    let pairs = |e: &crate::interp::Evaluation| {
        let mut all = e.outputs.clone();
        all.extend(e.updates.iter().cloned());
        all
    };
    let (expected, got) = (pairs(&expected), pairs(&got));
    if expected.len() != got.len() {
        return Some(format!("{} results became {}", expected.len(), got.len()));
    }
    expected
        .iter()
        .zip(&got)
        .find(|((n, a), (m, b))| n != m || !same_bits(a, b))
        .map(|((n, a), (_, b))| format!("`{n}` was {a}, is {b}"))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn passes_preserve_every_output_and_update(seed in any::<u64>(), steps in 0usize..40) {
        let g = random_graph(seed, steps);
        for (name, pass) in PASSES {
            let mut h = g.clone();
            pass(&mut h);
            prop_assert_eq!(verify(&h), Ok(()), "{} broke\n{}", name, print(&g));
            if let Some(d) = difference(&g, &h, seed) {
                return Err(TestCaseError::fail(format!("{name}: {d}\n{}\n{}", print(&g), print(&h))));
            }
        }
        let mut h = g.clone();
        let stats = optimize(&mut h);
        prop_assert!(stats.converged, "no fixed point after {} rounds", stats.rounds);
        if let Some(d) = difference(&g, &h, seed) {
            return Err(TestCaseError::fail(format!("optimize: {d}\n{}\n{}", print(&g), print(&h))));
        }
    }
}

/// Random graphs carry dead code, duplicates, identities and constants, so over a corpus every
/// pass changes something (the property above would hold vacuously otherwise).
#[test]
fn every_pass_fires_on_random_graphs() {
    let mut changes = [0; PASSES.len()];
    for seed in 0..100 {
        let stats = optimize(&mut random_graph(seed, 40));
        for (total, (_, n)) in changes.iter_mut().zip(&stats.changes) {
            *total += n;
        }
    }
    for ((name, _), n) in PASSES.iter().zip(changes) {
        assert!(n > 0, "{name} never changed a random graph");
    }
}
