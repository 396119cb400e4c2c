//! The aggregate functions' folds: the state each keeps, how a value is added to it (and,
//! over a table, subtracted from it), how two sessions' states merge, and the result.

use crate::value::{Type, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    Latest,
    Earliest,
    CollectList,
    CollectSet,
    CountDistinct,
    /// TOPK / TOPKDISTINCT: the k largest values, largest first.
    TopK {
        k: usize,
        distinct: bool,
    },
}

/// One aggregate call: what it folds, the index of its argument in the argument row, its
/// result type and its state's type.
#[derive(Debug, Clone)]
pub(super) struct Aggregate {
    pub kind: Kind,
    pub arg: Option<usize>,
    pub out: Type,
    pub state: Type,
}

impl Aggregate {
    pub(super) fn init(&self) -> Value {
        match self.kind {
            Kind::Count => Value::Bigint(0),
            Kind::Avg => Value::Array(vec![Value::Double(0.0), Value::Double(0.0)]),
            Kind::CollectList | Kind::CollectSet | Kind::CountDistinct | Kind::TopK { .. } => {
                Value::Array(Vec::new())
            }
            _ => Value::Null,
        }
    }

    pub(super) fn add(&self, state: Value, args: &[Value]) -> Value {
        let v = self
            .arg
            .and_then(|i| args.get(i))
            .cloned()
            .unwrap_or(Value::Null);
        let skip_null =
            !matches!(self.kind, Kind::Count | Kind::Latest | Kind::Earliest) || self.arg.is_some();
        if v.is_null() && skip_null && self.kind != Kind::Latest {
            return state;
        }
        match self.kind {
            Kind::Count => match state {
                Value::Bigint(n) => Value::Bigint(n + 1),
                other => other,
            },
            Kind::Sum => match (&state, &v) {
                (Value::Null, _) => crate::expr::cast(v, &self.out),
                (Value::Int(a), _) => v
                    .as_i64()
                    .map_or(state.clone(), |b| Value::Int(a.wrapping_add(b as i32))),
                (Value::Bigint(a), _) => v
                    .as_i64()
                    .map_or(state.clone(), |b| Value::Bigint(a.wrapping_add(b))),
                (Value::Decimal(a, s), Value::Decimal(b, t)) if s == t => Value::Decimal(a + b, *s),
                _ => match (state.as_f64(), v.as_f64()) {
                    (Some(a), Some(b)) => crate::expr::cast(Value::Double(a + b), &self.out),
                    _ => state,
                },
            },
            Kind::Avg => match (&state, v.as_f64()) {
                (Value::Array(sc), Some(x)) => {
                    let sum = sc.first().and_then(Value::as_f64).unwrap_or(0.0);
                    let count = sc.get(1).and_then(Value::as_f64).unwrap_or(0.0);
                    Value::Array(vec![Value::Double(sum + x), Value::Double(count + 1.0)])
                }
                _ => state,
            },
            Kind::Min | Kind::Max => {
                if state.is_null() {
                    return v;
                }
                let keep_new = match v.compare(&state) {
                    Some(std::cmp::Ordering::Less) => self.kind == Kind::Min,
                    Some(std::cmp::Ordering::Greater) => self.kind == Kind::Max,
                    _ => false,
                };
                if keep_new {
                    v
                } else {
                    state
                }
            }
            Kind::Latest => {
                if v.is_null() {
                    state
                } else {
                    v
                }
            }
            Kind::Earliest => {
                if state.is_null() {
                    v
                } else {
                    state
                }
            }
            Kind::CollectList | Kind::CollectSet | Kind::CountDistinct => match state {
                Value::Array(mut items) => {
                    if self.kind == Kind::CollectList || !items.contains(&v) {
                        items.push(v);
                    }
                    Value::Array(items)
                }
                other => other,
            },
            Kind::TopK { k, distinct } => match state {
                Value::Array(items) => top(items, vec![v], k, distinct),
                other => other,
            },
        }
    }

    /// Whether a value can be taken back out of the state (aggregations over a table,
    /// whose rows change): ksqlDB's undoable aggregates.
    pub(super) fn undoable(&self) -> bool {
        matches!(
            self.kind,
            Kind::Count
                | Kind::Sum
                | Kind::Avg
                | Kind::CollectList
                | Kind::CollectSet
                | Kind::CountDistinct
        )
    }

    /// The state without a value [`Self::add`] put in (a table row that left the group).
    pub(super) fn subtract(&self, state: Value, args: &[Value]) -> Value {
        let v = self
            .arg
            .and_then(|i| args.get(i))
            .cloned()
            .unwrap_or(Value::Null);
        if v.is_null() && (self.kind != Kind::Count || self.arg.is_some()) {
            return state;
        }
        match (self.kind, state) {
            (Kind::Count, Value::Bigint(n)) => Value::Bigint(n - 1),
            (Kind::Sum, state) => match (&state, &v) {
                (Value::Int(a), _) => v
                    .as_i64()
                    .map_or(state.clone(), |b| Value::Int(a.wrapping_sub(b as i32))),
                (Value::Bigint(a), _) => v
                    .as_i64()
                    .map_or(state.clone(), |b| Value::Bigint(a.wrapping_sub(b))),
                (Value::Decimal(a, s), Value::Decimal(b, t)) if s == t => Value::Decimal(a - b, *s),
                _ => match (state.as_f64(), v.as_f64()) {
                    (Some(a), Some(b)) => crate::expr::cast(Value::Double(a - b), &self.out),
                    _ => state,
                },
            },
            (Kind::Avg, Value::Array(sc)) => {
                let sum = sc.first().and_then(Value::as_f64).unwrap_or(0.0);
                let count = sc.get(1).and_then(Value::as_f64).unwrap_or(0.0);
                let x = v.as_f64().unwrap_or(0.0);
                Value::Array(vec![Value::Double(sum - x), Value::Double(count - 1.0)])
            }
            (
                Kind::CollectList | Kind::CollectSet | Kind::CountDistinct,
                Value::Array(mut items),
            ) => {
                if let Some(i) = items.iter().position(|x| *x == v) {
                    items.remove(i);
                }
                Value::Array(items)
            }
            (_, state) => state,
        }
    }

    /// Two sessions' states as one, when a record joins them (`a` is the earlier).
    pub(super) fn merge(&self, a: Value, b: Value) -> Value {
        let (first, second) = (a.clone(), b.clone());
        match self.kind {
            Kind::Count | Kind::Sum => match (&a, &b) {
                (Value::Null, _) => b,
                (_, Value::Null) => a,
                (Value::Int(x), Value::Int(y)) => Value::Int(x.wrapping_add(*y)),
                (Value::Bigint(x), Value::Bigint(y)) => Value::Bigint(x.wrapping_add(*y)),
                (Value::Decimal(x, s), Value::Decimal(y, t)) if s == t => Value::Decimal(x + y, *s),
                _ => match (a.as_f64(), b.as_f64()) {
                    (Some(x), Some(y)) => crate::expr::cast(Value::Double(x + y), &self.out),
                    _ => first,
                },
            },
            Kind::Avg => match (a, b) {
                (Value::Array(x), Value::Array(y)) => Value::Array(
                    x.iter()
                        .zip(&y)
                        .map(|(p, q)| {
                            Value::Double(p.as_f64().unwrap_or(0.0) + q.as_f64().unwrap_or(0.0))
                        })
                        .collect(),
                ),
                _ => first,
            },
            Kind::Min | Kind::Max => {
                if a.is_null() {
                    return b;
                }
                let keep_b = match b.compare(&a) {
                    Some(std::cmp::Ordering::Less) => self.kind == Kind::Min,
                    Some(std::cmp::Ordering::Greater) => self.kind == Kind::Max,
                    _ => false,
                };
                if keep_b {
                    b
                } else {
                    a
                }
            }
            Kind::Earliest => {
                if first.is_null() {
                    second
                } else {
                    first
                }
            }
            Kind::Latest => {
                if second.is_null() {
                    first
                } else {
                    second
                }
            }
            Kind::CollectList | Kind::CollectSet | Kind::CountDistinct => match (a, b) {
                (Value::Array(mut x), Value::Array(y)) => {
                    for v in y {
                        if self.kind == Kind::CollectList || !x.contains(&v) {
                            x.push(v);
                        }
                    }
                    Value::Array(x)
                }
                _ => first,
            },
            Kind::TopK { k, distinct } => match (a, b) {
                (Value::Array(x), Value::Array(y)) => top(x, y, k, distinct),
                _ => first,
            },
        }
    }

    pub(super) fn result(&self, state: &Value) -> Value {
        match (self.kind, state) {
            (Kind::Avg, Value::Array(sc)) => match (
                sc.first().and_then(Value::as_f64),
                sc.get(1).and_then(Value::as_f64),
            ) {
                (Some(sum), Some(n)) if n > 0.0 => Value::Double(sum / n),
                _ => Value::Null,
            },
            (Kind::CountDistinct, Value::Array(items)) => Value::Bigint(items.len() as i64),
            _ => state.clone(),
        }
    }
}

/// `items` and `more` as the `k` largest non-NULL values, largest first.
fn top(mut items: Vec<Value>, more: Vec<Value>, k: usize, distinct: bool) -> Value {
    for v in more {
        if v.is_null() || (distinct && items.contains(&v)) {
            continue;
        }
        items.push(v);
    }
    items.sort_by(|x, y| y.compare(x).unwrap_or(std::cmp::Ordering::Equal));
    items.truncate(k);
    Value::Array(items)
}
