//! Each pass on small written graphs: snapshots of the text before and after, every graph also
//! checked to verify and to compute the same values on random inputs.

use super::semantics::difference;
use super::{
    MAX_ROUNDS, Pass, cse, dce, fold, optimize, pick_sums, run_to_fixed_point, simplify,
    splat_value, stack_products,
};
use crate::graph::Graph;
use crate::text::{PrintOptions, parse, print_with};
use crate::verify::verify;

fn parse_ok(src: &str) -> Graph {
    parse(src).unwrap_or_else(|e| panic!("{}", e.render(src, "test.kir")))
}

/// The text of `src` before and after `pass`, without locations, once the result is checked:
/// it verifies and computes what `src` computes on a few random inputs.
fn before_after(pass: Pass, src: &str) -> String {
    let before = parse_ok(src);
    let mut after = before.clone();
    let changed = pass(&mut after);
    verify(&after).unwrap_or_else(|e| panic!("{e}"));
    for seed in 0..8 {
        if let Some(d) = difference(&before, &after, seed) {
            panic!("the pass changed a value: {d}");
        }
    }
    let text = |g: &Graph| print_with(g, PrintOptions { locations: false });
    format!(
        "{}\n--- changed: {changed} ---\n\n{}",
        text(&before),
        text(&after)
    )
}

#[test]
fn dce_removes_what_no_output_or_update_needs() {
    insta::assert_snapshot!(before_after(
        dce,
        r#"graph t {
  %x = input "x" : f32[4]
  %unused = input "unused" : f32[4]
  %w = param "w" : f32[4]
  %0 = exp %x : f32[4]
  %1 = tanh %0 : f32[4]
  %2 = log %1 : f32[4]
  %3 = mul %0, %w : f32[4]
  %4 = neg %unused : f32[4]
  %5 = constant 1.0 : f32[]
  output y = %3
  update w <- %0
}"#
    ));
}

#[test]
fn dce_leaves_a_graph_without_dead_code_alone() {
    let mut g = parse_ok(
        r#"graph t {
  %x = input "x" : f32[4]
  %s = state "s" : f32[4]
  %0 = exp %x : f32[4]
  output y = %0
  update s <- %s
}"#,
    );
    assert!(!dce(&mut g));
    assert_eq!(g.len(), 3);
}

#[test]
fn cse_merges_equal_ops_on_equal_operands() {
    insta::assert_snapshot!(before_after(
        cse,
        r#"graph t {
  %x = input "x" : f32[2]
  %y = input "y" : f32[2]
  %seed = input "seed" : i32[]
  %a = exp %x : f32[2]
  %b = exp %x : f32[2]
  %ta = tanh %a : f32[2]
  %tb = tanh %b : f32[2]
  %d1 = sub %x, %y : f32[2]
  %d2 = sub %y, %x : f32[2]
  %ey = exp %y : f32[2]
  %z1 = constant [0.0, 1.0] : f32[2]
  %z2 = constant [0.0, 1.0] : f32[2]
  %nz = constant [-0.0, 1.0] : f32[2]
  %n1 = constant nan : f32[]
  %n2 = constant nan : f32[]
  %p1 = pad %x, low=[1], high=[0], interior=[0], value=0.0 : f32[3]
  %p2 = pad %x, low=[1], high=[0], interior=[0], value=-0.0 : f32[3]
  %p3 = pad %x, low=[1], high=[0], interior=[0], value=0.0 : f32[3]
  %r1 = random %seed, stream=1 : f32[2]
  %r2 = random %seed, stream=2 : f32[2]
  %r3 = random %seed, stream=1 : f32[2]
  output ta = %ta
  output tb = %tb
  output d1 = %d1
  output d2 = %d2
  output ey = %ey
  output z1 = %z1
  output z2 = %z2
  output nz = %nz
  output n1 = %n1
  output n2 = %n2
  output p1 = %p1
  output p2 = %p2
  output p3 = %p3
  output r1 = %r1
  output r2 = %r2
  output r3 = %r3
}"#
    ));
}

#[test]
fn fold_computes_small_constant_subgraphs() {
    insta::assert_snapshot!(before_after(
        fold,
        r#"graph t {
  %x = input "x" : f32[3]
  %a = constant [1.0, 2.0, 3.0] : f32[3]
  %b = constant [0.5, 0.25, 2.0] : f32[3]
  %c = mul %a, %b : f32[3]
  %total = reduce_sum %c, axes=[0] : f32[]
  %n = constant 64.0 : f32[]
  %one = constant 1.0 : f32[]
  %inv = div %one, %n : f32[]
  %m = constant [1, 2, 3, 4, 5, 6] : i32[2,3]
  %mt = permute %m, perm=[1,0] : i32[3,2]
  %big = cast %mt : f64[3,2]
  %i = iota axis=0 : f32[3]
  %seed = constant 7 : i32[]
  %r = random %seed, stream=0 : f32[3]
  %y = add %x, %a : f32[3]
  output total = %total
  output inv = %inv
  output big = %big
  output i = %i
  output r = %r
  output y = %y
}"#
    ));
}

#[test]
fn fold_keeps_splats_as_broadcast_constants() {
    insta::assert_snapshot!(before_after(
        fold,
        r#"graph t {
  %0 = constant 1.0 : f32[]
  %1 = reshape %0 : f32[1,1]
  %2 = broadcast %1 : f32[64,128]
  %3 = neg %2 : f32[64,128]
  %4 = reshape %3 : f32[8192]
  %5 = constant 0.5 : f32[3,4]
  %6 = constant 2.0 : f64[]
  %7 = reshape %6 : f64[1,1]
  %8 = broadcast %7 : f64[100,100]
  %9 = exp %8 : f64[100,100]
  %10 = gt %9, %8 : bool[100,100]
  %11 = slice %10, start=[0,0], end=[100,50], step=[1,2] : bool[100,25]
  output flat = %4
  output half = %5
  output e = %9
  output mask = %11
}"#
    ));
}

#[test]
fn fold_leaves_large_results_alone() {
    insta::assert_snapshot!(before_after(
        fold,
        r#"graph t {
  %0 = constant 1.0 : f32[1,1]
  %1 = constant 2.0 : f32[1,1]
  %a = broadcast %0 : f32[50,100]
  %b = broadcast %1 : f32[50,100]
  %joined = concat %a, %b, axis=0 : f32[100,100]
  %padded = pad %a, low=[0,1], high=[0,0], interior=[0,0], value=0.0 : f32[50,101]
  %sum = reduce_sum %joined, axes=[0,1] : f32[]
  %sum2 = reduce_sum %a, axes=[0,1] : f32[]
  %small = pad %0, low=[0,1], high=[0,0], interior=[0,0], value=0.0 : f32[1,2]
  output joined = %joined
  output padded = %padded
  output sum = %sum
  output sum2 = %sum2
  output small = %small
}"#
    ));
}

#[test]
fn simplify_float_arithmetic_keeps_signed_zeros_and_nan() {
    insta::assert_snapshot!(before_after(
        simplify,
        r#"graph t {
  %x = input "x" : f32[2,3]
  %c1 = constant 1.0 : f32[]
  %r1 = reshape %c1 : f32[1,1]
  %one = broadcast %r1 : f32[2,3]
  %mone = constant -1.0 : f32[2,3]
  %zero = constant 0.0 : f32[2,3]
  %nzero = constant -0.0 : f32[2,3]
  %two = constant 2.0 : f32[2,3]
  %a = mul %x, %one : f32[2,3]
  %b = mul %one, %x : f32[2,3]
  %c = mul %x, %mone : f32[2,3]
  %d = add %x, %nzero : f32[2,3]
  %e = add %nzero, %x : f32[2,3]
  %f = sub %x, %zero : f32[2,3]
  %g = sub %nzero, %x : f32[2,3]
  %h = div %x, %one : f32[2,3]
  %i = max %x, %x : f32[2,3]
  %j = neg %x : f32[2,3]
  %k = neg %j : f32[2,3]
  %no1 = mul %x, %zero : f32[2,3]
  %no2 = add %x, %zero : f32[2,3]
  %no3 = sub %x, %nzero : f32[2,3]
  %no4 = sub %zero, %x : f32[2,3]
  %no5 = sub %x, %x : f32[2,3]
  %no6 = div %x, %x : f32[2,3]
  %no7 = mul %x, %two : f32[2,3]
  output a = %a
  output b = %b
  output c = %c
  output d = %d
  output e = %e
  output f = %f
  output g = %g
  output h = %h
  output i = %i
  output k = %k
  output no1 = %no1
  output no2 = %no2
  output no3 = %no3
  output no4 = %no4
  output no5 = %no5
  output no6 = %no6
  output no7 = %no7
}"#
    ));
}

#[test]
fn simplify_integer_arithmetic() {
    insta::assert_snapshot!(before_after(
        simplify,
        r#"graph t {
  %x = input "x" : i32[4]
  %zero = constant 0 : i32[4]
  %one = constant 1 : i32[4]
  %mone = constant -1 : i32[4]
  %a = mul %x, %zero : i32[4]
  %b = mul %zero, %x : i32[4]
  %c = add %x, %zero : i32[4]
  %d = sub %x, %x : i32[4]
  %e = sub %zero, %x : i32[4]
  %f = mul %mone, %x : i32[4]
  %g = div %x, %one : i32[4]
  %h = min %x, %x : i32[4]
  output a = %a
  output b = %b
  output c = %c
  output d = %d
  output e = %e
  output f = %f
  output g = %g
  output h = %h
}"#
    ));
}

#[test]
fn simplify_selects_and_casts() {
    insta::assert_snapshot!(before_after(
        simplify,
        r#"graph t {
  %x = input "x" : f32[3]
  %y = input "y" : f32[3]
  %c = input "c" : bool[3]
  %t = constant true : bool[]
  %tt = reshape %t : bool[1]
  %yes = broadcast %tt : bool[3]
  %no = constant false : bool[3]
  %one = constant 1.0 : f32[3]
  %zero = constant 0.0 : f32[3]
  %nzero = constant -0.0 : f32[3]
  %a = select %c, %x, %x : f32[3]
  %b = select %yes, %x, %y : f32[3]
  %d = select %no, %x, %y : f32[3]
  %hot = select %c, %one, %zero : f32[3]
  %cold = select %c, %zero, %one : f32[3]
  %signed = select %c, %one, %nzero : f32[3]
  %same = cast %x : f32[3]
  %other = cast %x : f64[3]
  output a = %a
  output b = %b
  output d = %d
  output hot = %hot
  output cold = %cold
  output signed = %signed
  output same = %same
  output other = %other
}"#
    ));
}

#[test]
fn simplify_views_that_do_nothing_or_compose() {
    insta::assert_snapshot!(before_after(
        simplify,
        r#"graph t {
  %x = input "x" : f32[2,3,1]
  %r0 = reshape %x : f32[2,3,1]
  %r1 = reshape %x : f32[6]
  %r2 = reshape %r1 : f32[3,2]
  %r3 = reshape %r2 : f32[2,3,1]
  %p0 = permute %x, perm=[0,1,2] : f32[2,3,1]
  %p1 = permute %x, perm=[1,2,0] : f32[3,1,2]
  %p2 = permute %p1, perm=[0,2,1] : f32[3,2,1]
  %p3 = permute %p1, perm=[2,0,1] : f32[2,3,1]
  %b0 = broadcast %x : f32[2,3,1]
  %b1 = broadcast %x : f32[2,3,4]
  %b2 = broadcast %b0 : f32[2,3,5]
  %x1 = input "x1" : f32[2,1,1]
  %b3 = broadcast %x1 : f32[2,3,1]
  %b4 = broadcast %b3 : f32[2,3,5]
  %s0 = slice %x, start=[0,0,0], end=[2,3,1], step=[1,1,3] : f32[2,3,1]
  %s1 = slice %x, start=[0,0,0], end=[2,3,1], step=[2,1,1] : f32[1,3,1]
  %q0 = pad %x, low=[0,0,0], high=[0,0,0], interior=[0,0,5], value=1.5 : f32[2,3,1]
  %q1 = pad %x, low=[0,0,0], high=[0,0,0], interior=[1,0,0], value=1.5 : f32[3,3,1]
  %c0 = concat %x, axis=1 : f32[2,3,1]
  %e = constant [] : f32[2,0,1]
  %c1 = concat %e, %x, axis=1 : f32[2,3,1]
  %u0 = reduce_sum %x, axes=[] : f32[2,3,1]
  %u1 = reduce_max %x, axes=[2] : f32[2,3]
  %u2 = reduce_sum %x, axes=[1,2] : f32[2]
  %u3 = reduce_sum %b1, axes=[2] : f32[2,3]
  output r0 = %r0
  output r3 = %r3
  output p0 = %p0
  output p2 = %p2
  output p3 = %p3
  output b1 = %b1
  output b2 = %b2
  output b4 = %b4
  output s0 = %s0
  output s1 = %s1
  output q0 = %q0
  output q1 = %q1
  output c0 = %c0
  output c1 = %c1
  output u0 = %u0
  output u1 = %u1
  output u2 = %u2
  output u3 = %u3
}"#
    ));
}

#[test]
fn simplify_moves_elementwise_ops_inside_broadcasts() {
    insta::assert_snapshot!(before_after(
        simplify,
        r#"graph t {
  %beta = input "beta" : f32[]
  %step = state "step" : f32[]
  %w = param "w" : f32[64,32]
  %0 = reshape %beta : f32[1,1]
  %b = broadcast %0 : f32[64,32]
  %1 = reshape %step : f32[1,1]
  %s = broadcast %1 : f32[64,32]
  %p = pow %b, %s : f32[64,32]
  %n = neg %b : f32[64,32]
  %c = cast %s : i32[64,32]
  %row = input "row" : f32[1,8]
  %col = input "col" : f32[8,1]
  %r = broadcast %row : f32[8,8]
  %k = broadcast %col : f32[8,8]
  %mixed = add %r, %k : f32[8,8]
  %half = mul %p, %w : f32[64,32]
  output p = %p
  output n = %n
  output c = %c
  output mixed = %mixed
  output half = %half
}"#
    ));
}

#[test]
fn optimize_reaches_a_fixed_point() {
    insta::assert_snapshot!(before_after(
        |g| optimize(g).converged,
        r#"graph t {
  %x = input "x" : f32[4,3]
  %w = param "w" : f32[3,2]
  %lr = input "lr" : f32[]
  %0 = dot %x, %w : f32[4,2]
  %1 = constant 0.0 : f32[]
  %2 = reshape %1 : f32[1,1]
  %3 = broadcast %2 : f32[4,2]
  %h = max %3, %0 : f32[4,2]
  %4 = constant 1.0 : f32[]
  %5 = reshape %4 : f32[1,1]
  %6 = broadcast %5 : f32[4,2]
  %7 = mul %6, %h : f32[4,2]
  %8 = ge %3, %0 : bool[4,2]
  %9 = constant 0.0 : f32[]
  %10 = reshape %9 : f32[1,1]
  %11 = broadcast %10 : f32[4,2]
  %12 = select %8, %11, %7 : f32[4,2]
  %13 = permute %x, perm=[1,0] : f32[3,4]
  %14 = dot %13, %12 : f32[3,2]
  %15 = reshape %lr : f32[1,1]
  %16 = reshape %15 : f32[1]
  %17 = reshape %16 : f32[1,1]
  %18 = broadcast %17 : f32[3,2]
  %19 = mul %18, %14 : f32[3,2]
  %20 = sub %w, %19 : f32[3,2]
  %21 = tanh %20 : f32[3,2]
  output y = %h
  update w <- %20
}"#
    ));
}

/// Sums that pick one element per row: a loss's (a gather of the flattened values, `+ 0` so a
/// picked `-0` sums to `+0`), its gradient's (negated, of a value broadcast along the row: no
/// read at all, and `-0` zeros), one along a middle axis with the comparison reversed, and an
/// axis of one element (nothing added). A float iota, or a sum over two axes, stays.
#[test]
fn pick_sums_read_the_one_element_a_mask_keeps() {
    insta::assert_snapshot!(before_after(
        pick_sums,
        r#"graph t {
  %x = input "x" : f32[3,5]
  %labels = input "labels" : i32[3]
  %g = input "g" : f32[3]
  %y = input "y" : f32[2,4,3]
  %k = input "k" : i32[2,3]
  %one = input "one" : f32[3,1]
  %0 = iota axis=1 : i32[3,5]
  %1 = reshape %labels : i32[3,1]
  %2 = broadcast %1 : i32[3,5]
  %mask = eq %0, %2 : bool[3,5]
  %3 = constant 0.0 : f32[]
  %4 = reshape %3 : f32[1,1]
  %zero = broadcast %4 : f32[3,5]
  %5 = select %mask, %x, %zero : f32[3,5]
  %loss = reduce_sum %5, axes=[1] : f32[3]
  %6 = reshape %g : f32[3,1]
  %7 = broadcast %6 : f32[3,5]
  %8 = select %mask, %7, %zero : f32[3,5]
  %9 = neg %8 : f32[3,5]
  %grad = reduce_sum %9, axes=[1] : f32[3]
  %10 = iota axis=1 : i32[2,4,3]
  %11 = reshape %k : i32[2,1,3]
  %12 = broadcast %11 : i32[2,4,3]
  %13 = eq %12, %10 : bool[2,4,3]
  %14 = reshape %3 : f32[1,1,1]
  %15 = broadcast %14 : f32[2,4,3]
  %16 = select %13, %y, %15 : f32[2,4,3]
  %middle = reduce_sum %16, axes=[1] : f32[2,3]
  %17 = iota axis=1 : i32[3,1]
  %lone = broadcast %1 : i32[3,1]
  %18 = eq %17, %lone : bool[3,1]
  %19 = reshape %3 : f32[1,1]
  %20 = broadcast %19 : f32[3,1]
  %21 = select %18, %one, %20 : f32[3,1]
  %single = reduce_sum %21, axes=[1] : f32[3]
  %22 = iota axis=1 : f32[3,5]
  %23 = cast %2 : f32[3,5]
  %24 = eq %22, %23 : bool[3,5]
  %25 = select %24, %x, %zero : f32[3,5]
  %float = reduce_sum %25, axes=[1] : f32[3]
  %both = reduce_sum %5, axes=[0,1] : f32[]
  output loss = %loss
  output grad = %grad
  output middle = %middle
  output single = %single
  output float = %float
  output both = %both
}"#
    ));
}

/// Three steps of a sequence `x: [B=2, T=3, F=4]`, each multiplied by `w`, become one product
/// of `x`'s six rows, sliced; two products of only some steps, and one of another weight,
/// stay.
#[test]
fn stack_products_of_every_step_with_one_weight() {
    insta::assert_snapshot!(before_after(
        stack_products,
        r#"graph t {
  %x = input "x" : f32[2,3,4]
  %w = param "w" : f32[4,5]
  %v = param "v" : f32[4,5]
  %s0 = slice %x, start=[0,0,0], end=[2,1,4], step=[1,1,1] : f32[2,1,4]
  %x0 = reshape %s0 : f32[2,4]
  %s1 = slice %x, start=[0,1,0], end=[2,2,4], step=[1,1,1] : f32[2,1,4]
  %x1 = reshape %s1 : f32[2,4]
  %s2 = slice %x, start=[0,2,0], end=[2,3,4], step=[1,1,1] : f32[2,1,4]
  %x2 = reshape %s2 : f32[2,4]
  %0 = dot %x0, %w : f32[2,5]
  %1 = dot %x1, %w : f32[2,5]
  %2 = dot %x2, %w : f32[2,5]
  %3 = dot %x0, %v : f32[2,5]
  %4 = dot %x1, %v : f32[2,5]
  %5 = add %0, %1 : f32[2,5]
  %6 = add %5, %2 : f32[2,5]
  %7 = add %3, %4 : f32[2,5]
  output y = %6
  output z = %7
}"#
    ));
}

#[test]
fn splat_values_see_through_reshapes_and_broadcasts() {
    let g = parse_ok(
        r#"graph t {
  %x = input "x" : f32[2]
  %c = constant -0.0 : f32[]
  %r = reshape %c : f32[1]
  %mz = broadcast %r : f32[2]
  %mixed = constant [1.0, 2.0] : f32[2]
  %three = constant 3 : i32[2]
  %yes = constant true : bool[]
  %neg = neg %mz : f32[2]
}"#,
    );
    let value = |name: &str| {
        let id = g
            .node_ids()
            .find(|&id| g.node(id).name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no node {name}"));
        splat_value(&g, id)
    };
    let minus_zero = value("mz").expect("a splat");
    assert!(minus_zero == 0.0 && minus_zero.is_sign_negative());
    assert_eq!(value("mixed"), None);
    assert_eq!(value("three"), Some(3.0));
    assert_eq!(value("yes"), Some(1.0));
    assert_eq!(value("neg"), None);
    assert_eq!(value("x"), None);
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(
    expected = "kiln bug: the pass `orphan` left an invalid graph: invalid graph: output `y` names a removed node"
)]
fn a_pass_that_breaks_the_graph_is_named() {
    let mut g = parse_ok(
        r#"graph t {
  %x = input "x" : f32[2]
  %0 = exp %x : f32[2]
  output y = %0
}"#,
    );
    let orphan: Pass = |g| {
        let last = g.node_ids().last().expect("a node");
        g.remove(last).is_some()
    };
    run_to_fixed_point(&mut g, &[("dce", dce), ("orphan", orphan)]);
}

#[test]
fn rounds_are_bounded() {
    let mut g = parse_ok(
        r#"graph t {
  %x = input "x" : f32[2]
  output y = %x
}"#,
    );
    let stats = run_to_fixed_point(&mut g, &[("restless", |_| true)]);
    assert_eq!((stats.rounds, stats.converged), (MAX_ROUNDS, false));
    assert_eq!(stats.changes("restless"), MAX_ROUNDS);
    assert_eq!(stats.changes("unknown"), 0);
}
