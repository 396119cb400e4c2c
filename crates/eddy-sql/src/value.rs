//! SQL types and values as ksqlDB has them, and rows.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use crate::ast::SqlType;

/// A column type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    Boolean,
    Int,
    Bigint,
    Double,
    /// Precision and scale, as DECIMAL(p, s).
    Decimal(u32, u32),
    String,
    Bytes,
    /// Milliseconds since the epoch.
    Timestamp,
    /// Days since the epoch.
    Date,
    /// Milliseconds since midnight.
    Time,
    Array(Box<Type>),
    Map(Box<Type>, Box<Type>),
    Struct(Vec<(String, Type)>),
}

impl From<&SqlType> for Type {
    fn from(t: &SqlType) -> Type {
        match t {
            SqlType::Boolean => Type::Boolean,
            SqlType::Int => Type::Int,
            SqlType::Bigint => Type::Bigint,
            SqlType::Double => Type::Double,
            SqlType::Decimal { precision, scale } => Type::Decimal(*precision, *scale),
            SqlType::String => Type::String,
            SqlType::Bytes => Type::Bytes,
            SqlType::Timestamp => Type::Timestamp,
            SqlType::Date => Type::Date,
            SqlType::Time => Type::Time,
            SqlType::Array(t) => Type::Array(Box::new(t.as_ref().into())),
            SqlType::Map(k, v) => {
                Type::Map(Box::new(k.as_ref().into()), Box::new(v.as_ref().into()))
            }
            SqlType::Struct(fields) => {
                Type::Struct(fields.iter().map(|(n, t)| (n.clone(), t.into())).collect())
            }
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Boolean => f.write_str("BOOLEAN"),
            Type::Int => f.write_str("INTEGER"),
            Type::Bigint => f.write_str("BIGINT"),
            Type::Double => f.write_str("DOUBLE"),
            Type::Decimal(p, s) => write!(f, "DECIMAL({p}, {s})"),
            Type::String => f.write_str("STRING"),
            Type::Bytes => f.write_str("BYTES"),
            Type::Timestamp => f.write_str("TIMESTAMP"),
            Type::Date => f.write_str("DATE"),
            Type::Time => f.write_str("TIME"),
            Type::Array(t) => write!(f, "ARRAY<{t}>"),
            Type::Map(k, v) => write!(f, "MAP<{k}, {v}>"),
            Type::Struct(fields) => {
                f.write_str("STRUCT<")?;
                for (i, (n, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "`{n}` {t}")?;
                }
                f.write_str(">")
            }
        }
    }
}

impl Type {
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            Type::Int | Type::Bigint | Type::Double | Type::Decimal(..)
        )
    }

    /// The type both numeric types widen to (INT < BIGINT < DECIMAL < DOUBLE).
    pub fn widen(a: &Type, b: &Type) -> Option<Type> {
        let rank = |t: &Type| match t {
            Type::Int => Some(0),
            Type::Bigint => Some(1),
            Type::Decimal(..) => Some(2),
            Type::Double => Some(3),
            _ => None,
        };
        let (ra, rb) = (rank(a)?, rank(b)?);
        Some(match (a, b) {
            (Type::Decimal(p1, s1), Type::Decimal(p2, s2)) => {
                let s = (*s1).max(*s2);
                Type::Decimal(((p1 - s1).max(p2 - s2) + s).min(38), s)
            }
            _ if ra >= rb => a.clone(),
            _ => b.clone(),
        })
    }
}

/// A value; `Null` is of every type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Boolean(bool),
    Int(i32),
    Bigint(i64),
    Double(f64),
    /// Unscaled digits and scale: `Decimal(12345, 2)` is 123.45.
    Decimal(i128, u32),
    String(String),
    Bytes(Vec<u8>),
    Timestamp(i64),
    Date(i32),
    Time(i64),
    Array(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Struct(Vec<(String, Value)>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// As a double, for arithmetic and comparison across numeric types.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Bigint(i) => Some(*i as f64),
            Value::Double(d) => Some(*d),
            Value::Decimal(u, s) => Some(*u as f64 / 10f64.powi(*s as i32)),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i as i64),
            Value::Bigint(i) | Value::Timestamp(i) | Value::Time(i) => Some(*i),
            Value::Date(d) => Some(*d as i64),
            _ => None,
        }
    }

    /// SQL comparison: None when either side is null or the values do not compare.
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        use Value::*;
        match (self, other) {
            (Null, _) | (_, Null) => None,
            (Boolean(a), Boolean(b)) => Some(a.cmp(b)),
            (String(a), String(b)) => Some(a.cmp(b)),
            (Bytes(a), Bytes(b)) => Some(a.cmp(b)),
            (Timestamp(a), Timestamp(b)) | (Time(a), Time(b)) => Some(a.cmp(b)),
            (Date(a), Date(b)) => Some(a.cmp(b)),
            (Int(_) | Bigint(_), Int(_) | Bigint(_)) => Some(self.as_i64()?.cmp(&other.as_i64()?)),
            (Decimal(a, sa), Decimal(b, sb)) => {
                let (a, b) = align(*a, *sa, *b, *sb)?;
                Some(a.cmp(&b))
            }
            _ => self.as_f64()?.partial_cmp(&other.as_f64()?),
        }
    }
}

/// Two decimals brought to one scale.
pub(crate) fn align(a: i128, sa: u32, b: i128, sb: u32) -> Option<(i128, i128)> {
    let s = sa.max(sb);
    let scale = |v: i128, from: u32| v.checked_mul(10i128.checked_pow(s - from)?);
    Some((scale(a, sa)?, scale(b, sb)?))
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Boolean(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Bigint(i) => write!(f, "{i}"),
            Value::Double(d) => write!(f, "{d:?}"),
            Value::Decimal(u, s) => f.write_str(&decimal_text(*u, *s)),
            Value::String(s) => f.write_str(s),
            Value::Bytes(b) => write!(f, "{b:?}"),
            Value::Timestamp(t) | Value::Time(t) => write!(f, "{t}"),
            Value::Date(d) => write!(f, "{d}"),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Map(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}={v}")?;
                }
                f.write_str("}")
            }
            Value::Struct(fields) => {
                f.write_str("{")?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}={v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// `12345, 2` → "123.45".
pub fn decimal_text(unscaled: i128, scale: u32) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if unscaled < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

/// "123.45" → (12345, 2); None when it is not a decimal number.
pub fn parse_decimal(text: &str) -> Option<(i128, u32)> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let unscaled: i128 = format!("{int}{frac}").parse().ok()?;
    Some((if neg { -unscaled } else { unscaled }, frac.len() as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_print_and_parse() {
        assert_eq!(decimal_text(12345, 2), "123.45");
        assert_eq!(decimal_text(-5, 3), "-0.005");
        assert_eq!(parse_decimal("-0.005"), Some((-5, 3)));
        assert_eq!(parse_decimal("12"), Some((12, 0)));
        assert_eq!(parse_decimal("1.2.3"), None);
        assert_eq!(parse_decimal("."), None);
    }

    #[test]
    fn comparisons_across_numeric_types_and_nulls() {
        assert_eq!(
            Value::Int(2).compare(&Value::Bigint(3)),
            Some(Ordering::Less)
        );
        assert_eq!(
            Value::Double(2.5).compare(&Value::Int(2)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            Value::Decimal(150, 2).compare(&Value::Decimal(15, 1)),
            Some(Ordering::Equal)
        );
        assert_eq!(Value::Null.compare(&Value::Int(1)), None);
        assert_eq!(Value::String("a".into()).compare(&Value::Int(1)), None);
        assert_eq!(
            Type::widen(&Type::Int, &Type::Decimal(4, 2)),
            Some(Type::Decimal(4, 2))
        );
        assert_eq!(
            Type::widen(&Type::Bigint, &Type::Double),
            Some(Type::Double)
        );
        assert_eq!(Type::widen(&Type::String, &Type::Int), None);
    }
}
