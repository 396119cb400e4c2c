//! Aggregations (`GROUP BY`, optionally `WINDOW`, `HAVING`) compiled onto eddy-streams: a
//! first processor computes each row's group key and the aggregates' arguments (after
//! `WHERE`); the rows are grouped (through a repartition topic) and folded into one state
//! per group; the select list and `HAVING` are computed over the group key and the
//! aggregates' results. The result is a table: each update is written to its topic.

use std::sync::Arc;

use eddy_streams::windows::{session_windowed_serde, time_windowed_serde};
use eddy_streams::{
    Consumed, EmitStrategy, Grouped, Materialized, Processor, ProcessorContext, Produced, Serdes,
    SessionWindows, StreamsBuilder, TimeWindows, TypedRecord,
};

use crate::ast::{Emit, Expr, ExprKind, Ident, Query, SelectItem, SourceKind, WindowSpec};
use crate::catalog::{Source, WindowKind};
use crate::compile::{row_serde, source_scope};
use crate::expr::error as fail;
use crate::expr::{compile, shown, Compiled, PlanError, Scope, ScopeColumn, AGGREGATES};
use crate::format::Format;
use crate::lexer::Pos;
use crate::value::{Type, Value};

type Result<T> = std::result::Result<T, PlanError>;

mod fold;
use fold::{Aggregate, Kind};

/// Replaces each aggregate call in `expr` by a reference to its result column
/// (`KSQL_AGG_n`), collecting the calls.
fn extract(expr: &Expr, calls: &mut Vec<(Ident, Kind, Option<Expr>)>) -> Result<Expr> {
    let rebuilt = |kind: ExprKind| Expr {
        kind,
        pos: expr.pos,
    };
    let sub =
        |e: &Expr, calls: &mut Vec<_>| -> Result<Box<Expr>> { Ok(Box::new(extract(e, calls)?)) };
    Ok(match &expr.kind {
        ExprKind::Function {
            name,
            args,
            star,
            distinct,
        } if AGGREGATES.contains(&name.name.as_str()) => {
            let kind = match (name.name.as_str(), *distinct) {
                ("COUNT", false) => Kind::Count,
                ("COUNT", true) | ("COUNT_DISTINCT", _) => Kind::CountDistinct,
                ("SUM", _) => Kind::Sum,
                ("AVG", _) => Kind::Avg,
                ("MIN", _) => Kind::Min,
                ("MAX", _) => Kind::Max,
                ("LATEST_BY_OFFSET", _) => Kind::Latest,
                ("EARLIEST_BY_OFFSET", _) => Kind::Earliest,
                ("COLLECT_LIST", _) => Kind::CollectList,
                ("COLLECT_SET", _) => Kind::CollectSet,
                ("TOPK" | "TOPKDISTINCT", _) => {
                    let k = match args.get(1).map(|a| &a.kind) {
                        Some(ExprKind::Literal(crate::ast::Literal::Int(k)))
                            if *k > 0 && args.len() == 2 =>
                        {
                            *k as usize
                        }
                        _ => {
                            return fail(
                                name.pos,
                                format!(
                                    "{}(column, k) takes a column and a positive whole number k",
                                    name.name
                                ),
                            )
                        }
                    };
                    Kind::TopK {
                        k,
                        distinct: name.name == "TOPKDISTINCT",
                    }
                }
                (other, _) => return fail(name.pos, format!("{other} is not compiled yet")),
            };
            let args = match kind {
                Kind::TopK { .. } => &args[..1],
                _ => args.as_slice(),
            };
            let arg = match (args, *star, kind) {
                ([], true, Kind::Count) | ([], false, Kind::Count) => None,
                ([a], false, _) => {
                    if let ExprKind::Function { name: inner, .. } = &a.kind {
                        if AGGREGATES.contains(&inner.name.as_str()) {
                            return fail(inner.pos, "an aggregate cannot hold another aggregate");
                        }
                    }
                    Some(a.clone())
                }
                _ => return fail(name.pos, format!("{} takes one argument", name.name)),
            };
            let n = calls.len();
            calls.push((name.clone(), kind, arg));
            rebuilt(ExprKind::Column {
                qualifier: None,
                name: Ident {
                    name: format!("KSQL_AGG_{n}"),
                    pos: name.pos,
                },
            })
        }
        ExprKind::Binary { op, left, right } => rebuilt(ExprKind::Binary {
            op: *op,
            left: sub(left, calls)?,
            right: sub(right, calls)?,
        }),
        ExprKind::Unary { op, expr: e } => rebuilt(ExprKind::Unary {
            op: *op,
            expr: sub(e, calls)?,
        }),
        ExprKind::Cast { expr: e, ty } => rebuilt(ExprKind::Cast {
            expr: sub(e, calls)?,
            ty: ty.clone(),
        }),
        ExprKind::IsNull { expr: e, negated } => rebuilt(ExprKind::IsNull {
            expr: sub(e, calls)?,
            negated: *negated,
        }),
        ExprKind::Between {
            expr: e,
            low,
            high,
            negated,
        } => rebuilt(ExprKind::Between {
            expr: sub(e, calls)?,
            low: sub(low, calls)?,
            high: sub(high, calls)?,
            negated: *negated,
        }),
        ExprKind::Function {
            name,
            args,
            star,
            distinct,
        } => rebuilt(ExprKind::Function {
            name: name.clone(),
            args: args
                .iter()
                .map(|a| extract(a, calls))
                .collect::<Result<_>>()?,
            star: *star,
            distinct: *distinct,
        }),
        _ => expr.clone(),
    })
}

/// How an aggregation is windowed.
enum Windowing {
    Time(TimeWindows, WindowKind),
    Session(SessionWindows),
}

impl Windowing {
    fn kind(&self) -> WindowKind {
        match self {
            Windowing::Time(_, k) => *k,
            Windowing::Session(_) => WindowKind::Session,
        }
    }
}

/// The window of a windowed aggregation.
fn windowing(w: &WindowSpec, emit: Option<Emit>, pos: Pos) -> Result<Windowing> {
    // ksqlDB's default grace period is 24 hours.
    const DEFAULT_GRACE: i64 = 86_400_000;
    match *w {
        WindowSpec::Tumbling {
            size_ms, grace_ms, ..
        } if size_ms > 0 => Ok(Windowing::Time(
            TimeWindows::of_size_and_grace(size_ms, grace_ms.unwrap_or(DEFAULT_GRACE)),
            WindowKind::Tumbling { size_ms },
        )),
        WindowSpec::Hopping {
            size_ms,
            advance_ms,
            grace_ms,
            ..
        } if size_ms > 0 && advance_ms > 0 && advance_ms <= size_ms => Ok(Windowing::Time(
            TimeWindows::of_size_and_grace(size_ms, grace_ms.unwrap_or(DEFAULT_GRACE))
                .advance_by(advance_ms),
            WindowKind::Hopping { size_ms },
        )),
        WindowSpec::Session { .. } if emit == Some(Emit::Final) => fail(
            pos,
            "EMIT FINAL is for TUMBLING and HOPPING windows; a SESSION window emits its changes",
        ),
        WindowSpec::Session {
            gap_ms, grace_ms, ..
        } if gap_ms > 0 => Ok(Windowing::Session(
            SessionWindows::of_inactivity_gap_and_grace(gap_ms, grace_ms.unwrap_or(DEFAULT_GRACE)),
        )),
        WindowSpec::Session { .. } => fail(pos, "a SESSION window's gap must be positive"),
        _ => fail(
            pos,
            "a window's SIZE must be positive and its ADVANCE BY at most its SIZE",
        ),
    }
}

struct PreAggregate {
    filter: Option<Compiled>,
    key: Vec<Compiled>,
    args: Vec<Compiled>,
}

impl PreAggregate {
    /// A row's group key and the aggregates' arguments; None when WHERE refuses the row or
    /// the key has a NULL (ksqlDB drops those).
    fn apply(&self, row: &[Value]) -> Option<(Vec<Value>, Vec<Value>)> {
        if let Some(f) = &self.filter {
            if f.eval(row) != Value::Boolean(true) {
                return None;
            }
        }
        let key: Vec<Value> = self.key.iter().map(|c| c.eval(row)).collect();
        if key.iter().any(Value::is_null) {
            return None;
        }
        Some((key, self.args.iter().map(|c| c.eval(row)).collect()))
    }
}

struct PreAggregateNode(Arc<PreAggregate>);

impl Processor<Vec<Value>, Vec<Value>, Vec<Value>, Vec<Value>> for PreAggregateNode {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, Vec<Value>, Vec<Value>>,
        record: TypedRecord<Vec<Value>, Vec<Value>>,
    ) -> eddy_streams::Result<()> {
        let mut row = record.key;
        row.extend(record.value);
        crate::compile::push_pseudo(&mut row, record.timestamp_ms, Some(ctx.record_meta()));
        match self.0.apply(&row) {
            Some((key, args)) => ctx.forward(TypedRecord::new(key, args, record.timestamp_ms)),
            None => Ok(()),
        }
    }
}

/// The sink of `CREATE TABLE name AS SELECT .. GROUP BY ..`, and the processors that fill it.
pub fn build_aggregation(
    builder: &StreamsBuilder,
    query: &Query,
    source: &Source,
    name: &Ident,
    topic: String,
    key_format: Option<Format>,
    value_format: Option<Format>,
) -> Result<Source> {
    let over_table = source.kind == SourceKind::Table;
    if over_table && query.window.is_some() {
        return fail(
            query.pos,
            format!(
                "{} is a table: a table is aggregated without WINDOW",
                source.name
            ),
        );
    }
    if let Some(j) = query.from.joins.first() {
        return fail(j.pos, "a join with GROUP BY: create the joined stream first, then aggregate it in a second query");
    }
    let alias = query
        .from
        .source
        .alias
        .as_ref()
        .map_or(&source.name, |a| &a.name)
        .clone();
    let scope = source_scope(source, &alias);
    let filter = crate::compile::where_clause(query, &scope)?;
    // Group key.
    let mut key_columns: Vec<(String, Type)> = Vec::new();
    let mut key = Vec::new();
    for (i, e) in query.group_by.iter().enumerate() {
        let c = compile(e, &scope)?;
        let n = match &e.kind {
            ExprKind::Column { name, .. } => name.name.clone(),
            _ => format!("KSQL_COL_{i}"),
        };
        key_columns.push((n, c.ty.clone().unwrap_or(Type::String)));
        key.push(c);
    }
    // Aggregates, from the select list and HAVING.
    let mut calls = Vec::new();
    let mut items = Vec::new();
    for item in &query.select {
        match item {
            SelectItem::Expr { expr, alias } => {
                items.push((extract(expr, &mut calls)?, alias.clone(), expr))
            }
            SelectItem::Wildcard(p) => {
                return fail(
                    *p,
                    "SELECT * cannot be aggregated: name the columns and aggregates",
                )
            }
            SelectItem::QualifiedWildcard(a) => return fail(a.pos, "alias.* cannot be aggregated"),
        }
    }
    let having = query
        .having
        .as_ref()
        .map(|h| extract(h, &mut calls))
        .transpose()?;
    let mut args = Vec::new();
    let mut arg_columns = Vec::new();
    let mut aggregates = Vec::new();
    for (fname, kind, arg) in &calls {
        let compiled = arg.as_ref().map(|a| compile(a, &scope)).transpose()?;
        let arg_ty = compiled.as_ref().and_then(|c| c.ty.clone());
        let numeric = arg_ty.as_ref().is_none_or(Type::is_numeric);
        let ty = arg_ty.clone().unwrap_or(Type::String);
        let (out, state) = match kind {
            Kind::Count | Kind::CountDistinct => (
                Type::Bigint,
                if *kind == Kind::Count {
                    Type::Bigint
                } else {
                    Type::Array(Box::new(ty.clone()))
                },
            ),
            Kind::Sum | Kind::Avg if !numeric => {
                return fail(
                    fname.pos,
                    format!("{} needs a number, not a {}", fname.name, shown(&arg_ty)),
                )
            }
            Kind::Sum => (ty.clone(), ty.clone()),
            Kind::Avg => (Type::Double, Type::Array(Box::new(Type::Double))),
            Kind::CollectList | Kind::CollectSet | Kind::TopK { .. } => (
                Type::Array(Box::new(ty.clone())),
                Type::Array(Box::new(ty.clone())),
            ),
            _ => (ty.clone(), ty.clone()),
        };
        let arg_index = compiled.map(|c| {
            args.push(c);
            arg_columns.push((format!("A{}", arg_columns.len()), ty.clone()));
            arg_columns.len() - 1
        });
        let aggregate = Aggregate {
            kind: *kind,
            arg: arg_index,
            out,
            state,
        };
        if over_table && !aggregate.undoable() {
            return fail(
                fname.pos,
                format!(
                    "{} cannot aggregate a table, whose rows change and leave groups: COUNT, SUM, AVG, COLLECT_LIST, COLLECT_SET and COUNT_DISTINCT can",
                    fname.name
                ),
            );
        }
        aggregates.push(aggregate);
    }
    // The result row: the key columns, then each aggregate's result, then the window.
    let mut result_scope = Scope {
        columns: key_columns
            .iter()
            .map(|(n, t)| ScopeColumn {
                qualifier: Some(alias.clone()),
                name: n.clone(),
                ty: t.clone(),
            })
            .collect(),
    };
    for (i, a) in aggregates.iter().enumerate() {
        result_scope.columns.push(ScopeColumn {
            qualifier: None,
            name: format!("KSQL_AGG_{i}"),
            ty: a.out.clone(),
        });
    }
    let windowed = query
        .window
        .as_ref()
        .map(|w| windowing(w, query.emit, query.pos))
        .transpose()?;
    if windowed.is_some() {
        for n in ["WINDOWSTART", "WINDOWEND"] {
            result_scope.columns.push(ScopeColumn {
                qualifier: None,
                name: n.into(),
                ty: Type::Bigint,
            });
        }
    }
    let mut key_seen = vec![false; key_columns.len()];
    let mut value_columns = Vec::new();
    let mut outputs = Vec::new();
    let mut generated = 0;
    for (e, alias, original) in &items {
        if let ExprKind::Column { name, .. } = &e.kind {
            if let Some(k) = key_columns.iter().position(|(n, _)| *n == name.name) {
                key_seen[k] = true;
                if let Some(a) = alias {
                    key_columns[k].0 = a.name.clone();
                }
                continue;
            }
        }
        let c = compile(e, &result_scope).map_err(|err| {
            if err.message.contains("cannot be resolved") {
                PlanError {
                    message: format!("{}: a column of an aggregation must be in GROUP BY or inside an aggregate function", err.message.split(';').next().unwrap_or("")),
                    pos: err.pos,
                }
            } else {
                err
            }
        })?;
        let n = match (alias, &original.kind) {
            (Some(a), _) => a.name.clone(),
            (None, ExprKind::Column { name, .. }) => name.name.clone(),
            _ => {
                let n = format!("KSQL_COL_{generated}");
                generated += 1;
                n
            }
        };
        value_columns.push((n, c.ty.clone().unwrap_or(Type::String)));
        outputs.push(c);
    }
    if let Some(i) = key_seen.iter().position(|s| !s) {
        return fail(
            query.pos,
            format!(
                "the query must select the GROUP BY column {} (it is the table's key)",
                key_columns[i].0
            ),
        );
    }
    let having = having.map(|h| compile(&h, &result_scope)).transpose()?;
    let key_format = key_format.unwrap_or(source.key_format);
    let value_format = value_format.unwrap_or(source.value_format);
    key_format.check(&key_columns).map_err(|m| PlanError {
        message: format!("key: {m}; set KEY_FORMAT='JSON' for a key of several columns"),
        pos: name.pos,
    })?;
    value_format.check(&value_columns).map_err(|m| PlanError {
        message: format!("value: {m}"),
        pos: name.pos,
    })?;
    let sink = Source {
        name: name.name.clone(),
        kind: SourceKind::Table,
        topic,
        key_columns: key_columns.clone(),
        value_columns: value_columns.clone(),
        key_format,
        value_format,
        timestamp: None,
        partitions: None,
        replicas: None,
        window: windowed.as_ref().map(Windowing::kind),
    };

    // The topology.
    let pre = Arc::new(PreAggregate { filter, key, args });
    let internal = Format::Json { unwrapped: false };
    let key_serde = row_serde(internal, &key_columns);
    let arg_serde = row_serde(internal, &arg_columns);
    let state_columns: Vec<(String, Type)> = aggregates
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("S{i}"), a.state.clone()))
        .collect();
    let state_serde = row_serde(internal, &state_columns);
    let aggs = Arc::new(aggregates);
    let (init_aggs, add_aggs, merge_aggs) = (aggs.clone(), aggs.clone(), aggs.clone());
    let sub_aggs = aggs.clone();
    let init = move || {
        init_aggs
            .iter()
            .map(Aggregate::init)
            .collect::<Vec<Value>>()
    };
    let add = move |_: &Vec<Value>, args: Vec<Value>, state: Vec<Value>| {
        add_aggs
            .iter()
            .zip(state)
            .map(|(a, s)| a.add(s, &args))
            .collect::<Vec<Value>>()
    };
    let materialized = || {
        Materialized::new()
            .with_key_serde(key_serde.clone())
            .with_value_serde(state_serde.clone())
    };
    let finish = Arc::new(
        move |key: &[Value], state: &[Value], window: Option<(i64, i64)>| -> Option<Vec<Value>> {
            let mut row: Vec<Value> = key.to_vec();
            row.extend(aggs.iter().zip(state).map(|(a, s)| a.result(s)));
            if let Some((s, e)) = window {
                row.push(Value::Bigint(s));
                row.push(Value::Bigint(e));
            }
            if let Some(h) = &having {
                if h.eval(&row) != Value::Boolean(true) {
                    return None;
                }
            }
            Some(outputs.iter().map(|c| c.eval(&row)).collect())
        },
    );
    let out_key = row_serde(key_format, &key_columns);
    let out_value = Serdes::nullable(row_serde(value_format, &value_columns));
    if over_table {
        // Each row of the table is in one group at a time: a changed row leaves its old
        // group (its arguments subtracted) and joins its new one. A row WHERE refuses, or
        // whose key has a NULL, is in no group (the NULL placeholder key, never written).
        let table = builder.table(
            &source.topic,
            Consumed::with(
                row_serde(source.key_format, &source.key_columns),
                row_serde(source.value_format, &source.value_columns),
            ),
            Materialized::new(),
        );
        let grouped = table.group_by(
            move |k: &Vec<Value>, v: &Vec<Value>| {
                let mut row = k.clone();
                row.extend(v.iter().cloned());
                row.extend(crate::compile::PSEUDO.map(|_| Value::Null));
                match pre.apply(&row) {
                    Some((key, args)) => (key, Some(args)),
                    None => (vec![Value::Null], None),
                }
            },
            Grouped::with(key_serde.clone(), Serdes::nullable(arg_serde)),
        );
        let subtract = move |args: Vec<Value>, state: Vec<Value>| {
            sub_aggs
                .iter()
                .zip(state)
                .map(|(a, s)| a.subtract(s, &args))
                .collect::<Vec<Value>>()
        };
        grouped
            .aggregate(
                init,
                move |k, args: Option<Vec<Value>>, state| match args {
                    Some(a) => add(k, a, state),
                    None => state,
                },
                move |_, args: Option<Vec<Value>>, state| match args {
                    Some(a) => subtract(a, state),
                    None => state,
                },
                materialized(),
            )
            .to_stream()
            .filter(|k: &Vec<Value>, _| !k.iter().any(Value::is_null))
            .map(move |k, v| {
                let v = v.and_then(|s| finish(&k, &s, None));
                (k, v)
            })
            .to(&sink.topic, Produced::with(out_key, out_value));
        return Ok(sink);
    }
    let grouped = builder
        .stream(
            &[source.topic.as_str()],
            crate::compile::consumed_rows(source),
        )
        .process(move || PreAggregateNode(pre.clone()), &[])
        .group_by_key(Grouped::with(key_serde.clone(), arg_serde));
    match windowed {
        None => {
            grouped
                .aggregate(init, add, materialized())
                .to_stream()
                .map(move |k, v| {
                    let v = v.and_then(|s| finish(&k, &s, None));
                    (k, v)
                })
                .to(&sink.topic, Produced::with(out_key, out_value));
        }
        Some(Windowing::Session(windows)) => {
            let merge_aggs = merge_aggs.clone();
            let merge = move |_: &Vec<Value>, a: Vec<Value>, b: Vec<Value>| {
                merge_aggs
                    .iter()
                    .zip(a.into_iter().zip(b))
                    .map(|(agg, (x, y))| agg.merge(x, y))
                    .collect::<Vec<Value>>()
            };
            grouped
                .session_windowed_by(windows)
                .aggregate(init, add, merge, materialized())
                .to_stream()
                .map(move |k, v| {
                    let window = Some((k.window.start_ms, k.window.end_ms));
                    let v = v.and_then(|s| finish(&k.key, &s, window));
                    (k, v)
                })
                .to(
                    &sink.topic,
                    Produced::with(session_windowed_serde(out_key), out_value),
                );
        }
        Some(Windowing::Time(windows, kind)) => {
            let size = kind.size_ms().unwrap_or_default();
            let emit = match query.emit {
                Some(Emit::Final) => EmitStrategy::OnWindowClose,
                _ => EmitStrategy::OnWindowUpdate,
            };
            grouped
                .windowed_by(windows)
                .emit_strategy(emit)
                .aggregate(init, add, materialized())
                .to_stream()
                .map(move |k, v| {
                    let window = Some((k.window.start_ms, k.window.end_ms));
                    let v = v.and_then(|s| finish(&k.key, &s, window));
                    (k, v)
                })
                .to(
                    &sink.topic,
                    Produced::with(time_windowed_serde(out_key, size), out_value),
                );
        }
    }
    Ok(sink)
}
