//! Persistent queries compiled onto eddy-streams. Rows travel as `Vec<Value>` (a record's
//! key columns and its value columns), read and written with the sources' formats.
//!
//! This first part compiles stateless queries over one stream: projection, `WHERE`,
//! `PARTITION BY`, into a new stream (`CREATE STREAM .. AS SELECT`) or an existing one
//! (`INSERT INTO .. SELECT`). Aggregations, windows and joins come next.

use std::sync::Arc;

use bytes::Bytes;
use eddy_streams::{
    Consumed, Processor, ProcessorContext, Produced, SerdeError, SerdeRef, Serdes, StreamsBuilder,
    TypedRecord,
};

use crate::ast::{ExprKind, Query, SelectItem, SourceKind};
use crate::catalog::Source;
use crate::expr::error as fail;
use crate::expr::{compile, Compiled, PlanError, Scope, ScopeColumn};
use crate::format::{deserialize, serialize, Format};
use crate::lexer::Pos;
use crate::value::{Type, Value};

type Result<T> = std::result::Result<T, PlanError>;

/// Rows in a format: a Kafka Streams serde over `Vec<Value>`.
struct RowSerde {
    format: Format,
    columns: Vec<(String, Type)>,
}

impl eddy_streams::Serde<Vec<Value>> for RowSerde {
    fn serialize(
        &self,
        topic: &str,
        value: &Vec<Value>,
    ) -> std::result::Result<Option<Bytes>, SerdeError> {
        if self.columns.is_empty() {
            return Ok(None);
        }
        serialize(self.format, &self.columns, value)
            .map(|b| b.map(Bytes::from))
            .map_err(|e| SerdeError {
                serde: "sql-row",
                topic: topic.to_owned(),
                detail: e.0,
            })
    }

    fn deserialize(
        &self,
        topic: &str,
        data: Option<&[u8]>,
    ) -> std::result::Result<Vec<Value>, SerdeError> {
        if self.columns.is_empty() {
            return Ok(Vec::new());
        }
        deserialize(self.format, &self.columns, data).map_err(|e| SerdeError {
            serde: "sql-row",
            topic: topic.to_owned(),
            detail: e.0,
        })
    }
}

pub fn row_serde(format: Format, columns: &[(String, Type)]) -> SerdeRef<Vec<Value>> {
    Arc::new(RowSerde {
        format,
        columns: columns.to_vec(),
    })
}

type RowTime = Arc<dyn Fn(i64, &[Value], &[Value]) -> i64 + Send + Sync>;

/// A row's time when its source names a `TIMESTAMP` column: that column's value (BIGINT
/// milliseconds, TIMESTAMP, or STRING read with `TIMESTAMP_FORMAT`, UTC); the record's own
/// time when the column is NULL or does not parse.
fn row_time(source: &Source) -> Option<RowTime> {
    let (column, format) = source.timestamp.clone()?;
    let find = |cols: &[(String, Type)]| cols.iter().position(|(n, _)| *n == column);
    let (in_key, index) = match find(&source.key_columns) {
        Some(i) => (true, i),
        None => (false, find(&source.value_columns)?),
    };
    let pattern = format.and_then(|f| crate::datetime::Pattern::compile(&f).ok());
    Some(Arc::new(move |ts, key, value| {
        let cell = if in_key {
            key.get(index)
        } else {
            value.get(index)
        };
        match cell {
            Some(Value::Bigint(ms) | Value::Timestamp(ms)) => *ms,
            Some(Value::Int(x)) => i64::from(*x),
            Some(Value::String(s)) => pattern.as_ref().and_then(|p| p.parse(s, 0)).unwrap_or(ts),
            _ => ts,
        }
    }))
}

/// How a stream source is read: its formats, and its TIMESTAMP column as the record time.
pub(crate) fn consumed_rows(source: &Source) -> Consumed<Vec<Value>, Vec<Value>> {
    let consumed = Consumed::with(
        row_serde(source.key_format, &source.key_columns),
        row_serde(source.value_format, &source.value_columns),
    );
    match row_time(source) {
        Some(f) => {
            consumed.with_timestamp_extractor(move |ts, k: &Vec<Value>, v: &Vec<Value>| f(ts, k, v))
        }
        None => consumed,
    }
}

/// What a stateless query writes: its output columns, and how to compute them.
pub struct Projection {
    pub key_columns: Vec<(String, Type)>,
    pub value_columns: Vec<(String, Type)>,
    filter: Option<Compiled>,
    key: Vec<Compiled>,
    value: Vec<Compiled>,
}

/// The pseudo columns every row carries after its key and value columns: the record's
/// time, and the partition and offset it was read from (ksqlDB's ROWPARTITION, ROWOFFSET).
pub(crate) const PSEUDO: [(&str, Type); 3] = [
    ("ROWTIME", Type::Bigint),
    ("ROWPARTITION", Type::Int),
    ("ROWOFFSET", Type::Bigint),
];

/// Appends a record's pseudo columns to its row (partition and offset from `meta`).
pub(crate) fn push_pseudo(
    row: &mut Vec<Value>,
    timestamp_ms: i64,
    meta: Option<&eddy_streams::record::RecordMeta>,
) {
    row.push(Value::Bigint(timestamp_ms));
    match meta {
        Some(m) if m.offset >= 0 => {
            row.push(Value::Int(m.partition));
            row.push(Value::Bigint(m.offset));
        }
        _ => row.extend([Value::Null, Value::Null]),
    }
}

/// The scope of a query over `source`: its key columns, value columns, then the pseudo
/// columns ([`PSEUDO`]).
pub fn source_scope(source: &Source, alias: &str) -> Scope {
    let col = |(n, t): &(String, Type)| ScopeColumn {
        qualifier: Some(alias.to_owned()),
        name: n.clone(),
        ty: t.clone(),
    };
    let mut columns: Vec<ScopeColumn> = source
        .key_columns
        .iter()
        .chain(&source.value_columns)
        .map(col)
        .collect();
    for (name, ty) in PSEUDO {
        columns.push(ScopeColumn {
            qualifier: Some(alias.to_owned()),
            name: name.into(),
            ty,
        });
    }
    Scope { columns }
}

/// A query's `WHERE`, compiled over `scope`: it must be a BOOLEAN.
pub(crate) fn where_clause(query: &Query, scope: &Scope) -> Result<Option<Compiled>> {
    let Some(f) = &query.filter else {
        return Ok(None);
    };
    let c = compile(f, scope)?;
    if !matches!(c.ty, Some(Type::Boolean) | None) {
        return fail(
            f.pos,
            format!("WHERE needs a BOOLEAN, not a {}", crate::expr::shown(&c.ty)),
        );
    }
    Ok(Some(c))
}

/// Plans a stateless query over one stream, or one table (each row of the table mapped;
/// a row `WHERE` refuses is deleted from the result).
pub fn plan_projection(query: &Query, source: &Source) -> Result<Projection> {
    if source.kind == SourceKind::Table {
        if let Some(p) = query.partition_by.first() {
            return fail(
                p.pos,
                format!(
                    "{} is a table, keyed by its PRIMARY KEY: PARTITION BY is for streams",
                    source.name
                ),
            );
        }
    }
    if let Some(j) = query.from.joins.first() {
        return fail(
            j.pos,
            "a join is planned by join::plan, not as a projection",
        );
    }
    if query.window.is_some() || !query.group_by.is_empty() || query.having.is_some() {
        return fail(query.pos, "WINDOW, GROUP BY and HAVING make an aggregation: CREATE TABLE .. AS SELECT .. GROUP BY");
    }
    let alias = query
        .from
        .source
        .alias
        .as_ref()
        .map_or(&source.name, |a| &a.name)
        .clone();
    let scope = source_scope(source, &alias);
    let filter = where_clause(query, &scope)?;
    // The output's key: the PARTITION BY expressions, else the source's key columns.
    let mut key_columns: Vec<(String, Type)> = Vec::new();
    let mut key: Vec<Compiled> = Vec::new();
    if query.partition_by.is_empty() {
        for (i, (n, t)) in source.key_columns.iter().enumerate() {
            key_columns.push((n.clone(), t.clone()));
            key.push(Compiled::from_fn(Some(t.clone()), move |row| {
                row.get(i).cloned().unwrap_or(Value::Null)
            }));
        }
    } else {
        for (i, e) in query.partition_by.iter().enumerate() {
            let c = compile(e, &scope)?;
            let name = match &e.kind {
                ExprKind::Column { name, .. } => name.name.clone(),
                _ => format!("KSQL_COL_{i}"),
            };
            key_columns.push((name, c.ty.clone().unwrap_or(Type::String)));
            key.push(c);
        }
    }
    let mut key_seen = vec![false; key_columns.len()];
    let mut value_columns: Vec<(String, Type)> = Vec::new();
    let mut value: Vec<Compiled> = Vec::new();
    let mut generated = 0;
    for item in &query.select {
        match item {
            SelectItem::Wildcard(_) => {
                for (i, (n, t)) in source
                    .key_columns
                    .iter()
                    .chain(&source.value_columns)
                    .enumerate()
                {
                    if let Some(k) = key_columns.iter().position(|(kn, _)| kn == n) {
                        key_seen[k] = true;
                        continue;
                    }
                    value_columns.push((n.clone(), t.clone()));
                    value.push(Compiled::from_fn(Some(t.clone()), move |row| {
                        row.get(i).cloned().unwrap_or(Value::Null)
                    }));
                }
            }
            SelectItem::QualifiedWildcard(a) => {
                return fail(a.pos, "alias.* is for joins; use *");
            }
            SelectItem::Expr { expr, alias } => {
                let c = compile(expr, &scope)?;
                let column_name = match &expr.kind {
                    ExprKind::Column { name, .. } => Some(name.name.clone()),
                    _ => None,
                };
                // A key column selected (perhaps renamed) stays the key.
                if let Some(k) = column_name
                    .as_ref()
                    .and_then(|n| key_columns.iter().position(|(kn, _)| kn == n))
                {
                    key_seen[k] = true;
                    if let Some(a) = alias {
                        key_columns[k].0 = a.name.clone();
                    }
                    continue;
                }
                let name = match (alias, &expr.kind) {
                    (Some(a), _) => a.name.clone(),
                    (None, ExprKind::Column { name, .. }) => name.name.clone(),
                    (None, ExprKind::Field { field, .. }) => field.name.clone(),
                    _ => {
                        let n = format!("KSQL_COL_{generated}");
                        generated += 1;
                        n
                    }
                };
                if value_columns.iter().any(|(n, _)| *n == name)
                    || key_columns.iter().any(|(n, _)| *n == name)
                {
                    return fail(
                        expr.pos,
                        format!("the query selects {name} twice: give one an alias with AS"),
                    );
                }
                value_columns.push((name, c.ty.clone().unwrap_or(Type::String)));
                value.push(c);
            }
        }
    }
    if query.partition_by.is_empty() {
        if let Some(i) = key_seen.iter().position(|s| !s) {
            return fail(
                query.pos,
                format!(
                    "the query must select the key column {} (the key goes with each row)",
                    key_columns[i].0
                ),
            );
        }
    }
    Ok(Projection {
        key_columns,
        value_columns,
        filter,
        key,
        value,
    })
}

struct ProjectionProcessor {
    projection: Arc<Projection>,
}

impl Processor<Vec<Value>, Vec<Value>, Vec<Value>, Vec<Value>> for ProjectionProcessor {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, Vec<Value>, Vec<Value>>,
        record: TypedRecord<Vec<Value>, Vec<Value>>,
    ) -> eddy_streams::Result<()> {
        let mut row = record.key;
        row.extend(record.value);
        push_pseudo(&mut row, record.timestamp_ms, Some(ctx.record_meta()));
        let p = &self.projection;
        if let Some(f) = &p.filter {
            if f.eval(&row) != Value::Boolean(true) {
                return Ok(());
            }
        }
        let key: Vec<Value> = p.key.iter().map(|c| c.eval(&row)).collect();
        let value: Vec<Value> = p.value.iter().map(|c| c.eval(&row)).collect();
        let mut out = TypedRecord::new(key, value, record.timestamp_ms);
        out.headers = record.headers;
        ctx.forward(out)
    }
}

/// Adds `source` → projection → `sink` to `builder`.
pub fn build_projection(
    builder: &StreamsBuilder,
    source: &Source,
    projection: Projection,
    sink: &Source,
) {
    let key = row_serde(source.key_format, &source.key_columns);
    let value = row_serde(source.value_format, &source.value_columns);
    let out_key = row_serde(sink.key_format, &sink.key_columns);
    let out_value = row_serde(sink.value_format, &sink.value_columns);
    let projection = Arc::new(projection);
    if source.kind == SourceKind::Table {
        // A table's updates as a stream: a tombstone stays one, and so does a row WHERE
        // refuses (it may have matched before).
        let mut consumed = Consumed::with(key, Serdes::nullable(value));
        if let Some(f) = row_time(source) {
            consumed = consumed.with_timestamp_extractor(
                move |ts, k: &Vec<Value>, v: &Option<Vec<Value>>| match v {
                    Some(v) => f(ts, k, v),
                    None => ts,
                },
            );
        }
        builder
            .stream(&[source.topic.as_str()], consumed)
            .process(
                move || ProjectionProcessor {
                    projection: projection.clone(),
                },
                &[],
            )
            .to(
                &sink.topic,
                Produced::with(out_key, Serdes::nullable(out_value)),
            );
        return;
    }
    builder
        .stream(&[source.topic.as_str()], consumed_rows(source))
        .process(
            move || ProjectionProcessor {
                projection: projection.clone(),
            },
            &[],
        )
        .to(&sink.topic, Produced::with(out_key, out_value));
}

impl Processor<Vec<Value>, Option<Vec<Value>>, Vec<Value>, Option<Vec<Value>>>
    for ProjectionProcessor
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, Vec<Value>, Option<Vec<Value>>>,
        record: TypedRecord<Vec<Value>, Option<Vec<Value>>>,
    ) -> eddy_streams::Result<()> {
        let p = &self.projection;
        let meta = ctx.record_meta().clone();
        let value = record.value.and_then(|v| {
            let mut row = record.key.clone();
            row.extend(v);
            push_pseudo(&mut row, record.timestamp_ms, Some(&meta));
            if let Some(f) = &p.filter {
                if f.eval(&row) != Value::Boolean(true) {
                    return None;
                }
            }
            Some(p.value.iter().map(|c| c.eval(&row)).collect::<Vec<Value>>())
        });
        let mut out = TypedRecord::new(record.key, value, record.timestamp_ms);
        out.headers = record.headers;
        ctx.forward(out)
    }
}

/// Runs `statement` into `catalog` and `builder`: declarations join the catalog; a
/// persistent query (`CREATE STREAM .. AS SELECT`, `INSERT INTO .. SELECT`) adds its
/// processors to `builder`.
pub fn apply(
    catalog: &mut crate::catalog::Catalog,
    builder: &StreamsBuilder,
    statement: &crate::ast::Statement,
) -> Result<()> {
    use crate::ast::{Literal, Statement};
    use crate::catalog::Create;
    match statement {
        Statement::CreateSource { .. } => {
            if let Create::Add(s) = catalog.plan_create(statement)? {
                catalog.insert(s);
            }
            Ok(())
        }
        Statement::CreateAsSelect { kind, name, properties, query, if_not_exists, or_replace } => {
            if catalog.get(&name.name).is_some() && !*or_replace {
                if *if_not_exists {
                    return Ok(());
                }
                return fail(name.pos, format!("{} already exists", name.name));
            }
            let source = lookup(catalog, query)?;
            let aggregated = !query.group_by.is_empty();
            let joined = match query.from.joins.first() {
                Some(j) => {
                    let right = catalog.get(&j.source.name.name).cloned().ok_or_else(|| PlanError {
                        message: format!("{} does not exist", j.source.name.name),
                        pos: j.source.name.pos,
                    })?;
                    let planned = crate::join::plan(query, &source, &right, j)?;
                    if planned.result != *kind {
                        let (made, want) = match planned.result {
                            SourceKind::Stream => ("a stream", "CREATE STREAM .. AS SELECT"),
                            SourceKind::Table => ("a table", "CREATE TABLE .. AS SELECT"),
                        };
                        return fail(name.pos, format!("this join makes {made}: {want}"));
                    }
                    Some(planned)
                }
                None => None,
            };
            match (kind, aggregated || joined.is_some()) {
                _ if joined.is_some() => {}
                (SourceKind::Stream, true) => {
                    return fail(name.pos, "an aggregation makes a table: CREATE TABLE .. AS SELECT .. GROUP BY")
                }
                (SourceKind::Table, false) if source.kind == SourceKind::Stream => {
                    return fail(name.pos, format!("{} is a stream: a table made from it needs GROUP BY (or use CREATE STREAM .. AS SELECT)", source.name))
                }
                (SourceKind::Stream, false) if source.kind == SourceKind::Table => {
                    return fail(name.pos, format!("{} is a table, and a query over a table makes a table: CREATE TABLE .. AS SELECT", source.name))
                }
                _ => {}
            }
            let prop = |key: &str| -> Result<Option<String>> {
                match properties.iter().find(|p| p.name.name.eq_ignore_ascii_case(key)) {
                    None => Ok(None),
                    Some(p) => match &p.value {
                        Literal::String(s) => Ok(Some(s.clone())),
                        _ => fail(p.name.pos, format!("{key} takes a quoted string")),
                    },
                }
            };
            for p in properties {
                let known = ["KAFKA_TOPIC", "VALUE_FORMAT", "KEY_FORMAT", "FORMAT", "PARTITIONS", "REPLICAS"];
                if !known.iter().any(|k| p.name.name.eq_ignore_ascii_case(k)) {
                    return fail(p.name.pos, format!("unknown property {}; the properties are {}", p.name.name, known.join(", ")));
                }
            }
            let format_of = |prop_value: Option<String>, default: Format, unwrapped: bool, pos: Pos| -> Result<Format> {
                match prop_value {
                    None => Ok(default),
                    Some(n) => Format::from_name(&n, unwrapped).ok_or_else(|| PlanError {
                        message: format!("unknown format {n}: JSON, DELIMITED or KAFKA"),
                        pos,
                    }),
                }
            };
            let value_format = format_of(prop("VALUE_FORMAT")?.or(prop("FORMAT")?), source.value_format, false, name.pos)?;
            let key_format = format_of(prop("KEY_FORMAT")?.or(prop("FORMAT")?), source.key_format, true, name.pos)?;
            let topic = prop("KAFKA_TOPIC")?.unwrap_or_else(|| name.name.clone());
            if let Some(planned) = joined {
                key_format.check(&planned.key_columns).map_err(|m| PlanError { message: format!("key: {m}"), pos: name.pos })?;
                value_format.check(&planned.value_columns).map_err(|m| PlanError { message: format!("value: {m}"), pos: name.pos })?;
                let sink = Source {
                    name: name.name.clone(),
                    kind: planned.result,
                    topic,
                    key_columns: planned.key_columns.clone(),
                    value_columns: planned.value_columns.clone(),
                    key_format,
                    value_format,
                    timestamp: None,
                    partitions: None,
                    replicas: None,
                    window: None,
                };
                crate::join::build(builder, planned, &sink);
                catalog.insert(sink);
                return Ok(());
            }
            if aggregated {
                let sink = crate::aggregate::build_aggregation(builder, query, &source, name, topic, Some(key_format), Some(value_format))?;
                catalog.insert(sink);
                return Ok(());
            }
            let projection = plan_projection(query, &source)?;
            key_format.check(&projection.key_columns).map_err(|m| PlanError { message: format!("key: {m}"), pos: name.pos })?;
            value_format.check(&projection.value_columns).map_err(|m| PlanError { message: format!("value: {m}"), pos: name.pos })?;
            let sink = Source {
                name: name.name.clone(),
                kind: source.kind,
                topic,
                key_columns: projection.key_columns.clone(),
                value_columns: projection.value_columns.clone(),
                key_format,
                value_format,
                timestamp: None,
                partitions: None,
                replicas: None,
                window: None,
            };
            build_projection(builder, &source, projection, &sink);
            catalog.insert(sink);
            Ok(())
        }
        Statement::InsertSelect { target, query } => {
            let Some(sink) = catalog.get(&target.name).cloned() else {
                return fail(target.pos, format!("INSERT INTO {}: no such stream", target.name));
            };
            let source = lookup(catalog, query)?;
            if source.kind == SourceKind::Table || sink.kind == SourceKind::Table {
                return fail(target.pos, "INSERT INTO .. SELECT reads a stream and writes a stream");
            }
            let projection = plan_projection(query, &source)?;
            if projection.key_columns != sink.key_columns || projection.value_columns != sink.value_columns {
                return fail(
                    query.pos,
                    format!(
                        "the query's columns do not match {}'s: it writes key {:?} value {:?}, {} has key {:?} value {:?}",
                        sink.name, projection.key_columns, projection.value_columns, sink.name, sink.key_columns, sink.value_columns
                    ),
                );
            }
            build_projection(builder, &source, projection, &sink);
            Ok(())
        }
        _ => fail(Pos::default(), "only CREATE STREAM/TABLE, CREATE STREAM AS SELECT and INSERT INTO .. SELECT are compiled yet"),
    }
}

fn lookup(catalog: &crate::catalog::Catalog, query: &Query) -> Result<Source> {
    let name = &query.from.source.name;
    catalog.get(&name.name).cloned().ok_or_else(|| PlanError {
        message: format!(
            "{} does not exist; the streams and tables are {}",
            name.name,
            catalog
                .sources()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        pos: name.pos,
    })
}
