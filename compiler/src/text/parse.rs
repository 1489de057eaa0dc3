//! The parser of the text form.

use crate::graph::Graph;
use std::fmt;

/// A syntax or type error in a `.kir` text, at a line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1 (in characters).
    pub column: usize,
    /// What was expected and what was found.
    pub message: String,
}

impl std::error::Error for ParseError {}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// Parses a graph from its text form.
pub fn parse(src: &str) -> Result<Graph, ParseError> {
    let _ = src;
    todo!("text parser")
}
