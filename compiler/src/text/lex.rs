//! The lexer of the text form: the source cut into tokens, each with its line and column.
//!
//! Whitespace and `#` comments (to the end of the line) separate tokens and are dropped.
//! Numbers are kept as text; the parser reads them as the type it expects there.

/// A place in the source: line and column from 1, columns counted in characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// What a token is.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Kind {
    /// A word such as `graph`, `f32`, `axis`, `true`, `inf` or `w.m`: `[A-Za-z_][A-Za-z0-9_.]*`.
    Ident,
    /// A value name such as `%x` or `%12`: `%[A-Za-z0-9_.]+`.
    Value,
    /// A number such as `12`, `-1.5e-3` or `-inf`: a digit or `-`, then word characters.
    Number,
    /// A quoted string, its escapes decoded.
    Str(String),
    /// One of `{ } [ ] ( ) , : = <-`.
    Punct,
    /// The end of the input.
    Eof,
    /// Text that starts no token; the message says why. Always the last token.
    Error(String),
}

/// A token: its kind, its text in the source and where it starts.
#[derive(Clone, Debug)]
pub(super) struct Token<'s> {
    /// What it is.
    pub kind: Kind,
    /// Its source text (strings with their quotes and escapes).
    pub text: &'s str,
    /// Where it starts.
    pub pos: Pos,
}

impl Token<'_> {
    /// True for the punctuation `p`.
    pub fn is_punct(&self, p: &str) -> bool {
        self.kind == Kind::Punct && self.text == p
    }

    /// True for the word `w`.
    pub fn is_ident(&self, w: &str) -> bool {
        self.kind == Kind::Ident && self.text == w
    }

    /// How an error message names the token: its text in backticks, or "the end of the input".
    pub fn describe(&self) -> String {
        match self.kind {
            Kind::Eof => "the end of the input".into(),
            _ => format!("`{}`", self.text),
        }
    }
}

/// The tokens of `src`, ending with one [`Kind::Eof`] or [`Kind::Error`] token.
pub(super) fn lex(src: &str) -> Vec<Token<'_>> {
    let mut lexer = Lexer {
        src,
        at: 0,
        line: 1,
        column: 1,
    };
    let mut tokens = Vec::new();
    loop {
        let token = lexer.token();
        let last = matches!(token.kind, Kind::Eof | Kind::Error(_));
        tokens.push(token);
        if last {
            return tokens;
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

struct Lexer<'s> {
    src: &'s str,
    at: usize,
    line: usize,
    column: usize,
}

impl<'s> Lexer<'s> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.at..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn eat_while(&mut self, f: impl Fn(char) -> bool) {
        while self.peek().is_some_and(&f) {
            self.bump();
        }
    }

    fn skip_trivia(&mut self) {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => self.eat_while(char::is_whitespace),
                Some('#') => self.eat_while(|c| c != '\n'),
                _ => return,
            }
        }
    }

    fn token(&mut self) -> Token<'s> {
        self.skip_trivia();
        let (start, mut pos) = (self.at, self.pos());
        let kind = match self.bump() {
            None => Kind::Eof,
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                self.eat_while(is_word_char);
                Kind::Ident
            }
            Some(c)
                if c.is_ascii_digit() || (c == '-' && self.peek().is_some_and(is_word_char)) =>
            {
                self.number();
                Kind::Number
            }
            Some('%') if self.peek().is_some_and(is_word_char) => {
                self.eat_while(is_word_char);
                Kind::Value
            }
            Some('%') => Kind::Error("expected a value name after `%`".into()),
            Some('"') => match self.string() {
                Ok(s) => Kind::Str(s),
                Err((at, message)) => {
                    pos = at;
                    Kind::Error(message)
                }
            },
            Some('<') if self.peek() == Some('-') => {
                self.bump();
                Kind::Punct
            }
            Some(c) if "{}[](),:=".contains(c) => Kind::Punct,
            Some(c) => Kind::Error(format!("unexpected character `{}`", c.escape_debug())),
        };
        Token {
            kind,
            text: &self.src[start..self.at],
            pos,
        }
    }

    /// The rest of a number: word characters, and a sign right after an exponent's `e`.
    fn number(&mut self) {
        let mut prev = ' ';
        while let Some(c) = self.peek() {
            let sign = (c == '-' || c == '+') && (prev == 'e' || prev == 'E');
            if !is_word_char(c) && !sign {
                return;
            }
            prev = c;
            self.bump();
        }
    }

    /// The rest of a string after its opening quote, escapes decoded: `\"`, `\\`, `\n`, `\t`,
    /// `\r` and `\u{hex}`. A string ends on its line.
    fn string(&mut self) -> Result<String, (Pos, String)> {
        let open = Pos {
            line: self.line,
            column: self.column - 1,
        };
        let mut s = String::new();
        loop {
            let at = self.pos();
            match self.bump() {
                None | Some('\n') => {
                    return Err((open, "unterminated string: expected a closing `\"`".into()));
                }
                Some('"') => return Ok(s),
                Some('\\') => s.push(self.escape().ok_or_else(|| {
                    let msg = "unknown escape in a string; expected `\\\"`, `\\\\`, `\\n`, `\\t`, \
                               `\\r` or `\\u{...}`";
                    (at, msg.to_string())
                })?),
                Some(c) => s.push(c),
            }
        }
    }

    fn escape(&mut self) -> Option<char> {
        match self.bump()? {
            c @ ('"' | '\\') => Some(c),
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            'u' if self.peek() == Some('{') => {
                self.bump();
                let start = self.at;
                self.eat_while(|c| c.is_ascii_hexdigit());
                let hex = &self.src[start..self.at];
                let c = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)?;
                (self.bump()? == '}').then_some(c)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(Kind, &str)> {
        lex(src).into_iter().map(|t| (t.kind, t.text)).collect()
    }

    #[test]
    fn numbers_keep_exponent_signs_and_values_their_dots() {
        let toks = kinds("%h.1 = constant -1.5e-3 # comment\n <- -inf");
        let texts: Vec<_> = toks.iter().map(|t| t.1).collect();
        assert_eq!(
            texts,
            ["%h.1", "=", "constant", "-1.5e-3", "<-", "-inf", ""]
        );
        assert_eq!(toks[3].0, Kind::Number);
    }

    #[test]
    fn strings_decode_escapes_and_report_where_they_fail() {
        let toks = lex(r#""a\"b\\c\u{e9}""#);
        assert_eq!(toks[0].kind, Kind::Str("a\"b\\c\u{e9}".into()));
        let toks = lex("x \"open\n");
        assert_eq!(toks[1].pos, Pos { line: 1, column: 3 });
        assert!(matches!(&toks[1].kind, Kind::Error(m) if m.starts_with("unterminated")));
        let toks = lex("  \"a\\q\"");
        assert_eq!(toks[0].pos, Pos { line: 1, column: 5 });
    }

    #[test]
    fn columns_count_characters() {
        let toks = lex("\"é\" x\n  y");
        assert_eq!(toks[1].pos, Pos { line: 1, column: 5 });
        assert_eq!(toks[2].pos, Pos { line: 2, column: 3 });
    }
}
