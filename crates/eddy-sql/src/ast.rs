//! What a ksqlDB statement says, as parsed: names are as written (upper-cased unless
//! quoted), nothing is resolved yet. Expressions and names carry where they start, so the
//! later phases can say where a problem is.

use crate::lexer::Pos;

/// A name and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    pub name: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Stream,
    Table,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `CREATE [OR REPLACE] STREAM|TABLE [IF NOT EXISTS] name (columns) WITH (..)`
    CreateSource {
        kind: SourceKind,
        name: Ident,
        or_replace: bool,
        if_not_exists: bool,
        columns: Vec<ColumnDef>,
        properties: Vec<Property>,
    },
    /// `CREATE [OR REPLACE] STREAM|TABLE [IF NOT EXISTS] name [WITH (..)] AS SELECT ..`
    CreateAsSelect {
        kind: SourceKind,
        name: Ident,
        or_replace: bool,
        if_not_exists: bool,
        properties: Vec<Property>,
        query: Box<Query>,
    },
    /// `INSERT INTO name SELECT ..`
    InsertSelect { target: Ident, query: Box<Query> },
    /// `INSERT INTO name [(columns)] VALUES (..)`
    InsertValues {
        target: Ident,
        columns: Option<Vec<Ident>>,
        values: Vec<Expr>,
    },
    /// `DROP STREAM|TABLE [IF EXISTS] name [DELETE TOPIC]`
    Drop {
        kind: SourceKind,
        name: Ident,
        if_exists: bool,
        delete_topic: bool,
    },
    /// `SHOW|LIST STREAMS|TABLES|QUERIES|TOPICS|PROPERTIES [EXTENDED]`
    Show { what: ShowKind, extended: bool },
    /// `DESCRIBE [EXTENDED] name`, `DESCRIBE STREAMS|TABLES [EXTENDED]`
    Describe {
        target: DescribeTarget,
        extended: bool,
    },
    /// `EXPLAIN <statement>` or `EXPLAIN <query id>`
    Explain(ExplainTarget),
    /// `TERMINATE <query id>` / `TERMINATE ALL`
    Terminate { query: Option<Ident> },
    /// `SET 'name' = 'value'`
    Set { name: String, value: String },
    /// `UNSET 'name'`
    Unset { name: String },
    /// A push or pull query.
    Query(Box<Query>),
    /// `RUN SCRIPT 'file.sql'` (the shell reads the file).
    RunScript { path: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowKind {
    Streams,
    Tables,
    Queries,
    Topics,
    Properties,
    Functions,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DescribeTarget {
    Source(Ident),
    Streams,
    Tables,
    Function(Ident),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExplainTarget {
    Statement(Box<Statement>),
    QueryId(Ident),
}

/// A column of `CREATE STREAM|TABLE`.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: Ident,
    pub ty: SqlType,
    /// `KEY` (streams) or `PRIMARY KEY` (tables).
    pub key: bool,
    pub primary_key: bool,
    /// `HEADERS` or `HEADER('key')`.
    pub headers: Option<Option<String>>,
}

/// `name = value` in a `WITH (..)` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    pub name: Ident,
    pub value: Literal,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SqlType {
    Boolean,
    Int,
    Bigint,
    Double,
    Decimal { precision: u32, scale: u32 },
    String,
    Bytes,
    Timestamp,
    Date,
    Time,
    Array(Box<SqlType>),
    Map(Box<SqlType>, Box<SqlType>),
    Struct(Vec<(String, SqlType)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub select: Vec<SelectItem>,
    pub from: From,
    pub window: Option<WindowSpec>,
    pub filter: Option<Expr>,
    pub group_by: Vec<Expr>,
    pub partition_by: Vec<Expr>,
    pub having: Option<Expr>,
    pub emit: Option<Emit>,
    pub limit: Option<u64>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*`
    Wildcard(Pos),
    /// `alias.*`
    QualifiedWildcard(Ident),
    Expr {
        expr: Expr,
        alias: Option<Ident>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct From {
    pub source: AliasedSource,
    pub joins: Vec<Join>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AliasedSource {
    pub name: Ident,
    pub alias: Option<Ident>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    pub kind: JoinKind,
    pub source: AliasedSource,
    pub within: Option<Within>,
    pub on: Expr,
    pub pos: Pos,
}

/// `WITHIN n unit` or `WITHIN (before, after)`, with an optional `GRACE PERIOD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Within {
    pub before_ms: i64,
    pub after_ms: i64,
    pub grace_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSpec {
    Tumbling {
        size_ms: i64,
        retention_ms: Option<i64>,
        grace_ms: Option<i64>,
    },
    Hopping {
        size_ms: i64,
        advance_ms: i64,
        retention_ms: Option<i64>,
        grace_ms: Option<i64>,
    },
    Session {
        gap_ms: i64,
        retention_ms: Option<i64>,
        grace_ms: Option<i64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    Changes,
    Final,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Boolean(bool),
    Int(i64),
    /// As written, to keep a DECIMAL's digits.
    Decimal(String),
    String(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub pos: Pos,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Concat,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Literal(Literal),
    /// `name` or `source.name`.
    Column {
        qualifier: Option<Ident>,
        name: Ident,
    },
    Binary {
        op: BinaryOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Unary {
        op: UnaryOp,
        expr: Box<Expr>,
    },
    /// `f(args)`, `COUNT(*)` (args empty, `star`), `COUNT(DISTINCT x)`.
    Function {
        name: Ident,
        args: Vec<Expr>,
        star: bool,
        distinct: bool,
    },
    /// `CASE [operand] WHEN .. THEN .. [ELSE ..] END`
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Cast {
        expr: Box<Expr>,
        ty: SqlType,
    },
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        escape: Option<String>,
        negated: bool,
    },
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    /// `array[index]` or `map['key']`.
    Subscript {
        expr: Box<Expr>,
        index: Box<Expr>,
    },
    /// `struct->field`
    Field {
        expr: Box<Expr>,
        field: Ident,
    },
    /// `ARRAY[..]`
    Array(Vec<Expr>),
    /// `MAP(k := v, ..)`
    Map(Vec<(Expr, Expr)>),
    /// `STRUCT(name := v, ..)`
    Struct(Vec<(Ident, Expr)>),
}
