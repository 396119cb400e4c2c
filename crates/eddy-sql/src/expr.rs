//! Expressions checked against the columns in scope and turned into closures over a row.
//! Type errors are found here, before anything runs, and name where they are. At run time
//! an expression that cannot be computed (division by zero, a bad cast) gives NULL, as
//! ksqlDB's do.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use crate::ast::{BinaryOp, Expr, ExprKind, Literal, UnaryOp};
use crate::lexer::Pos;
use crate::value::{align, parse_decimal, Type, Value};

/// A statement that parses but cannot be planned: the problem and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanError {
    pub message: String,
    pub pos: Pos,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error at {}: {}", self.pos, self.message)
    }
}

impl std::error::Error for PlanError {}

type Result<T> = std::result::Result<T, PlanError>;

/// A plan error at `pos`; every planning module reports through this.
pub(crate) fn error<T>(pos: Pos, message: impl Into<String>) -> Result<T> {
    Err(PlanError {
        message: message.into(),
        pos,
    })
}

/// A column an expression may name: `qualifier.name`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeColumn {
    pub qualifier: Option<String>,
    pub name: String,
    pub ty: Type,
}

/// The columns of the row an expression reads, in row order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    pub columns: Vec<ScopeColumn>,
}

impl Scope {
    fn resolve(&self, qualifier: Option<&str>, name: &str, pos: Pos) -> Result<(usize, &Type)> {
        let found: Vec<usize> = (0..self.columns.len())
            .filter(|&i| {
                let c = &self.columns[i];
                c.name == name && qualifier.is_none_or(|q| c.qualifier.as_deref() == Some(q))
            })
            .collect();
        let shown = || match qualifier {
            Some(q) => format!("{q}.{name}"),
            None => name.to_owned(),
        };
        match found.as_slice() {
            [i] => Ok((*i, &self.columns[*i].ty)),
            [] => error(
                pos,
                format!(
                    "column {} cannot be resolved; the columns are {}",
                    shown(),
                    self.columns
                        .iter()
                        .map(|c| match &c.qualifier {
                            Some(q) => format!("{q}.{}", c.name),
                            None => c.name.clone(),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            _ => error(
                pos,
                format!(
                    "column {} is ambiguous: qualify it with its source",
                    shown()
                ),
            ),
        }
    }
}

type Eval = Arc<dyn Fn(&[Value]) -> Value + Send + Sync>;

/// A checked expression: its type (None: a bare NULL, of any type) and how to compute it.
#[derive(Clone)]
pub struct Compiled {
    pub ty: Option<Type>,
    eval: Eval,
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Compiled({:?})", self.ty)
    }
}

impl Compiled {
    pub fn eval(&self, row: &[Value]) -> Value {
        (self.eval)(row)
    }

    pub(crate) fn from_fn(
        ty: Option<Type>,
        eval: impl Fn(&[Value]) -> Value + Send + Sync + 'static,
    ) -> Self {
        Compiled {
            ty,
            eval: Arc::new(eval),
        }
    }
}

/// Names of the aggregate functions, which only a GROUP BY query may call.
pub const AGGREGATES: &[&str] = &[
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "LATEST_BY_OFFSET",
    "EARLIEST_BY_OFFSET",
    "COLLECT_LIST",
    "COLLECT_SET",
    "TOPK",
    "TOPKDISTINCT",
    "COUNT_DISTINCT",
];

/// Checks `expr` against `scope` and returns how to compute it.
pub fn compile(expr: &Expr, scope: &Scope) -> Result<Compiled> {
    let pos = expr.pos;
    match &expr.kind {
        ExprKind::Literal(l) => literal(l, pos),
        ExprKind::Column { qualifier, name } => {
            let (i, ty) = scope.resolve(
                qualifier.as_ref().map(|q| q.name.as_str()),
                &name.name,
                name.pos,
            )?;
            Ok(Compiled::from_fn(Some(ty.clone()), move |row| {
                row.get(i).cloned().unwrap_or(Value::Null)
            }))
        }
        ExprKind::Binary { op, left, right } => binary(
            *op,
            compile(left, scope)?,
            compile(right, scope)?,
            left.pos,
            right.pos,
        ),
        ExprKind::Unary { op, expr } => {
            let e = compile(expr, scope)?;
            match op {
                UnaryOp::Not => {
                    expect_boolean(&e, expr.pos, "NOT")?;
                    Ok(Compiled::from_fn(Some(Type::Boolean), move |row| {
                        match e.eval(row) {
                            Value::Boolean(b) => Value::Boolean(!b),
                            _ => Value::Null,
                        }
                    }))
                }
                UnaryOp::Neg => {
                    if !e.ty.as_ref().is_none_or(Type::is_numeric) {
                        return error(expr.pos, format!("cannot negate a {}", shown(&e.ty)));
                    }
                    let ty = e.ty.clone();
                    Ok(Compiled::from_fn(ty, move |row| match e.eval(row) {
                        Value::Int(i) => i.checked_neg().map_or(Value::Null, Value::Int),
                        Value::Bigint(i) => i.checked_neg().map_or(Value::Null, Value::Bigint),
                        Value::Double(d) => Value::Double(-d),
                        Value::Decimal(u, s) => Value::Decimal(-u, s),
                        _ => Value::Null,
                    }))
                }
            }
        }
        ExprKind::IsNull { expr, negated } => {
            let e = compile(expr, scope)?;
            let negated = *negated;
            Ok(Compiled::from_fn(Some(Type::Boolean), move |row| {
                Value::Boolean(e.eval(row).is_null() != negated)
            }))
        }
        ExprKind::Between {
            expr,
            low,
            high,
            negated,
        } => {
            let e = compile(expr, scope)?;
            let lo = compile(low, scope)?;
            let hi = compile(high, scope)?;
            comparable(&e, &lo, low.pos)?;
            comparable(&e, &hi, high.pos)?;
            let negated = *negated;
            Ok(Compiled::from_fn(Some(Type::Boolean), move |row| {
                let v = e.eval(row);
                match (v.compare(&lo.eval(row)), v.compare(&hi.eval(row))) {
                    (Some(a), Some(b)) => {
                        Value::Boolean((a != Ordering::Less && b != Ordering::Greater) != negated)
                    }
                    _ => Value::Null,
                }
            }))
        }
        ExprKind::InList {
            expr,
            list,
            negated,
        } => {
            let e = compile(expr, scope)?;
            let items = list
                .iter()
                .map(|x| {
                    let c = compile(x, scope)?;
                    comparable(&e, &c, x.pos)?;
                    Ok(c)
                })
                .collect::<Result<Vec<_>>>()?;
            let negated = *negated;
            Ok(Compiled::from_fn(Some(Type::Boolean), move |row| {
                let v = e.eval(row);
                if v.is_null() {
                    return Value::Null;
                }
                let found = items
                    .iter()
                    .any(|i| v.compare(&i.eval(row)) == Some(Ordering::Equal));
                Value::Boolean(found != negated)
            }))
        }
        ExprKind::Like {
            expr,
            pattern,
            escape,
            negated,
        } => {
            let e = compile(expr, scope)?;
            let p = compile(pattern, scope)?;
            expect(&e, &Type::String, expr.pos, "LIKE")?;
            expect(&p, &Type::String, pattern.pos, "a LIKE pattern")?;
            let escape = escape.as_ref().and_then(|s| s.chars().next());
            let negated = *negated;
            Ok(Compiled::from_fn(Some(Type::Boolean), move |row| {
                match (e.eval(row), p.eval(row)) {
                    (Value::String(s), Value::String(pat)) => {
                        Value::Boolean(like(&s, &pat, escape) != negated)
                    }
                    _ => Value::Null,
                }
            }))
        }
        ExprKind::Case {
            operand,
            whens,
            otherwise,
        } => {
            let operand = operand.as_ref().map(|o| compile(o, scope)).transpose()?;
            let mut arms = Vec::new();
            let mut ty: Option<Type> = None;
            for (cond, then) in whens {
                let c = compile(cond, scope)?;
                match &operand {
                    Some(o) => comparable(o, &c, cond.pos)?,
                    None => expect_boolean(&c, cond.pos, "WHEN")?,
                }
                let t = compile(then, scope)?;
                ty = unify(ty, &t, then.pos)?;
                arms.push((c, t));
            }
            let otherwise = match otherwise {
                Some(o) => {
                    let c = compile(o, scope)?;
                    ty = unify(ty, &c, o.pos)?;
                    Some(c)
                }
                None => None,
            };
            Ok(Compiled::from_fn(ty, move |row| {
                let subject = operand.as_ref().map(|o| o.eval(row));
                for (c, t) in &arms {
                    let hit = match &subject {
                        Some(s) => s.compare(&c.eval(row)) == Some(Ordering::Equal),
                        None => c.eval(row) == Value::Boolean(true),
                    };
                    if hit {
                        return t.eval(row);
                    }
                }
                otherwise.as_ref().map_or(Value::Null, |o| o.eval(row))
            }))
        }
        ExprKind::Cast { expr, ty } => {
            let e = compile(expr, scope)?;
            let to: Type = ty.into();
            let castable = match (&e.ty, &to) {
                (None, _) => true,
                (Some(from), to) if from == to => true,
                (Some(from), to) => {
                    (from.is_numeric() || *from == Type::String || *from == Type::Boolean)
                        && (to.is_numeric() || *to == Type::String || *to == Type::Boolean)
                }
            };
            if !castable {
                return error(pos, format!("cannot CAST {} to {to}", shown(&e.ty)));
            }
            let target = to.clone();
            Ok(Compiled::from_fn(Some(to), move |row| {
                cast(e.eval(row), &target)
            }))
        }
        ExprKind::Subscript { expr: base, index } => {
            let b = compile(base, scope)?;
            let i = compile(index, scope)?;
            match b.ty.clone() {
                Some(Type::Array(item)) => {
                    if !matches!(i.ty, Some(Type::Int | Type::Bigint) | None) {
                        return error(index.pos, "an array index must be an integer");
                    }
                    // ksqlDB's arrays are indexed from 1; negative indexes count from the end.
                    Ok(Compiled::from_fn(Some(*item), move |row| {
                        match (b.eval(row), i.eval(row).as_i64()) {
                            (Value::Array(items), Some(n)) => {
                                let len = items.len() as i64;
                                let at = if n > 0 { n - 1 } else { len + n };
                                if (0..len).contains(&at) {
                                    items[at as usize].clone()
                                } else {
                                    Value::Null
                                }
                            }
                            _ => Value::Null,
                        }
                    }))
                }
                Some(Type::Map(_, v)) => Ok(Compiled::from_fn(Some(*v), move |row| {
                    match (b.eval(row), i.eval(row)) {
                        (Value::Map(m), Value::String(k)) => {
                            m.get(&k).cloned().unwrap_or(Value::Null)
                        }
                        _ => Value::Null,
                    }
                })),
                other => error(
                    base.pos,
                    format!("cannot index a {}: only arrays and maps", shown(&other)),
                ),
            }
        }
        ExprKind::Field { expr: base, field } => {
            let b = compile(base, scope)?;
            let Some(Type::Struct(fields)) = b.ty.clone() else {
                return error(
                    base.pos,
                    format!("'->' reads a field of a STRUCT, not of a {}", shown(&b.ty)),
                );
            };
            let Some(i) = fields.iter().position(|(n, _)| *n == field.name) else {
                return error(
                    field.pos,
                    format!(
                        "the struct has no field {}; its fields are {}",
                        field.name,
                        fields
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            };
            let ty = fields[i].1.clone();
            Ok(Compiled::from_fn(Some(ty), move |row| match b.eval(row) {
                Value::Struct(fs) => fs.get(i).map_or(Value::Null, |(_, v)| v.clone()),
                _ => Value::Null,
            }))
        }
        ExprKind::Array(items) => {
            let mut ty = None;
            let mut cs = Vec::new();
            for x in items {
                let c = compile(x, scope)?;
                ty = unify(ty, &c, x.pos)?;
                cs.push(c);
            }
            let item = ty.unwrap_or(Type::String);
            Ok(Compiled::from_fn(
                Some(Type::Array(Box::new(item))),
                move |row| Value::Array(cs.iter().map(|c| c.eval(row)).collect()),
            ))
        }
        ExprKind::Map(entries) => {
            let mut vty = None;
            let mut cs = Vec::new();
            for (k, v) in entries {
                let kc = compile(k, scope)?;
                expect(&kc, &Type::String, k.pos, "a map key")?;
                let vc = compile(v, scope)?;
                vty = unify(vty, &vc, v.pos)?;
                cs.push((kc, vc));
            }
            let ty = Type::Map(
                Box::new(Type::String),
                Box::new(vty.unwrap_or(Type::String)),
            );
            Ok(Compiled::from_fn(Some(ty), move |row| {
                let mut m = std::collections::BTreeMap::new();
                for (k, v) in &cs {
                    if let Value::String(k) = k.eval(row) {
                        m.insert(k, v.eval(row));
                    }
                }
                Value::Map(m)
            }))
        }
        ExprKind::Struct(fields) => {
            let mut tys = Vec::new();
            let mut cs = Vec::new();
            for (name, v) in fields {
                let c = compile(v, scope)?;
                tys.push((name.name.clone(), c.ty.clone().unwrap_or(Type::String)));
                cs.push((name.name.clone(), c));
            }
            Ok(Compiled::from_fn(Some(Type::Struct(tys)), move |row| {
                Value::Struct(cs.iter().map(|(n, c)| (n.clone(), c.eval(row))).collect())
            }))
        }
        ExprKind::Function {
            name,
            args,
            star,
            distinct,
        } => {
            if AGGREGATES.contains(&name.name.as_str()) {
                return error(
                    name.pos,
                    format!(
                        "{} is an aggregate function: use it in a query with GROUP BY",
                        name.name
                    ),
                );
            }
            if *star || *distinct {
                return error(
                    name.pos,
                    format!(
                        "{}(*) and {}(DISTINCT ..) are for aggregate functions",
                        name.name, name.name
                    ),
                );
            }
            if let Some(c) = crate::datetime::compile_call(name, args, scope) {
                return c;
            }
            let compiled = args
                .iter()
                .map(|a| Ok((compile(a, scope)?, a.pos)))
                .collect::<Result<Vec<_>>>()?;
            crate::functions::scalar(&name.name, name.pos, compiled)
        }
    }
}

fn literal(l: &Literal, pos: Pos) -> Result<Compiled> {
    let (ty, v) = match l {
        Literal::Null => (None, Value::Null),
        Literal::Boolean(b) => (Some(Type::Boolean), Value::Boolean(*b)),
        Literal::Int(i) => match i32::try_from(*i) {
            Ok(small) => (Some(Type::Int), Value::Int(small)),
            Err(_) => (Some(Type::Bigint), Value::Bigint(*i)),
        },
        Literal::Decimal(text) => {
            if text.contains(['e', 'E']) {
                let d: f64 = text.parse().map_err(|_| PlanError {
                    message: format!("{text} is not a number"),
                    pos,
                })?;
                (Some(Type::Double), Value::Double(d))
            } else {
                let Some((u, s)) = parse_decimal(text) else {
                    return error(pos, format!("{text} is not a number"));
                };
                let digits = u.unsigned_abs().to_string().len() as u32;
                (
                    Some(Type::Decimal(digits.max(s).max(1), s)),
                    Value::Decimal(u, s),
                )
            }
        }
        Literal::String(s) => (Some(Type::String), Value::String(s.clone())),
    };
    Ok(Compiled::from_fn(ty, move |_| v.clone()))
}

pub(crate) fn shown(ty: &Option<Type>) -> String {
    ty.as_ref().map_or("NULL".into(), |t| t.to_string())
}

fn expect(c: &Compiled, want: &Type, pos: Pos, what: &str) -> Result<()> {
    match &c.ty {
        None => Ok(()),
        Some(t) if t == want => Ok(()),
        Some(t) => error(pos, format!("{what} needs a {want}, not a {t}")),
    }
}

fn expect_boolean(c: &Compiled, pos: Pos, what: &str) -> Result<()> {
    expect(c, &Type::Boolean, pos, what)
}

fn comparable(a: &Compiled, b: &Compiled, pos: Pos) -> Result<()> {
    match (&a.ty, &b.ty) {
        (None, _) | (_, None) => Ok(()),
        (Some(x), Some(y)) if x == y || x.is_numeric() && y.is_numeric() => Ok(()),
        (Some(x), Some(y)) => error(pos, format!("cannot compare a {x} with a {y}")),
    }
}

/// The common type of CASE arms and array items.
fn unify(ty: Option<Type>, c: &Compiled, pos: Pos) -> Result<Option<Type>> {
    match (ty, &c.ty) {
        (None, t) => Ok(t.clone()),
        (Some(t), None) => Ok(Some(t)),
        (Some(t), Some(u)) if t == *u => Ok(Some(t)),
        (Some(t), Some(u)) => match Type::widen(&t, u) {
            Some(w) => Ok(Some(w)),
            None => error(pos, format!("a {u} where the other values are {t}")),
        },
    }
}

fn binary(op: BinaryOp, l: Compiled, r: Compiled, lpos: Pos, rpos: Pos) -> Result<Compiled> {
    use BinaryOp::*;
    match op {
        And | Or => {
            expect_boolean(&l, lpos, if op == And { "AND" } else { "OR" })?;
            expect_boolean(&r, rpos, if op == And { "AND" } else { "OR" })?;
            Ok(Compiled::from_fn(Some(Type::Boolean), move |row| {
                let a = l.eval(row);
                // Three-valued logic; the right side is not computed when the left decides.
                match (op, &a) {
                    (And, Value::Boolean(false)) => return Value::Boolean(false),
                    (Or, Value::Boolean(true)) => return Value::Boolean(true),
                    _ => {}
                }
                match (a, r.eval(row)) {
                    (_, Value::Boolean(b)) if b == (op == Or) => Value::Boolean(b),
                    (Value::Boolean(_), Value::Boolean(b)) => Value::Boolean(b),
                    _ => Value::Null,
                }
            }))
        }
        Eq | NotEq | Lt | LtEq | Gt | GtEq => {
            comparable(&l, &r, rpos)?;
            Ok(Compiled::from_fn(Some(Type::Boolean), move |row| {
                match l.eval(row).compare(&r.eval(row)) {
                    None => Value::Null,
                    Some(o) => Value::Boolean(match op {
                        Eq => o == Ordering::Equal,
                        NotEq => o != Ordering::Equal,
                        Lt => o == Ordering::Less,
                        LtEq => o != Ordering::Greater,
                        Gt => o == Ordering::Greater,
                        _ => o != Ordering::Less,
                    }),
                }
            }))
        }
        Concat => {
            expect(&l, &Type::String, lpos, "'||'")?;
            expect(&r, &Type::String, rpos, "'||'")?;
            Ok(Compiled::from_fn(Some(Type::String), move |row| {
                match (l.eval(row), r.eval(row)) {
                    (Value::String(a), Value::String(b)) => Value::String(a + &b),
                    _ => Value::Null,
                }
            }))
        }
        Add | Sub | Mul | Div | Mod => {
            // `+` also joins strings, as ksqlDB allows.
            if op == Add && l.ty == Some(Type::String) && r.ty == Some(Type::String) {
                return binary(Concat, l, r, lpos, rpos);
            }
            let (lt, rt) = (l.ty.clone(), r.ty.clone());
            for (t, pos) in [(&lt, lpos), (&rt, rpos)] {
                if !t.as_ref().is_none_or(Type::is_numeric) {
                    return error(pos, format!("arithmetic needs numbers, not a {}", shown(t)));
                }
            }
            let ty = match (&lt, &rt) {
                (Some(a), Some(b)) => Type::widen(a, b),
                (Some(a), None) | (None, Some(a)) => Some(a.clone()),
                (None, None) => None,
            };
            Ok(Compiled::from_fn(ty.clone(), move |row| {
                arithmetic(op, l.eval(row), r.eval(row), ty.as_ref())
            }))
        }
    }
}

fn arithmetic(op: BinaryOp, a: Value, b: Value, ty: Option<&Type>) -> Value {
    use BinaryOp::*;
    if a.is_null() || b.is_null() {
        return Value::Null;
    }
    match ty {
        Some(Type::Int) | Some(Type::Bigint) => {
            let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) else {
                return Value::Null;
            };
            let r = match op {
                Add => x.checked_add(y),
                Sub => x.checked_sub(y),
                Mul => x.checked_mul(y),
                Div => x.checked_div(y),
                _ => x.checked_rem(y),
            };
            match (ty, r) {
                (Some(Type::Int), Some(r)) => i32::try_from(r).map_or(Value::Null, Value::Int),
                (_, Some(r)) => Value::Bigint(r),
                (_, None) => Value::Null,
            }
        }
        Some(Type::Decimal(_, scale)) => {
            let dec = |v: &Value| match v {
                Value::Decimal(u, s) => Some((*u, *s)),
                Value::Int(i) => Some((*i as i128, 0)),
                Value::Bigint(i) => Some((*i as i128, 0)),
                _ => None,
            };
            let (Some((x, sx)), Some((y, sy))) = (dec(&a), dec(&b)) else {
                return Value::Null;
            };
            let r = match op {
                Mul => x.checked_mul(y).map(|r| (r, sx + sy)),
                Div => {
                    // To the result's scale, truncated: x * 10^(scale + sy - sx) / y.
                    let shift = (*scale + sy).checked_sub(sx);
                    shift
                        .and_then(|k| 10i128.checked_pow(k))
                        .and_then(|m| x.checked_mul(m))
                        .and_then(|n| n.checked_div(y))
                        .map(|r| (r, *scale))
                }
                _ => align(x, sx, y, sy).and_then(|(x, y)| {
                    let s = sx.max(sy);
                    match op {
                        Add => x.checked_add(y),
                        Sub => x.checked_sub(y),
                        _ => x.checked_rem(y),
                    }
                    .map(|r| (r, s))
                }),
            };
            // Every result in the type's scale.
            let r = r.and_then(|(u, s)| rescale(u, s, *scale));
            r.map_or(Value::Null, |u| Value::Decimal(u, *scale))
        }
        _ => {
            let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
                return Value::Null;
            };
            Value::Double(match op {
                Add => x + y,
                Sub => x - y,
                Mul => x * y,
                Div => x / y,
                _ => x % y,
            })
        }
    }
}

/// `u` at scale `from` as digits at scale `to` (truncating when `to` is smaller).
fn rescale(u: i128, from: u32, to: u32) -> Option<i128> {
    if to >= from {
        u.checked_mul(10i128.checked_pow(to - from)?)
    } else {
        Some(u / 10i128.checked_pow(from - to)?)
    }
}

/// SQL LIKE: `%` any run, `_` one character, `escape` makes the next one literal.
pub(crate) fn like(s: &str, pattern: &str, escape: Option<char>) -> bool {
    let s: Vec<char> = s.chars().collect();
    let mut p: Vec<(char, bool)> = Vec::new(); // (char, literal)
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        if Some(c) == escape {
            if let Some(n) = it.next() {
                p.push((n, true));
            }
        } else {
            p.push((c, false));
        }
    }
    // Dynamic programming over (pattern position, text position).
    let mut reach = vec![false; s.len() + 1];
    reach[0] = true;
    for &(c, literal) in &p {
        let mut next = vec![false; s.len() + 1];
        if c == '%' && !literal {
            let mut any = false;
            for i in 0..=s.len() {
                any |= reach[i];
                next[i] = any;
            }
        } else {
            for i in 0..s.len() {
                if reach[i] && (c == s[i] || c == '_' && !literal) {
                    next[i + 1] = true;
                }
            }
        }
        reach = next;
    }
    reach[s.len()]
}

/// CAST between numbers, strings and booleans; NULL when the value does not convert.
pub(crate) fn cast(v: Value, to: &Type) -> Value {
    if v.is_null() {
        return Value::Null;
    }
    match to {
        Type::String => Value::String(v.to_string()),
        Type::Boolean => match v {
            Value::Boolean(b) => Value::Boolean(b),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Value::Boolean(true),
                "false" => Value::Boolean(false),
                _ => Value::Null,
            },
            _ => Value::Null,
        },
        Type::Int | Type::Bigint => {
            let n = match &v {
                Value::String(s) => s.trim().parse::<i64>().ok(),
                Value::Double(d) if d.is_finite() => Some(d.trunc() as i64),
                Value::Decimal(..) => v.as_f64().map(|d| d.trunc() as i64),
                _ => v.as_i64(),
            };
            match (to, n) {
                (Type::Int, Some(n)) => i32::try_from(n).map_or(Value::Null, Value::Int),
                (_, Some(n)) => Value::Bigint(n),
                _ => Value::Null,
            }
        }
        Type::Double => match &v {
            Value::String(s) => s.trim().parse().map_or(Value::Null, Value::Double),
            _ => v.as_f64().map_or(Value::Null, Value::Double),
        },
        Type::Decimal(_, scale) => {
            let text = match &v {
                Value::String(s) => s.trim().to_owned(),
                Value::Double(d) => format!("{d:.*}", *scale as usize),
                other => other.to_string(),
            };
            match parse_decimal(&text) {
                Some((u, s)) if s <= *scale => 10i128
                    .checked_pow(scale - s)
                    .and_then(|m| u.checked_mul(m))
                    .map_or(Value::Null, |u| Value::Decimal(u, *scale)),
                Some((u, s)) => 10i128
                    .checked_pow(s - scale)
                    .map_or(Value::Null, |d| Value::Decimal(u / d, *scale)),
                None => Value::Null,
            }
        }
        _ => v,
    }
}
