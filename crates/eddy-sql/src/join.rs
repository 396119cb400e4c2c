//! Joins compiled onto eddy-streams, as ksqlDB runs them:
//!
//! - stream-stream (`WITHIN`, optional `GRACE PERIOD`; ksqlDB's default grace is 24 hours):
//!   INNER, LEFT, FULL OUTER — a windowed join; the result is a stream.
//! - stream-table: INNER, LEFT — each stream record looks the table's current row up; a
//!   stream.
//! - table-table on the primary key: INNER, LEFT, FULL OUTER — a table.
//!
//! The criteria is one equality between a column of each side. A stream joined on a column
//! other than its key is repartitioned by it; a table must be joined on its primary key.
//! `WHERE` applies to the joined rows. A joined row is the left side's columns (keys,
//! values, ROWTIME) then the right side's; `SELECT *` names them `<ALIAS>_<COLUMN>`. The
//! result's key is the join key, named by the first selected column of the criteria.

use std::sync::Arc;

use eddy_streams::{
    Consumed, JoinWindows, Joined, KStream, KTable, Materialized, Processor, ProcessorContext,
    Produced, Repartitioned, Serdes, StreamJoined, StreamsBuilder, TypedRecord,
};

use crate::ast::{BinaryOp, ExprKind, Join, JoinKind, Query, SelectItem, SourceKind};
use crate::catalog::Source;
use crate::compile::row_serde;
use crate::expr::error as fail;
use crate::expr::{compile, Compiled, PlanError, Scope, ScopeColumn};
use crate::format::Format;
use crate::value::{Type, Value};

type Result<T> = std::result::Result<T, PlanError>;

const PSEUDO_COUNT: usize = crate::compile::PSEUDO.len();

/// ksqlDB's default grace period of a join window.
const DEFAULT_GRACE_MS: i64 = 86_400_000;

/// One side of a join.
struct Side {
    source: Source,
    alias: String,
    /// Index of the join column in this side's row.
    join_column: usize,
    /// Whether the join column is the source's (single) key column.
    on_key: bool,
}

impl Side {
    fn row_columns(&self) -> Vec<(String, Type)> {
        let mut c: Vec<(String, Type)> = self
            .source
            .key_columns
            .iter()
            .chain(&self.source.value_columns)
            .cloned()
            .collect();
        c.extend(crate::compile::PSEUDO.map(|(n, t)| (n.to_owned(), t)));
        c
    }

    fn width(&self) -> usize {
        self.source.key_columns.len() + self.source.value_columns.len() + PSEUDO_COUNT
    }
}

/// A join planned: the sides, the scope of a joined row, and what the query writes.
pub struct PlannedJoin {
    left: Side,
    right: Side,
    kind: JoinKind,
    within: Option<JoinWindows>,
    filter: Option<Compiled>,
    value: Vec<Compiled>,
    pub key_columns: Vec<(String, Type)>,
    pub value_columns: Vec<(String, Type)>,
    /// Stream or table.
    pub result: SourceKind,
}

fn find_column(side: &Side, qualifier: Option<&str>, name: &str) -> Option<usize> {
    if qualifier.is_some_and(|q| q != side.alias) {
        return None;
    }
    side.row_columns().iter().position(|(n, _)| n == name)
}

/// Plans `query`, whose FROM is `left` joined with `right` by `join`.
pub fn plan(query: &Query, left: &Source, right: &Source, join: &Join) -> Result<PlannedJoin> {
    if query.from.joins.len() > 1 {
        return fail(
            query.from.joins[1].pos,
            "one join per query: join the result of a first query in a second one",
        );
    }
    if !query.group_by.is_empty() || query.window.is_some() {
        return fail(query.pos, "a join with GROUP BY: create the joined stream first, then aggregate it in a second query");
    }
    if let Some(p) = query.partition_by.first() {
        return fail(
            p.pos,
            "PARTITION BY on a join: repartition the joined stream in a second query",
        );
    }
    let alias_of =
        |s: &crate::ast::AliasedSource| s.alias.as_ref().map_or(&s.name, |a| a).name.clone();
    let mut l = Side {
        source: left.clone(),
        alias: alias_of(&query.from.source),
        join_column: 0,
        on_key: false,
    };
    let mut r = Side {
        source: right.clone(),
        alias: alias_of(&join.source),
        join_column: 0,
        on_key: false,
    };
    if l.alias == r.alias {
        return fail(
            join.source.name.pos,
            format!(
                "both sides of the join are called {}: give one an alias (FROM a x JOIN a y ..)",
                l.alias
            ),
        );
    }
    let kind = join.kind;
    let result = match (left.kind, right.kind, kind) {
        (_, _, JoinKind::Right) => return fail(join.pos, "RIGHT JOIN: swap the sides and use LEFT JOIN"),
        (SourceKind::Stream, SourceKind::Stream, _) => {
            if join.within.is_none() {
                return fail(join.pos, "a stream-stream join needs a window: .. JOIN s2 WITHIN 10 SECONDS ON ..");
            }
            SourceKind::Stream
        }
        (SourceKind::Stream, SourceKind::Table, JoinKind::Full) => {
            return fail(join.pos, "a stream-table join is INNER or LEFT, not FULL OUTER")
        }
        (SourceKind::Stream, SourceKind::Table, _) => SourceKind::Stream,
        (SourceKind::Table, SourceKind::Stream, _) => {
            return fail(join.pos, "a table cannot be joined with a stream on its right: put the stream first (FROM stream JOIN table)")
        }
        (SourceKind::Table, SourceKind::Table, _) => SourceKind::Table,
    };
    let stream_stream = left.kind == SourceKind::Stream && right.kind == SourceKind::Stream;
    if !stream_stream && join.within.is_some() {
        return fail(join.pos, "WITHIN is for stream-stream joins only");
    }
    // The criteria: one equality between a column of each side.
    let ExprKind::Binary {
        op: BinaryOp::Eq,
        left: a,
        right: b,
    } = &join.on.kind
    else {
        return fail(
            join.on.pos,
            "the join criteria must be an equality of a column of each side: ON a.id = b.id",
        );
    };
    let column = |e: &crate::ast::Expr| match &e.kind {
        ExprKind::Column { qualifier, name } => Some((
            qualifier.as_ref().map(|q| q.name.clone()),
            name.name.clone(),
        )),
        _ => None,
    };
    let (Some(ca), Some(cb)) = (column(a), column(b)) else {
        return fail(
            join.on.pos,
            "the join criteria must compare columns: ON a.id = b.id",
        );
    };
    let resolve = |(q, n): &(Option<String>, String), pos| -> Result<(bool, usize)> {
        let in_l = find_column(&l, q.as_deref(), n);
        let in_r = find_column(&r, q.as_deref(), n);
        match (in_l, in_r) {
            (Some(_), Some(_)) => fail(
                pos,
                format!(
                    "{n} is a column of both sides: qualify it ({}.{n} or {}.{n})",
                    l.alias, r.alias
                ),
            ),
            (Some(i), None) => Ok((true, i)),
            (None, Some(i)) => Ok((false, i)),
            (None, None) => fail(
                pos,
                format!(
                    "{}{n} is not a column of {} or {}",
                    q.as_ref().map(|q| format!("{q}.")).unwrap_or_default(),
                    l.alias,
                    r.alias
                ),
            ),
        }
    };
    let ra = resolve(&ca, a.pos)?;
    let rb = resolve(&cb, b.pos)?;
    let (li, ri) = match (ra, rb) {
        ((true, i), (false, j)) | ((false, j), (true, i)) => (i, j),
        _ => return fail(
            join.on.pos,
            "the join criteria must compare a column of the left side with one of the right side",
        ),
    };
    for (side, i) in [(&mut l, li), (&mut r, ri)] {
        side.join_column = i;
        side.on_key = side.source.key_columns.len() == 1 && i == 0;
        if side.source.kind == SourceKind::Table && !side.on_key {
            return fail(join.on.pos, format!("table {} must be joined on its PRIMARY KEY ({}); joins on other columns of a table are not supported", side.source.name, side.source.key_columns.first().map_or("none", |(n, _)| n.as_str())));
        }
    }
    let (lt, rt) = (&l.row_columns()[li].1, &r.row_columns()[ri].1);
    if lt != rt {
        return fail(
            join.on.pos,
            format!("the join columns have different types: {lt} and {rt}; CAST one of them"),
        );
    }
    if l.on_key && r.on_key && l.source.key_format != r.source.key_format {
        return fail(join.on.pos, format!(
            "{} and {} serialize their keys differently ({:?} and {:?}), so equal keys are in different partitions; declare both with the same KEY_FORMAT",
            l.source.name, r.source.name, l.source.key_format, r.source.key_format
        ));
    }
    let within = join.within.map(|w| {
        JoinWindows::of_time_difference_and_grace(0, w.grace_ms.unwrap_or(DEFAULT_GRACE_MS))
            .before(w.before_ms)
            .after(w.after_ms)
    });
    // The joined row's scope.
    let mut scope = Scope {
        columns: Vec::new(),
    };
    for side in [&l, &r] {
        for (n, t) in side.row_columns() {
            scope.columns.push(ScopeColumn {
                qualifier: Some(side.alias.clone()),
                name: n,
                ty: t,
            });
        }
    }
    let filter = crate::compile::where_clause(query, &scope)?;
    let left_join_index = li;
    let right_join_index = l.width() + ri;
    let (mut key_columns, mut value_columns, mut value) = (Vec::new(), Vec::new(), Vec::new());
    let mut generated = 0;
    let mut push = |name: String, ty: Type, c: Compiled, is_key: bool, pos| -> Result<()> {
        if key_columns
            .iter()
            .chain(&value_columns)
            .any(|(n, _): &(String, Type)| *n == name)
        {
            return fail(
                pos,
                format!("the query selects {name} twice: give one an alias with AS"),
            );
        }
        if is_key && key_columns.is_empty() {
            key_columns.push((name, ty));
        } else {
            value_columns.push((name, ty));
            value.push(c);
        }
        Ok(())
    };
    for item in &query.select {
        match item {
            SelectItem::Wildcard(pos)
            | SelectItem::QualifiedWildcard(crate::ast::Ident { pos, .. }) => {
                let only = match item {
                    SelectItem::QualifiedWildcard(a) => {
                        if a.name != l.alias && a.name != r.alias {
                            return fail(
                                a.pos,
                                format!(
                                    "{}.*: {} is neither {} nor {}",
                                    a.name, a.name, l.alias, r.alias
                                ),
                            );
                        }
                        Some(a.name.clone())
                    }
                    _ => None,
                };
                let mut offset = 0;
                for side in [&l, &r] {
                    let cols = side.row_columns();
                    let visible = cols.len() - PSEUDO_COUNT;
                    if only.as_ref().is_none_or(|a| *a == side.alias) {
                        for (i, (n, t)) in cols.into_iter().take(visible).enumerate() {
                            let at = offset + i;
                            let is_key = at == left_join_index || at == right_join_index;
                            push(
                                format!("{}_{n}", side.alias),
                                t.clone(),
                                Compiled::from_fn(Some(t), move |row| {
                                    row.get(at).cloned().unwrap_or(Value::Null)
                                }),
                                is_key,
                                *pos,
                            )?;
                        }
                    }
                    offset += side.width();
                }
            }
            SelectItem::Expr { expr, alias } => {
                let c = compile(expr, &scope)?;
                let (is_key, column_name) = match &expr.kind {
                    ExprKind::Column { qualifier, name } => {
                        let q = qualifier.as_ref().map(|q| q.name.as_str());
                        let at = find_column(&l, q, &name.name)
                            .or_else(|| find_column(&r, q, &name.name).map(|i| l.width() + i));
                        (
                            at == Some(left_join_index) || at == Some(right_join_index),
                            Some(name.name.clone()),
                        )
                    }
                    _ => (false, None),
                };
                let name = match (alias, column_name, &expr.kind) {
                    (Some(a), _, _) => a.name.clone(),
                    (None, Some(n), _) => n,
                    (None, None, ExprKind::Field { field, .. }) => field.name.clone(),
                    _ => {
                        generated += 1;
                        format!("KSQL_COL_{}", generated - 1)
                    }
                };
                push(
                    name,
                    c.ty.clone().unwrap_or(Type::String),
                    c,
                    is_key,
                    expr.pos,
                )?;
            }
        }
    }
    if key_columns.is_empty() {
        return fail(
            query.pos,
            format!(
                "the query must select the join key ({}.{} or {}.{}): it is the key of the result",
                l.alias,
                l.row_columns()[li].0,
                r.alias,
                r.row_columns()[ri].0
            ),
        );
    }
    Ok(PlannedJoin {
        left: l,
        right: r,
        kind,
        within,
        filter,
        value,
        key_columns,
        value_columns,
        result,
    })
}

/// Each record of a stream side as (join key, its full row: keys, values, ROWTIME).
struct PrepareSide {
    join_column: usize,
}

impl Processor<Vec<Value>, Vec<Value>, Vec<Value>, Vec<Value>> for PrepareSide {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, Vec<Value>, Vec<Value>>,
        record: TypedRecord<Vec<Value>, Vec<Value>>,
    ) -> eddy_streams::Result<()> {
        let mut row = record.key;
        row.extend(record.value);
        crate::compile::push_pseudo(&mut row, record.timestamp_ms, Some(ctx.record_meta()));
        let key = row.get(self.join_column).cloned().unwrap_or(Value::Null);
        // ksqlDB drops records whose join key is NULL.
        if key.is_null() {
            return Ok(());
        }
        let mut out = TypedRecord::new(vec![key], row, record.timestamp_ms);
        out.headers = record.headers;
        ctx.forward(out)
    }
}

/// After the join: fills the key columns of table sides, applies WHERE, computes the
/// selected columns. Table results forward deletes as `None`.
struct Finish {
    join: Arc<PlannedJoin>,
}

impl Finish {
    fn row(&self, key: &[Value], mut row: Vec<Value>) -> Option<Vec<Value>> {
        let present_right = row.pop() == Some(Value::Boolean(true));
        let present_left = row.pop() == Some(Value::Boolean(true));
        let j = &self.join;
        let k = key.first().cloned().unwrap_or(Value::Null);
        if j.left.source.kind == SourceKind::Table && present_left {
            row[j.left.join_column] = k.clone();
        }
        if j.right.source.kind == SourceKind::Table && present_right {
            row[j.left.width() + j.right.join_column] = k;
        }
        if let Some(f) = &j.filter {
            if f.eval(&row) != Value::Boolean(true) {
                return None;
            }
        }
        Some(j.value.iter().map(|c| c.eval(&row)).collect())
    }
}

impl Processor<Vec<Value>, Vec<Value>, Vec<Value>, Vec<Value>> for Finish {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, Vec<Value>, Vec<Value>>,
        record: TypedRecord<Vec<Value>, Vec<Value>>,
    ) -> eddy_streams::Result<()> {
        let Some(value) = self.row(&record.key, record.value) else {
            return Ok(());
        };
        let mut out = TypedRecord::new(record.key, value, record.timestamp_ms);
        out.headers = record.headers;
        ctx.forward(out)
    }
}

impl Processor<Vec<Value>, Option<Vec<Value>>, Vec<Value>, Option<Vec<Value>>> for Finish {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, Vec<Value>, Option<Vec<Value>>>,
        record: TypedRecord<Vec<Value>, Option<Vec<Value>>>,
    ) -> eddy_streams::Result<()> {
        // A row that no longer matches WHERE is deleted from the result.
        let value = record.value.and_then(|v| self.row(&record.key, v));
        let mut out = TypedRecord::new(record.key, value, record.timestamp_ms);
        out.headers = record.headers;
        ctx.forward(out)
    }
}

/// The joined row from each side's part (or NULLs), with two presence flags at the end.
fn joined(
    left_width: usize,
    right_width: usize,
    left_table_keys: usize,
    right_table_keys: usize,
    l: Option<&Vec<Value>>,
    r: Option<&Vec<Value>>,
) -> Vec<Value> {
    let mut row = Vec::with_capacity(left_width + right_width + 2);
    let part =
        |row: &mut Vec<Value>, width: usize, table_keys: usize, v: Option<&Vec<Value>>| match v {
            None => row.extend(std::iter::repeat_n(Value::Null, width)),
            Some(v) => {
                // A table side's value has no key columns nor ROWTIME: NULLs, keys filled later.
                row.extend(std::iter::repeat_n(Value::Null, table_keys));
                row.extend(v.iter().cloned());
                row.resize(
                    row.len() + (width - table_keys - v.len()).min(width),
                    Value::Null,
                );
            }
        };
    part(&mut row, left_width, left_table_keys, l);
    part(&mut row, right_width, right_table_keys, r);
    row.push(Value::Boolean(l.is_some()));
    row.push(Value::Boolean(r.is_some()));
    row
}

/// Adds the join to `builder`, writing to `sink` (whose columns are the plan's).
pub fn build(builder: &StreamsBuilder, join: PlannedJoin, sink: &Source) {
    let internal = Format::Json { unwrapped: false };
    // Records meet in the partition of their join key: a side joined on its key stays
    // where it is, and a side repartitioned by a column is written with that key's format.
    let key_serde = if join.left.on_key {
        row_serde(join.left.source.key_format, &join.left.source.key_columns)
    } else if join.right.on_key {
        row_serde(join.right.source.key_format, &join.right.source.key_columns)
    } else {
        let key_type = join.left.row_columns()[join.left.join_column].1.clone();
        row_serde(internal, &[("K".into(), key_type)])
    };
    let (lw, rw) = (join.left.width(), join.right.width());
    let table_keys = |s: &Side| {
        if s.source.kind == SourceKind::Table {
            s.source.key_columns.len()
        } else {
            0
        }
    };
    let (lk, rk) = (table_keys(&join.left), table_keys(&join.right));
    let stream_side = |side: &Side| -> KStream<Vec<Value>, Vec<Value>> {
        let s = builder.stream(
            &[side.source.topic.as_str()],
            crate::compile::consumed_rows(&side.source),
        );
        let prepare = side.join_column;
        let row_serde = row_serde(internal, &side.row_columns());
        if side.on_key {
            s.process_values(
                move || PrepareSide {
                    join_column: prepare,
                },
                &[],
            )
        } else {
            s.process(
                move || PrepareSide {
                    join_column: prepare,
                },
                &[],
            )
            .repartition(Repartitioned::with(key_serde.clone(), row_serde))
        }
    };
    let table_side = |side: &Side| -> KTable<Vec<Value>, Vec<Value>> {
        builder.table(
            &side.source.topic,
            Consumed::with(
                row_serde(side.source.key_format, &side.source.key_columns),
                row_serde(side.source.value_format, &side.source.value_columns),
            ),
            Materialized::new(),
        )
    };
    let out_key = row_serde(sink.key_format, &sink.key_columns);
    let out_value = row_serde(sink.value_format, &sink.value_columns);
    let kind = join.kind;
    let within = join.within;
    let (ls, rs) = (join.left.source.kind, join.right.source.kind);
    let lrow = row_serde(internal, &join.left.row_columns());
    let rrow = row_serde(internal, &join.right.row_columns());
    let finish = Arc::new(join);
    let f1 = finish.clone();
    let j = move |l: Option<&Vec<Value>>, r: Option<&Vec<Value>>| joined(lw, rw, lk, rk, l, r);
    match (ls, rs) {
        (SourceKind::Stream, SourceKind::Stream) => {
            let (l, r) = (stream_side(&f1.left), stream_side(&f1.right));
            let windows = within
                .unwrap_or_else(|| JoinWindows::of_time_difference_and_grace(0, DEFAULT_GRACE_MS));
            let sj = StreamJoined::with(key_serde.clone(), lrow, rrow);
            let out = match kind {
                JoinKind::Inner => l.join(&r, move |a, b| j(Some(a), Some(b)), windows, sj),
                JoinKind::Left => l.left_join(&r, move |a, b| j(Some(a), b), windows, sj),
                _ => l.outer_join(&r, j, windows, sj),
            };
            out.process(
                move || Finish {
                    join: finish.clone(),
                },
                &[],
            )
            .to(&sink.topic, Produced::with(out_key, out_value));
        }
        (SourceKind::Stream, SourceKind::Table) => {
            let (l, t) = (stream_side(&f1.left), table_side(&f1.right));
            let joined_with = Joined::with(key_serde.clone(), lrow);
            let out = match kind {
                JoinKind::Inner => l.join_table(&t, move |a, b| j(Some(a), Some(b)), joined_with),
                _ => l.left_join_table(&t, move |a, b| j(Some(a), b), joined_with),
            };
            out.process(
                move || Finish {
                    join: finish.clone(),
                },
                &[],
            )
            .to(&sink.topic, Produced::with(out_key, out_value));
        }
        _ => {
            let (l, r) = (table_side(&f1.left), table_side(&f1.right));
            let out = match kind {
                JoinKind::Inner => l.join(&r, move |a, b| j(Some(a), Some(b))),
                JoinKind::Left => l.left_join(&r, move |a, b| j(Some(a), b)),
                _ => l.outer_join(&r, j),
            };
            out.to_stream()
                .process::<Vec<Value>, Option<Vec<Value>>, _>(
                    move || Finish {
                        join: finish.clone(),
                    },
                    &[],
                )
                .to(
                    &sink.topic,
                    Produced::with(out_key, Serdes::nullable(out_value)),
                );
        }
    }
}
