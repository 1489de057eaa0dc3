//! From what the parser read to ops: attributes checked against each op's list, literals read
//! as the declared element type, result types and shapes taken from the declared type.

use super::lex::{Kind, Pos, Token};
use super::parse::{ParseError, expected};
use super::{MAX_SPLAT_ELEMENTS, attribute_names};
use crate::array::{Array, Data};
use crate::graph::NodeId;
use crate::op::{BinaryOp, CmpOp, InputKind, MNEMONICS, Op, ReduceOp, UnaryOp};
use crate::types::{DType, Shape, Type};

/// Most elements a constant may hold: 2^31.
const MAX_CONSTANT_ELEMENTS: usize = 1 << 31;

/// A literal as written: one scalar or string token, or a bracketed list of scalars.
#[derive(Clone, Debug)]
pub(super) enum Literal<'s> {
    /// A number, word or string.
    Scalar(Token<'s>),
    /// `[a, b, ...]`: where it opens and its elements.
    List(Pos, Vec<Token<'s>>),
}

impl Literal<'_> {
    fn pos(&self) -> Pos {
        match self {
            Literal::Scalar(t) => t.pos,
            Literal::List(pos, _) => *pos,
        }
    }

    fn describe(&self) -> String {
        match self {
            Literal::Scalar(t) => t.describe(),
            Literal::List(..) => "a list".into(),
        }
    }
}

/// What follows an op's mnemonic: operands, literals (an input's name, a constant's value) and
/// `name=value` attributes, each kind in order.
pub(super) struct Args<'s> {
    /// The op's mnemonic.
    pub op: Token<'s>,
    /// The operands, in order.
    pub operands: Vec<NodeId>,
    /// Literals, in order.
    pub literals: Vec<Literal<'s>>,
    /// `name=value` pairs, in order.
    pub attributes: Vec<(Token<'s>, Literal<'s>)>,
}

impl<'s> Args<'s> {
    /// The one literal the op takes, described by `what` if it is missing.
    fn literal(&mut self, what: &str) -> Result<Literal<'s>, ParseError> {
        if self.literals.len() > 1 {
            let extra = &self.literals[1];
            let message = format!(
                "`{}` takes one literal, found a second: {}",
                self.op.text,
                extra.describe()
            );
            return Err(ParseError::at(extra.pos(), message));
        }
        self.literals
            .pop()
            .ok_or_else(|| ParseError::at(self.op.pos, format!("`{}` needs {what}", self.op.text)))
    }

    /// The attribute `name`, which the op must take.
    fn attribute(&mut self, name: &str) -> Result<Literal<'s>, ParseError> {
        match self.attributes.iter().position(|(n, _)| n.text == name) {
            Some(i) => Ok(self.attributes.swap_remove(i).1),
            None => {
                let message = format!("`{}` needs the attribute `{name}`", self.op.text);
                Err(ParseError::at(self.op.pos, message))
            }
        }
    }

    fn int<T: Int>(&mut self, name: &str) -> Result<T, ParseError> {
        match self.attribute(name)? {
            Literal::Scalar(t) => int(&t, &format!("an integer for `{name}`")),
            Literal::List(pos, _) => Err(ParseError::at(
                pos,
                format!("expected an integer for `{name}`, found a list"),
            )),
        }
    }

    fn list(&mut self, name: &str) -> Result<Shape, ParseError> {
        match self.attribute(name)? {
            Literal::List(_, items) => items
                .iter()
                .map(|t| int(t, "a non-negative integer"))
                .collect(),
            Literal::Scalar(t) => Err(expected(&t, format_args!("a list `[...]` for `{name}`"))),
        }
    }

    fn f64(&mut self, name: &str) -> Result<f64, ParseError> {
        match self.attribute(name)? {
            Literal::Scalar(t) => float(&t, &format!("a number for `{name}`"), |v: &f64| {
                v.is_infinite()
            }),
            Literal::List(pos, _) => Err(ParseError::at(
                pos,
                format!("expected a number for `{name}`, found a list"),
            )),
        }
    }

    /// Refuses attributes the op does not take, before any is read.
    fn check_attribute_names(&self) -> Result<(), ParseError> {
        let known = attribute_names(self.op.text);
        let Some((name, _)) = self
            .attributes
            .iter()
            .find(|(n, _)| !known.contains(&n.text))
        else {
            return Ok(());
        };
        let message = if known.is_empty() {
            format!(
                "`{}` takes no attributes, found `{}`",
                self.op.text, name.text
            )
        } else {
            let list: Vec<_> = known.iter().map(|k| format!("`{k}`")).collect();
            format!(
                "unknown attribute `{}` for `{}`; expected {}",
                name.text,
                self.op.text,
                list.join(", ")
            )
        };
        Err(ParseError::at(name.pos, message))
    }
}

pub(super) fn unknown_op(t: &Token) -> ParseError {
    let message = format!(
        "unknown op `{}`; expected one of {}",
        t.text,
        MNEMONICS.join(", ")
    );
    ParseError::at(t.pos, message)
}

/// The op a node's mnemonic, arguments and declared type spell, and its operands. The result
/// type, shape or dtype of ops that carry one is taken from the declared type `ty`.
pub(super) fn build(
    mut args: Args,
    ty: &Type,
    ty_pos: Pos,
) -> Result<(Op, Vec<NodeId>), ParseError> {
    args.check_attribute_names()?;
    let op = match args.op.text {
        "input" => input(&mut args, InputKind::Data, ty)?,
        "param" => input(&mut args, InputKind::Param, ty)?,
        "state" => input(&mut args, InputKind::State, ty)?,
        "constant" => {
            let value = args.literal("a value, such as `constant 1.0` or `constant [1, 2]`")?;
            Op::Constant(constant(&value, ty, ty_pos)?)
        }
        "iota" => Op::Iota {
            axis: args.int("axis")?,
            ty: ty.clone(),
        },
        "random" => Op::Random {
            stream: args.int("stream")?,
            ty: ty.clone(),
        },
        "select" => Op::Select,
        "stop_gradient" => Op::StopGradient,
        "cast" => Op::Cast(ty.dtype),
        "reduce_sum" => Op::Reduce {
            op: ReduceOp::Sum,
            axes: args.list("axes")?,
        },
        "reduce_max" => Op::Reduce {
            op: ReduceOp::Max,
            axes: args.list("axes")?,
        },
        "reshape" => Op::Reshape(ty.shape.clone()),
        "permute" => Op::Permute(args.list("perm")?),
        "broadcast" => Op::Broadcast(ty.shape.clone()),
        "slice" => Op::Slice {
            start: args.list("start")?,
            end: args.list("end")?,
            step: args.list("step")?,
        },
        "pad" => Op::Pad {
            low: args.list("low")?,
            high: args.list("high")?,
            interior: args.list("interior")?,
            value: args.f64("value")?,
        },
        "windows" => Op::Windows {
            window: args.list("window")?,
            stride: args.list("stride")?,
            dilation: args.list("dilation")?,
        },
        "concat" => Op::Concat {
            axis: args.int("axis")?,
        },
        "dot" => Op::Dot,
        "all_reduce" => Op::AllReduce,
        "gather" => Op::Gather {
            axis: args.int("axis")?,
        },
        "scatter_add" => {
            let axis = args.int("axis")?;
            let Some(&size) = ty.shape.get(axis) else {
                let message = format!(
                    "scatter_add along axis {axis} needs a result of rank above {axis}, found {ty}"
                );
                return Err(ParseError::at(ty_pos, message));
            };
            Op::ScatterAdd { axis, size }
        }
        m => elementwise(m).ok_or_else(|| unknown_op(&args.op))?,
    };
    if let Some(extra) = args.literals.first() {
        let message = format!(
            "`{}` takes no literal, found {}",
            args.op.text,
            extra.describe()
        );
        return Err(ParseError::at(extra.pos(), message));
    }
    Ok((op, args.operands))
}

/// An input of `kind` and type `ty`, named by the one string literal in `args`.
fn input(args: &mut Args, kind: InputKind, ty: &Type) -> Result<Op, ParseError> {
    match args.literal("the input's name as a string, such as `input \"x\"`")? {
        Literal::Scalar(Token {
            kind: Kind::Str(name),
            ..
        }) => Ok(Op::Input {
            kind,
            name,
            ty: ty.clone(),
        }),
        other => {
            let message = format!(
                "expected the input's name as a quoted string, found {}",
                other.describe()
            );
            Err(ParseError::at(other.pos(), message))
        }
    }
}

/// The elementwise op spelled `m`, if any.
fn elementwise(m: &str) -> Option<Op> {
    let unary = UnaryOp::ALL
        .into_iter()
        .find(|u| u.mnemonic() == m)
        .map(Op::Unary);
    let binary = || {
        BinaryOp::ALL
            .into_iter()
            .find(|b| b.mnemonic() == m)
            .map(Op::Binary)
    };
    let compare = || {
        CmpOp::ALL
            .into_iter()
            .find(|c| c.mnemonic() == m)
            .map(Op::Compare)
    };
    unary.or_else(binary).or_else(compare)
}

/// The array a constant's literal spells for its declared type: a scalar fills the shape, a
/// list gives every element row-major.
fn constant(value: &Literal, ty: &Type, ty_pos: Pos) -> Result<Array, ParseError> {
    let n = ty.numel();
    if n > MAX_CONSTANT_ELEMENTS {
        let message =
            format!("a constant of type {ty} has {n} elements, more than the limit of 2^31");
        return Err(ParseError::at(ty_pos, message));
    }
    let (tokens, splat) = match value {
        Literal::Scalar(_) if n > MAX_SPLAT_ELEMENTS => {
            let message = format!(
                "a constant of type {ty} written as one literal fills {n} elements, more than \
                 the limit of 2^24 (broadcast a scalar constant instead)"
            );
            return Err(ParseError::at(ty_pos, message));
        }
        Literal::Scalar(t) => (std::slice::from_ref(t), true),
        Literal::List(pos, items) if items.len() != n => {
            let message = format!("the list has {} elements but {ty} holds {n}", items.len());
            return Err(ParseError::at(*pos, message));
        }
        Literal::List(_, items) => (items.as_slice(), false),
    };
    let splat = splat.then_some(n);
    let data = match ty.dtype {
        DType::F32 => Data::F32(elements(tokens, splat, |t| {
            float(t, "an f32 literal", |v: &f32| v.is_infinite())
        })?),
        DType::F64 => Data::F64(elements(tokens, splat, |t| {
            float(t, "an f64 literal", |v: &f64| v.is_infinite())
        })?),
        DType::I32 => Data::I32(elements(tokens, splat, |t| int(t, "an i32 literal"))?),
        DType::Bool => Data::Bool(elements(tokens, splat, boolean)?),
    };
    Array::new(&ty.shape, data).map_err(|e| ParseError::at(value.pos(), e.to_string()))
}

/// The elements `tokens` spell, each read by `read`; with `splat`, the one element repeated
/// that many times.
fn elements<T: Clone>(
    tokens: &[Token],
    splat: Option<usize>,
    read: impl Fn(&Token) -> Result<T, ParseError>,
) -> Result<Vec<T>, ParseError> {
    let v = tokens.iter().map(read).collect::<Result<Vec<T>, _>>()?;
    Ok(match splat {
        Some(n) => v.first().map_or_else(Vec::new, |x| vec![x.clone(); n]),
        None => v,
    })
}

/// An integer type the text form spells in decimal.
pub(super) trait Int: TryFrom<i128> {
    const RANGE: (i128, i128);
}

impl Int for usize {
    const RANGE: (i128, i128) = (0, usize::MAX as i128);
}

impl Int for u32 {
    const RANGE: (i128, i128) = (0, u32::MAX as i128);
}

impl Int for i32 {
    const RANGE: (i128, i128) = (i32::MIN as i128, i32::MAX as i128);
}

/// The decimal integer `t` spells, described as `what` in errors.
pub(super) fn int<T: Int>(t: &Token, what: &str) -> Result<T, ParseError> {
    let digits = t.text.strip_prefix('-').unwrap_or(t.text);
    if t.kind != Kind::Number || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(expected(t, what));
    }
    let (lo, hi) = T::RANGE;
    let value = t
        .text
        .parse::<i128>()
        .ok()
        .and_then(|v| T::try_from(v).ok());
    value.ok_or_else(|| {
        ParseError::at(
            t.pos,
            format!(
                "`{}` is out of range: expected {what} from {lo} to {hi}",
                t.text
            ),
        )
    })
}

/// The float `t` spells: `nan`, `inf`, `-inf` or a decimal with an optional exponent, read
/// directly as `T` so that the printed shortest form reads back to the same bits. A decimal
/// too large for `T` is an error rather than infinity.
fn float<T: std::str::FromStr>(
    t: &Token,
    what: &str,
    infinite: impl Fn(&T) -> bool,
) -> Result<T, ParseError> {
    let text = t.text;
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let decimal = || {
        let (mantissa, exponent) = unsigned.split_once(['e', 'E']).unwrap_or((unsigned, "0"));
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        !whole.is_empty()
            && digits(whole)
            && digits(fraction)
            && !exponent.is_empty()
            && digits(exponent)
    };
    let well_formed = matches!(t.kind, Kind::Number | Kind::Ident)
        && (text == "nan" || unsigned == "inf" || decimal());
    match text.parse::<T>() {
        Ok(v) if well_formed && (unsigned == "inf" || !infinite(&v)) => Ok(v),
        Ok(_) if well_formed => Err(ParseError::at(
            t.pos,
            format!("`{text}` is out of range for {what}; write `inf` for infinity"),
        )),
        _ => Err(expected(t, what)),
    }
}

fn boolean(t: &Token) -> Result<bool, ParseError> {
    match (&t.kind, t.text) {
        (Kind::Ident, "true") => Ok(true),
        (Kind::Ident, "false") => Ok(false),
        _ => Err(expected(t, "a bool literal (`true` or `false`)")),
    }
}
