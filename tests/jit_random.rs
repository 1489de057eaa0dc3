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

/// The generator makes kernels whose outer loop runs in vector lanes: column reductions
/// (every axis but the last reduced), some of them longer than an unrolled reduction, some with
/// a scalar tail.
#[test]
fn column_reductions_in_vector_lanes_are_generated() {
    use kiln::compiler::codegen::describe_loops;
    use kiln::compiler::kernel::lower;
    let loops: Vec<String> = (0..200)
        .map(|s| describe_loops(&lower(&random_graph(s, 30), true)))
        .collect();
    let count = |f: &dyn Fn(&str) -> bool| loops.iter().filter(|l| f(l)).count();
    let carried = count(&|l| l.contains(" lanes of v"));
    let looped = count(&|l| {
        l.split(" lanes of v")
            .skip(1)
            .any(|after| after.lines().nth(1).is_some_and(|l| l.contains("for v")))
    });
    eprintln!("{carried} of 200 graphs carry stages in outer lanes, {looped} in a loop");
    assert!(
        carried > 20,
        "{carried} of 200 graphs carry stages in outer lanes"
    );
    assert!(
        looped > 5,
        "{looped} of 200 graphs carry a looped stage in outer lanes"
    );
}

/// The generator makes vector loops whose loads are not unit stride: a step of 2 or more, and
/// quotients and remainders of the vector variable (a pooling gradient's `v/2` and `v%2`).
#[test]
fn loads_gathered_across_lanes_are_generated() {
    use kiln::compiler::codegen::describe_loops;
    use kiln::compiler::kernel::{Expr, Kernel, lower};
    let programs: Vec<_> = (0..300)
        .map(|s| lower(&random_graph(s, 30), true))
        .collect();
    let gathered = (programs.iter())
        .filter(|p| describe_loops(p).contains("gathered"))
        .count();
    // A load in a stage's innermost loop whose index divides that loop's variable.
    let quotient = |p: &kiln::compiler::kernel::Program| {
        p.kernels.iter().any(|k| {
            let Kernel::Loop(k) = k else { return false };
            (0..k.stages.len()).any(|s| {
                let Some(&v) = k.stages[s].vars.last() else {
                    return false;
                };
                k.needed(s).iter().any(|&e| match &k.exprs[e as usize].0 {
                    Expr::Load { offset, .. } => {
                        offset.stride_of(v).is_none() && offset.lane_offsets(v, 4).is_some()
                    }
                    _ => false,
                })
            })
        })
    };
    let quotients = programs.iter().filter(|p| quotient(p)).count();
    eprintln!("of 300 graphs, {gathered} gather across lanes, {quotients} by quotients");
    assert!(
        gathered > 20,
        "{gathered} of 300 graphs gather across lanes"
    );
    assert!(
        quotients > 5,
        "{quotients} of 300 graphs gather by quotients"
    );
}

/// The generator makes sums of matrix products, which fusion computes by adding products into
/// one buffer.
#[test]
fn sums_of_products_are_generated() {
    use kiln::compiler::kernel::{Kernel, lower};
    let added = (0..300)
        .filter(|&s| {
            let p = lower(&random_graph(s, 30), true);
            (p.kernels.iter()).any(|k| matches!(k, Kernel::Dot(d) if d.accumulate))
        })
        .count();
    assert!(added > 5, "{added} of 300 graphs add products into a sum");
}

/// The generator makes store loops whose vector loop ends with a vector over the last points
/// (storing some again), others, reading what they store, that end with a scalar tail, and
/// loops over extents that are multiples of their vectors, with no tail (store loops of two
/// vectors per iteration among them).
#[test]
fn every_kind_of_vector_loop_is_generated() {
    use kiln::compiler::codegen::describe_loops;
    use kiln::compiler::kernel::lower;
    let loops: Vec<String> = (0..300)
        .map(|s| describe_loops(&lower(&random_graph(s, 30), true)))
        .collect();
    let count = |text: &str| loops.iter().filter(|l| l.contains(text)).count();
    let overlapping = count("again as vectors");
    let scalar = count("then a scalar tail");
    let unrolled = count("vectors at a time, no tail");
    let whole = count("lanes, no tail");
    assert!(
        overlapping > 100,
        "{overlapping} of 300 graphs overlap a tail"
    );
    assert!(scalar > 30, "{scalar} of 300 graphs run a scalar tail");
    assert!(unrolled > 5, "{unrolled} of 300 graphs unroll a store loop");
    assert!(
        whole > 10,
        "{whole} of 300 graphs have a vector loop without a tail"
    );
}
