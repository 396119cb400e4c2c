//! Date and time functions by ksqlDB's names, with Java `DateTimeFormatter` patterns
//! (`yyyy-MM-dd HH:mm:ss.SSS`, `'T'` quoted, `XXX` offsets) and time zones given as `UTC` or
//! a fixed offset (`+02:00`, `-0530`, `UTC+1`). Dates are days since 1970-01-01, times
//! milliseconds since midnight, timestamps milliseconds since the epoch (UTC).
//!
//! A pattern or zone written as a literal is checked when the statement is planned; one
//! computed per row that does not parse gives NULL, as does a string that does not match
//! its pattern.

use crate::ast::{Expr, ExprKind, Ident, Literal};
use crate::expr::error as fail;
use crate::expr::{compile, Compiled, PlanError, Scope};
use crate::functions::make;
use crate::lexer::Pos;
use crate::value::{Type, Value};

type Result<T> = std::result::Result<T, PlanError>;

pub const FUNCTIONS: &[&str] = &[
    "CONVERT_TZ",
    "DATETOSTRING",
    "FORMAT_DATE",
    "FORMAT_TIME",
    "FORMAT_TIMESTAMP",
    "FROM_DAYS",
    "FROM_UNIXTIME",
    "PARSE_DATE",
    "PARSE_TIME",
    "PARSE_TIMESTAMP",
    "STRINGTODATE",
    "STRINGTOTIMESTAMP",
    "TIMESTAMPTOSTRING",
    "UNIX_DATE",
    "UNIX_TIMESTAMP",
];

/// Functions whose first argument is a time unit: `DATEADD(DAYS, 3, d)`.
pub const ADDERS: &[&str] = &[
    "DATEADD",
    "DATESUB",
    "TIMEADD",
    "TIMESUB",
    "TIMESTAMPADD",
    "TIMESTAMPSUB",
];

const DAY_MS: i64 = 86_400_000;

/// A call of a date or time function, compiled; None for other functions.
pub fn compile_call(name: &Ident, args: &[Expr], scope: &Scope) -> Option<Result<Compiled>> {
    let n = name.name.as_str();
    let compiled = |args: &[Expr]| -> Result<Vec<(Compiled, Pos)>> {
        args.iter()
            .map(|a| Ok((compile(a, scope)?, a.pos)))
            .collect()
    };
    if ADDERS.contains(&n) {
        // DATEADD(unit, n, x) and its kin: the unit is a word, not a column.
        let Some(ExprKind::Column {
            qualifier: None,
            name: unit,
        }) = args.first().map(|a| &a.kind)
        else {
            return Some(fail(
                name.pos,
                format!("{n}(unit, n, value): the unit is a word such as DAYS"),
            ));
        };
        return Some(
            compiled(&args[1..]).and_then(|rest| add(n, name.pos, &unit.name, unit.pos, rest)),
        );
    }
    if !FUNCTIONS.contains(&n) {
        return None;
    }
    let literals: Vec<Option<String>> = args
        .iter()
        .map(|a| match &a.kind {
            ExprKind::Literal(Literal::String(s)) => Some(s.clone()),
            _ => None,
        })
        .collect();
    Some(compiled(args).and_then(|c| scalar(n, name.pos, c, &literals)))
}

/// `DATEADD(unit, n, date)`, `TIMEADD(unit, n, time)`, `TIMESTAMPADD(unit, n, ts)` and the
/// `..SUB` forms. Units: MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS (singular too); a
/// DATE moves by whole days, a TIME wraps around midnight.
pub fn add(
    name: &str,
    pos: Pos,
    unit: &str,
    unit_pos: Pos,
    args: Vec<(Compiled, Pos)>,
) -> Result<Compiled> {
    let unit_ms: i64 = match unit.trim_end_matches('S') {
        "MILLISECOND" => 1,
        "SECOND" => 1000,
        "MINUTE" => 60_000,
        "HOUR" => 3_600_000,
        "DAY" => DAY_MS,
        _ => {
            return fail(
                unit_pos,
                format!("unknown time unit {unit}: MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS"),
            )
        }
    };
    if args.len() != 2 {
        return fail(
            pos,
            format!("{name} takes 3 arguments: a unit, an amount and a value"),
        );
    }
    let want = match name {
        "DATEADD" | "DATESUB" => Type::Date,
        "TIMEADD" | "TIMESUB" => Type::Time,
        _ => Type::Timestamp,
    };
    if want == Type::Date && unit_ms < DAY_MS {
        return fail(unit_pos, format!("{name} moves a DATE by DAYS, not {unit}"));
    }
    if let Some(t) = &args[0].0.ty {
        if !matches!(t, Type::Int | Type::Bigint) {
            return fail(
                args[0].1,
                format!("the amount of {name} must be an integer, not a {t}"),
            );
        }
    }
    if let Some(t) = &args[1].0.ty {
        if *t != want {
            return fail(args[1].1, format!("{name} takes a {want}, not a {t}"));
        }
    }
    let sign = if name.ends_with("SUB") { -1 } else { 1 };
    let cs: Vec<Compiled> = args.into_iter().map(|(c, _)| c).collect();
    Ok(make(Some(want), cs, move |v| {
        let Some(n) = v[0].as_i64() else {
            return Value::Null;
        };
        let delta = sign * n.saturating_mul(unit_ms);
        match &v[1] {
            Value::Date(d) => Value::Date((*d as i64 + delta / DAY_MS) as i32),
            Value::Time(t) => {
                Value::Time((t.rem_euclid(DAY_MS) + delta % DAY_MS).rem_euclid(DAY_MS))
            }
            Value::Timestamp(t) => Value::Timestamp(t.saturating_add(delta)),
            _ => Value::Null,
        }
    }))
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number: (year, month, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// A time zone: `UTC`/`Z`/`GMT`, or a fixed offset; its offset in seconds.
pub fn zone_offset(zone: &str) -> Option<i64> {
    let z = zone.trim();
    let rest = ["UTC", "GMT", "UT", "Z"]
        .iter()
        .find_map(|p| z.strip_prefix(p))
        .unwrap_or(z);
    if rest.is_empty() {
        return Some(0);
    }
    let (sign, digits) = match rest.as_bytes()[0] {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() == 4 => digits.split_at(2),
        None => (digits, "0"),
    };
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 18 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

#[derive(Debug, Clone, PartialEq)]
enum Field {
    Year(usize),
    Month(usize),
    MonthName(usize),
    Day(usize),
    DayOfWeek(usize),
    Hour24(usize),
    Hour12(usize),
    Minute(usize),
    Second(usize),
    Fraction(usize),
    AmPm,
    /// `X`, `XX`, `XXX` (Z for zero), `Z`/`ZZ` (+HHMM), `x` forms.
    Offset {
        colon: bool,
        z_for_zero: bool,
    },
    Literal(String),
}

/// A `DateTimeFormatter` pattern, compiled.
#[derive(Debug, Clone)]
pub struct Pattern(Vec<Field>);

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
];

impl Pattern {
    pub fn compile(text: &str) -> std::result::Result<Pattern, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                let mut lit = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("pattern {text:?}: a quote is not closed")),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            lit.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            lit.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push(Field::Literal(if lit.is_empty() {
                    "'".into()
                } else {
                    lit
                }));
                continue;
            }
            let n = chars[i..].iter().take_while(|&&x| x == c).count();
            i += n;
            out.push(match c {
                'y' | 'u' => Field::Year(n),
                'M' | 'L' if n >= 3 => Field::MonthName(n),
                'M' | 'L' => Field::Month(n),
                'd' => Field::Day(n),
                'E' => Field::DayOfWeek(n),
                'H' => Field::Hour24(n),
                'h' => Field::Hour12(n),
                'm' => Field::Minute(n),
                's' => Field::Second(n),
                'S' => Field::Fraction(n),
                'a' => Field::AmPm,
                'X' => Field::Offset { colon: n >= 3, z_for_zero: true },
                'x' => Field::Offset { colon: n >= 3, z_for_zero: false },
                'Z' => Field::Offset { colon: n >= 5, z_for_zero: false },
                c if c.is_ascii_alphabetic() => {
                    return Err(format!(
                        "pattern {text:?}: the letter {c} is not supported (y M d E H h m s S a X x Z, and 'quoted text')"
                    ))
                }
                c => Field::Literal(c.to_string().repeat(n)),
            });
        }
        Ok(Pattern(out))
    }

    /// `ms` since the epoch, shown at `offset_s` from UTC.
    pub fn format(&self, ms: i64, offset_s: i64) -> String {
        let local = ms.saturating_add(offset_s * 1000);
        let days = local.div_euclid(DAY_MS);
        let in_day = local.rem_euclid(DAY_MS);
        let (y, mo, d) = civil_from_days(days);
        let (h, mi, s, f) = (
            in_day / 3_600_000,
            in_day / 60_000 % 60,
            in_day / 1000 % 60,
            in_day % 1000,
        );
        let mut out = String::new();
        let pad = |out: &mut String, v: i64, n: usize| out.push_str(&format!("{v:0n$}"));
        for field in &self.0 {
            match field {
                Field::Year(2) => pad(&mut out, y.rem_euclid(100), 2),
                Field::Year(n) => pad(&mut out, y, *n),
                Field::Month(n) => pad(&mut out, mo, *n),
                Field::MonthName(3) => out.push_str(&MONTHS[(mo - 1) as usize][..3]),
                Field::MonthName(_) => out.push_str(MONTHS[(mo - 1) as usize]),
                Field::Day(n) => pad(&mut out, d, *n),
                Field::DayOfWeek(n) => {
                    let name = WEEKDAYS[days.rem_euclid(7) as usize];
                    out.push_str(if *n >= 4 { name } else { &name[..3] });
                }
                Field::Hour24(n) => pad(&mut out, h, *n),
                Field::Hour12(n) => pad(&mut out, if h % 12 == 0 { 12 } else { h % 12 }, *n),
                Field::Minute(n) => pad(&mut out, mi, *n),
                Field::Second(n) => pad(&mut out, s, *n),
                Field::Fraction(n) => {
                    let digits = format!("{f:03}000000");
                    out.push_str(&digits[..(*n).min(9)]);
                }
                Field::AmPm => out.push_str(if h < 12 { "AM" } else { "PM" }),
                Field::Offset { colon, z_for_zero } => {
                    if offset_s == 0 && *z_for_zero {
                        out.push('Z');
                    } else {
                        let sign = if offset_s < 0 { '-' } else { '+' };
                        let (oh, om) = (offset_s.abs() / 3600, offset_s.abs() / 60 % 60);
                        out.push_str(&if *colon {
                            format!("{sign}{oh:02}:{om:02}")
                        } else {
                            format!("{sign}{oh:02}{om:02}")
                        });
                    }
                }
                Field::Literal(l) => out.push_str(l),
            }
        }
        out
    }

    /// The instant `text` names, read at `offset_s` from UTC unless it carries its offset.
    /// Missing fields are the epoch's (1970-01-01 00:00:00.000).
    pub fn parse(&self, text: &str, offset_s: i64) -> Option<i64> {
        let b = text.as_bytes();
        let mut at = 0;
        let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut ms) =
            (1970i64, 1i64, 1i64, 0i64, 0i64, 0i64, 0i64);
        let (mut pm, mut twelve) = (None, false);
        let mut offset = offset_s;
        let number = |at: &mut usize, min: usize, max: usize| -> Option<i64> {
            let start = *at;
            let neg = b.get(*at) == Some(&b'-');
            if neg {
                *at += 1;
            }
            let digits_start = *at;
            while *at < b.len() && *at - digits_start < max && b[*at].is_ascii_digit() {
                *at += 1;
            }
            if *at - digits_start < min {
                *at = start;
                return None;
            }
            let v: i64 = text[digits_start..*at].parse().ok()?;
            Some(if neg { -v } else { v })
        };
        for (i, field) in self.0.iter().enumerate() {
            // A field followed by another number field reads exactly its width.
            let next_is_number = matches!(self.0.get(i + 1), Some(f) if !matches!(f, Field::Literal(_) | Field::AmPm | Field::Offset { .. } | Field::MonthName(_) | Field::DayOfWeek(_)));
            let width = |n: usize, natural: usize| {
                if next_is_number {
                    n.max(1)
                } else {
                    natural.max(n)
                }
            };
            match field {
                Field::Year(2) => y = 2000 + number(&mut at, 2, 2)?,
                Field::Year(n) => y = number(&mut at, *n, width(*n, 9))?,
                Field::Month(n) => mo = number(&mut at, *n, width(*n, 2))?,
                Field::Day(n) => d = number(&mut at, *n, width(*n, 2))?,
                Field::Hour24(n) => h = number(&mut at, *n, width(*n, 2))?,
                Field::Hour12(n) => {
                    h = number(&mut at, *n, width(*n, 2))?;
                    twelve = true;
                }
                Field::Minute(n) => mi = number(&mut at, *n, width(*n, 2))?,
                Field::Second(n) => s = number(&mut at, *n, width(*n, 2))?,
                Field::Fraction(n) => {
                    let start = at;
                    let v = number(&mut at, *n, if next_is_number { *n } else { 9 })?;
                    let digits = (at - start) as u32;
                    ms = if digits >= 3 {
                        v / 10i64.pow(digits - 3)
                    } else {
                        v * 10i64.pow(3 - digits)
                    };
                }
                Field::MonthName(n) => {
                    let rest = &text[at..];
                    let (idx, len) = MONTHS.iter().enumerate().find_map(|(i, m)| {
                        let name = if *n >= 4 { *m } else { &m[..3] };
                        rest.get(..name.len())
                            .filter(|r| r.eq_ignore_ascii_case(name))
                            .map(|_| (i, name.len()))
                    })?;
                    mo = idx as i64 + 1;
                    at += len;
                }
                Field::DayOfWeek(n) => {
                    let rest = &text[at..];
                    let len = WEEKDAYS.iter().find_map(|w| {
                        let name = if *n >= 4 { *w } else { &w[..3] };
                        rest.get(..name.len())
                            .filter(|r| r.eq_ignore_ascii_case(name))
                            .map(|_| name.len())
                    })?;
                    at += len;
                }
                Field::AmPm => {
                    let r = text.get(at..at + 2)?;
                    pm = Some(r.eq_ignore_ascii_case("PM"));
                    if !r.eq_ignore_ascii_case("PM") && !r.eq_ignore_ascii_case("AM") {
                        return None;
                    }
                    at += 2;
                }
                Field::Offset { .. } => {
                    if b.get(at) == Some(&b'Z') {
                        offset = 0;
                        at += 1;
                    } else {
                        let end = text[at..]
                            .find(|c: char| {
                                !(c.is_ascii_digit() || c == '+' || c == '-' || c == ':')
                            })
                            .map_or(text.len(), |e| at + e);
                        offset = zone_offset(&text[at..end])?;
                        at = end;
                    }
                }
                Field::Literal(l) => {
                    if !text[at..].starts_with(l.as_str()) {
                        return None;
                    }
                    at += l.len();
                }
            }
        }
        if at != text.len() {
            return None;
        }
        if twelve {
            h = h % 12 + if pm == Some(true) { 12 } else { 0 };
        }
        let valid = (1..=12).contains(&mo)
            && d >= 1
            && d <= days_in_month(y, mo)
            && h < 24
            && mi < 60
            && s < 60;
        if !valid {
            return None;
        }
        // Years beyond what milliseconds since 1970 can hold do not parse.
        if !(-292_000_000..=292_000_000).contains(&y) {
            return None;
        }
        let days = days_from_civil(y, mo, d);
        days.checked_mul(DAY_MS)?
            .checked_add(h * 3_600_000 + mi * 60_000 + s * 1000 + ms - offset * 1000)
    }
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `name(args)`; `literals[i]` is argument i when it was written as a string literal.
pub fn scalar(
    name: &str,
    pos: Pos,
    args: Vec<(Compiled, Pos)>,
    literals: &[Option<String>],
) -> Result<Compiled> {
    let n = args.len();
    let arity = |min: usize, max: usize| -> Result<()> {
        if n < min || n > max {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return fail(pos, format!("{name} takes {want} arguments, not {n}"));
        }
        Ok(())
    };
    let arg_is = |i: usize, ok: fn(&Type) -> bool, what: &str| -> Result<()> {
        match &args[i].0.ty {
            Some(t) if !ok(t) => fail(
                args[i].1,
                format!("argument {} of {name} must be {what}, not a {t}", i + 1),
            ),
            _ => Ok(()),
        }
    };
    // A literal pattern or zone is checked now.
    let check_pattern = |i: usize| -> Result<()> {
        arg_is(i, |t| *t == Type::String, "a STRING pattern")?;
        if let Some(Some(p)) = literals.get(i) {
            Pattern::compile(p).map_err(|m| PlanError {
                message: m,
                pos: args[i].1,
            })?;
        }
        Ok(())
    };
    let check_zone = |i: usize| -> Result<()> {
        if i >= n {
            return Ok(());
        }
        arg_is(i, |t| *t == Type::String, "a STRING time zone")?;
        if let Some(Some(z)) = literals.get(i) {
            if zone_offset(z).is_none() {
                return fail(args[i].1, format!("time zone {z:?}: give UTC or a fixed offset such as '+02:00' (zone names are not supported)"));
            }
        }
        Ok(())
    };
    let cs: Vec<Compiled> = args.iter().map(|(c, _)| c.clone()).collect();
    let integer = |t: &Type| matches!(t, Type::Int | Type::Bigint);
    let string = |t: &Type| *t == Type::String;
    let zone_at = |v: &[Value], i: usize| -> Option<i64> {
        match v.get(i) {
            None => Some(0),
            Some(Value::String(z)) => zone_offset(z),
            _ => None,
        }
    };
    let pattern_at = |v: &[Value], i: usize| -> Option<Pattern> {
        match v.get(i) {
            Some(Value::String(p)) => Pattern::compile(p).ok(),
            _ => None,
        }
    };
    // Formats argument 0 (as ms, by `to_ms`) with pattern 1 in zone 2.
    let formatter = |to_ms: fn(&Value) -> Option<i64>| {
        make(Some(Type::String), cs.clone(), move |v| {
            match (to_ms(&v[0]), pattern_at(v, 1), zone_at(v, 2)) {
                (Some(ms), Some(p), Some(z)) => Value::String(p.format(ms, z)),
                _ => Value::Null,
            }
        })
    };
    let parser = |ty: Type, from_ms: fn(i64) -> Value| {
        make(Some(ty), cs.clone(), move |v| {
            match (&v[0], pattern_at(v, 1), zone_at(v, 2)) {
                (Value::String(s), Some(p), Some(z)) => p.parse(s, z).map_or(Value::Null, from_ms),
                _ => Value::Null,
            }
        })
    };
    let ms_of = |v: &Value| match v {
        Value::Bigint(x) | Value::Timestamp(x) => Some(*x),
        Value::Int(x) => Some(*x as i64),
        _ => None,
    };
    match name {
        "UNIX_TIMESTAMP" => {
            arity(0, 1)?;
            Ok(make(Some(Type::Bigint), cs, |v| match v.first() {
                None => Value::Bigint(now_ms()),
                Some(Value::Timestamp(t)) => Value::Bigint(*t),
                _ => Value::Null,
            }))
        }
        "UNIX_DATE" => {
            arity(0, 1)?;
            Ok(make(Some(Type::Int), cs, |v| match v.first() {
                None => Value::Int(now_ms().div_euclid(DAY_MS) as i32),
                Some(Value::Date(d)) => Value::Int(*d),
                _ => Value::Null,
            }))
        }
        "TIMESTAMPTOSTRING" | "FORMAT_TIMESTAMP" => {
            arity(2, 3)?;
            if name == "FORMAT_TIMESTAMP" {
                arg_is(0, |t| *t == Type::Timestamp, "a TIMESTAMP")?;
            } else {
                arg_is(0, integer, "a BIGINT of milliseconds")?;
            }
            check_pattern(1)?;
            check_zone(2)?;
            Ok(formatter(ms_of))
        }
        "STRINGTOTIMESTAMP" | "PARSE_TIMESTAMP" => {
            arity(2, 3)?;
            arg_is(0, string, "a STRING")?;
            check_pattern(1)?;
            check_zone(2)?;
            Ok(if name == "PARSE_TIMESTAMP" {
                parser(Type::Timestamp, Value::Timestamp)
            } else {
                parser(Type::Bigint, Value::Bigint)
            })
        }
        "DATETOSTRING" | "FORMAT_DATE" => {
            arity(2, 2)?;
            if name == "FORMAT_DATE" {
                arg_is(0, |t| *t == Type::Date, "a DATE")?;
            } else {
                arg_is(0, integer, "an INT of days")?;
            }
            check_pattern(1)?;
            Ok(formatter(|v| match v {
                Value::Date(d) | Value::Int(d) => Some(*d as i64 * DAY_MS),
                _ => None,
            }))
        }
        "STRINGTODATE" | "PARSE_DATE" => {
            arity(2, 2)?;
            arg_is(0, string, "a STRING")?;
            check_pattern(1)?;
            Ok(if name == "PARSE_DATE" {
                parser(Type::Date, |ms| Value::Date(ms.div_euclid(DAY_MS) as i32))
            } else {
                parser(Type::Int, |ms| Value::Int(ms.div_euclid(DAY_MS) as i32))
            })
        }
        "FORMAT_TIME" => {
            arity(2, 2)?;
            arg_is(0, |t| *t == Type::Time, "a TIME")?;
            check_pattern(1)?;
            Ok(formatter(|v| match v {
                Value::Time(t) => Some(*t),
                _ => None,
            }))
        }
        "PARSE_TIME" => {
            arity(2, 2)?;
            arg_is(0, string, "a STRING")?;
            check_pattern(1)?;
            Ok(parser(Type::Time, |ms| Value::Time(ms.rem_euclid(DAY_MS))))
        }
        "FROM_UNIXTIME" => {
            arity(1, 1)?;
            arg_is(0, integer, "a BIGINT of milliseconds")?;
            Ok(make(Some(Type::Timestamp), cs, move |v| {
                ms_of(&v[0]).map_or(Value::Null, Value::Timestamp)
            }))
        }
        "FROM_DAYS" => {
            arity(1, 1)?;
            arg_is(0, integer, "an INT of days")?;
            Ok(make(Some(Type::Date), cs, |v| {
                v[0].as_i64().map_or(Value::Null, |d| Value::Date(d as i32))
            }))
        }
        "CONVERT_TZ" => {
            arity(3, 3)?;
            arg_is(0, |t| *t == Type::Timestamp, "a TIMESTAMP")?;
            check_zone(1)?;
            check_zone(2)?;
            Ok(make(Some(Type::Timestamp), cs, move |v| {
                match (&v[0], zone_at(v, 1), zone_at(v, 2)) {
                    (Value::Timestamp(t), Some(from), Some(to)) => {
                        Value::Timestamp(t + (to - from) * 1000)
                    }
                    _ => Value::Null,
                }
            }))
        }
        _ => fail(pos, format!("unknown function {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        for days in [-719_468, -1, 0, 1, 11_016, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
    }

    #[test]
    fn patterns_format_and_parse() {
        let p = Pattern::compile("yyyy-MM-dd'T'HH:mm:ss.SSSXXX").unwrap();
        assert_eq!(p.format(1_700_000_000_123, 0), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            p.format(1_700_000_000_123, 3600),
            "2023-11-14T23:13:20.123+01:00"
        );
        assert_eq!(
            p.parse("2023-11-14T23:13:20.123+01:00", 0),
            Some(1_700_000_000_123)
        );
        let q = Pattern::compile("dd MMM yyyy hh:mm a").unwrap();
        assert_eq!(q.format(0, 0), "01 Jan 1970 12:00 AM");
        assert_eq!(
            q.parse("01 Jan 1970 01:30 PM", 0),
            Some(13 * 3_600_000 + 30 * 60_000)
        );
        assert_eq!(
            Pattern::compile("yyyyMMdd").unwrap().parse("20240229", 0),
            Some(19_782 * DAY_MS)
        );
        assert_eq!(
            Pattern::compile("yyyy-MM-dd")
                .unwrap()
                .parse("2023-02-29", 0),
            None
        );
        assert!(Pattern::compile("yyyy-MM-dd Q").is_err());
        assert_eq!(zone_offset("-05:30"), Some(-19_800));
        assert_eq!(zone_offset("UTC+2"), Some(7200));
        assert_eq!(zone_offset("America/New_York"), None);
        // Out of range or odd input gives None, never a panic.
        let y = Pattern::compile("yyyyyyyyy").unwrap();
        assert_eq!(y.parse("999999999", 0), None);
        assert_eq!(p.parse("2023-11-14T23:13:20.123+99:00", 0), None);
        assert_eq!(p.parse("2023-11-14T23:13:2é", 0), None);
        let _ = p.format(i64::MAX, 64_800);
        let _ = p.format(i64::MIN, -64_800);
    }
}
