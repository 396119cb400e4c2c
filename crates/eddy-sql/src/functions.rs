//! Scalar functions by ksqlDB's names: strings, math, null handling. Each checks its
//! arguments when the statement is planned; at run time a NULL argument gives NULL (but
//! for the null-handling functions).

use crate::expr::error as fail;
use crate::expr::{Compiled, PlanError};
use crate::lexer::Pos;
use crate::value::{Type, Value};

type Result<T> = std::result::Result<T, PlanError>;

/// The scalar functions there are, for SHOW FUNCTIONS and error messages.
pub const SCALAR: &[&str] = &[
    "ABS",
    "CEIL",
    "COALESCE",
    "CONCAT",
    "FLOOR",
    "IFNULL",
    "INSTR",
    "LCASE",
    "LEN",
    "LPAD",
    "LTRIM",
    "NULLIF",
    "REPLACE",
    "ROUND",
    "RPAD",
    "RTRIM",
    "SIGN",
    "SQRT",
    "SUBSTRING",
    "TRIM",
    "UCASE",
];

/// `name(args)`, checked.
pub fn scalar(name: &str, pos: Pos, args: Vec<(Compiled, Pos)>) -> Result<Compiled> {
    let arity = |min: usize, max: usize| -> Result<()> {
        if args.len() < min || args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return fail(
                pos,
                format!("{name} takes {want} arguments, not {}", args.len()),
            );
        }
        Ok(())
    };
    let arg_is = |i: usize, ok: fn(&Type) -> bool, what: &str| -> Result<()> {
        let (c, p) = &args[i];
        match &c.ty {
            Some(t) if !ok(t) => fail(
                *p,
                format!("argument {} of {name} must be {what}, not a {t}", i + 1),
            ),
            _ => Ok(()),
        }
    };
    let string = |t: &Type| *t == Type::String;
    let integer = |t: &Type| matches!(t, Type::Int | Type::Bigint);
    let numeric = |t: &Type| t.is_numeric();
    let cs: Vec<Compiled> = args.iter().map(|(c, _)| c.clone()).collect();
    let str_fn = |f: fn(&str) -> String| -> Result<Compiled> {
        Ok(make(Some(Type::String), cs.clone(), move |v| match &v[0] {
            Value::String(s) => Value::String(f(s)),
            _ => Value::Null,
        }))
    };
    match name {
        "UCASE" | "UPPER" => {
            arity(1, 1)?;
            arg_is(0, string, "a STRING")?;
            str_fn(|s| s.to_uppercase())
        }
        "LCASE" | "LOWER" => {
            arity(1, 1)?;
            arg_is(0, string, "a STRING")?;
            str_fn(|s| s.to_lowercase())
        }
        "TRIM" => {
            arity(1, 1)?;
            arg_is(0, string, "a STRING")?;
            str_fn(|s| s.trim().to_owned())
        }
        "LTRIM" => {
            arity(1, 1)?;
            arg_is(0, string, "a STRING")?;
            str_fn(|s| s.trim_start().to_owned())
        }
        "RTRIM" => {
            arity(1, 1)?;
            arg_is(0, string, "a STRING")?;
            str_fn(|s| s.trim_end().to_owned())
        }
        "LEN" => {
            arity(1, 1)?;
            arg_is(0, string, "a STRING")?;
            Ok(make(Some(Type::Int), cs, |v| match &v[0] {
                Value::String(s) => Value::Int(s.chars().count() as i32),
                _ => Value::Null,
            }))
        }
        "CONCAT" => {
            arity(1, usize::MAX)?;
            for i in 0..args.len() {
                arg_is(i, string, "a STRING")?;
            }
            // ksqlDB's CONCAT skips NULL arguments.
            Ok(make(Some(Type::String), cs, |v| {
                Value::String(
                    v.iter()
                        .filter_map(|x| match x {
                            Value::String(s) => Some(s.as_str()),
                            _ => None,
                        })
                        .collect(),
                )
            }))
        }
        "SUBSTRING" => {
            arity(2, 3)?;
            arg_is(0, string, "a STRING")?;
            arg_is(1, integer, "an integer")?;
            if args.len() == 3 {
                arg_is(2, integer, "an integer")?;
            }
            // 1-based; a negative position counts from the end.
            Ok(make(Some(Type::String), cs, |v| {
                let (Value::String(s), Some(p)) = (&v[0], v[1].as_i64()) else {
                    return Value::Null;
                };
                let chars: Vec<char> = s.chars().collect();
                let len = chars.len() as i64;
                let start = if p > 0 { p - 1 } else { (len + p).max(0) };
                let count = match v.get(2) {
                    Some(n) => match n.as_i64() {
                        Some(n) => n.max(0),
                        None => return Value::Null,
                    },
                    None => len,
                };
                let start = start.min(len);
                let end = start.saturating_add(count).min(len);
                Value::String(chars[start as usize..end as usize].iter().collect())
            }))
        }
        "REPLACE" => {
            arity(3, 3)?;
            for i in 0..3 {
                arg_is(i, string, "a STRING")?;
            }
            Ok(make(Some(Type::String), cs, |v| {
                match (&v[0], &v[1], &v[2]) {
                    (Value::String(s), Value::String(a), Value::String(b)) => {
                        Value::String(s.replace(a.as_str(), b))
                    }
                    _ => Value::Null,
                }
            }))
        }
        "INSTR" => {
            arity(2, 2)?;
            arg_is(0, string, "a STRING")?;
            arg_is(1, string, "a STRING")?;
            Ok(make(Some(Type::Int), cs, |v| match (&v[0], &v[1]) {
                (Value::String(s), Value::String(sub)) => Value::Int(
                    s.find(sub.as_str())
                        .map_or(0, |at| s[..at].chars().count() as i32 + 1),
                ),
                _ => Value::Null,
            }))
        }
        "LPAD" | "RPAD" => {
            arity(3, 3)?;
            arg_is(0, string, "a STRING")?;
            arg_is(1, integer, "an integer")?;
            arg_is(2, string, "a STRING")?;
            let left = name == "LPAD";
            Ok(make(Some(Type::String), cs, move |v| {
                let (Value::String(s), Some(n), Value::String(pad)) = (&v[0], v[1].as_i64(), &v[2])
                else {
                    return Value::Null;
                };
                if n < 0 || pad.is_empty() && (n as usize) > s.chars().count() {
                    return Value::Null;
                }
                let n = n as usize;
                let chars: Vec<char> = s.chars().collect();
                if chars.len() >= n {
                    return Value::String(chars[..n].iter().collect());
                }
                let fill: String = pad.chars().cycle().take(n - chars.len()).collect();
                Value::String(if left { fill + s } else { s.clone() + &fill })
            }))
        }
        "ABS" | "SIGN" | "CEIL" | "FLOOR" | "SQRT" => {
            arity(1, 1)?;
            arg_is(0, numeric, "a number")?;
            let ty = match name {
                "SQRT" => Some(Type::Double),
                "SIGN" => Some(Type::Int),
                _ => cs[0].ty.clone(),
            };
            let which = name.to_owned();
            Ok(make(ty, cs, move |v| {
                let x = &v[0];
                match (which.as_str(), x) {
                    ("ABS", Value::Int(i)) => i.checked_abs().map_or(Value::Null, Value::Int),
                    ("ABS", Value::Bigint(i)) => i.checked_abs().map_or(Value::Null, Value::Bigint),
                    ("ABS", Value::Decimal(u, s)) => Value::Decimal(u.abs(), *s),
                    ("ABS", Value::Double(d)) => Value::Double(d.abs()),
                    ("CEIL" | "FLOOR", Value::Int(_) | Value::Bigint(_)) => x.clone(),
                    ("CEIL", Value::Double(d)) => Value::Double(d.ceil()),
                    ("FLOOR", Value::Double(d)) => Value::Double(d.floor()),
                    ("CEIL" | "FLOOR", Value::Decimal(u, s)) => {
                        let m = 10i128.pow(*s);
                        let q = u.div_euclid(m);
                        let q = if which == "CEIL" && u.rem_euclid(m) != 0 {
                            q + 1
                        } else {
                            q
                        };
                        Value::Decimal(q * m, *s)
                    }
                    ("SIGN", _) => x.as_f64().map_or(Value::Null, |d| {
                        Value::Int(d.signum() as i32 * (d != 0.0) as i32)
                    }),
                    ("SQRT", _) => x.as_f64().map_or(Value::Null, |d| Value::Double(d.sqrt())),
                    _ => Value::Null,
                }
            }))
        }
        "ROUND" => {
            arity(1, 2)?;
            arg_is(0, numeric, "a number")?;
            if args.len() == 2 {
                arg_is(1, integer, "an integer")?;
            }
            let ty = match &cs[0].ty {
                Some(Type::Double) if args.len() == 1 => Some(Type::Bigint),
                other => other.clone(),
            };
            Ok(make(ty, cs, |v| {
                let places = v.get(1).and_then(Value::as_i64).unwrap_or(0).clamp(-18, 18) as i32;
                match &v[0] {
                    Value::Double(d) if v.len() == 1 => Value::Bigint(d.round() as i64),
                    Value::Double(d) => {
                        let m = 10f64.powi(places);
                        Value::Double((d * m).round() / m)
                    }
                    x @ (Value::Int(_) | Value::Bigint(_)) => x.clone(),
                    Value::Decimal(u, s) => {
                        let keep = places.max(0) as u32;
                        if keep >= *s {
                            return Value::Decimal(*u, *s);
                        }
                        let m = 10i128.pow(s - keep);
                        let half = m / 2;
                        let r = if *u >= 0 {
                            (u + half) / m
                        } else {
                            (u - half) / m
                        };
                        Value::Decimal(r * m, *s)
                    }
                    _ => Value::Null,
                }
            }))
        }
        "COALESCE" | "IFNULL" => {
            if name == "IFNULL" {
                arity(2, 2)?;
            } else {
                arity(1, usize::MAX)?;
            }
            let mut ty: Option<Type> = None;
            for (c, p) in &args {
                match (&ty, &c.ty) {
                    (Some(t), Some(u)) if t != u && Type::widen(t, u).is_none() => {
                        return fail(
                            *p,
                            format!("{name} needs arguments of one type: a {u} after a {t}"),
                        )
                    }
                    (Some(t), Some(u)) => ty = Type::widen(t, u).or(Some(t.clone())),
                    (None, u) => ty = u.clone(),
                    _ => {}
                }
            }
            Ok(make(ty, cs, |v| {
                v.iter()
                    .find(|x| !x.is_null())
                    .cloned()
                    .unwrap_or(Value::Null)
            }))
        }
        "NULLIF" => {
            arity(2, 2)?;
            let ty = cs[0].ty.clone();
            Ok(make(ty, cs, |v| {
                if v[0].compare(&v[1]) == Some(std::cmp::Ordering::Equal) {
                    Value::Null
                } else {
                    v[0].clone()
                }
            }))
        }
        _ => fail(
            pos,
            format!(
                "unknown function {name}; the scalar functions are {}, and the date and time functions {}",
                SCALAR.join(", "),
                crate::datetime::FUNCTIONS.join(", ")
            ),
        ),
    }
}

/// A function over its evaluated arguments; NULL in, NULL out is each function's own choice.
pub(crate) fn make(
    ty: Option<Type>,
    args: Vec<Compiled>,
    f: impl Fn(&[Value]) -> Value + Send + Sync + 'static,
) -> Compiled {
    Compiled::from_fn(ty, move |row| {
        let values: Vec<Value> = args.iter().map(|a| a.eval(row)).collect();
        f(&values)
    })
}
