//! Serialization formats of keys and values, by ksqlDB's names: `JSON`, `DELIMITED` and
//! `KAFKA`. A record that does not match its schema is an error naming the column and what
//! was wrong (the query's error handling decides what becomes of the record).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Number, Value as Json};

use crate::value::{decimal_text, parse_decimal, Type, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An object with a field per column; with one column and `unwrapped`, the bare value.
    Json { unwrapped: bool },
    /// Comma-separated fields in column order; an empty field is NULL.
    Delimited,
    /// One column: INT and BIGINT big-endian, DOUBLE IEEE 754 big-endian, STRING UTF-8.
    Kafka,
}

impl Format {
    /// `VALUE_FORMAT` / `KEY_FORMAT` names.
    pub fn from_name(name: &str, unwrapped: bool) -> Option<Format> {
        match name.to_ascii_uppercase().as_str() {
            "JSON" => Some(Format::Json { unwrapped }),
            "DELIMITED" => Some(Format::Delimited),
            "KAFKA" => Some(Format::Kafka),
            _ => None,
        }
    }

    /// Whether this format can carry `columns`; the reason when not.
    pub fn check(&self, columns: &[(String, Type)]) -> std::result::Result<(), String> {
        match self {
            Format::Kafka => match columns {
                [] => Ok(()),
                [(_, Type::Int | Type::Bigint | Type::Double | Type::String)] => Ok(()),
                [(name, t)] => Err(format!(
                    "the KAFKA format carries INT, BIGINT, DOUBLE or STRING, not {name} {t}"
                )),
                _ => Err("the KAFKA format carries a single column".into()),
            },
            Format::Delimited => match columns
                .iter()
                .find(|(_, t)| matches!(t, Type::Array(_) | Type::Map(..) | Type::Struct(_)))
            {
                Some((name, t)) => Err(format!("the DELIMITED format cannot carry {name} {t}")),
                None => Ok(()),
            },
            Format::Json { .. } => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

type Result<T> = std::result::Result<T, FormatError>;

fn bad<T>(message: String) -> Result<T> {
    Err(FormatError(message))
}

/// The bytes of `values` (one per column) in `format`; None when every column is NULL and
/// the format has nothing to write (a tombstone).
pub fn serialize(
    format: Format,
    columns: &[(String, Type)],
    values: &[Value],
) -> Result<Option<Vec<u8>>> {
    if values.iter().all(Value::is_null) && !columns.is_empty() && matches!(format, Format::Kafka) {
        return Ok(None);
    }
    match format {
        Format::Json { unwrapped } => {
            let json = if unwrapped && columns.len() == 1 {
                to_json(&values[0])
            } else {
                let mut m = Map::new();
                for ((name, _), v) in columns.iter().zip(values) {
                    m.insert(name.clone(), to_json(v));
                }
                Json::Object(m)
            };
            serde_json::to_vec(&json)
                .map(Some)
                .map_err(|e| FormatError(e.to_string()))
        }
        Format::Delimited => {
            let fields: Vec<String> = values
                .iter()
                .map(|v| match v {
                    Value::Null => String::new(),
                    Value::String(s) if s.contains([',', '"', '\n']) || s.is_empty() => {
                        format!("\"{}\"", s.replace('"', "\"\""))
                    }
                    other => other.to_string(),
                })
                .collect();
            Ok(Some(fields.join(",").into_bytes()))
        }
        Format::Kafka => Ok(match values.first() {
            None | Some(Value::Null) => None,
            Some(Value::Int(i)) => Some(i.to_be_bytes().to_vec()),
            Some(Value::Bigint(i)) => Some(i.to_be_bytes().to_vec()),
            Some(Value::Double(d)) => Some(d.to_be_bytes().to_vec()),
            Some(Value::String(s)) => Some(s.as_bytes().to_vec()),
            Some(other) => return bad(format!("the KAFKA format cannot carry {other}")),
        }),
    }
}

/// The values of `columns` read from `bytes` (None: a tombstone, every column NULL).
pub fn deserialize(
    format: Format,
    columns: &[(String, Type)],
    bytes: Option<&[u8]>,
) -> Result<Vec<Value>> {
    let Some(bytes) = bytes else {
        return Ok(vec![Value::Null; columns.len()]);
    };
    match format {
        Format::Json { unwrapped } => {
            let json: Json =
                serde_json::from_slice(bytes).map_err(|e| FormatError(format!("not JSON: {e}")))?;
            if unwrapped && columns.len() == 1 {
                return Ok(vec![from_json(&json, &columns[0].1, &columns[0].0)?]);
            }
            let Json::Object(obj) = json else {
                return bad(format!(
                    "expected a JSON object with fields {}",
                    names(columns)
                ));
            };
            // Field names match case-insensitively, as ksqlDB's do.
            let lower: BTreeMap<String, &Json> = obj
                .iter()
                .map(|(k, v)| (k.to_ascii_uppercase(), v))
                .collect();
            columns
                .iter()
                .map(|(name, ty)| {
                    let field = obj
                        .get(name)
                        .or_else(|| lower.get(&name.to_ascii_uppercase()).copied());
                    match field {
                        None | Some(Json::Null) => Ok(Value::Null),
                        Some(j) => from_json(j, ty, name),
                    }
                })
                .collect()
        }
        Format::Delimited => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| FormatError("DELIMITED data is not UTF-8".into()))?;
            let fields = split_delimited(text)?;
            if fields.len() != columns.len() {
                return bad(format!(
                    "{} fields where the schema has {} columns ({})",
                    fields.len(),
                    columns.len(),
                    names(columns)
                ));
            }
            columns
                .iter()
                .zip(fields)
                .map(|((name, ty), f)| match f {
                    None => Ok(Value::Null),
                    Some(s) => from_text(&s, ty, name),
                })
                .collect()
        }
        Format::Kafka => {
            let Some((name, ty)) = columns.first() else {
                return Ok(Vec::new());
            };
            let fixed = |n: usize| -> Result<&[u8]> {
                if bytes.len() == n {
                    Ok(bytes)
                } else {
                    bad(format!(
                        "{name} {ty} takes {n} bytes in the KAFKA format, not {}",
                        bytes.len()
                    ))
                }
            };
            Ok(vec![match ty {
                Type::Int => Value::Int(i32::from_be_bytes(fixed(4)?.try_into().expect("4 bytes"))),
                Type::Bigint => {
                    Value::Bigint(i64::from_be_bytes(fixed(8)?.try_into().expect("8 bytes")))
                }
                Type::Double => {
                    Value::Double(f64::from_be_bytes(fixed(8)?.try_into().expect("8 bytes")))
                }
                Type::String => Value::String(
                    String::from_utf8(bytes.to_vec())
                        .map_err(|_| FormatError(format!("{name} is not UTF-8")))?,
                ),
                other => return bad(format!("the KAFKA format cannot carry {other}")),
            }])
        }
    }
}

fn names(columns: &[(String, Type)]) -> String {
    columns
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fields of one DELIMITED line: double quotes around a field that holds a comma, a doubled
/// double quote inside; an empty unquoted field is NULL.
fn split_delimited(text: &str) -> Result<Vec<Option<String>>> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        s.push('"');
                    }
                    Some('"') => break,
                    Some(c) => s.push(c),
                    None => return bad("a quoted DELIMITED field is never closed".into()),
                }
            }
            out.push(Some(s));
            match chars.next() {
                None => return Ok(out),
                Some(',') => continue,
                Some(c) => return bad(format!("unexpected {c:?} after a quoted DELIMITED field")),
            }
        }
        let mut s = String::new();
        loop {
            match chars.next() {
                None => {
                    out.push((!s.is_empty()).then_some(s));
                    return Ok(out);
                }
                Some(',') => break,
                Some(c) => s.push(c),
            }
        }
        out.push((!s.is_empty()).then_some(s));
    }
}

/// A value as JSON, as the JSON format and the REST API write it.
pub fn to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Bigint(i) | Value::Timestamp(i) | Value::Time(i) => Json::from(*i),
        Value::Date(d) => Json::from(*d),
        Value::Double(d) => Number::from_f64(*d).map_or(Json::Null, Json::Number),
        // As a JSON number, written with its digits (serde_json's arbitrary precision is off,
        // so through f64 only when it has to).
        Value::Decimal(u, s) => decimal_text(*u, *s)
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(base64(b)),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        Value::Struct(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
    }
}

/// A JSON value as a value of `ty` (`name` is the column, for errors).
pub fn from_json(j: &Json, ty: &Type, name: &str) -> Result<Value> {
    let wrong = || bad(format!("{name}: {j} is not a {ty}"));
    if j.is_null() {
        return Ok(Value::Null);
    }
    Ok(match ty {
        Type::Boolean => match j {
            Json::Bool(b) => Value::Boolean(*b),
            Json::String(s) => return from_text(s, ty, name),
            _ => return wrong(),
        },
        Type::Int | Type::Bigint | Type::Timestamp | Type::Time | Type::Date => match j {
            Json::Number(n) => match n.as_i64() {
                Some(i) => integral(i, ty, name)?,
                None => return wrong(),
            },
            Json::String(s) => return from_text(s, ty, name),
            _ => return wrong(),
        },
        Type::Double => match j {
            Json::Number(n) => Value::Double(n.as_f64().unwrap_or(f64::NAN)),
            Json::String(s) => return from_text(s, ty, name),
            _ => return wrong(),
        },
        Type::Decimal(..) => match j {
            Json::Number(n) => return from_text(&n.to_string(), ty, name),
            Json::String(s) => return from_text(s, ty, name),
            _ => return wrong(),
        },
        Type::String => match j {
            Json::String(s) => Value::String(s.clone()),
            // ksqlDB reads any JSON value into a STRING column as its text.
            other => Value::String(other.to_string()),
        },
        Type::Bytes => match j {
            Json::String(s) => {
                Value::Bytes(unbase64(s).ok_or_else(|| FormatError(format!("{name}: not base64")))?)
            }
            _ => return wrong(),
        },
        Type::Array(item) => match j {
            Json::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|x| from_json(x, item, name))
                    .collect::<Result<_>>()?,
            ),
            _ => return wrong(),
        },
        Type::Map(_, v) => match j {
            Json::Object(m) => Value::Map(
                m.iter()
                    .map(|(k, x)| Ok((k.clone(), from_json(x, v, name)?)))
                    .collect::<Result<_>>()?,
            ),
            _ => return wrong(),
        },
        Type::Struct(fields) => match j {
            Json::Object(m) => Value::Struct(
                fields
                    .iter()
                    .map(|(f, t)| {
                        let x = m
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(f))
                            .map(|(_, x)| x);
                        Ok((
                            f.clone(),
                            x.map_or(Ok(Value::Null), |x| from_json(x, t, name))?,
                        ))
                    })
                    .collect::<Result<_>>()?,
            ),
            _ => return wrong(),
        },
    })
}

fn integral(i: i64, ty: &Type, name: &str) -> Result<Value> {
    Ok(match ty {
        Type::Int => Value::Int(
            i32::try_from(i)
                .map_err(|_| FormatError(format!("{name}: {i} does not fit in an INTEGER")))?,
        ),
        Type::Date => Value::Date(
            i32::try_from(i).map_err(|_| FormatError(format!("{name}: {i} is not a DATE")))?,
        ),
        Type::Timestamp => Value::Timestamp(i),
        Type::Time => Value::Time(i),
        _ => Value::Bigint(i),
    })
}

fn from_text(s: &str, ty: &Type, name: &str) -> Result<Value> {
    let wrong = || FormatError(format!("{name}: {s:?} is not a {ty}"));
    Ok(match ty {
        Type::String => Value::String(s.to_owned()),
        Type::Boolean => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Value::Boolean(true),
            "false" => Value::Boolean(false),
            _ => return Err(wrong()),
        },
        Type::Int | Type::Bigint | Type::Timestamp | Type::Time | Type::Date => {
            integral(s.trim().parse().map_err(|_| wrong())?, ty, name)?
        }
        Type::Double => Value::Double(s.trim().parse().map_err(|_| wrong())?),
        Type::Decimal(precision, scale) => {
            let (u, sc) = parse_decimal(s.trim()).ok_or_else(wrong)?;
            let u = if sc <= *scale {
                u.checked_mul(10i128.pow(scale - sc)).ok_or_else(wrong)?
            } else {
                u / 10i128.pow(sc - scale)
            };
            if u.unsigned_abs().to_string().len() > *precision as usize {
                return Err(FormatError(format!("{name}: {s} does not fit in a {ty}")));
            }
            Value::Decimal(u, *scale)
        }
        Type::Bytes => Value::Bytes(unbase64(s).ok_or_else(wrong)?),
        _ => return Err(wrong()),
    })
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unbase64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::new();
    let mut n = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = B64.iter().position(|b| *b == c)? as u32;
        n = n << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((n >> bits) as u8);
            n &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for data in [&b""[..], b"a", b"ab", b"abc", b"abcd", &[0, 255, 7, 8, 9]] {
            assert_eq!(unbase64(&base64(data)).unwrap(), data);
        }
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
    }
}
