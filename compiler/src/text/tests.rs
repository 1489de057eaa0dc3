//! Tests of the text form on written texts: the example graph, error reports, and inputs cut or
//! corrupted at random.

use super::{PrintOptions, parse, print, print_with};
use crate::graph::{Graph, Origin};
use crate::op::{InputKind, MNEMONICS, Op, UnaryOp};
use crate::testing::{config, random_graph};
use crate::types::{DType, Type};
use crate::verify::verify;
use proptest::prelude::*;
use std::collections::HashSet;

/// A valid graph using every op, in canonical form.
const EXAMPLE: &str = r#"graph example {
  %x = input "x" : f32[4,3]
  %w = param "w" : f32[3,2]
  %m = state "w.m" : f32[3,2]
  %seed = input "seed" : i32[]
  %idx = input "idx" : i32[5]
  %img = input "img" : f32[8,1,28,28]
  %b = param "b" : f32[1,128]
  %step = state "step" : i32[]
  %0 = constant 1.5 : f32[]
  %1 = constant 0.0 : f32[64,128]
  %2 = constant [1, 2, 3, 4] : i32[2,2]
  %3 = constant [] : f64[0,3]
  %4 = constant [true, false] : bool[2]
  %5 = constant [-0.0, inf, -inf, nan, 1e-7, 3.4028235e38] : f32[6]
  %6 = constant [0.1, 1e300, 5e-324] : f64[3]
  %one = constant 1 : i32[]
  %7 = iota axis=1 : i32[4,10]
  %8 = random %seed, stream=3 : f32[64,128]
  %9 = exp %x : f32[4,3]
  %10 = add %9, %9 : f32[4,3]
  %11 = lt %9, %10 : bool[4,3]
  %12 = select %11, %9, %10 : f32[4,3]
  %13 = cast %12 : i32[4,3]
  %14 = reduce_sum %9, axes=[1] : f32[4]
  %15 = reduce_max %9, axes=[0,1] : f32[]
  %16 = reshape %9 : f32[12]
  %17 = permute %9, perm=[1,0] : f32[3,4]
  %18 = broadcast %b : f32[64,128]
  %19 = slice %9, start=[0,1], end=[4,3], step=[1,1] : f32[4,2]
  %20 = pad %9, low=[0,1], high=[0,1], interior=[1,0], value=-1.5 : f32[7,5]
  %21 = windows %img, window=[5,5], stride=[1,1], dilation=[1,1] : f32[8,1,24,24,5,5]
  %22 = concat %9, %19, axis=1 : f32[4,5]
  %23 = dot %x, %w : f32[4,2]
  %24 = gather %x, %idx, axis=0 : f32[5,3]
  %25 = scatter_add %idx, %24, axis=0 : f32[10,3]
  %h = tanh %23 : f32[4,2] loc("examples/mlp.rs":21:13)
  %26 = neg %x : f32[4,3]
  %27 = abs %26 : f32[4,3]
  %28 = log %27 : f32[4,3]
  %29 = sqrt %27 : f32[4,3]
  %30 = recip %29 : f32[4,3]
  %31 = sub %28, %30 : f32[4,3]
  %32 = mul %31, %31 : f32[4,3]
  %33 = div %32, %27 : f32[4,3]
  %34 = max %33, %x : f32[4,3]
  %35 = min %34, %x : f32[4,3]
  %36 = pow %35, %x : f32[4,3]
  %37 = eq %36, %x : bool[4,3]
  %38 = ne %13, %13 : bool[4,3]
  %39 = le %36, %x : bool[4,3]
  %40 = gt %36, %x : bool[4,3]
  %41 = ge %36, %x : bool[4,3]
  %42 = mul %w, %w : f32[3,2] loc("dir \"q\" \\ x.rs":1:2)
  %h.1 = sub %w, %42 : f32[3,2]
  %43 = add %step, %one : i32[]
  %44 = stop_gradient %36 : f32[4,3]
  %45 = all_reduce %44 : f32[4,3]
  output out = %h
  output loss = %15
  update w <- %h.1
  update w.m <- %42
  update step <- %43
}
"#;

fn parse_ok(src: &str) -> Graph {
    parse(src).unwrap_or_else(|e| panic!("{}", e.render(src, "test.kir")))
}

#[test]
fn the_example_round_trips_both_ways() {
    let g = parse_ok(EXAMPLE);
    assert_eq!(verify(&g), Ok(()));
    assert_eq!(print(&g), EXAMPLE);
    assert!(parse_ok(&print(&g)) == g);
}

#[test]
fn the_example_uses_every_op() {
    let g = parse_ok(EXAMPLE);
    let used: HashSet<_> = g.node_ids().map(|id| g.node(id).op.mnemonic()).collect();
    let missing: Vec<_> = MNEMONICS.iter().filter(|m| !used.contains(*m)).collect();
    assert!(missing.is_empty(), "not in the example: {missing:?}");
}

#[test]
fn whitespace_and_comments_are_ignored() {
    let messy = "# a comment\n graph   t{%x=input\"x\":f32 [ 2 , 3 ]# after\n\n\t\
                 %0 = reduce_sum %x ,\n axes = [ 0 ] : f32[3] loc ( \"a.rs\" : 1 : 2 )\
                 output y=%0}";
    let canonical = "graph t {\n  %x = input \"x\" : f32[2,3]\n  \
                     %0 = reduce_sum %x, axes=[0] : f32[3] loc(\"a.rs\":1:2)\n  output y = %0\n}\n";
    assert!(parse_ok(messy) == parse_ok(canonical));
    assert_eq!(print(&parse_ok(messy)), canonical);
}

#[test]
fn repeated_names_get_suffixes_and_unnamed_nodes_numbers() {
    let mut g = Graph::new("t");
    let ty = Type::new(DType::F32, [2]);
    let x = g.add(
        Op::Input {
            kind: InputKind::Param,
            name: "x".into(),
            ty,
        },
        &[],
        None,
    );
    let mut last = x.unwrap();
    for name in [Some("h"), None, Some("h"), Some("h.1"), None, Some("x")] {
        last = g.add(Op::Unary(UnaryOp::Neg), &[last], None).unwrap();
        g.set_node_name(last, name.map(String::from)).unwrap();
    }
    g.set_update("x", last).unwrap();
    let expected = "graph t {\n  %x = param \"x\" : f32[2]\n  %h = neg %x : f32[2]\n  \
                    %0 = neg %h : f32[2]\n  %h.1 = neg %0 : f32[2]\n  \
                    %h.1.1 = neg %h.1 : f32[2]\n  \
                    %1 = neg %h.1.1 : f32[2]\n  %x.1 = neg %1 : f32[2]\n  update x <- %x.1\n}\n";
    assert_eq!(print(&g), expected);
    assert_eq!(print(&parse_ok(expected)), expected);
}

#[test]
fn locations_are_printed_only_when_asked() {
    let mut g = Graph::new("t");
    let ty = Type::scalar(DType::Bool);
    let origin = Origin {
        file: "a\tb\u{1}.rs".into(),
        line: u32::MAX,
        column: 1,
    };
    g.add(
        Op::Input {
            kind: InputKind::Data,
            name: "x".into(),
            ty,
        },
        &[],
        Some(origin),
    )
    .unwrap();
    let with = print(&g);
    assert_eq!(
        with,
        "graph t {\n  %x = input \"x\" : bool[] loc(\"a\\tb\\u{1}.rs\":4294967295:1)\n}\n"
    );
    assert!(parse_ok(&with) == g);
    let without = print_with(&g, PrintOptions { locations: false });
    assert_eq!(without, "graph t {\n  %x = input \"x\" : bool[]\n}\n");
}

#[test]
fn the_error_report_points_at_the_column() {
    let src = "graph t {\n  %x = input \"x\" : f32[4,3]\n  %y = param \"y\" : f32[3,2]\n  \
               %0 = dot %x, %y %3 : f32[4,2]\n}\n";
    let report = parse(src).unwrap_err().render(src, "model.kir");
    let expected = [
        "error: expected `:` before the result type, found `%3`",
        " --> model.kir:4:19",
        "  |",
        "4 |   %0 = dot %x, %y %3 : f32[4,2]",
        "  |                   ^",
    ];
    assert_eq!(report, expected.join("\n"));
}

/// Malformed inputs, each with the rendered error, in one snapshot.
#[test]
fn parse_errors_read_well() {
    let body = |lines: &str| {
        format!(
            "graph t {{\n  %x = input \"x\" : f32[4,3]\n  %w = param \"w\" : f32[3,2]\n{lines}}}\n"
        )
    };
    let cases = [
        ("empty input", String::new()),
        ("no graph keyword", "grph t {}".into()),
        ("missing colon", body("  %0 = dot %x, %w %3 : f32[4,2]\n")),
        ("undefined value", body("  %0 = exp %nope : f32[4,3]\n")),
        ("redefined value", body("  %x = exp %x : f32[4,3]\n")),
        ("unknown op", body("  %0 = frobnicate %x : f32[4,3]\n")),
        (
            "declared type mismatch",
            body("  %0 = dot %x, %w : f32[4,3]\n"),
        ),
        (
            "shape mismatch from inference",
            body("  %0 = dot %x, %x : f32[4,3]\n"),
        ),
        ("wrong operand count", body("  %0 = add %x : f32[4,3]\n")),
        (
            "float literal for an i32 constant",
            body("  %0 = constant 1.5 : i32[]\n"),
        ),
        (
            "i32 literal out of range",
            body("  %0 = constant [1, 3000000000] : i32[2]\n"),
        ),
        (
            "list of the wrong length",
            body("  %0 = constant [1, 2, 3] : i32[2,2]\n"),
        ),
        (
            "f32 literal out of range",
            body("  %0 = constant 1e39 : f32[]\n"),
        ),
        ("unknown element type", body("  %0 = exp %x : f16[4,3]\n")),
        (
            "unknown attribute",
            body("  %0 = reduce_sum %x, axis=[1] : f32[4]\n"),
        ),
        ("missing attribute", body("  %0 = permute %x : f32[3,4]\n")),
        (
            "attribute given twice",
            body("  %0 = iota axis=0, axis=1 : i32[4]\n"),
        ),
        (
            "list where an integer goes",
            body("  %0 = concat %x, %x, axis=[1] : f32[4,6]\n"),
        ),
        (
            "extent overflowing usize",
            body("  %y = input \"y\" : f32[18446744073709551616]\n"),
        ),
        (
            "element count overflow",
            body("  %y = input \"y\" : f32[4294967296,4294967296]\n"),
        ),
        (
            "constant too large",
            body("  %0 = constant 0.0 : f32[65536,65536]\n"),
        ),
        (
            "stream overflowing u32",
            body("  %s = input \"s\" : i32[]\n  %0 = random %s, stream=4294967296 : f32[2]\n"),
        ),
        (
            "padding overflow",
            body(
                "  %0 = pad %x, low=[0,0], high=[0,0], interior=[0,18446744073709551615], \
                 value=0.0 : f32[4,3]\n",
            ),
        ),
        (
            "scatter_add axis beyond the result",
            body("  %i = input \"i\" : i32[4]\n  %0 = scatter_add %i, %x, axis=2 : f32[4,3]\n"),
        ),
        ("unterminated string", body("  %y = input \"y : f32[2]\n")),
        ("unknown escape", body("  %y = input \"a\\qb\" : f32[2]\n")),
        ("unexpected character", body("  %0 = exp %x ; f32[4,3]\n")),
        ("input name not a string", body("  %y = input y : f32[2]\n")),
        (
            "invalid input name",
            body("  %y = input \"a b\" : f32[2]\n"),
        ),
        (
            "literal for an op without one",
            body("  %0 = exp %x, 2.0 : f32[4,3]\n"),
        ),
        (
            "update of a data input",
            body("  %0 = exp %x : f32[4,3]\n  update x <- %0\n"),
        ),
        ("update of the wrong type", body("  update w <- %x\n")),
        (
            "duplicate output",
            body("  output y = %x\n  output y = %w\n"),
        ),
        ("missing update arrow", body("  update w = %w\n")),
        ("invalid value name", body("  %1a = exp %x : f32[4,3]\n")),
        (
            "bad location",
            body("  %0 = exp %x : f32[4,3] loc(\"a.rs\":-1:2)\n"),
        ),
        ("text after the graph", format!("{} extra", body(""))),
        (
            "unclosed graph",
            "graph t {\n  %x = input \"x\" : f32[4,3]\n".into(),
        ),
    ];
    let mut report = String::new();
    for (name, src) in &cases {
        let Err(e) = parse(src) else {
            panic!("`{name}` parsed")
        };
        report += &format!("=== {name}\n{}\n\n", e.render(src, "model.kir"));
    }
    insta::assert_snapshot!(report);
}

#[test]
fn every_prefix_of_the_example_parses_or_fails_cleanly() {
    for (i, _) in EXAMPLE.char_indices() {
        let prefix = &EXAMPLE[..i];
        if let Err(e) = parse(prefix) {
            e.render(prefix, "prefix.kir");
        }
    }
}

/// Bytes worth flipping in: the punctuation and letters of the grammar, and anything else.
fn flip_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(b"%[]{}(),:=<-\"\\# \n019.e-xinfa".to_vec()),
        any::<u8>()
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn flipped_bytes_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), flip_byte()), 1..6),
    ) {
        let mut bytes = EXAMPLE.as_bytes().to_vec();
        for (at, b) in &flips {
            let i = at.index(bytes.len());
            bytes[i] = *b;
        }
        let src = String::from_utf8_lossy(&bytes);
        match parse(&src) {
            Ok(g) => prop_assert_eq!(print(&parse_ok(&print(&g))), print(&g)),
            Err(e) => prop_assert!(!e.render(&src, "flipped.kir").is_empty()),
        }
    }
}

/// True when no two nodes share a name, so printing keeps every name as it is.
fn names_are_distinct(g: &Graph) -> bool {
    let mut seen = HashSet::new();
    g.node_ids()
        .filter_map(|id| g.node(id).name.as_deref())
        .all(|n| seen.insert(n))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn printed_graphs_parse_back(seed in any::<u64>(), steps in 0usize..40) {
        let g = random_graph(seed, steps);
        let text = print(&g);
        let back = parse(&text).map_err(|e| TestCaseError::fail(e.render(&text, "random.kir")))?;
        prop_assert_eq!(verify(&back), Ok(()));
        prop_assert_eq!(print(&back), text.as_str());
        if names_are_distinct(&g) {
            prop_assert!(back == g, "parse(print(g)) != g for\n{}", text);
        }
        let bare = print_with(&g, PrintOptions { locations: false });
        let back = parse(&bare).map_err(|e| TestCaseError::fail(e.render(&bare, "bare.kir")))?;
        prop_assert_eq!(print(&back), bare);
    }
}

#[test]
fn a_single_literal_fills_at_most_2_to_the_24_elements() {
    let text =
        |n: usize| format!("graph t {{\n  %0 = constant 0 : i32[{n}]\n  output y = %0\n}}\n");
    assert!(parse(&text(1 << 24)).is_ok());
    let e = parse(&text((1 << 24) + 1)).unwrap_err().to_string();
    assert!(
        e.contains("fills 16777217 elements, more than the limit of 2^24"),
        "{e}"
    );
}
