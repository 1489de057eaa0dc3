//! The npy header: the magic string, the format version, and the Python dict literal that
//! describes the array (`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`).

use super::NpyError;
use npyz::TypeStr;
use std::io::{self, Read};
use std::path::Path;

/// How deeply the header's literal may nest (a structured dtype nests a few levels; numpy never
/// writes more).
const MAX_DEPTH: usize = 16;

/// What an npy header says about the array that follows it.
#[derive(Debug)]
pub(super) struct Header {
    /// The dtype as the header spells it (`structured dtype` for a list of fields).
    pub descr: String,
    /// The dtype, when it is a plain type string npyz understands.
    pub type_str: Option<TypeStr>,
    /// True when the elements are stored column-major.
    pub fortran_order: bool,
    /// The extents; an extent beyond `u64` saturates.
    pub shape: Vec<u64>,
    /// Bytes before the data: magic string, version, length field and header text.
    pub len: u64,
}

/// Why a header could not be read, before the path is known.
#[derive(Debug)]
pub(super) enum HeaderError {
    /// The operating system failed to read.
    Io(io::Error),
    /// Not an npy header, or a malformed one.
    Invalid(String),
    /// The header is longer than the file.
    Truncated { expected: u64, found: u64 },
}

impl HeaderError {
    /// The error, naming the file it arose in.
    pub fn at(self, path: &Path) -> NpyError {
        let path = path.to_path_buf();
        match self {
            HeaderError::Io(source) => NpyError::Read { path, source },
            HeaderError::Invalid(reason) => NpyError::Invalid { path, reason },
            HeaderError::Truncated { expected, found } => NpyError::Truncated {
                path,
                expected,
                found,
            },
        }
    }
}

impl Header {
    /// Reads the header from the start of a file of `file_len` bytes, leaving `r` at the first
    /// byte of data. Nothing longer than the file is allocated.
    pub fn read(r: &mut impl Read, file_len: u64) -> Result<Header, HeaderError> {
        let mut prefix = [0u8; 8];
        let no_magic = || HeaderError::Invalid("it does not start with \\x93NUMPY".into());
        r.read_exact(&mut prefix).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => no_magic(),
            _ => HeaderError::Io(e),
        })?;
        if &prefix[..6] != b"\x93NUMPY" {
            return Err(no_magic());
        }
        let field_len = match (prefix[6], prefix[7]) {
            (1, 0) => 2,
            (2 | 3, 0) => 4,
            (major, minor) => {
                return Err(HeaderError::Invalid(format!(
                    "unknown format version {major}.{minor}"
                )));
            }
        };
        let mut len_bytes = [0u8; 4];
        r.read_exact(&mut len_bytes[..field_len])
            .map_err(truncated(8 + field_len as u64, file_len))?;
        let text_len = u64::from(u32::from_le_bytes(len_bytes));
        let len = 8 + field_len as u64 + text_len;
        if len > file_len {
            return Err(HeaderError::Truncated {
                expected: len,
                found: file_len,
            });
        }
        let mut text = vec![0u8; text_len as usize];
        r.read_exact(&mut text).map_err(truncated(len, file_len))?;
        let mut header = parse_dict(&text).map_err(HeaderError::Invalid)?;
        header.len = len;
        Ok(header)
    }
}

/// Maps an unexpected end of file to [`HeaderError::Truncated`] (the file shrank while read).
fn truncated(expected: u64, found: u64) -> impl Fn(io::Error) -> HeaderError {
    move |e| match e.kind() {
        io::ErrorKind::UnexpectedEof => HeaderError::Truncated { expected, found },
        _ => HeaderError::Io(e),
    }
}

/// A Python literal, as far as npy headers use them.
#[derive(Debug)]
enum Lit {
    Str(String),
    /// A non-negative integer, saturated at `u64::MAX`.
    Int(u64),
    Bool(bool),
    Seq(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

/// The header's fields from its dict literal (`len` left 0).
fn parse_dict(text: &[u8]) -> Result<Header, String> {
    let mut p = Parser { s: text, pos: 0 };
    let dict = p.value(0)?;
    p.skip_ws();
    if p.pos != text.len() {
        return Err(format!(
            "unexpected text after the header's dict at byte {}",
            p.pos
        ));
    }
    let Lit::Dict(entries) = dict else {
        return Err("the header is not a dict".into());
    };
    let field = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| matches!(k, Lit::Str(s) if s == key))
            .map(|(_, v)| v)
            .ok_or_else(|| format!("the header has no `{key}`"))
    };
    let (descr, type_str) = match field("descr")? {
        Lit::Str(s) => (s.clone(), s.parse().ok()),
        Lit::Seq(_) => ("structured dtype".to_string(), None),
        _ => return Err("the header's `descr` is not a string or a list".into()),
    };
    let Lit::Bool(fortran_order) = *field("fortran_order")? else {
        return Err("the header's `fortran_order` is not True or False".into());
    };
    let not_shape = || "the header's `shape` is not a tuple of non-negative integers".to_string();
    let Lit::Seq(extents) = field("shape")? else {
        return Err(not_shape());
    };
    let shape = extents
        .iter()
        .map(|e| match e {
            Lit::Int(n) => Ok(*n),
            _ => Err(not_shape()),
        })
        .collect::<Result<_, _>>()?;
    Ok(Header {
        descr,
        type_str,
        fortran_order,
        shape,
        len: 0,
    })
}

/// A recursive-descent parser of the Python literals npy headers hold.
struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// Skips whitespace, then consumes `c` if it is next.
    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        let found = self.peek() == Some(c);
        self.pos += usize::from(found);
        found
    }

    fn value(&mut self, depth: usize) -> Result<Lit, String> {
        if depth > MAX_DEPTH {
            return Err("the header nests too deeply".into());
        }
        self.skip_ws();
        let at = self.pos;
        match self.peek() {
            Some(b'{') => self.items(b'}', depth, true),
            Some(b'(') => self.items(b')', depth, false),
            Some(b'[') => self.items(b']', depth, false),
            Some(q @ (b'\'' | b'"')) => self.string(q),
            Some(c) if c.is_ascii_digit() => Ok(self.integer()),
            Some(c) if c.is_ascii_alphabetic() => {
                let word = self.take_while(|c| c.is_ascii_alphanumeric());
                match word {
                    b"True" => Ok(Lit::Bool(true)),
                    b"False" => Ok(Lit::Bool(false)),
                    _ => Err(format!("unexpected word in the header at byte {at}")),
                }
            }
            Some(_) => Err(format!("unexpected character in the header at byte {at}")),
            None => Err("the header ends in the middle of a value".into()),
        }
    }

    /// A `{..}`, `(..)` or `[..]` whose opening bracket is next; a dict's items are
    /// `key: value` pairs.
    fn items(&mut self, close: u8, depth: usize, dict: bool) -> Result<Lit, String> {
        self.pos += 1;
        let (mut seq, mut pairs) = (Vec::new(), Vec::new());
        loop {
            if self.eat(close) {
                break;
            }
            let item = self.value(depth + 1)?;
            if dict {
                if !self.eat(b':') {
                    return Err(format!("expected `:` in the header at byte {}", self.pos));
                }
                pairs.push((item, self.value(depth + 1)?));
            } else {
                seq.push(item);
            }
            if self.eat(close) {
                break;
            }
            if !self.eat(b',') {
                return Err(format!("expected `,` in the header at byte {}", self.pos));
            }
        }
        Ok(if dict {
            Lit::Dict(pairs)
        } else {
            Lit::Seq(seq)
        })
    }

    /// A quoted string whose opening quote `q` is next; a backslash escapes the next byte.
    fn string(&mut self, q: u8) -> Result<Lit, String> {
        self.pos += 1;
        let mut bytes = Vec::new();
        loop {
            match self.peek() {
                None => return Err("the header ends inside a string".into()),
                Some(c) if c == q => break,
                Some(b'\\') => {
                    self.pos += 1;
                    bytes.extend(self.peek());
                }
                Some(c) => bytes.push(c),
            }
            self.pos += 1;
        }
        self.pos += 1;
        Ok(Lit::Str(String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// A decimal integer (Python 2's `L` suffix allowed), saturating at `u64::MAX`.
    fn integer(&mut self) -> Lit {
        let digits = self.take_while(|c| c.is_ascii_digit());
        let n = digits.iter().fold(0u64, |n, &d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        });
        self.pos += usize::from(self.peek() == Some(b'L'));
        Lit::Int(n)
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &[u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }
}
