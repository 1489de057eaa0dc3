//! The parser of the text form: tokens to a [`Graph`], every node type-checked as it is added.

use super::build::{Args, Literal, build, int, unknown_op};
use super::lex::{Kind, Pos, Token, lex};
use crate::graph::{Graph, NodeId, Origin, is_identifier};
use crate::op::MNEMONICS;
use crate::types::{DType, Shape, Type};
use std::collections::HashMap;
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

impl ParseError {
    /// An error at `pos`.
    pub(super) fn at(pos: Pos, message: impl Into<String>) -> ParseError {
        ParseError {
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }

    /// A rustc-style report of the error in `src`, read from `filename`: the message, the
    /// place, and the offending line with a caret under the column. No trailing newline.
    pub fn render(&self, src: &str, filename: &str) -> String {
        let text = src.lines().nth(self.line.saturating_sub(1)).unwrap_or("");
        let number = self.line.to_string();
        let pad = " ".repeat(number.len());
        let caret: String = text
            .chars()
            .chain(std::iter::repeat(' '))
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        format!(
            "error: {}\n{pad}--> {filename}:{}:{}\n{pad} |\n{number} | {text}\n{pad} | {caret}^",
            self.message, self.line, self.column
        )
    }
}

/// Parses a graph from its text form (see docs/ir.md). Every node is added with
/// [`Graph::add`], so the graph is well typed; a declared type must equal the inferred one.
pub fn parse(src: &str) -> Result<Graph, ParseError> {
    let mut parser = Parser {
        tokens: lex(src),
        at: 0,
        graph: Graph::default(),
        values: HashMap::new(),
    };
    parser.graph()?;
    Ok(parser.graph)
}

/// An error at token `t`: "expected {what}, found {t}", or the lexer's message if `t` is no token.
pub(super) fn expected(t: &Token, what: impl fmt::Display) -> ParseError {
    match &t.kind {
        Kind::Error(message) => ParseError::at(t.pos, message.clone()),
        _ => ParseError::at(t.pos, format!("expected {what}, found {}", t.describe())),
    }
}

struct Parser<'s> {
    tokens: Vec<Token<'s>>,
    at: usize,
    graph: Graph,
    /// Value names (without `%`) and where they were defined.
    values: HashMap<&'s str, (NodeId, Pos)>,
}

impl<'s> Parser<'s> {
    fn peek(&self) -> &Token<'s> {
        &self.tokens[self.at]
    }

    /// The current token; the last one (end of input or a lexer error) is never passed.
    fn next(&mut self) -> Token<'s> {
        let t = self.tokens[self.at].clone();
        self.at = (self.at + 1).min(self.tokens.len() - 1);
        t
    }

    fn unexpected(&self, what: impl fmt::Display) -> ParseError {
        expected(self.peek(), what)
    }

    fn eat(&mut self, p: &str) -> bool {
        let found = self.peek().is_punct(p);
        if found {
            self.next();
        }
        found
    }

    fn expect(&mut self, p: &str, context: impl fmt::Display) -> Result<(), ParseError> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(self.unexpected(format_args!("`{p}` {context}")))
        }
    }

    fn ident(&mut self, what: &str) -> Result<Token<'s>, ParseError> {
        if self.peek().kind == Kind::Ident {
            Ok(self.next())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn graph(&mut self) -> Result<(), ParseError> {
        if !self.peek().is_ident("graph") {
            return Err(self.unexpected("`graph` at the start of the input"));
        }
        self.next();
        let name = self.ident("the graph's name")?;
        self.graph.set_name(name.text);
        self.expect("{", "after the graph's name")?;
        loop {
            let t = self.peek();
            if t.kind == Kind::Value {
                self.node()?;
            } else if t.is_ident("output") {
                self.output()?;
            } else if t.is_ident("update") {
                self.update()?;
            } else if self.eat("}") {
                break;
            } else {
                return Err(self.unexpected("a node `%name = ...`, `output`, `update` or `}`"));
            }
        }
        if self.peek().kind != Kind::Eof {
            return Err(self.unexpected("the end of the input after the graph's closing `}`"));
        }
        Ok(())
    }

    /// `%name = op args : type [loc(...)]`.
    fn node(&mut self) -> Result<(), ParseError> {
        let def = self.next();
        let key = &def.text[1..];
        let name = if key.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else if is_identifier(key) {
            Some(key.to_string())
        } else {
            let message = format!(
                "`{}` is not a value name: expected digits or an identifier",
                def.text
            );
            return Err(ParseError::at(def.pos, message));
        };
        if let Some((_, prev)) = self.values.get(key) {
            let message = format!("`{}` is already defined on line {}", def.text, prev.line);
            return Err(ParseError::at(def.pos, message));
        }
        self.expect("=", format_args!("after `{}`", def.text))?;
        let op = self.ident("an op name")?;
        if !MNEMONICS.contains(&op.text) {
            return Err(unknown_op(&op));
        }
        let op_pos = op.pos;
        let args = self.args(op)?;
        self.expect(":", "before the result type")?;
        let ty_token = self.peek().clone();
        let ty = self.ty()?;
        let origin = self.location()?;
        let (op, operands) = build(args, &ty, ty_token.pos)?;
        let id = self
            .graph
            .add(op, &operands, origin)
            .map_err(|e| ParseError::at(op_pos, e.to_string()))?;
        let inferred = &self.graph.node(id).ty;
        if *inferred != ty {
            let message = format!("declared type {ty} does not match the inferred {inferred}");
            return Err(ParseError::at(ty_token.pos, message));
        }
        self.graph
            .set_node_name(id, name)
            .map_err(|e| ParseError::at(def.pos, e.to_string()))?;
        self.values.insert(key, (id, def.pos));
        Ok(())
    }

    /// Operands, literals and attributes, separated by commas, up to the `:` of the type.
    fn args(&mut self, op: Token<'s>) -> Result<Args<'s>, ParseError> {
        let mut args = Args {
            op,
            operands: Vec::new(),
            literals: Vec::new(),
            attributes: Vec::new(),
        };
        if self.peek().is_punct(":") {
            return Ok(args);
        }
        loop {
            let t = self.peek().clone();
            if t.kind == Kind::Value {
                args.operands.push(self.operand()?);
            } else if t.kind == Kind::Ident
                && self
                    .tokens
                    .get(self.at + 1)
                    .is_some_and(|n| n.is_punct("="))
            {
                if args.attributes.iter().any(|(n, _)| n.text == t.text) {
                    return Err(ParseError::at(
                        t.pos,
                        format!("attribute `{}` is given twice", t.text),
                    ));
                }
                self.next();
                self.next();
                let value = self.literal("an attribute value")?;
                args.attributes.push((t, value));
            } else {
                args.literals.push(
                    self.literal("an operand `%name`, an attribute `name=value` or a literal")?,
                );
            }
            if !self.eat(",") {
                return Ok(args);
            }
        }
    }

    /// A scalar, a string or a list `[a, b, ...]` of scalars.
    fn literal(&mut self, what: &str) -> Result<Literal<'s>, ParseError> {
        if self.peek().is_punct("[") {
            let (pos, items) = self.list()?;
            return Ok(Literal::List(pos, items));
        }
        match self.peek().kind {
            Kind::Number | Kind::Ident | Kind::Str(_) => Ok(Literal::Scalar(self.next())),
            _ => Err(self.unexpected(what)),
        }
    }

    fn list(&mut self) -> Result<(Pos, Vec<Token<'s>>), ParseError> {
        let pos = self.peek().pos;
        self.expect("[", "to open a list")?;
        let mut items = Vec::new();
        if self.eat("]") {
            return Ok((pos, items));
        }
        loop {
            match self.peek().kind {
                Kind::Number | Kind::Ident => items.push(self.next()),
                _ => return Err(self.unexpected("a number")),
            }
            if self.eat("]") {
                return Ok((pos, items));
            }
            self.expect(",", "or `]` after a list element")?;
        }
    }

    /// A use of a value: `%name`.
    fn operand(&mut self) -> Result<NodeId, ParseError> {
        let t = self.peek().clone();
        if t.kind != Kind::Value {
            return Err(self.unexpected("a value `%name`"));
        }
        self.next();
        match self.values.get(&t.text[1..]) {
            Some(&(id, _)) => Ok(id),
            None => Err(ParseError::at(
                t.pos,
                format!("undefined value `{}`", t.text),
            )),
        }
    }

    /// `dtype[d0,d1,...]`.
    fn ty(&mut self) -> Result<Type, ParseError> {
        let t = self.ident("the result type, such as `f32[4,3]`")?;
        let Some(dtype) = DType::from_name(t.text) else {
            let message = format!(
                "unknown element type `{}`; expected f32, f64, i32 or bool",
                t.text
            );
            return Err(ParseError::at(t.pos, message));
        };
        let (_, items) = self.list()?;
        let shape = items
            .iter()
            .map(|d| int(d, "an extent"))
            .collect::<Result<Shape, _>>()?;
        let ty = Type { dtype, shape };
        if ty
            .shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .is_none()
        {
            return Err(ParseError::at(
                t.pos,
                format!("the type {ty} has too many elements to count"),
            ));
        }
        Ok(ty)
    }

    /// An optional `loc("file":line:column)`.
    fn location(&mut self) -> Result<Option<Origin>, ParseError> {
        if !self.peek().is_ident("loc") {
            return Ok(None);
        }
        self.next();
        self.expect("(", "after `loc`")?;
        let Kind::Str(file) = self.peek().kind.clone() else {
            return Err(self.unexpected("the file name as a quoted string"));
        };
        self.next();
        self.expect(":", "after the file name")?;
        let line = int(&self.next(), "a line number")?;
        self.expect(":", "after the line number")?;
        let column = int(&self.next(), "a column number")?;
        self.expect(")", "to close `loc(`")?;
        Ok(Some(Origin {
            file: file.into(),
            line,
            column,
        }))
    }

    /// `output name = %value`.
    fn output(&mut self) -> Result<(), ParseError> {
        self.next();
        let name = self.ident("the output's name")?;
        self.expect("=", "after the output's name")?;
        let id = self.operand()?;
        self.graph
            .set_output(name.text, id)
            .map_err(|e| ParseError::at(name.pos, e.to_string()))
    }

    /// `update state <- %value`.
    fn update(&mut self) -> Result<(), ParseError> {
        self.next();
        let name = self.ident("the name of the param or state updated")?;
        self.expect("<-", "after the updated state's name")?;
        let id = self.operand()?;
        self.graph
            .set_update(name.text, id)
            .map_err(|e| ParseError::at(name.pos, e.to_string()))
    }
}
