//! Values as PostgreSQL's output functions print them (issue 22): the text
//! of `CAST(x AS text)`, of `'text' || x`, of `concat(x)` and of
//! `format('%s', x)`.
//!
//! DataFusion 55 casts to text with Arrow's display, which is not
//! PostgreSQL's for most types that are not numbers or text:
//!
//! | value | Arrow | PostgreSQL |
//! |---|---|---|
//! | `timestamp` | `2024-01-01T10:00:00.500` | `2024-01-01 10:00:00.5` |
//! | `timestamptz` | `2024-01-01T10:00:00Z` | `2024-01-01 10:00:00+00` (in the session's zone) |
//! | `time` | `10:00:00.250` | `10:00:00.25` |
//! | `interval` | `-1 days 2 hours 3.500000000 secs`, `14 mons` | `-1 days +02:00:03.5`, `1 year 2 mons` |
//! | `float8` | `1000000000000000.0`, `-0.0` | `1e+15`, `-0` |
//! | array | `[1, 2]` | `{1,2}` |
//! | `bytea` | the bytes read as UTF-8 | `\x0102` |
//! | `boolean` (output function) | `true` | `t` |
//!
//! so `'placed ' || placed_at` answered `placed 2024-01-01T10:00:00`.
//! [`text_of`] prints each as PostgreSQL does; `quipu_text_out(x)` is that
//! function in plans (`scheduler/src/text_forms.rs` plans the casts and
//! `||` with it). A `timestamptz` is printed in the zone of its Arrow type,
//! which `scheduler/src/zones.rs` makes the session's. A boolean is `t` /
//! `f` here; `CAST(b AS text)`, which PostgreSQL spells `true` / `false`,
//! is left to DataFusion's cast.

use std::fmt::Write;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Offset, Timelike};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float32Array, Float64Array, GenericListArray,
    ListArray, OffsetSizeTrait, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, DurationMicrosecondType, Field, IntervalDayTimeType,
    IntervalMonthDayNanoType, IntervalUnit, IntervalYearMonthType, Time64MicrosecondType, TimeUnit,
    TimestampMicrosecondType,
};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::pg_text::{float4_out, float8_out};

/// The function's name in plans.
pub const TEXT_OUT: &str = "quipu_text_out";

#[derive(Debug, PartialEq, Eq, Hash)]
struct TextOut {
    signature: Signature,
}

/// `quipu_text_out(x)`: `x` as PostgreSQL's output function prints it.
pub fn text_out() -> ScalarUDF {
    ScalarUDF::new_from_impl(TextOut {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

impl ScalarUDFImpl for TextOut {
    fn name(&self) -> &str {
        TEXT_OUT
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        super::pg_text::unary(&args.args[0], text_of)
    }
}

/// The name of [`elements_text`].
pub const ELEMENTS_TEXT: &str = "quipu_elements_text";

/// `quipu_elements_text(array)`: the array with each element as
/// PostgreSQL prints it (a `text[]`). `array_to_string` of an array whose
/// elements Arrow prints otherwise (booleans `true` for `t`, timestamps
/// with a `T`, floats, intervals) reads this
/// (`scheduler/src/text_forms.rs`).
pub fn elements_text() -> ScalarUDF {
    ScalarUDF::new_from_impl(ElementsText {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ElementsText {
    signature: Signature,
}

impl ScalarUDFImpl for ElementsText {
    fn name(&self) -> &str {
        ELEMENTS_TEXT
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(elements_text_type(&args[0]))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        super::pg_text::unary(&args.args[0], elements_text_of)
    }
}

/// `t` with its innermost elements text: an array of arrays stays one
/// (`array_to_string` flattens it, as PostgreSQL's does).
fn elements_text_type(t: &DataType) -> DataType {
    match t {
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::FixedSizeList(f, _)
        | DataType::ListView(f) => DataType::new_list(elements_text_type(f.data_type()), true),
        _ => DataType::Utf8,
    }
}

fn elements_text_of(a: &ArrayRef) -> Result<ArrayRef> {
    let a = match a.data_type() {
        DataType::LargeList(f) | DataType::FixedSizeList(f, _) | DataType::ListView(f) => {
            cast(a, &DataType::List(f.clone()))?
        }
        _ => a.clone(),
    };
    let Some(list) = a.as_list_opt::<i32>() else {
        return text_of(&a);
    };
    let values = elements_text_of(list.values())?;
    Ok(Arc::new(ListArray::try_new(
        Arc::new(Field::new_list_field(values.data_type().clone(), true)),
        list.offsets().clone(),
        values,
        list.nulls().cloned(),
    )?))
}

/// Whether Arrow's cast to text prints values of `t` as PostgreSQL does
/// (text, integers, numerics, dates of years 1 to 9999), so [`text_of`] is
/// not needed for them.
pub fn cast_prints_as_postgresql(t: &DataType) -> bool {
    t.is_integer()
        || t.is_string()
        || matches!(
            t,
            DataType::Null | DataType::Decimal128(..) | DataType::Decimal256(..)
        )
}

/// Each value of `a` as PostgreSQL prints it (a `Utf8` array, NULL for
/// NULL).
pub fn text_of(a: &ArrayRef) -> Result<ArrayRef> {
    let out: StringArray = match a.data_type() {
        t if cast_prints_as_postgresql(t) => return Ok(cast(a, &DataType::Utf8)?),
        DataType::Boolean => {
            let b: &BooleanArray = a.as_boolean();
            b.iter()
                .map(|v| v.map(|v| if v { "t" } else { "f" }))
                .collect()
        }
        DataType::Float64 => {
            let f: &Float64Array = a.as_primitive();
            f.iter().map(|v| v.map(float8_out)).collect()
        }
        DataType::Float32 | DataType::Float16 => {
            let f = cast(a, &DataType::Float32)?;
            let f: &Float32Array = f.as_primitive();
            f.iter().map(|v| v.map(float4_out)).collect()
        }
        DataType::Date32 | DataType::Date64 => {
            let d = cast(a, &DataType::Date32)?;
            let d = d.as_primitive::<Date32Type>();
            (0..d.len())
                .map(|i| d.value_as_date(i).filter(|_| d.is_valid(i)).map(date_text))
                .collect()
        }
        DataType::Timestamp(_, None) => {
            let t = cast(a, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
            let t = t.as_primitive::<TimestampMicrosecondType>();
            (0..t.len())
                .map(|i| {
                    t.value_as_datetime(i)
                        .filter(|_| t.is_valid(i))
                        .map(timestamp_text)
                })
                .collect()
        }
        DataType::Timestamp(_, Some(zone)) => {
            let tz: Tz = zone.parse()?;
            let t = cast(
                a,
                &DataType::Timestamp(TimeUnit::Microsecond, Some(zone.clone())),
            )?;
            let t = t.as_primitive::<TimestampMicrosecondType>();
            (0..t.len())
                .map(|i| {
                    let at = t
                        .value_as_datetime_with_tz(i, tz)
                        .filter(|_| t.is_valid(i))?;
                    let mut out = timestamp_text(at.naive_local());
                    push_offset(&mut out, at.offset().fix().local_minus_utc());
                    Some(out)
                })
                .collect()
        }
        DataType::Time32(_) | DataType::Time64(_) => {
            let t = cast(a, &DataType::Time64(TimeUnit::Microsecond))?;
            let t = t.as_primitive::<Time64MicrosecondType>();
            (0..t.len())
                .map(|i| t.value_as_time(i).filter(|_| t.is_valid(i)).map(time_text))
                .collect()
        }
        DataType::Interval(unit) => {
            let parts: Vec<Option<(i32, i32, i64)>> = match unit {
                IntervalUnit::MonthDayNano => a
                    .as_primitive::<IntervalMonthDayNanoType>()
                    .iter()
                    .map(|v| v.map(|v| (v.months, v.days, v.nanoseconds / 1000)))
                    .collect(),
                IntervalUnit::DayTime => a
                    .as_primitive::<IntervalDayTimeType>()
                    .iter()
                    .map(|v| v.map(|v| (0, v.days, v.milliseconds as i64 * 1000)))
                    .collect(),
                IntervalUnit::YearMonth => a
                    .as_primitive::<IntervalYearMonthType>()
                    .iter()
                    .map(|v| v.map(|m| (m, 0, 0)))
                    .collect(),
            };
            parts
                .into_iter()
                .map(|p| p.map(|(m, d, us)| interval_text(m, d, us)))
                .collect()
        }
        DataType::Duration(_) => {
            let d = cast(a, &DataType::Duration(TimeUnit::Microsecond))?;
            d.as_primitive::<DurationMicrosecondType>()
                .iter()
                .map(|v| v.map(|us| interval_text(0, 0, us)))
                .collect()
        }
        DataType::List(_) => return array_text(a.as_list::<i32>()),
        DataType::LargeList(_) => return array_text(a.as_list::<i64>()),
        DataType::FixedSizeList(f, _) => {
            let list = cast(a, &DataType::List(f.clone()))?;
            return array_text(list.as_list::<i32>());
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            let b = cast(a, &DataType::Binary)?;
            b.as_binary::<i32>()
                .iter()
                .map(|v| {
                    v.map(|bytes| {
                        let mut out = String::with_capacity(2 + 2 * bytes.len());
                        out.push_str("\\x");
                        for byte in bytes {
                            let _ = write!(out, "{byte:02x}");
                        }
                        out
                    })
                })
                .collect()
        }
        DataType::Dictionary(_, v) => {
            let values = cast(a, v)?;
            return text_of(&values);
        }
        _ => return Ok(cast(a, &DataType::Utf8)?),
    };
    Ok(Arc::new(out))
}

/// Each value of `a` as PostgreSQL's cast to text prints it: as
/// [`text_of`], but a boolean is `true` / `false`.
pub fn cast_text_of(a: &ArrayRef) -> Result<ArrayRef> {
    match a.data_type() {
        DataType::Boolean => Ok(cast(a, &DataType::Utf8)?),
        _ => text_of(a),
    }
}

/// A date: `2024-02-29`, `10000-01-01`, `0044-03-15 BC` (year 0 is 1 BC).
fn date_text(d: NaiveDate) -> String {
    let mut out = String::with_capacity(13);
    push_date(&mut out, d);
    if d.year() <= 0 {
        out.push_str(" BC");
    }
    out
}

fn push_date(out: &mut String, d: NaiveDate) {
    let year = if d.year() <= 0 {
        1 - d.year()
    } else {
        d.year()
    };
    let _ = write!(out, "{year:04}-{:02}-{:02}", d.month(), d.day());
}

/// A timestamp without time zone: `2024-01-01 10:00:00.5`.
fn timestamp_text(t: NaiveDateTime) -> String {
    let mut out = String::with_capacity(26);
    push_date(&mut out, t.date());
    out.push(' ');
    push_clock(&mut out, t.time());
    if t.year() <= 0 {
        out.push_str(" BC");
    }
    out
}

/// A time of day: `10:00:00.25`.
fn time_text(t: NaiveTime) -> String {
    let mut out = String::with_capacity(15);
    push_clock(&mut out, t);
    out
}

fn push_clock(out: &mut String, t: NaiveTime) {
    let _ = write!(out, "{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
    push_fraction(out, t.nanosecond() / 1000);
}

/// `.5` for 500000 microseconds, nothing for none.
fn push_fraction(out: &mut String, micros: u32) {
    if micros > 0 {
        let digits = format!("{micros:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

/// A zone's offset as PostgreSQL prints it: `+00`, `-05`, `+05:30`.
fn push_offset(out: &mut String, seconds: i32) {
    let (sign, abs) = if seconds < 0 {
        ('-', -seconds)
    } else {
        ('+', seconds)
    };
    let _ = write!(out, "{sign}{:02}", abs / 3600);
    if abs % 3600 != 0 {
        let _ = write!(out, ":{:02}", abs % 3600 / 60);
    }
    if abs % 60 != 0 {
        let _ = write!(out, ":{:02}", abs % 60);
    }
}

/// An interval as PostgreSQL prints it with `IntervalStyle` `postgres`
/// (its default; `EncodeInterval` in PostgreSQL's `datetime.c`): years,
/// `mons` and days, each with its own sign, then the clock, signed when
/// negative or after a negative field: `1 year 2 mons`, `-1 days
/// +02:00:03.5`, `00:00:00` for nothing.
fn interval_text(months: i32, days: i32, micros: i64) -> String {
    let mut out = String::new();
    let mut is_zero = true;
    let mut is_before = false;
    for (value, unit) in [
        (i64::from(months / 12), "year"),
        (i64::from(months % 12), "mon"),
        (i64::from(days), "day"),
    ] {
        if value == 0 {
            continue;
        }
        let _ = write!(
            out,
            "{}{}{value} {unit}{}",
            if is_zero { "" } else { " " },
            if is_before && value > 0 { "+" } else { "" },
            if value != 1 { "s" } else { "" }
        );
        is_before = value < 0;
        is_zero = false;
    }
    if is_zero || micros != 0 {
        let minus = micros < 0;
        let abs = micros.unsigned_abs();
        let _ = write!(
            out,
            "{}{}{:02}:{:02}:{:02}",
            if is_zero { "" } else { " " },
            if minus {
                "-"
            } else if is_before {
                "+"
            } else {
                ""
            },
            abs / 3_600_000_000,
            abs / 60_000_000 % 60,
            abs / 1_000_000 % 60
        );
        push_fraction(&mut out, (abs % 1_000_000) as u32);
    }
    out
}

/// An array as PostgreSQL prints it: `{1,2}`, `{"a b",NULL,""}`,
/// `{{1,2},{3,4}}`. An element is quoted when it is empty, is `NULL`
/// spelt out, or holds a brace, comma, quote, backslash or white space;
/// quotes and backslashes in it are escaped.
fn array_text<O: OffsetSizeTrait>(list: &GenericListArray<O>) -> Result<ArrayRef> {
    let values = list.values();
    let nested = values.data_type().is_list();
    let texts = text_of(values)?;
    let texts = texts.as_string::<i32>();
    let out: StringArray = (0..list.len())
        .map(|i| {
            if list.is_null(i) {
                return None;
            }
            let offsets = list.value_offsets();
            let (start, end) = (offsets[i].as_usize(), offsets[i + 1].as_usize());
            let mut out = String::from("{");
            for j in start..end {
                if j > start {
                    out.push(',');
                }
                if texts.is_null(j) {
                    out.push_str("NULL");
                } else if nested {
                    out.push_str(texts.value(j));
                } else {
                    push_element(&mut out, texts.value(j));
                }
            }
            out.push('}');
            Some(out)
        })
        .collect();
    Ok(Arc::new(out))
}

fn push_element(out: &mut String, text: &str) {
    let quoted = text.is_empty()
        || text.eq_ignore_ascii_case("null")
        || text
            .chars()
            .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace());
    if !quoted {
        out.push_str(text);
        return;
    }
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_print_as_postgresqls() {
        // Each as PostgreSQL 16 prints `SELECT INTERVAL '...'`.
        assert_eq!(interval_text(0, 0, 0), "00:00:00");
        assert_eq!(interval_text(14, 0, 0), "1 year 2 mons");
        assert_eq!(interval_text(1, 1, 0), "1 mon 1 day");
        assert_eq!(
            interval_text(0, -1, 2 * 3_600_000_000 + 3_500_000),
            "-1 days +02:00:03.5"
        );
        assert_eq!(interval_text(0, 1, -3_600_000_000), "1 day -01:00:00");
        assert_eq!(interval_text(-13, 3, 0), "-1 years -1 mons +3 days");
        assert_eq!(
            interval_text(0, 0, 100 * 3_600_000_000 + 1),
            "100:00:00.000001"
        );
    }

    #[test]
    fn arrays_quote_what_postgresql_quotes() {
        let mut out = String::new();
        for e in ["a", "", "a b", "NULL", "x\"y", "c,d"] {
            push_element(&mut out, e);
            out.push('|');
        }
        assert_eq!(out, r#"a|""|"a b"|"NULL"|"x\"y"|"c,d"|"#);
    }

    #[test]
    fn dates_before_year_one_are_bc() {
        let d = NaiveDate::from_ymd_opt(-43, 3, 15).expect("a date");
        assert_eq!(date_text(d), "0044-03-15 BC");
        let d = NaiveDate::from_ymd_opt(10000, 1, 1).expect("a date");
        assert_eq!(date_text(d), "10000-01-01");
    }
}
