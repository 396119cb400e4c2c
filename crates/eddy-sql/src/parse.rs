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

/// Binding strength of binary operators, weakest first.
fn precedence(tok: &Tok) -> Option<(u8, BinaryOp)> {
    Some(match tok {
        Tok::Word(w) if w == "OR" => (1, BinaryOp::Or),
        Tok::Word(w) if w == "AND" => (2, BinaryOp::And),
        Tok::Eq => (4, BinaryOp::Eq),
        Tok::NotEq => (4, BinaryOp::NotEq),
        Tok::Lt => (4, BinaryOp::Lt),
        Tok::LtEq => (4, BinaryOp::LtEq),
        Tok::Gt => (4, BinaryOp::Gt),
        Tok::GtEq => (4, BinaryOp::GtEq),
        Tok::Concat => (5, BinaryOp::Concat),
        Tok::Plus => (6, BinaryOp::Add),
        Tok::Minus => (6, BinaryOp::Sub),
        Tok::Star => (7, BinaryOp::Mul),
        Tok::Slash => (7, BinaryOp::Div),
        Tok::Percent => (7, BinaryOp::Mod),
        _ => return None,
    })
}

/// Where `IS`, `IN`, `BETWEEN`, `LIKE` and `NOT` (before those) bind: as comparisons.
const PREDICATE: u8 = 4;
const NOT_PREFIX: u8 = 3;

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

    // -- queries -------------------------------------------------------------------------

    fn query(&mut self) -> Result<Query> {
        let pos = self.pos();
        self.expect_word("SELECT")?;
        let mut select = Vec::new();
        loop {
            select.push(self.select_item()?);
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.expect_word("FROM")?;
        let from = self.from()?;
        let mut q = Query {
            select,
            from,
            window: None,
            filter: None,
            group_by: Vec::new(),
            partition_by: Vec::new(),
            having: None,
            emit: None,
            limit: None,
            pos,
        };
        if self.eat_word("WINDOW") {
            q.window = Some(self.window()?);
        }
        if self.eat_word("WHERE") {
            q.filter = Some(self.expr()?);
        }
        if self.eat_word("GROUP") {
            self.expect_word("BY")?;
            q.group_by = self.expr_list()?;
        }
        if self.eat_word("PARTITION") {
            self.expect_word("BY")?;
            q.partition_by = self.expr_list()?;
        }
        if self.eat_word("HAVING") {
            q.having = Some(self.expr()?);
        }
        if self.eat_word("EMIT") {
            q.emit = Some(if self.eat_word("CHANGES") {
                Emit::Changes
            } else if self.eat_word("FINAL") {
                Emit::Final
            } else {
                return Err(self.unexpected("CHANGES or FINAL after EMIT"));
            });
        }
        if self.eat_word("LIMIT") {
            q.limit = Some(self.int("a row count after LIMIT")? as u64);
        }
        Ok(q)
    }

    fn expr_list(&mut self) -> Result<Vec<Expr>> {
        let mut out = vec![self.expr()?];
        while self.eat(&Tok::Comma) {
            out.push(self.expr()?);
        }
        Ok(out)
    }

    fn select_item(&mut self) -> Result<SelectItem> {
        if self.at(&Tok::Star) {
            let pos = self.pos();
            self.advance();
            return Ok(SelectItem::Wildcard(pos));
        }
        if matches!(self.peek(), Tok::Word(_) | Tok::Quoted(_))
            && self.peek_at(1) == &Tok::Dot
            && self.peek_at(2) == &Tok::Star
        {
            let alias = self.ident("a source name")?;
            self.advance();
            self.advance();
            return Ok(SelectItem::QualifiedWildcard(alias));
        }
        let expr = self.expr()?;
        let alias = if self.eat_word("AS") {
            Some(self.ident("a column alias")?)
        } else {
            None
        };
        Ok(SelectItem::Expr { expr, alias })
    }

    fn aliased_source(&mut self) -> Result<AliasedSource> {
        let name = self.ident("a stream or table name")?;
        // `name AS alias` or `name alias`.
        let explicit = self.eat_word("AS");
        let bare = match self.peek() {
            Tok::Word(w) => !is_clause_word(w),
            Tok::Quoted(_) => true,
            _ => false,
        };
        let alias = if explicit || bare {
            Some(self.ident("an alias")?)
        } else {
            None
        };
        Ok(AliasedSource { name, alias })
    }

    fn from(&mut self) -> Result<From> {
        let source = self.aliased_source()?;
        let mut joins = Vec::new();
        loop {
            let pos = self.pos();
            let kind = if self.eat_word("JOIN") {
                JoinKind::Inner
            } else if self.eat_word("INNER") {
                self.expect_word("JOIN")?;
                JoinKind::Inner
            } else if self.eat_word("LEFT") {
                self.eat_word("OUTER");
                self.expect_word("JOIN")?;
                JoinKind::Left
            } else if self.eat_word("RIGHT") {
                self.eat_word("OUTER");
                self.expect_word("JOIN")?;
                JoinKind::Right
            } else if self.eat_word("FULL") {
                self.eat_word("OUTER");
                self.expect_word("JOIN")?;
                JoinKind::Full
            } else if self.is_word("OUTER") {
                self.advance();
                self.expect_word("JOIN")?;
                JoinKind::Full
            } else {
                break;
            };
            let source = self.aliased_source()?;
            let within = if self.eat_word("WITHIN") {
                Some(self.within()?)
            } else {
                None
            };
            self.expect_word("ON")?;
            let on = self.expr()?;
            joins.push(Join {
                kind,
                source,
                within,
                on,
                pos,
            });
        }
        Ok(From { source, joins })
    }

    fn within(&mut self) -> Result<Within> {
        let (before_ms, after_ms) = if self.eat(&Tok::LParen) {
            let before = self.duration()?;
            self.expect(&Tok::Comma)?;
            let after = self.duration()?;
            self.expect(&Tok::RParen)?;
            (before, after)
        } else {
            let d = self.duration()?;
            (d, d)
        };
        let grace_ms = self.grace()?;
        Ok(Within {
            before_ms,
            after_ms,
            grace_ms,
        })
    }

    fn grace(&mut self) -> Result<Option<i64>> {
        if self.eat_word("GRACE") {
            self.expect_word("PERIOD")?;
            return Ok(Some(self.duration()?));
        }
        Ok(None)
    }

    /// `n UNIT`, in milliseconds.
    fn duration(&mut self) -> Result<i64> {
        let pos = self.pos();
        let n = self.int("a duration, e.g. 5 MINUTES")?;
        let Tok::Word(unit) = self.peek().clone() else {
            return Err(
                self.unexpected("a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS)")
            );
        };
        let ms: i64 = match unit.trim_end_matches('S') {
            "MILLISECOND" => 1,
            "SECOND" => 1_000,
            "MINUTE" => 60_000,
            "HOUR" => 3_600_000,
            "DAY" => 86_400_000,
            _ => {
                return Err(
                    self.unexpected("a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS)")
                )
            }
        };
        self.advance();
        n.checked_mul(ms).ok_or_else(|| ParseError {
            message: format!("the duration {n} {unit} is too long"),
            pos,
        })
    }

    fn window(&mut self) -> Result<WindowSpec> {
        let kind = self.ident("TUMBLING, HOPPING or SESSION")?;
        self.expect(&Tok::LParen)?;
        let (mut size, mut advance, mut retention, mut grace, mut gap) =
            (None, None, None, None, None);
        let mut first = true;
        loop {
            if !first && !self.eat(&Tok::Comma) {
                break;
            }
            let pos = self.pos();
            if first && kind.name == "SESSION" {
                gap = Some(self.duration()?);
            } else if self.eat_word("SIZE") {
                size = Some(self.duration()?);
            } else if self.eat_word("ADVANCE") {
                self.expect_word("BY")?;
                advance = Some(self.duration()?);
            } else if self.eat_word("RETENTION") {
                retention = Some(self.duration()?);
            } else if self.eat_word("GRACE") {
                self.expect_word("PERIOD")?;
                grace = Some(self.duration()?);
            } else {
                return Err(ParseError {
                    message: format!(
                        "expected SIZE, ADVANCE BY, RETENTION or GRACE PERIOD, found {}",
                        self.peek()
                    ),
                    pos,
                });
            }
            first = false;
        }
        self.expect(&Tok::RParen)?;
        let missing = |what: &str| ParseError {
            message: format!("a {} window needs {what}", kind.name),
            pos: kind.pos,
        };
        Ok(match kind.name.as_str() {
            "TUMBLING" => WindowSpec::Tumbling {
                size_ms: size.ok_or_else(|| missing("SIZE"))?,
                retention_ms: retention,
                grace_ms: grace,
            },
            "HOPPING" => WindowSpec::Hopping {
                size_ms: size.ok_or_else(|| missing("SIZE"))?,
                advance_ms: advance.ok_or_else(|| missing("ADVANCE BY"))?,
                retention_ms: retention,
                grace_ms: grace,
            },
            "SESSION" => WindowSpec::Session {
                gap_ms: gap.ok_or_else(|| missing("a gap, e.g. SESSION (5 MINUTES)"))?,
                retention_ms: retention,
                grace_ms: grace,
            },
            other => {
                return Err(ParseError {
                    message: format!("unknown window type {other}: TUMBLING, HOPPING or SESSION"),
                    pos: kind.pos,
                })
            }
        })
    }

    // -- expressions ---------------------------------------------------------------------

    pub(crate) fn expr(&mut self) -> Result<Expr> {
        self.expr_above(0)
    }

    fn expr_above(&mut self, min: u8) -> Result<Expr> {
        if self.depth >= DEPTH_MAX {
            return Err(ParseError {
                message: format!("expression nested more than {DEPTH_MAX} deep"),
                pos: self.pos(),
            });
        }
        self.depth += 1;
        let result = self.expr_above_inner(min);
        self.depth -= 1;
        result
    }

    fn expr_above_inner(&mut self, min: u8) -> Result<Expr> {
        let mut left = if self.is_word("NOT") && min <= NOT_PREFIX {
            let pos = self.pos();
            self.advance();
            let e = self.expr_above(NOT_PREFIX)?;
            Expr {
                kind: ExprKind::Unary {
                    op: UnaryOp::Not,
                    expr: Box::new(e),
                },
                pos,
            }
        } else {
            self.unary()?
        };
        loop {
            // Predicates: IS [NOT] NULL, [NOT] IN / BETWEEN / LIKE.
            if min <= PREDICATE {
                if let Some(e) = self.predicate(&left)? {
                    left = e;
                    continue;
                }
            }
            let Some((prec, op)) = precedence(self.peek()) else {
                break;
            };
            if prec < min {
                break;
            }
            let pos = left.pos;
            self.advance();
            let right = self.expr_above(prec + 1)?;
            left = Expr {
                kind: ExprKind::Binary {
                    op,
                    left: Box::new(left),
                    right: Box::new(right),
                },
                pos,
            };
        }
        Ok(left)
    }

    fn predicate(&mut self, left: &Expr) -> Result<Option<Expr>> {
        let pos = left.pos;
        let boxed = || Box::new(left.clone());
        if self.eat_word("IS") {
            let negated = self.eat_word("NOT");
            self.expect_word("NULL")?;
            return Ok(Some(Expr {
                kind: ExprKind::IsNull {
                    expr: boxed(),
                    negated,
                },
                pos,
            }));
        }
        let negated = self.is_word("NOT")
            && matches!(self.peek_at(1), Tok::Word(w) if w == "IN" || w == "BETWEEN" || w == "LIKE");
        if negated {
            self.advance();
        }
        if self.eat_word("IN") {
            self.expect(&Tok::LParen)?;
            let list = self.expr_list()?;
            self.expect(&Tok::RParen)?;
            return Ok(Some(Expr {
                kind: ExprKind::InList {
                    expr: boxed(),
                    list,
                    negated,
                },
                pos,
            }));
        }
        if self.eat_word("BETWEEN") {
            let low = self.expr_above(PREDICATE + 1)?;
            self.expect_word("AND")?;
            let high = self.expr_above(PREDICATE + 1)?;
            return Ok(Some(Expr {
                kind: ExprKind::Between {
                    expr: boxed(),
                    low: Box::new(low),
                    high: Box::new(high),
                    negated,
                },
                pos,
            }));
        }
        if self.eat_word("LIKE") {
            let pattern = self.expr_above(PREDICATE + 1)?;
            let escape = if self.eat_word("ESCAPE") {
                Some(self.string("an escape character in quotes")?)
            } else {
                None
            };
            return Ok(Some(Expr {
                kind: ExprKind::Like {
                    expr: boxed(),
                    pattern: Box::new(pattern),
                    escape,
                    negated,
                },
                pos,
            }));
        }
        Ok(None)
    }

    fn unary(&mut self) -> Result<Expr> {
        let pos = self.pos();
        if self.eat(&Tok::Minus) {
            // Through expr_above, which bounds the nesting of `- - - x`.
            let e = self.expr_above(8)?;
            return Ok(match e.kind {
                ExprKind::Literal(Literal::Int(i)) => Expr {
                    kind: ExprKind::Literal(Literal::Int(-i)),
                    pos,
                },
                ExprKind::Literal(Literal::Decimal(d)) => Expr {
                    kind: ExprKind::Literal(Literal::Decimal(format!("-{d}"))),
                    pos,
                },
                _ => Expr {
                    kind: ExprKind::Unary {
                        op: UnaryOp::Neg,
                        expr: Box::new(e),
                    },
                    pos,
                },
            });
        }
        if self.eat(&Tok::Plus) {
            return self.expr_above(8);
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr> {
        let mut e = self.primary()?;
        loop {
            let pos = e.pos;
            if self.eat(&Tok::LBracket) {
                let index = self.expr()?;
                self.expect(&Tok::RBracket)?;
                e = Expr {
                    kind: ExprKind::Subscript {
                        expr: Box::new(e),
                        index: Box::new(index),
                    },
                    pos,
                };
            } else if self.eat(&Tok::Arrow) {
                let field = self.ident("a field name after '->'")?;
                e = Expr {
                    kind: ExprKind::Field {
                        expr: Box::new(e),
                        field,
                    },
                    pos,
                };
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr> {
        let pos = self.pos();
        let lit = |kind| Ok(Expr { kind, pos });
        match self.peek().clone() {
            Tok::Int(i) => {
                self.advance();
                lit(ExprKind::Literal(Literal::Int(i)))
            }
            Tok::Decimal(d) => {
                self.advance();
                lit(ExprKind::Literal(Literal::Decimal(d)))
            }
            Tok::Str(s) => {
                self.advance();
                lit(ExprKind::Literal(Literal::String(s)))
            }
            Tok::LParen => {
                self.advance();
                let e = self.expr()?;
                self.expect(&Tok::RParen)?;
                Ok(e)
            }
            Tok::Quoted(_) => self.column_or_call(),
            Tok::Word(w) => match w.as_str() {
                "TRUE" | "FALSE" => {
                    self.advance();
                    lit(ExprKind::Literal(Literal::Boolean(w == "TRUE")))
                }
                "NULL" => {
                    self.advance();
                    lit(ExprKind::Literal(Literal::Null))
                }
                "CASE" => self.case(),
                "CAST" if self.peek_at(1) == &Tok::LParen => {
                    self.advance();
                    self.advance();
                    let e = self.expr()?;
                    self.expect_word("AS")?;
                    let ty = self.sql_type()?;
                    self.expect(&Tok::RParen)?;
                    lit(ExprKind::Cast {
                        expr: Box::new(e),
                        ty,
                    })
                }
                "ARRAY" if self.peek_at(1) == &Tok::LBracket => {
                    self.advance();
                    self.advance();
                    let items = if self.at(&Tok::RBracket) {
                        Vec::new()
                    } else {
                        self.expr_list()?
                    };
                    self.expect(&Tok::RBracket)?;
                    lit(ExprKind::Array(items))
                }
                "MAP" if self.peek_at(1) == &Tok::LParen => {
                    self.advance();
                    self.advance();
                    let mut entries = Vec::new();
                    if !self.at(&Tok::RParen) {
                        loop {
                            let k = self.expr()?;
                            self.assign()?;
                            entries.push((k, self.expr()?));
                            if !self.eat(&Tok::Comma) {
                                break;
                            }
                        }
                    }
                    self.expect(&Tok::RParen)?;
                    lit(ExprKind::Map(entries))
                }
                "STRUCT" if self.peek_at(1) == &Tok::LParen => {
                    self.advance();
                    self.advance();
                    let mut fields = Vec::new();
                    if !self.at(&Tok::RParen) {
                        loop {
                            let name = self.ident("a field name")?;
                            self.assign()?;
                            fields.push((name, self.expr()?));
                            if !self.eat(&Tok::Comma) {
                                break;
                            }
                        }
                    }
                    self.expect(&Tok::RParen)?;
                    lit(ExprKind::Struct(fields))
                }
                _ => self.column_or_call(),
            },
            _ => Err(self.unexpected("an expression")),
        }
    }

    /// `:=` in MAP(..) and STRUCT(..).
    fn assign(&mut self) -> Result<()> {
        if self.eat(&Tok::Colon) && self.eat(&Tok::Eq) {
            Ok(())
        } else {
            Err(self.unexpected("':='"))
        }
    }

    fn column_or_call(&mut self) -> Result<Expr> {
        if matches!(self.peek(), Tok::Word(w) if is_reserved(w)) {
            return Err(self.unexpected("an expression"));
        }
        let first = self.ident("a column or function name")?;
        let pos = first.pos;
        if self.eat(&Tok::LParen) {
            let distinct = self.eat_word("DISTINCT");
            let (args, star) = if self.eat(&Tok::Star) {
                (Vec::new(), true)
            } else if self.at(&Tok::RParen) {
                (Vec::new(), false)
            } else {
                (self.expr_list()?, false)
            };
            self.expect(&Tok::RParen)?;
            return Ok(Expr {
                kind: ExprKind::Function {
                    name: first,
                    args,
                    star,
                    distinct,
                },
                pos,
            });
        }
        if self.at(&Tok::Dot) && matches!(self.peek_at(1), Tok::Word(_) | Tok::Quoted(_)) {
            self.advance();
            let name = self.ident("a column name")?;
            return Ok(Expr {
                kind: ExprKind::Column {
                    qualifier: Some(first),
                    name,
                },
                pos,
            });
        }
        Ok(Expr {
            kind: ExprKind::Column {
                qualifier: None,
                name: first,
            },
            pos,
        })
    }

    fn case(&mut self) -> Result<Expr> {
        let pos = self.pos();
        self.expect_word("CASE")?;
        let operand = if self.is_word("WHEN") {
            None
        } else {
            Some(Box::new(self.expr()?))
        };
        let mut whens = Vec::new();
        while self.eat_word("WHEN") {
            let cond = self.expr()?;
            self.expect_word("THEN")?;
            whens.push((cond, self.expr()?));
        }
        if whens.is_empty() {
            return Err(self.unexpected("WHEN"));
        }
        let otherwise = if self.eat_word("ELSE") {
            Some(Box::new(self.expr()?))
        } else {
            None
        };
        self.expect_word("END")?;
        Ok(Expr {
            kind: ExprKind::Case {
                operand,
                whens,
                otherwise,
            },
            pos,
        })
    }
}

/// Words that are never a column (quote a column so named: `FROM`).
fn is_reserved(w: &str) -> bool {
    is_clause_word(w)
        || matches!(
            w,
            "SELECT"
                | "FROM"
                | "BY"
                | "AS"
                | "AND"
                | "OR"
                | "NOT"
                | "WHEN"
                | "THEN"
                | "ELSE"
                | "END"
                | "IS"
                | "IN"
                | "BETWEEN"
                | "LIKE"
        )
}

/// Words that end a FROM item (so they are not taken as an alias).
fn is_clause_word(w: &str) -> bool {
    matches!(
        w,
        "WINDOW"
            | "WHERE"
            | "GROUP"
            | "PARTITION"
            | "HAVING"
            | "EMIT"
            | "LIMIT"
            | "JOIN"
            | "INNER"
            | "LEFT"
            | "RIGHT"
            | "FULL"
            | "OUTER"
            | "WITHIN"
            | "ON"
    )
}
