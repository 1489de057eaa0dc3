//! Graphviz output of a graph: `kiln dump --format dot`.
//!
//! One Graphviz node per IR node, in [`Graph::topo_order`], labelled with its `%name` (as the
//! text form names it, see [`crate::text::node_names`]), its op and its type. Inputs are drawn
//! as inverted houses, coloured by kind (data, param, state); each output and each state update
//! gets a sink of its own, outputs green, updates orange and reached by a dashed edge. When a
//! node has two or more operands, each edge is labelled with its operand position.

use crate::graph::{Graph, NodeId};
use crate::op::{InputKind, Op};
use crate::text::node_names;
use std::collections::HashMap;
use std::fmt::Write;

/// The graph in Graphviz DOT syntax. The output depends only on the graph (node order, names,
/// ops, types, outputs, updates), so it is stable enough to snapshot.
pub fn to_dot(g: &Graph) -> String {
    let order = g.topo_order();
    let names = node_names(g);
    let ids: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_dot(&mut out, g, &order, &names, &ids);
    out
}

fn write_dot(
    out: &mut String,
    g: &Graph,
    order: &[NodeId],
    names: &HashMap<NodeId, String>,
    ids: &HashMap<NodeId, usize>,
) -> std::fmt::Result {
    writeln!(out, "digraph {} {{", quote(g.name()))?;
    writeln!(out, "  node [shape=box, fontname=\"monospace\"];")?;
    for &id in order {
        let node = g.node(id);
        let op = match &node.op {
            Op::Input { kind, name, .. } => format!("{} \"{name}\"", kind.mnemonic()),
            op => op.mnemonic().to_string(),
        };
        let label = format!("%{}\n{op}\n{}", names[&id], node.ty);
        writeln!(
            out,
            "  n{} [label={}{}];",
            ids[&id],
            quote(&label),
            style(&node.op)
        )?;
    }
    for &id in order {
        let operands = g.operands(id);
        for (pos, o) in operands.iter().enumerate() {
            let label = if operands.len() >= 2 {
                format!(" [label=\"{pos}\"]")
            } else {
                String::new()
            };
            writeln!(out, "  n{} -> n{}{label};", ids[o], ids[&id])?;
        }
    }
    let sinks = [
        ("output", "#c8f0c8", "solid", g.outputs()),
        ("update", "#ffd8a8", "dashed", g.updates()),
    ];
    for (kind, colour, edge, list) in sinks {
        for (i, (name, id)) in list.iter().enumerate() {
            let label = quote(&format!("{kind} {name}"));
            writeln!(
                out,
                "  {kind}{i} [label={label}, shape=house, style=filled, fillcolor=\"{colour}\"];"
            )?;
            writeln!(out, "  n{} -> {kind}{i} [style={edge}];", ids[id])?;
        }
    }
    writeln!(out, "}}")
}

/// Extra attributes that set inputs (by kind) and constants apart from computed nodes.
fn style(op: &Op) -> &'static str {
    match op {
        Op::Input { kind, .. } => match kind {
            InputKind::Data => ", shape=invhouse, style=filled, fillcolor=\"#cfe2ff\"",
            InputKind::Param => ", shape=invhouse, style=filled, fillcolor=\"#fff3b0\"",
            InputKind::State => ", shape=invhouse, style=filled, fillcolor=\"#e8d5ff\"",
        },
        Op::Constant(_) => ", style=\"rounded,filled\", fillcolor=\"#eeeeee\"",
        _ => "",
    }
}

/// `s` as a DOT double-quoted string: backslashes and quotes escaped, newlines as `\n`.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\r' => {}
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{BinaryOp, UnaryOp};
    use crate::types::{DType, Type};

    fn input(g: &mut Graph, kind: InputKind, name: &str, shape: &[usize]) -> NodeId {
        let ty = Type::new(DType::F32, shape);
        let op = Op::Input {
            kind,
            name: name.into(),
            ty,
        };
        g.add(op, &[], None).unwrap()
    }

    /// A graph with every kind of leaf, two nodes named alike, an output and an update, and a
    /// name that needs escaping.
    fn sample() -> Graph {
        let mut g = Graph::new("step \"one\" \\ two");
        let x = input(&mut g, InputKind::Data, "x", &[2, 3]);
        let w = input(&mut g, InputKind::Param, "w", &[3, 2]);
        let m = input(&mut g, InputKind::State, "m", &[3, 2]);
        let y = g.add(Op::Dot, &[x, w], None).unwrap();
        let t = g.add(Op::Unary(UnaryOp::Tanh), &[y], None).unwrap();
        g.set_node_name(t, Some("h".into())).unwrap();
        let sq = g.add(Op::Binary(BinaryOp::Mul), &[t, t], None).unwrap();
        let m2 = g.add(Op::Binary(BinaryOp::Add), &[m, w], None).unwrap();
        g.set_node_name(m2, Some("h".into())).unwrap();
        g.set_output("loss", sq).unwrap();
        g.set_update("m", m2).unwrap();
        g
    }

    #[test]
    fn nodes_edges_and_sinks_are_all_there() {
        let dot = to_dot(&sample());
        assert!(
            dot.starts_with("digraph \"step \\\"one\\\" \\\\ two\" {\n"),
            "{dot}"
        );
        assert!(dot.contains("n0 [label=\"%x\\ninput \\\"x\\\"\\nf32[2,3]\", shape=invhouse"));
        assert!(
            dot.contains("n4 [label=\"%h\\ntanh\\nf32[2,2]\"];"),
            "{dot}"
        );
        assert!(
            dot.contains("n4 -> n5 [label=\"0\"];\n  n4 -> n5 [label=\"1\"];"),
            "{dot}"
        );
        assert!(
            dot.contains("n3 -> n4;\n"),
            "single operands are unlabelled: {dot}"
        );
        assert!(dot.contains("n5 -> output0 [style=solid];"), "{dot}");
        assert!(dot.contains("n6 -> update0 [style=dashed];"), "{dot}");
        assert_eq!(dot, to_dot(&sample()), "the output is deterministic");
    }

    #[test]
    fn dot_snapshot() {
        insta::assert_snapshot!(to_dot(&sample()));
    }

    #[test]
    fn quoting_escapes_what_dot_interprets() {
        assert_eq!(quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }
}
