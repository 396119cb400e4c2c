//! The streams and tables Eddy knows, and the planning of the statements that declare and
//! drop them (`CREATE STREAM|TABLE`, `DROP`), checked as ksqlDB checks them: properties by
//! their names and types, key columns (`KEY` for streams, `PRIMARY KEY` for tables), the
//! timestamp column, what the formats can carry.

use std::collections::BTreeMap;

use crate::ast::{ColumnDef, Literal, Property, SourceKind, Statement};
use crate::expr::error as fail;
use crate::expr::PlanError;
use crate::format::Format;
use crate::lexer::Pos;
use crate::value::Type;

type Result<T> = std::result::Result<T, PlanError>;

/// Columns every row has, which a declared column may not be named.
pub const PSEUDO_COLUMNS: &[&str] = &[
    "ROWTIME",
    "ROWPARTITION",
    "ROWOFFSET",
    "WINDOWSTART",
    "WINDOWEND",
];

/// The `WITH (..)` properties of `CREATE STREAM|TABLE` there are.
pub const PROPERTIES: &[&str] = &[
    "KAFKA_TOPIC",
    "VALUE_FORMAT",
    "KEY_FORMAT",
    "FORMAT",
    "PARTITIONS",
    "REPLICAS",
    "TIMESTAMP",
    "TIMESTAMP_FORMAT",
    "WRAP_SINGLE_VALUE",
];

/// A stream or table: its topic, columns and formats.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub name: String,
    pub kind: SourceKind,
    pub topic: String,
    pub key_columns: Vec<(String, Type)>,
    pub value_columns: Vec<(String, Type)>,
    pub key_format: Format,
    pub value_format: Format,
    /// The column whose value is the record's time (ROWTIME otherwise), and its format when
    /// it is a STRING.
    pub timestamp: Option<(String, Option<String>)>,
    /// Partitions to create the topic with, when it is created.
    pub partitions: Option<i32>,
    pub replicas: Option<i16>,
    /// A windowed table's windows: its keys carry the window.
    pub window: Option<WindowKind>,
}

/// The windows of a windowed table, which its keys carry (Kafka's windowed serdes: the key,
/// then the start; for sessions the key, then the end and the start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    Tumbling { size_ms: i64 },
    Hopping { size_ms: i64 },
    Session,
}

impl WindowKind {
    /// ksqlDB's `windowType`.
    pub fn name(&self) -> &'static str {
        match self {
            WindowKind::Tumbling { .. } => "TUMBLING",
            WindowKind::Hopping { .. } => "HOPPING",
            WindowKind::Session => "SESSION",
        }
    }

    /// The size of fixed windows; None for sessions.
    pub fn size_ms(&self) -> Option<i64> {
        match self {
            WindowKind::Tumbling { size_ms } | WindowKind::Hopping { size_ms } => Some(*size_ms),
            WindowKind::Session => None,
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Catalog {
    sources: BTreeMap<String, Source>,
}

/// What `CREATE` should do with the catalog.
#[derive(Debug, Clone, PartialEq)]
pub enum Create {
    /// Add it (or replace it: `OR REPLACE`).
    Add(Source),
    /// `IF NOT EXISTS` and it exists: nothing to do.
    Exists,
}

impl Catalog {
    pub fn get(&self, name: &str) -> Option<&Source> {
        self.sources.get(name)
    }

    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.sources.values()
    }

    pub fn insert(&mut self, source: Source) {
        self.sources.insert(source.name.clone(), source);
    }

    /// Plans `CREATE STREAM|TABLE name (columns) WITH (..)`.
    pub fn plan_create(&self, statement: &Statement) -> Result<Create> {
        let Statement::CreateSource {
            kind,
            name,
            or_replace,
            if_not_exists,
            columns,
            properties,
        } = statement
        else {
            return fail(
                Pos::default(),
                "not a CREATE STREAM or CREATE TABLE statement",
            );
        };
        let what = kind_name(*kind);
        if let Some(existing) = self.sources.get(&name.name) {
            if *if_not_exists {
                return Ok(Create::Exists);
            }
            if !*or_replace || existing.kind != *kind {
                return fail(
                    name.pos,
                    format!(
                        "{} {} already exists; drop it first, or use CREATE OR REPLACE",
                        kind_name(existing.kind),
                        name.name
                    ),
                );
            }
        }
        let props = Props::read(properties)?;
        let topic = props.string("KAFKA_TOPIC")?.ok_or_else(|| PlanError {
            message: format!("CREATE {what} needs the topic it reads: WITH (KAFKA_TOPIC='...')"),
            pos: name.pos,
        })?;
        let both = props.string("FORMAT")?;
        let value_format_name =
            props
                .string("VALUE_FORMAT")?
                .or(both.clone())
                .ok_or_else(|| PlanError {
                    message: format!("CREATE {what} needs VALUE_FORMAT (JSON, DELIMITED or KAFKA)"),
                    pos: name.pos,
                })?;
        let key_format_name = props
            .string("KEY_FORMAT")?
            .or(both)
            .unwrap_or_else(|| "KAFKA".into());
        let wrap = props.boolean("WRAP_SINGLE_VALUE")?.unwrap_or(true);
        let value_format =
            Format::from_name(&value_format_name, !wrap).ok_or_else(|| PlanError {
                message: format!(
                    "unknown VALUE_FORMAT {value_format_name}: JSON, DELIMITED or KAFKA"
                ),
                pos: props
                    .pos("VALUE_FORMAT")
                    .or(props.pos("FORMAT"))
                    .unwrap_or(name.pos),
            })?;
        // A JSON key of one column is the bare value, as ksqlDB writes keys.
        let key_format = Format::from_name(&key_format_name, true).ok_or_else(|| PlanError {
            message: format!("unknown KEY_FORMAT {key_format_name}: JSON, DELIMITED or KAFKA"),
            pos: props
                .pos("KEY_FORMAT")
                .or(props.pos("FORMAT"))
                .unwrap_or(name.pos),
        })?;

        let mut seen = BTreeMap::new();
        let (mut key_columns, mut value_columns) = (Vec::new(), Vec::new());
        for c in columns {
            check_column(c, *kind, &mut seen)?;
            let entry = (c.name.name.clone(), Type::from(&c.ty));
            if c.key || c.primary_key {
                key_columns.push(entry);
            } else {
                value_columns.push(entry);
            }
        }
        if *kind == SourceKind::Table && key_columns.is_empty() {
            return fail(
                name.pos,
                format!(
                    "table {} needs a PRIMARY KEY column: a table holds the latest row per key",
                    name.name
                ),
            );
        }
        key_format.check(&key_columns).map_err(|m| PlanError {
            message: format!("key: {m}"),
            pos: name.pos,
        })?;
        value_format.check(&value_columns).map_err(|m| PlanError {
            message: format!("value: {m}"),
            pos: name.pos,
        })?;

        let timestamp = match props.string("TIMESTAMP")? {
            None => None,
            Some(col) => {
                let pos = props.pos("TIMESTAMP").unwrap_or(name.pos);
                let col = col.to_ascii_uppercase();
                let ty = key_columns
                    .iter()
                    .chain(&value_columns)
                    .find(|(n, _)| n.eq_ignore_ascii_case(&col))
                    .map(|(_, t)| t.clone());
                let fmt = props.string("TIMESTAMP_FORMAT")?;
                match (ty, &fmt) {
                    (None, _) => return fail(pos, format!("TIMESTAMP names {col}, which is not a column")),
                    (Some(Type::Bigint | Type::Timestamp), None) => {}
                    (Some(Type::String), Some(_)) => {}
                    (Some(Type::String), None) => {
                        return fail(pos, format!("TIMESTAMP column {col} is a STRING: give its TIMESTAMP_FORMAT"))
                    }
                    (Some(t), _) => {
                        return fail(pos, format!("TIMESTAMP column {col} is a {t}; it must be BIGINT, TIMESTAMP, or a STRING with a TIMESTAMP_FORMAT"))
                    }
                }
                Some((col, fmt))
            }
        };
        let partitions = match props.int("PARTITIONS")? {
            Some(p) if !(1..=100_000).contains(&p) => {
                return fail(
                    props.pos("PARTITIONS").unwrap_or(name.pos),
                    format!("PARTITIONS={p}: at least 1"),
                )
            }
            p => p.map(|p| p as i32),
        };
        let replicas = props.int("REPLICAS")?.map(|r| r as i16);
        Ok(Create::Add(Source {
            name: name.name.clone(),
            kind: *kind,
            topic,
            key_columns,
            value_columns,
            key_format,
            value_format,
            timestamp,
            partitions,
            replicas,
            window: None,
        }))
    }

    /// Plans `DROP STREAM|TABLE`: the source dropped (None: IF EXISTS and there is none).
    pub fn plan_drop(&self, statement: &Statement) -> Result<Option<&Source>> {
        let Statement::Drop {
            kind,
            name,
            if_exists,
            ..
        } = statement
        else {
            return fail(Pos::default(), "not a DROP statement");
        };
        match self.sources.get(&name.name) {
            None if *if_exists => Ok(None),
            None => fail(
                name.pos,
                format!("{} {} does not exist", kind_name(*kind), name.name),
            ),
            Some(s) if s.kind != *kind => fail(
                name.pos,
                format!(
                    "{} is a {}, not a {}: DROP {} {}",
                    name.name,
                    kind_name(s.kind),
                    kind_name(*kind),
                    kind_name(s.kind),
                    name.name
                ),
            ),
            Some(s) => Ok(Some(s)),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Source> {
        self.sources.remove(name)
    }
}

fn kind_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Stream => "STREAM",
        SourceKind::Table => "TABLE",
    }
}

fn check_column(c: &ColumnDef, kind: SourceKind, seen: &mut BTreeMap<String, Pos>) -> Result<()> {
    let n = &c.name.name;
    if PSEUDO_COLUMNS.contains(&n.to_ascii_uppercase().as_str()) {
        return fail(
            c.name.pos,
            format!("{n} is a pseudo column every row has; name the column otherwise"),
        );
    }
    if let Some(first) = seen.insert(n.clone(), c.name.pos) {
        return fail(
            c.name.pos,
            format!("column {n} is declared twice (first at {first})"),
        );
    }
    match kind {
        SourceKind::Stream if c.primary_key => fail(
            c.name.pos,
            format!("{n}: a stream's key columns are declared KEY; PRIMARY KEY is for tables"),
        ),
        SourceKind::Table if c.key => fail(
            c.name.pos,
            format!("{n}: a table's key columns are declared PRIMARY KEY"),
        ),
        _ => Ok(()),
    }
}

/// `WITH (..)` properties by upper-cased name.
struct Props<'a> {
    by_name: BTreeMap<String, &'a Property>,
}

impl<'a> Props<'a> {
    fn read(properties: &'a [Property]) -> Result<Props<'a>> {
        let mut by_name = BTreeMap::new();
        for p in properties {
            let key = p.name.name.to_ascii_uppercase();
            if !PROPERTIES.contains(&key.as_str()) {
                return fail(
                    p.name.pos,
                    format!(
                        "unknown property {}; the properties are {}",
                        p.name.name,
                        PROPERTIES.join(", ")
                    ),
                );
            }
            if by_name.insert(key, p).is_some() {
                return fail(
                    p.name.pos,
                    format!("property {} is given twice", p.name.name),
                );
            }
        }
        Ok(Props { by_name })
    }

    fn pos(&self, name: &str) -> Option<Pos> {
        self.by_name.get(name).map(|p| p.name.pos)
    }

    fn string(&self, name: &str) -> Result<Option<String>> {
        match self.by_name.get(name) {
            None => Ok(None),
            Some(Property {
                value: Literal::String(s),
                ..
            }) => Ok(Some(s.clone())),
            Some(p) => fail(
                p.name.pos,
                format!("{name} takes a quoted string, e.g. {name}='...'"),
            ),
        }
    }

    fn int(&self, name: &str) -> Result<Option<i64>> {
        match self.by_name.get(name) {
            None => Ok(None),
            Some(Property {
                value: Literal::Int(i),
                ..
            }) => Ok(Some(*i)),
            Some(Property {
                value: Literal::String(s),
                name: n,
            }) => s.trim().parse().map(Some).map_err(|_| PlanError {
                message: format!("{name} takes a whole number, not '{s}'"),
                pos: n.pos,
            }),
            Some(p) => fail(p.name.pos, format!("{name} takes a whole number")),
        }
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>> {
        match self.by_name.get(name) {
            None => Ok(None),
            Some(Property {
                value: Literal::Boolean(b),
                ..
            }) => Ok(Some(*b)),
            Some(Property {
                value: Literal::String(s),
                name: n,
            }) => match s.to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => fail(n.pos, format!("{name} takes true or false, not '{s}'")),
            },
            Some(p) => fail(p.name.pos, format!("{name} takes true or false")),
        }
    }
}
