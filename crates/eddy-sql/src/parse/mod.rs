//! The parser: recursive descent over [`crate::lexer`] tokens, expressions by precedence
//! climbing. Keywords are not reserved (ksqlDB's are mostly not): a word is a keyword where
//! the grammar expects one. Every error names what was expected, what was found, and
//! where.

use std::fmt;

use crate::ast::*;
use crate::lexer::{tokenize, Pos, Tok, Token};

/// A statement that does not parse: the problem and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub message: String,
    pub pos: Pos,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "syntax error at {}: {}", self.pos, self.message)
    }
}

impl std::error::Error for ParseError {}

type Result<T> = std::result::Result<T, ParseError>;

/// Every statement of `text` (separated by semicolons; the last one's is optional).
pub fn parse(text: &str) -> Result<Vec<Statement>> {
    let mut p = Parser::new(text)?;
    let mut out = Vec::new();
    loop {
        while p.eat(&Tok::Semicolon) {}
        if p.at(&Tok::Eof) {
            return Ok(out);
        }
        out.push(p.statement()?);
        if !p.eat(&Tok::Semicolon) && !p.at(&Tok::Eof) {
            return Err(p.unexpected("';' or the end of the statement"));
        }
    }
}

/// Every statement of `text` with its own text (trimmed, without the semicolon), as the
/// REST API echoes it and the command topic keeps it.
pub fn parse_with_text(text: &str) -> Result<Vec<(Statement, String)>> {
    let mut p = Parser::new(text)?;
    let mut out = Vec::new();
    loop {
        while p.eat(&Tok::Semicolon) {}
        if p.at(&Tok::Eof) {
            return Ok(out);
        }
        let start = p.tokens[p.at].pos.offset;
        let statement = p.statement()?;
        let end = p.tokens[p.at].pos.offset;
        let own = text.get(start..end).unwrap_or_default().trim().to_owned();
        out.push((statement, own));
        if !p.eat(&Tok::Semicolon) && !p.at(&Tok::Eof) {
            return Err(p.unexpected("';' or the end of the statement"));
        }
    }
}

/// Exactly one statement (a trailing semicolon allowed).
pub fn parse_statement(text: &str) -> Result<Statement> {
    let mut p = Parser::new(text)?;
    let s = p.statement()?;
    p.eat(&Tok::Semicolon);
    if !p.at(&Tok::Eof) {
        return Err(p.unexpected("the end of the statement (one statement at a time)"));
    }
    Ok(s)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// Nesting of expressions being parsed, bounded so that no input exhausts the stack.
    depth: usize,
}

/// Deepest nesting of expressions accepted.
const DEPTH_MAX: usize = 64;

impl Parser {
    fn new(text: &str) -> Result<Parser> {
        let tokens = tokenize(text).map_err(|e| ParseError {
            message: e.message,
            pos: e.pos,
        })?;
        Ok(Parser {
            tokens,
            at: 0,
            depth: 0,
        })
    }

    fn peek(&self) -> &Tok {
        &self.tokens[self.at].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        let i = (self.at + n).min(self.tokens.len() - 1);
        &self.tokens[i].tok
    }

    fn pos(&self) -> Pos {
        self.tokens[self.at].pos
    }

    fn advance(&mut self) -> Token {
        let t = self.tokens[self.at].clone();
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
        }
        t
    }

    fn at(&self, tok: &Tok) -> bool {
        self.peek() == tok
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.at(tok) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Word(w) if w == word)
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.is_word(word) {
            self.advance();
            true
        } else {
            false
        }
    }

    /// Whether the statement ends after the next token (or an EXTENDED after it).
    fn ends_after_one(&self) -> bool {
        match self.peek_at(1) {
            Tok::Semicolon | Tok::Eof => true,
            Tok::Word(w) => w == "EXTENDED",
            _ => false,
        }
    }

    fn unexpected(&self, expected: &str) -> ParseError {
        ParseError {
            message: format!("expected {expected}, found {}", self.peek()),
            pos: self.pos(),
        }
    }

    fn expect(&mut self, tok: &Tok) -> Result<()> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.unexpected(&tok.to_string()))
        }
    }

    fn expect_word(&mut self, word: &str) -> Result<()> {
        if self.eat_word(word) {
            Ok(())
        } else {
            Err(self.unexpected(word))
        }
    }

    fn ident(&mut self, what: &str) -> Result<Ident> {
        let pos = self.pos();
        match self.peek().clone() {
            Tok::Word(name) | Tok::Quoted(name) => {
                self.advance();
                Ok(Ident { name, pos })
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn string(&mut self, what: &str) -> Result<String> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.advance();
                Ok(s)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    // -- statements ----------------------------------------------------------------------

    fn statement(&mut self) -> Result<Statement> {
        let pos = self.pos();
        let Tok::Word(word) = self.peek().clone() else {
            return Err(self.unexpected("a statement (CREATE, SELECT, INSERT, SHOW, ...)"));
        };
        match word.as_str() {
            "CREATE" => self.create(),
            "INSERT" => self.insert(),
            "DROP" => self.drop(),
            "SHOW" | "LIST" => self.show(),
            "DESCRIBE" => self.describe(),
            "EXPLAIN" => {
                self.advance();
                if matches!(self.peek(), Tok::Word(_) | Tok::Quoted(_))
                    && matches!(self.peek_at(1), Tok::Semicolon | Tok::Eof)
                {
                    return Ok(Statement::Explain(ExplainTarget::QueryId(
                        self.ident("a query id")?,
                    )));
                }
                Ok(Statement::Explain(ExplainTarget::Statement(Box::new(
                    self.statement()?,
                ))))
            }
            "TERMINATE" => {
                self.advance();
                if self.eat_word("ALL") {
                    return Ok(Statement::Terminate { query: None });
                }
                Ok(Statement::Terminate {
                    query: Some(self.ident("a query id or ALL")?),
                })
            }
            "SET" => {
                self.advance();
                let name = self.string("a property name in quotes, e.g. 'auto.offset.reset'")?;
                self.expect(&Tok::Eq)?;
                let value = self.string("a property value in quotes")?;
                Ok(Statement::Set { name, value })
            }
            "UNSET" => {
                self.advance();
                Ok(Statement::Unset {
                    name: self.string("a property name in quotes")?,
                })
            }
            "RUN" => {
                self.advance();
                self.expect_word("SCRIPT")?;
                Ok(Statement::RunScript {
                    path: self.string("a file name in quotes")?,
                })
            }
            "SELECT" => Ok(Statement::Query(Box::new(self.query()?))),
            _ => Err(ParseError {
                message: format!(
                    "{word} does not start a statement; statements start with CREATE, SELECT, \
                     INSERT, DROP, SHOW, LIST, DESCRIBE, EXPLAIN, TERMINATE, SET, UNSET or RUN SCRIPT"
                ),
                pos,
            }),
        }
    }

    fn source_kind(&mut self) -> Result<SourceKind> {
        if self.eat_word("STREAM") {
            Ok(SourceKind::Stream)
        } else if self.eat_word("TABLE") {
            Ok(SourceKind::Table)
        } else {
            Err(self.unexpected("STREAM or TABLE"))
        }
    }

    fn create(&mut self) -> Result<Statement> {
        self.expect_word("CREATE")?;
        let or_replace = if self.eat_word("OR") {
            self.expect_word("REPLACE")?;
            true
        } else {
            false
        };
        // ksqlDB's SOURCE streams/tables (read-only): accepted as plain ones.
        self.eat_word("SOURCE");
        let kind = self.source_kind()?;
        let if_not_exists = if self.eat_word("IF") {
            self.expect_word("NOT")?;
            self.expect_word("EXISTS")?;
            true
        } else {
            false
        };
        let name = self.ident("a stream or table name")?;
        let columns = if self.at(&Tok::LParen) {
            self.column_defs()?
        } else {
            Vec::new()
        };
        let properties = if self.eat_word("WITH") {
            self.properties()?
        } else {
            Vec::new()
        };
        if self.eat_word("AS") {
            if !columns.is_empty() {
                return Err(ParseError {
                    message: "CREATE .. AS SELECT takes its columns from the query; drop the \
                              column list"
                        .into(),
                    pos: name.pos,
                });
            }
            let query = self.query()?;
            return Ok(Statement::CreateAsSelect {
                kind,
                name,
                or_replace,
                if_not_exists,
                properties,
                query: Box::new(query),
            });
        }
        Ok(Statement::CreateSource {
            kind,
            name,
            or_replace,
            if_not_exists,
            columns,
            properties,
        })
    }

    fn column_defs(&mut self) -> Result<Vec<ColumnDef>> {
        self.expect(&Tok::LParen)?;
        let mut out = Vec::new();
        loop {
            let name = self.ident("a column name")?;
            let ty = self.sql_type()?;
            let mut col = ColumnDef {
                name,
                ty,
                key: false,
                primary_key: false,
                headers: None,
            };
            if self.eat_word("PRIMARY") {
                self.expect_word("KEY")?;
                col.primary_key = true;
            } else if self.eat_word("KEY") {
                col.key = true;
            } else if self.eat_word("HEADERS") {
                col.headers = Some(None);
            } else if self.eat_word("HEADER") {
                self.expect(&Tok::LParen)?;
                col.headers = Some(Some(self.string("a header key in quotes")?));
                self.expect(&Tok::RParen)?;
            }
            out.push(col);
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.expect(&Tok::RParen)?;
        Ok(out)
    }

    fn properties(&mut self) -> Result<Vec<Property>> {
        self.expect(&Tok::LParen)?;
        let mut out = Vec::new();
        loop {
            let name = self.ident("a property name, e.g. KAFKA_TOPIC")?;
            self.expect(&Tok::Eq)?;
            let value = self.literal("a property value")?;
            out.push(Property { name, value });
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.expect(&Tok::RParen)?;
        Ok(out)
    }

    fn literal(&mut self, what: &str) -> Result<Literal> {
        let negative = self.eat(&Tok::Minus);
        let lit = match self.peek().clone() {
            Tok::Str(s) if !negative => Literal::String(s),
            Tok::Int(i) => Literal::Int(if negative { -i } else { i }),
            Tok::Decimal(d) => Literal::Decimal(if negative { format!("-{d}") } else { d }),
            Tok::Word(w) if w == "TRUE" && !negative => Literal::Boolean(true),
            Tok::Word(w) if w == "FALSE" && !negative => Literal::Boolean(false),
            Tok::Word(w) if w == "NULL" && !negative => Literal::Null,
            _ => return Err(self.unexpected(what)),
        };
        self.advance();
        Ok(lit)
    }

    fn sql_type(&mut self) -> Result<SqlType> {
        let pos = self.pos();
        let Tok::Word(word) = self.peek().clone() else {
            return Err(self.unexpected("a type (INT, BIGINT, DOUBLE, STRING, ...)"));
        };
        self.advance();
        Ok(match word.as_str() {
            "BOOLEAN" => SqlType::Boolean,
            "INT" | "INTEGER" => SqlType::Int,
            "BIGINT" => SqlType::Bigint,
            "DOUBLE" => SqlType::Double,
            "STRING" => SqlType::String,
            "VARCHAR" => {
                if self.eat(&Tok::LParen) {
                    self.int("a length")?;
                    self.expect(&Tok::RParen)?;
                }
                SqlType::String
            }
            "BYTES" => SqlType::Bytes,
            "TIMESTAMP" => SqlType::Timestamp,
            "DATE" => SqlType::Date,
            "TIME" => SqlType::Time,
            "DECIMAL" => {
                self.expect(&Tok::LParen)?;
                let precision = self.int("a precision")?;
                self.expect(&Tok::Comma)?;
                let scale = self.int("a scale")?;
                self.expect(&Tok::RParen)?;
                if precision == 0 || scale > precision {
                    return Err(ParseError {
                        message: format!(
                            "DECIMAL({precision}, {scale}): the precision must be at least 1 and \
                             the scale at most the precision"
                        ),
                        pos,
                    });
                }
                SqlType::Decimal {
                    precision: precision as u32,
                    scale: scale as u32,
                }
            }
            "ARRAY" => {
                self.expect(&Tok::Lt)?;
                let inner = self.sql_type()?;
                self.expect(&Tok::Gt)?;
                SqlType::Array(Box::new(inner))
            }
            "MAP" => {
                self.expect(&Tok::Lt)?;
                let k = self.sql_type()?;
                self.expect(&Tok::Comma)?;
                let v = self.sql_type()?;
                self.expect(&Tok::Gt)?;
                SqlType::Map(Box::new(k), Box::new(v))
            }
            "STRUCT" => {
                self.expect(&Tok::Lt)?;
                let mut fields = Vec::new();
                if !self.at(&Tok::Gt) {
                    loop {
                        let name = self.ident("a field name")?;
                        fields.push((name.name, self.sql_type()?));
                        if !self.eat(&Tok::Comma) {
                            break;
                        }
                    }
                }
                self.expect(&Tok::Gt)?;
                SqlType::Struct(fields)
            }
            other => {
                return Err(ParseError {
                    message: format!(
                        "unknown type {other}; the types are BOOLEAN, INT, BIGINT, DOUBLE, \
                         DECIMAL(p, s), STRING, VARCHAR, BYTES, TIMESTAMP, DATE, TIME, \
                         ARRAY<..>, MAP<..>, STRUCT<..>"
                    ),
                    pos,
                })
            }
        })
    }

    fn int(&mut self, what: &str) -> Result<i64> {
        match self.peek().clone() {
            Tok::Int(i) if i >= 0 => {
                self.advance();
                Ok(i)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn insert(&mut self) -> Result<Statement> {
        self.expect_word("INSERT")?;
        self.expect_word("INTO")?;
        let target = self.ident("a stream or table name")?;
        if self.is_word("SELECT") {
            return Ok(Statement::InsertSelect {
                target,
                query: Box::new(self.query()?),
            });
        }
        let columns = if self.eat(&Tok::LParen) {
            let mut cols = Vec::new();
            loop {
                cols.push(self.ident("a column name")?);
                if !self.eat(&Tok::Comma) {
                    break;
                }
            }
            self.expect(&Tok::RParen)?;
            Some(cols)
        } else {
            None
        };
        self.expect_word("VALUES")?;
        self.expect(&Tok::LParen)?;
        let mut values = Vec::new();
        loop {
            values.push(self.expr()?);
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.expect(&Tok::RParen)?;
        Ok(Statement::InsertValues {
            target,
            columns,
            values,
        })
    }

    fn drop(&mut self) -> Result<Statement> {
        self.expect_word("DROP")?;
        let kind = self.source_kind()?;
        let if_exists = if self.eat_word("IF") {
            self.expect_word("EXISTS")?;
            true
        } else {
            false
        };
        let name = self.ident("a stream or table name")?;
        let delete_topic = if self.eat_word("DELETE") {
            self.expect_word("TOPIC")?;
            true
        } else {
            false
        };
        Ok(Statement::Drop {
            kind,
            name,
            if_exists,
            delete_topic,
        })
    }

    fn show(&mut self) -> Result<Statement> {
        self.advance(); // SHOW or LIST
        let what = if self.eat_word("STREAMS") {
            ShowKind::Streams
        } else if self.eat_word("TABLES") {
            ShowKind::Tables
        } else if self.eat_word("QUERIES") {
            ShowKind::Queries
        } else if self.eat_word("TOPICS") {
            ShowKind::Topics
        } else if self.eat_word("PROPERTIES") {
            ShowKind::Properties
        } else if self.eat_word("FUNCTIONS") {
            ShowKind::Functions
        } else {
            return Err(
                self.unexpected("STREAMS, TABLES, QUERIES, TOPICS, PROPERTIES or FUNCTIONS")
            );
        };
        let extended = self.eat_word("EXTENDED");
        Ok(Statement::Show { what, extended })
    }

    fn describe(&mut self) -> Result<Statement> {
        self.expect_word("DESCRIBE")?;
        let extended = self.eat_word("EXTENDED");
        let target = if self.eat_word("FUNCTION") {
            DescribeTarget::Function(self.ident("a function name")?)
        } else if self.is_word("STREAMS") && self.ends_after_one() {
            self.advance();
            DescribeTarget::Streams
        } else if self.is_word("TABLES") && self.ends_after_one() {
            self.advance();
            DescribeTarget::Tables
        } else {
            DescribeTarget::Source(self.ident("a stream or table name")?)
        };
        let extended = extended || self.eat_word("EXTENDED");
        Ok(Statement::Describe { target, extended })
    }
}

mod expr;
mod query;
