//! The printer of the text form.

use super::{MAX_SPLAT_ELEMENTS, attribute_names, write_f64, write_scalar};
use crate::array::{Array, Data};
use crate::graph::{Graph, NodeId};
use crate::op::Op;
use crate::types::DisplayShape;
use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write};

/// What the printer includes beyond the graph itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrintOptions {
    /// Print each node's source location as `loc("file":line:col)`.
    pub locations: bool,
}

impl Default for PrintOptions {
    fn default() -> PrintOptions {
        PrintOptions { locations: true }
    }
}

/// The text form of `g`, with source locations. [`super::parse()`] reads it back to an equal
/// graph when no two nodes share a name.
pub fn print(g: &Graph) -> String {
    print_with(g, PrintOptions::default())
}

/// The text form of `g` with `options`: nodes in [`Graph::topo_order`], then outputs, then
/// updates. Printing what [`super::parse()`] read from printed text gives that text back.
pub fn print_with(g: &Graph, options: PrintOptions) -> String {
    let mut out = String::new();
    write_graph(&mut out, g, options).expect("writing to a String cannot fail");
    out
}

/// The name (without `%`) each node of `g` has in its text form: its own name, with `.1`,
/// `.2`, ... appended if that is taken, or else its number among the unnamed nodes, in
/// [`Graph::topo_order`]. Other views of a graph (Graphviz) name nodes by it, as the text does.
pub fn node_names(g: &Graph) -> HashMap<NodeId, String> {
    let mut names = Names::default();
    for id in g.topo_order() {
        names.define(id, g.node(id).name.as_deref());
    }
    names.of
}

fn write_graph(f: &mut String, g: &Graph, options: PrintOptions) -> fmt::Result {
    writeln!(f, "graph {} {{", g.name())?;
    let mut names = Names::default();
    for id in g.topo_order() {
        let node = g.node(id);
        write!(
            f,
            "  %{} = {}",
            names.define(id, node.name.as_deref()),
            node.op.mnemonic()
        )?;
        match &node.op {
            Op::Input { name, .. } => {
                f.write_str(" ")?;
                write_string(f, name)?;
            }
            Op::Constant(value) => {
                f.write_str(" ")?;
                write_constant(f, value)?;
            }
            op => {
                let operands = g.operands(id).into_iter().map(|o| names.reference(o));
                let values = attribute_values(op).into_iter();
                let attributes = attribute_names(op.mnemonic()).iter().zip(values);
                let attributes = attributes.map(|(name, value)| format!("{name}={value}"));
                for (i, arg) in operands.chain(attributes).enumerate() {
                    f.write_str(if i == 0 { " " } else { ", " })?;
                    f.write_str(&arg)?;
                }
            }
        }
        write!(f, " : {}", node.ty)?;
        if let Some(origin) = node.origin.as_ref().filter(|_| options.locations) {
            f.write_str(" loc(")?;
            write_string(f, &origin.file)?;
            write!(f, ":{}:{})", origin.line, origin.column)?;
        }
        f.write_str("\n")?;
    }
    for (name, id) in g.outputs() {
        writeln!(f, "  output {name} = {}", names.reference(*id))?;
    }
    for (name, id) in g.updates() {
        writeln!(f, "  update {name} <- {}", names.reference(*id))?;
    }
    f.write_str("}\n")
}

/// The `%names` given to nodes as they are printed.
#[derive(Default)]
struct Names {
    of: HashMap<NodeId, String>,
    used: HashSet<String>,
    /// The last suffix tried for each name.
    suffix: HashMap<String, usize>,
    unnamed: usize,
}

impl Names {
    /// Names node `id`: its own name, with `.1`, `.2`, ... appended if that is taken; unnamed
    /// nodes are numbered from 0.
    fn define(&mut self, id: NodeId, name: Option<&str>) -> &str {
        let printed = match name {
            Some(name) => {
                let k = self.suffix.entry(name.to_string()).or_default();
                let mut candidate = name.to_string();
                while self.used.contains(&candidate) {
                    *k += 1;
                    candidate = format!("{name}.{k}");
                }
                candidate
            }
            None => {
                self.unnamed += 1;
                (self.unnamed - 1).to_string()
            }
        };
        self.used.insert(printed.clone());
        self.of.insert(id, printed);
        &self.of[&id]
    }

    /// `%name` of a printed node (an output of a removed node has none and prints as such).
    fn reference(&self, id: NodeId) -> String {
        match self.of.get(&id) {
            Some(name) => format!("%{name}"),
            None => format!("%<removed node {}>", id.index()),
        }
    }
}

/// A value after `name=`.
enum Value<'a> {
    Int(usize),
    List(&'a [usize]),
    Float(f64),
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::List(v) => write!(f, "{}", DisplayShape(v)),
            Value::Float(v) => write_f64(f, *v),
        }
    }
}

/// The attribute values of `op`, in the order of [`attribute_names`].
fn attribute_values(op: &Op) -> Vec<Value<'_>> {
    use Value::{Float, Int, List};
    match op {
        Op::Iota { axis, .. }
        | Op::Concat { axis }
        | Op::Gather { axis }
        | Op::ScatterAdd { axis, .. } => vec![Int(*axis)],
        Op::Random { stream, .. } => vec![Int(*stream as usize)],
        Op::Reduce { axes, .. } => vec![List(axes)],
        Op::Permute(perm) => vec![List(perm)],
        Op::Slice { start, end, step } => vec![List(start), List(end), List(step)],
        Op::Pad {
            low,
            high,
            interior,
            value,
        } => {
            vec![List(low), List(high), List(interior), Float(*value)]
        }
        Op::Windows {
            window,
            stride,
            dilation,
        } => {
            vec![List(window), List(stride), List(dilation)]
        }
        _ => vec![],
    }
}

/// One literal when every element has the same bits (and there is one, and at most
/// [`MAX_SPLAT_ELEMENTS`]), else the list.
fn write_constant(f: &mut String, value: &Array) -> fmt::Result {
    let data = value.data();
    if !data.is_empty() && data.len() <= MAX_SPLAT_ELEMENTS && all_equal(data) {
        return write_scalar(f, data, 0);
    }
    f.write_str("[")?;
    for i in 0..data.len() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_scalar(f, data, i)?;
    }
    f.write_str("]")
}

fn all_equal(data: &Data) -> bool {
    fn same<T, K: PartialEq>(v: &[T], key: impl Fn(&T) -> K) -> bool {
        v.windows(2).all(|w| key(&w[0]) == key(&w[1]))
    }
    match data {
        Data::F32(v) => same(v, |x| x.to_bits()),
        Data::F64(v) => same(v, |x| x.to_bits()),
        Data::I32(v) => same(v, |x| *x),
        Data::Bool(v) => same(v, |x| *x),
    }
}

/// A quoted string: `"` and `\` escaped, control characters as `\n`, `\t`, `\r` or `\u{hex}`.
fn write_string(f: &mut String, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_str("\"")
}
