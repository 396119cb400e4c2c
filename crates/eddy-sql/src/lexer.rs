//! Tokens of ksqlDB's SQL with where they start. Unquoted identifiers and keywords are
//! upper-cased (ksqlDB's rule); identifiers in backquotes or double quotes keep their case.

use std::fmt;

/// A place in the statement text: 1-based line and column, and the byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
    pub offset: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// An unquoted word, upper-cased: a keyword or an identifier.
    Word(String),
    /// A quoted identifier, case kept.
    Quoted(String),
    Str(String),
    Int(i64),
    /// A number with a point or an exponent, as written.
    Decimal(String),
    Comma,
    Semicolon,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Dot,
    Star,
    Plus,
    Minus,
    Slash,
    Percent,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Arrow,
    Concat,
    Colon,
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(w) => write!(f, "{w}"),
            Tok::Quoted(w) => write!(f, "`{w}`"),
            Tok::Str(s) => write!(f, "'{s}'"),
            Tok::Int(i) => write!(f, "{i}"),
            Tok::Decimal(d) => write!(f, "{d}"),
            Tok::Comma => f.write_str("','"),
            Tok::Semicolon => f.write_str("';'"),
            Tok::LParen => f.write_str("'('"),
            Tok::RParen => f.write_str("')'"),
            Tok::LBracket => f.write_str("'['"),
            Tok::RBracket => f.write_str("']'"),
            Tok::Dot => f.write_str("'.'"),
            Tok::Star => f.write_str("'*'"),
            Tok::Plus => f.write_str("'+'"),
            Tok::Minus => f.write_str("'-'"),
            Tok::Slash => f.write_str("'/'"),
            Tok::Percent => f.write_str("'%'"),
            Tok::Eq => f.write_str("'='"),
            Tok::NotEq => f.write_str("'!='"),
            Tok::Lt => f.write_str("'<'"),
            Tok::LtEq => f.write_str("'<='"),
            Tok::Gt => f.write_str("'>'"),
            Tok::GtEq => f.write_str("'>='"),
            Tok::Arrow => f.write_str("'->'"),
            Tok::Concat => f.write_str("'||'"),
            Tok::Colon => f.write_str("':'"),
            Tok::Eof => f.write_str("the end of the statement"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub pos: Pos,
}

/// A lexical error: what is wrong and where.
#[derive(Debug, Clone, PartialEq)]
pub struct LexError {
    pub message: String,
    pub pos: Pos,
}

struct Cursor<'a> {
    text: &'a str,
    offset: usize,
    line: u32,
    column: u32,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.offset..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.text[self.offset..].chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.offset += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
            offset: self.offset,
        }
    }
}

/// Splits `text` into tokens, ending with [`Tok::Eof`].
pub fn tokenize(text: &str) -> Result<Vec<Token>, LexError> {
    let mut c = Cursor {
        text,
        offset: 0,
        line: 1,
        column: 1,
    };
    let mut out = Vec::new();
    loop {
        // Whitespace and comments.
        loop {
            match (c.peek(), c.peek2()) {
                (Some(ch), _) if ch.is_whitespace() => {
                    c.bump();
                }
                (Some('-'), Some('-')) => {
                    while let Some(ch) = c.bump() {
                        if ch == '\n' {
                            break;
                        }
                    }
                }
                (Some('/'), Some('*')) => {
                    let start = c.pos();
                    c.bump();
                    c.bump();
                    loop {
                        match c.bump() {
                            Some('*') if c.peek() == Some('/') => {
                                c.bump();
                                break;
                            }
                            Some(_) => {}
                            None => {
                                return Err(LexError {
                                    message: "a comment opened with /* is never closed".into(),
                                    pos: start,
                                })
                            }
                        }
                    }
                }
                _ => break,
            }
        }
        let pos = c.pos();
        let Some(ch) = c.peek() else {
            out.push(Token { tok: Tok::Eof, pos });
            return Ok(out);
        };
        let tok = match ch {
            'a'..='z' | 'A'..='Z' | '_' => {
                let start = c.offset;
                while c
                    .peek()
                    .is_some_and(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '@')
                {
                    c.bump();
                }
                Tok::Word(text[start..c.offset].to_ascii_uppercase())
            }
            '0'..='9' => number(&mut c, pos)?,
            '.' if c.peek2().is_some_and(|d| d.is_ascii_digit()) => number(&mut c, pos)?,
            '\'' => Tok::Str(quoted(&mut c, '\'', pos, "string")?),
            '`' => Tok::Quoted(quoted(&mut c, '`', pos, "identifier")?),
            '"' => Tok::Quoted(quoted(&mut c, '"', pos, "identifier")?),
            _ => {
                c.bump();
                let two = |c: &mut Cursor<'_>, next: char, yes: Tok, no: Tok| {
                    if c.peek() == Some(next) {
                        c.bump();
                        yes
                    } else {
                        no
                    }
                };
                match ch {
                    ',' => Tok::Comma,
                    ';' => Tok::Semicolon,
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '[' => Tok::LBracket,
                    ']' => Tok::RBracket,
                    '.' => Tok::Dot,
                    '*' => Tok::Star,
                    '+' => Tok::Plus,
                    '-' => two(&mut c, '>', Tok::Arrow, Tok::Minus),
                    '/' => Tok::Slash,
                    '%' => Tok::Percent,
                    '=' => Tok::Eq,
                    ':' => Tok::Colon,
                    '!' if c.peek() == Some('=') => {
                        c.bump();
                        Tok::NotEq
                    }
                    '|' if c.peek() == Some('|') => {
                        c.bump();
                        Tok::Concat
                    }
                    '<' => match c.peek() {
                        Some('=') => {
                            c.bump();
                            Tok::LtEq
                        }
                        Some('>') => {
                            c.bump();
                            Tok::NotEq
                        }
                        _ => Tok::Lt,
                    },
                    '>' => two(&mut c, '=', Tok::GtEq, Tok::Gt),
                    other => {
                        return Err(LexError {
                            message: format!("unexpected character {other:?}"),
                            pos,
                        })
                    }
                }
            }
        };
        out.push(Token { tok, pos });
    }
}

fn number(c: &mut Cursor<'_>, pos: Pos) -> Result<Tok, LexError> {
    let start = c.offset;
    let mut decimal = false;
    while let Some(ch) = c.peek() {
        match ch {
            '0'..='9' => {}
            '.' if !decimal => decimal = true,
            'e' | 'E' => {
                decimal = true;
                c.bump();
                if matches!(c.peek(), Some('+' | '-')) {
                    c.bump();
                }
                continue;
            }
            _ => break,
        }
        c.bump();
    }
    let text = &c.text[start..c.offset];
    if decimal {
        return Ok(Tok::Decimal(text.to_owned()));
    }
    text.parse().map(Tok::Int).map_err(|_| LexError {
        message: format!("the number {text} does not fit in a BIGINT"),
        pos,
    })
}

/// The text between `quote`s, a doubled quote standing for one.
fn quoted(c: &mut Cursor<'_>, quote: char, pos: Pos, what: &str) -> Result<String, LexError> {
    c.bump();
    let mut s = String::new();
    loop {
        match c.bump() {
            Some(ch) if ch == quote => {
                if c.peek() == Some(quote) {
                    c.bump();
                    s.push(quote);
                } else {
                    return Ok(s);
                }
            }
            Some(ch) => s.push(ch),
            None => {
                return Err(LexError {
                    message: format!("a quoted {what} opened here is never closed"),
                    pos,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn words_numbers_strings_and_symbols() {
        assert_eq!(
            toks("select `Mixed`, 'it''s', 1.5e3, 42 <> x->y || z -- note\n;"),
            vec![
                Tok::Word("SELECT".into()),
                Tok::Quoted("Mixed".into()),
                Tok::Comma,
                Tok::Str("it's".into()),
                Tok::Comma,
                Tok::Decimal("1.5e3".into()),
                Tok::Comma,
                Tok::Int(42),
                Tok::NotEq,
                Tok::Word("X".into()),
                Tok::Arrow,
                Tok::Word("Y".into()),
                Tok::Concat,
                Tok::Word("Z".into()),
                Tok::Semicolon,
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn positions_and_errors() {
        let t = tokenize("a\n  bc").unwrap();
        assert_eq!((t[1].pos.line, t[1].pos.column), (2, 3));
        let e = tokenize("select 'oops").unwrap_err();
        assert_eq!((e.pos.line, e.pos.column), (1, 8));
        assert!(e.message.contains("never closed"));
        assert!(tokenize("a # b").unwrap_err().message.contains("'#'"));
        assert!(tokenize("99999999999999999999").is_err());
    }
}
