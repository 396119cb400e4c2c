//! The select list and `WHERE` of a pull or push query over one stream or table. A row
//! is the source's key columns, its value columns, `ROWTIME`, and for a windowed table
//! `WINDOWSTART` and `WINDOWEND`.

use crate::ast::{Expr, ExprKind, Query, SelectItem};
use crate::catalog::Source;
use crate::compile::source_scope;
use crate::expr::error as fail;
use crate::expr::{compile, Compiled, PlanError, ScopeColumn};
use crate::value::{Type, Value};

pub struct Selection {
    pub names: Vec<String>,
    pub types: Vec<Type>,
    filter: Option<Compiled>,
    exprs: Vec<Compiled>,
    pub windowed: bool,
}

impl Selection {
    /// The selected values of `row`, or None when `WHERE` does not hold.
    pub fn apply(&self, row: &[Value]) -> Option<Vec<Value>> {
        if let Some(f) = &self.filter {
            if f.eval(row) != Value::Boolean(true) {
                return None;
            }
        }
        Some(self.exprs.iter().map(|c| c.eval(row)).collect())
    }

    /// ksqlDB's schema text: "`ID` BIGINT, `NAME` STRING".
    pub fn schema(&self) -> String {
        self.names
            .iter()
            .zip(&self.types)
            .map(|(n, t)| format!("`{n}` {t}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Plans `query` over `source` (which it reads on its own: no joins, no aggregation).
pub fn plan(query: &Query, source: &Source) -> Result<Selection, PlanError> {
    if let Some(j) = query.from.joins.first() {
        return fail(
            j.pos,
            "this query endpoint reads one stream or table; for a join, create it with CREATE STREAM|TABLE .. AS SELECT and query the result",
        );
    }
    if !query.group_by.is_empty() || query.window.is_some() || query.having.is_some() {
        return fail(
            query.pos,
            "aggregations run as persistent queries: CREATE TABLE .. AS SELECT .. GROUP BY, then query the table",
        );
    }
    if let Some(p) = query.partition_by.first() {
        return fail(p.pos, "PARTITION BY belongs in CREATE STREAM .. AS SELECT");
    }
    let alias = query
        .from
        .source
        .alias
        .as_ref()
        .map_or(&source.name, |a| &a.name)
        .clone();
    let mut scope = source_scope(source, &alias);
    let windowed = source.window.is_some();
    if windowed {
        for n in ["WINDOWSTART", "WINDOWEND"] {
            scope.columns.push(ScopeColumn {
                qualifier: Some(alias.clone()),
                name: n.into(),
                ty: Type::Bigint,
            });
        }
    }
    let filter = crate::compile::where_clause(query, &scope)?;
    let (mut names, mut types, mut exprs) = (Vec::new(), Vec::new(), Vec::new());
    let mut generated = 0;
    for item in &query.select {
        match item {
            SelectItem::Wildcard(_) => {
                let visible = source.key_columns.len() + source.value_columns.len();
                for (i, c) in scope.columns.iter().enumerate() {
                    let window = windowed && (c.name == "WINDOWSTART" || c.name == "WINDOWEND");
                    if i >= visible && !window {
                        continue;
                    }
                    names.push(c.name.clone());
                    types.push(c.ty.clone());
                    exprs.push(Compiled::from_fn(Some(c.ty.clone()), move |row| {
                        row.get(i).cloned().unwrap_or(Value::Null)
                    }));
                }
            }
            SelectItem::QualifiedWildcard(a) => {
                return fail(a.pos, "alias.* is for joins; use *");
            }
            SelectItem::Expr { expr, alias } => {
                let c = compile(expr, &scope)?;
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
                if names.contains(&name) {
                    return fail(
                        expr.pos,
                        format!("the query selects {name} twice: give one an alias with AS"),
                    );
                }
                names.push(name);
                types.push(c.ty.clone().unwrap_or(Type::String));
                exprs.push(c);
            }
        }
    }
    Ok(Selection {
        names,
        types,
        filter,
        exprs,
        windowed,
    })
}

/// The key a pull query asks for, when its `WHERE` is `<key column> = <literal>` (alone or
/// in an AND): a lookup instead of a scan.
pub fn key_lookup(filter: Option<&Expr>, source: &Source) -> Option<Vec<Value>> {
    use crate::ast::BinaryOp;
    let [(key_name, key_type)] = source.key_columns.as_slice() else {
        return None;
    };
    let filter = filter?;
    let ExprKind::Binary { op, left, right } = &filter.kind else {
        return None;
    };
    match op {
        BinaryOp::And => key_lookup(Some(left), source).or_else(|| key_lookup(Some(right), source)),
        BinaryOp::Eq => {
            let (column, literal) = match (&left.kind, &right.kind) {
                (ExprKind::Column { name, .. }, ExprKind::Literal(_)) => (name, right),
                (ExprKind::Literal(_), ExprKind::Column { name, .. }) => (name, left),
                _ => return None,
            };
            if column.name != *key_name {
                return None;
            }
            let empty = crate::expr::Scope {
                columns: Vec::new(),
            };
            let value = compile(literal, &empty).ok()?.eval(&[]);
            Some(vec![crate::expr::cast(value, key_type)])
        }
        _ => None,
    }
}
