//! The text form of graphs (`.kir`): a printer and a parser that round-trip exactly.
//! The grammar, the ops and the round-trip guarantee are documented in docs/ir.md.
//!
//! Reading goes `lex` (tokens with line and column) -> `parse` (the grammar, values and
//! names) -> `build` (an op from its mnemonic, attributes, literals and declared type), and
//! every node is added with [`crate::Graph::add`], so a parsed graph is well typed. `print`
//! writes what `parse` reads; the attribute names both use are listed once, here.

mod build;
mod lex;
mod parse;
mod print;
#[cfg(test)]
mod tests;

pub use parse::{ParseError, parse};
pub use print::{PrintOptions, node_names, print, print_with};

use crate::array::Data;
use std::fmt;

/// Most elements a constant written as one literal may fill (2^24): a few bytes of text never
/// allocate more. The printer writes a larger constant as a list even when its elements are
/// equal, so the round trip holds.
const MAX_SPLAT_ELEMENTS: usize = 1 << 24;

/// Writes element `i` of `data` as the text form spells a literal: floats in the shortest form
/// that reads back to the same bits (`1.0`, `1e-7`, `-0.0`, `inf`, `-inf`, `nan`), integers in
/// decimal, booleans as `true`/`false`.
pub fn write_scalar(f: &mut impl fmt::Write, data: &Data, i: usize) -> fmt::Result {
    match data {
        Data::F32(v) => write_float(f, v[i] as f64, v[i].is_nan(), format_args!("{:?}", v[i])),
        Data::F64(v) => write_float(f, v[i], v[i].is_nan(), format_args!("{:?}", v[i])),
        Data::I32(v) => write!(f, "{}", v[i]),
        Data::Bool(v) => write!(f, "{}", v[i]),
    }
}

/// Writes an `f64` attribute value (a pad value) as [`write_scalar`] writes floats.
pub fn write_f64(f: &mut impl fmt::Write, v: f64) -> fmt::Result {
    write_float(f, v, v.is_nan(), format_args!("{v:?}"))
}

/// The attributes an op spells as `name=value` after its operands, in the order printed.
fn attribute_names(mnemonic: &str) -> &'static [&'static str] {
    match mnemonic {
        "iota" | "concat" | "gather" | "scatter_add" => &["axis"],
        "random" => &["stream"],
        "reduce_sum" | "reduce_max" => &["axes"],
        "permute" => &["perm"],
        "slice" => &["start", "end", "step"],
        "pad" => &["low", "high", "interior", "value"],
        "windows" => &["window", "stride", "dilation"],
        _ => &[],
    }
}

fn write_float(
    f: &mut impl fmt::Write,
    v: f64,
    nan: bool,
    shortest: fmt::Arguments<'_>,
) -> fmt::Result {
    if nan {
        f.write_str("nan")
    } else if v.is_infinite() {
        f.write_str(if v > 0.0 { "inf" } else { "-inf" })
    } else {
        f.write_fmt(shortest)
    }
}
