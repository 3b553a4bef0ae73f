//! More PostgreSQL functions DataFusion 55 does not have (issue 22; each
//! was refused as `Invalid function`), with PostgreSQL's types, values and
//! errors:
//!
//! - `width_bucket(x, low, high, count)`: the bucket of `x` among `count`
//!   equal buckets from `low` to `high` (0 below, `count + 1` from `high`
//!   on; `low > high` counts downwards), an `integer`. Of numerics (and
//!   integers with a numeric) exactly, as PostgreSQL's numeric version;
//!   else as its float8 version. The thresholds-array form is not here.
//! - `make_timestamp(year, month, day, hour, min, sec)`: a `timestamp`;
//!   a day or time that does not exist is PostgreSQL's error (22008).
//! - `make_time(hour, min, sec)`: a `time`, `sec` with a fraction
//!   (DataFusion's took whole seconds only); `24:00:00` is refused.
//! - `justify_days`, `justify_hours`, `justify_interval`: an interval's
//!   30-day groups as months, 24-hour groups as days, both, with the signs
//!   made to agree as PostgreSQL's do.
//! - `regexp_split_to_array(s, pattern [, flags])`: `s` split where the
//!   regular expression matches, as a `text[]`; an empty match at the
//!   start or end of `s`, or right after a match, does not split, as in
//!   PostgreSQL. Flags `i` and `c`; the others are refused.
//! - `regexp_match(s, pattern [, flags])`: DataFusion's (arrow's kernel)
//!   left out a group that took no part in the match, so the later groups
//!   moved down (`regexp_match('xz', '(x)(y)?(z)')` was `{x,z}`,
//!   PostgreSQL's is `{x,NULL,z}`); here each group keeps its place.
//! - `isfinite(date | timestamp | timestamptz | interval)`: true, NULL
//!   for NULL (Quipu's have no infinities; PostgreSQL's `'infinity'` is
//!   refused where it is read).
//! - `chr(n)`: DataFusion's, with PostgreSQL's errors (`chr(0)` was the
//!   NUL character, which PostgreSQL's text cannot hold).
//! - `quipu_timestamp_round(ts, p)`: a cast to `timestamp(p)` or
//!   `timestamptz(p)` (`syntax.rs` writes it), rounded to `p` fractional
//!   digits as PostgreSQL's `AdjustTimestampForTypmod` rounds: half away
//!   from zero, counted from PostgreSQL's epoch (2000-01-01). DataFusion
//!   truncated `timestamp(0)` and refused `timestamp(1)`..`(5)`.

use std::sync::Arc;

use chrono::{NaiveDate, NaiveTime};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, IntervalMonthDayNanoArray, ListBuilder, StringBuilder,
    TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Decimal128Type, Field, Float64Type, Int32Type,
    IntervalMonthDayNano, IntervalUnit, TimeUnit,
};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::DataException;

/// The functions, for the session's registry.
pub fn functions() -> Vec<ScalarUDF> {
    [
        Kind::WidthBucket,
        Kind::MakeTimestamp,
        Kind::MakeTime,
        Kind::JustifyDays,
        Kind::JustifyHours,
        Kind::JustifyInterval,
        Kind::RegexpSplit,
        Kind::RegexpMatch,
        Kind::RegexpMatches,
        Kind::RegexpSubstr,
        Kind::Chr,
        Kind::TimestampRound,
        Kind::IsFinite,
    ]
    .into_iter()
    .map(|kind| {
        ScalarUDF::new_from_impl(Builtin {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        })
    })
    .collect()
}

#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Kind {
    WidthBucket,
    MakeTimestamp,
    MakeTime,
    JustifyDays,
    JustifyHours,
    JustifyInterval,
    RegexpSplit,
    RegexpMatch,
    /// `quipu_regexp_matches(s, pattern [, flags])`: every match's (with
    /// `g`; else the first's) groups, a list per row; `syntax.rs` writes
    /// `regexp_matches(...)` as its `unnest`.
    RegexpMatches,
    RegexpSubstr,
    Chr,
    TimestampRound,
    IsFinite,
}

/// The name `syntax.rs` writes `regexp_matches` with (under `unnest`).
pub const REGEXP_MATCHES: &str = "quipu_regexp_matches";

#[derive(Debug, PartialEq, Eq, Hash)]
struct Builtin {
    kind: Kind,
    signature: Signature,
}

fn is_integer(t: &DataType) -> bool {
    t.is_integer() || *t == DataType::Null
}

fn is_text(t: &DataType) -> bool {
    t.is_string() || t.is_null()
}

const INTERVAL: DataType = DataType::Interval(IntervalUnit::MonthDayNano);

/// The common decimal type of `width_bucket`'s three numeric arguments
/// (None: one is not an integer or decimal).
fn common_decimal(args: &[DataType]) -> Option<DataType> {
    let mut scale = 0i8;
    let mut digits = 1u8;
    for t in args {
        match t {
            DataType::Decimal128(p, s) => {
                scale = scale.max(*s);
                digits = digits.max(p.saturating_sub(*s as u8));
            }
            t if is_integer(t) => digits = digits.max(20),
            _ => return None,
        }
    }
    let precision = (digits as i16 + scale as i16).min(38) as u8;
    Some(DataType::Decimal128(precision, scale))
}

impl ScalarUDFImpl for Builtin {
    fn name(&self) -> &str {
        match self.kind {
            Kind::WidthBucket => "width_bucket",
            Kind::MakeTimestamp => "make_timestamp",
            Kind::MakeTime => "make_time",
            Kind::JustifyDays => "justify_days",
            Kind::JustifyHours => "justify_hours",
            Kind::JustifyInterval => "justify_interval",
            Kind::RegexpSplit => "regexp_split_to_array",
            Kind::RegexpMatch => "regexp_match",
            Kind::RegexpMatches => REGEXP_MATCHES,
            Kind::RegexpSubstr => "regexp_substr",
            Kind::Chr => "chr",
            Kind::TimestampRound => TIMESTAMP_ROUND,
            Kind::IsFinite => "isfinite",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let coerced: Option<Vec<DataType>> = match (self.kind, args) {
            (Kind::WidthBucket, [x, low, high, count])
                if is_integer(count)
                    && [x, low, high]
                        .iter()
                        .all(|t| t.is_numeric() || **t == DataType::Null) =>
            {
                // A numeric among them, and no double: PostgreSQL's numeric
                // version; else (integers alone too) its float8 one.
                let numeric = args[..3]
                    .iter()
                    .any(|t| matches!(t, DataType::Decimal128(..)));
                let float = match numeric {
                    true => None,
                    false => Some(DataType::Float64),
                };
                let three = float.or_else(|| common_decimal(&args[..3]));
                three.map(|t| vec![t.clone(), t.clone(), t, DataType::Int32])
            }
            (Kind::MakeTimestamp, [_, _, _, _, _, sec])
                if args[..5].iter().all(is_integer)
                    && (sec.is_numeric() || *sec == DataType::Null) =>
            {
                let mut c = vec![DataType::Int32; 5];
                c.push(DataType::Float64);
                Some(c)
            }
            (Kind::MakeTime, [h, m, sec])
                if is_integer(h)
                    && is_integer(m)
                    && (sec.is_numeric() || *sec == DataType::Null) =>
            {
                Some(vec![DataType::Int32, DataType::Int32, DataType::Float64])
            }
            // `ts - ts` is a duration in DataFusion.
            (
                Kind::JustifyDays | Kind::JustifyHours | Kind::JustifyInterval,
                [DataType::Interval(_) | DataType::Duration(_) | DataType::Null],
            ) => Some(vec![INTERVAL]),
            (
                Kind::RegexpSplit | Kind::RegexpMatch | Kind::RegexpMatches | Kind::RegexpSubstr,
                [a, b],
            ) if is_text(a) && is_text(b) => Some(vec![DataType::Utf8, DataType::Utf8]),
            (Kind::RegexpSplit | Kind::RegexpMatch | Kind::RegexpMatches, [a, b, c])
                if is_text(a) && is_text(b) && is_text(c) =>
            {
                Some(vec![DataType::Utf8; 3])
            }
            // regexp_substr(s, pattern, start [, n [, flags [, subexpr]]]).
            (Kind::RegexpSubstr, [a, b, rest @ ..])
                if is_text(a)
                    && is_text(b)
                    && rest.len() <= 4
                    && rest.iter().enumerate().all(|(i, t)| match i {
                        2 => is_text(t),
                        _ => is_integer(t),
                    }) =>
            {
                let mut c = vec![DataType::Utf8, DataType::Utf8];
                c.extend((0..rest.len()).map(|i| match i {
                    2 => DataType::Utf8,
                    _ => DataType::Int64,
                }));
                Some(c)
            }
            // PostgreSQL has `chr(integer)` only, but an integer literal
            // may still be a bigint here (`chr(10)`): any integer is read.
            (Kind::Chr, [n]) if is_integer(n) => Some(vec![DataType::Int64]),
            (Kind::TimestampRound, [DataType::Timestamp(_, tz), p]) if is_integer(p) => Some(vec![
                DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
                DataType::Int32,
            ]),
            (
                Kind::IsFinite,
                [
                    t @ (DataType::Date32
                    | DataType::Timestamp(..)
                    | DataType::Interval(_)
                    | DataType::Duration(_)),
                ],
            ) => Some(vec![t.clone()]),
            (Kind::IsFinite, [DataType::Null]) => Some(vec![DataType::Date32]),
            _ => None,
        };
        match coerced {
            Some(c) => Ok(c),
            None => super::pg_functions::no_function(self.name(), args),
        }
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::Chr => DataType::Utf8,
            Kind::IsFinite => DataType::Boolean,
            Kind::TimestampRound => args[0].clone(),
            Kind::WidthBucket => DataType::Int32,
            Kind::MakeTimestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::MakeTime => DataType::Time64(TimeUnit::Microsecond),
            Kind::JustifyDays | Kind::JustifyHours | Kind::JustifyInterval => INTERVAL,
            Kind::RegexpSplit | Kind::RegexpMatch => {
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
            }
            Kind::RegexpMatches => DataType::List(Arc::new(Field::new_list_field(
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
                true,
            ))),
            Kind::RegexpSubstr => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out: ArrayRef = match self.kind {
            Kind::WidthBucket => width_bucket(&arrays)?,
            Kind::MakeTimestamp => make_timestamp(&arrays)?,
            Kind::MakeTime => make_time(&arrays)?,
            Kind::JustifyDays | Kind::JustifyHours | Kind::JustifyInterval => {
                let a: &IntervalMonthDayNanoArray = arrays[0].as_primitive();
                let out: IntervalMonthDayNanoArray =
                    a.iter().map(|v| v.map(|v| justify(self.kind, v))).collect();
                Arc::new(out)
            }
            Kind::RegexpSplit => regexp_each(
                &arrays,
                "regexp_split_to_array",
                StringBuilder::new(),
                |s, re, _, out| {
                    for piece in split_pieces(s, re) {
                        out.values().append_value(piece);
                    }
                    out.append(true);
                },
            )?,
            Kind::RegexpMatch => regexp_each(
                &arrays,
                "regexp_match",
                StringBuilder::new(),
                |s, re, _, out| {
                    match re.captures(s) {
                        // Each parenthesized group's text, NULL for one that
                        // took no part (arrow's kernel left those out, so the
                        // later groups moved down); the whole match where
                        // there are no groups.
                        Some(caps) => {
                            for g in groups(&caps) {
                                out.values().append_option(g);
                            }
                            out.append(true);
                        }
                        None => out.append_null(),
                    }
                },
            )?,
            Kind::RegexpMatches => regexp_matches(&arrays)?,
            Kind::RegexpSubstr => regexp_substr(&arrays)?,
            Kind::Chr => chr(&arrays[0])?,
            // Quipu's dates, timestamps and intervals have no infinities:
            // every value is finite.
            Kind::IsFinite => Arc::new(
                (0..arrays[0].len())
                    .map(|i| arrays[0].is_valid(i).then_some(true))
                    .collect::<datafusion::arrow::array::BooleanArray>(),
            ),
            Kind::TimestampRound => timestamp_round(&arrays[0], &arrays[1])?,
        };
        super::pg_text::shaped_like(&args.args, out)
    }
}

fn width_bucket_error(message: &str) -> datafusion::error::DataFusionError {
    DataException::error("2201G", message)
}

fn bucket_count_plus_one(count: i32) -> Result<i32> {
    count
        .checked_add(1)
        .ok_or_else(|| DataException::error("22003", "integer out of range"))
}

/// PostgreSQL's `width_bucket_float8`.
fn bucket_float(x: f64, low: f64, high: f64, count: i32) -> Result<i32> {
    if count <= 0 {
        return Err(width_bucket_error("count must be greater than zero"));
    }
    if x.is_nan() || low.is_nan() || high.is_nan() {
        return Err(width_bucket_error(
            "operand, lower bound, and upper bound cannot be NaN",
        ));
    }
    if low.is_infinite() || high.is_infinite() {
        return Err(width_bucket_error("lower and upper bounds must be finite"));
    }
    let count_f = f64::from(count);
    // For `low > high` PostgreSQL divides `low - x` by `low - high`: the
    // same quotient, both signs flipped.
    let share = |from: f64, to: f64, at: f64| -> f64 {
        // `to - from` may overflow: PostgreSQL halves all three then.
        match (to - from).is_infinite() {
            false => count_f * ((at - from) / (to - from)),
            true => count_f * ((at / 2.0 - from / 2.0) / (to / 2.0 - from / 2.0)),
        }
    };
    let inside = |q: f64| -> i32 {
        // The cast truncates as C's does; a quotient rounded to 1.0 is
        // still the last bucket.
        let r = q as i32;
        r.min(count - 1) + 1
    };
    if low < high {
        if x < low {
            Ok(0)
        } else if x >= high {
            bucket_count_plus_one(count)
        } else {
            Ok(inside(share(low, high, x)))
        }
    } else if low > high {
        if x > low {
            Ok(0)
        } else if x <= high {
            bucket_count_plus_one(count)
        } else {
            Ok(inside(share(low, high, x)))
        }
    } else {
        Err(width_bucket_error("lower bound cannot equal upper bound"))
    }
}

/// PostgreSQL's `width_bucket_numeric`: `(x - low) * count / (high - low)`
/// cut to an integer, plus one, exactly (all three at one scale).
fn bucket_decimal(x: i128, low: i128, high: i128, count: i32) -> Result<i32> {
    if count <= 0 {
        return Err(width_bucket_error("count must be greater than zero"));
    }
    let (offset, width) = match low.cmp(&high) {
        std::cmp::Ordering::Less if x < low => return Ok(0),
        std::cmp::Ordering::Less if x >= high => return bucket_count_plus_one(count),
        std::cmp::Ordering::Less => (x - low, high - low),
        std::cmp::Ordering::Greater if x > low => return Ok(0),
        std::cmp::Ordering::Greater if x <= high => return bucket_count_plus_one(count),
        std::cmp::Ordering::Greater => (low - x, low - high),
        std::cmp::Ordering::Equal => {
            return Err(width_bucket_error("lower bound cannot equal upper bound"));
        }
    };
    let Some(scaled) = offset.checked_mul(i128::from(count)) else {
        return exec_err!("width_bucket: the numeric arguments are too large here");
    };
    Ok((scaled / width) as i32 + 1)
}

fn width_bucket(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let count = cast(&arrays[3], &DataType::Int32)?;
    let count = count.as_primitive::<Int32Type>();
    let out = match arrays[0].data_type() {
        DataType::Decimal128(..) => buckets::<Decimal128Type>(arrays, count, bucket_decimal)?,
        _ => buckets::<Float64Type>(arrays, count, bucket_float)?,
    };
    Ok(Arc::new(Int32Array::from(out)))
}

/// The bucket of one value: PostgreSQL's numeric or float8 version.
type Bucket<N> = fn(N, N, N, i32) -> Result<i32>;

/// `bucket` of each row of `width_bucket`'s arguments, of type `T`.
fn buckets<T: ArrowPrimitiveType>(
    arrays: &[ArrayRef],
    count: &Int32Array,
    bucket: Bucket<T::Native>,
) -> Result<Vec<Option<i32>>> {
    let [x, low, high] = [0, 1, 2].map(|i| arrays[i].as_primitive::<T>());
    (0..x.len())
        .map(|i| {
            if x.is_null(i) || low.is_null(i) || high.is_null(i) || count.is_null(i) {
                return Ok(None);
            }
            bucket(x.value(i), low.value(i), high.value(i), count.value(i)).map(Some)
        })
        .collect()
}

/// The name `syntax.rs` writes a cast to `timestamp(p)` with.
pub const TIMESTAMP_ROUND: &str = "quipu_timestamp_round";

/// PostgreSQL's `chr`: the character of a code point, in UTF-8.
fn chr(codes: &ArrayRef) -> Result<ArrayRef> {
    let codes = codes.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    let limit = |m: String| DataException::error("54000", &m);
    let mut out = StringBuilder::new();
    for code in codes.iter() {
        let Some(code) = code else {
            out.append_null();
            continue;
        };
        let c = match code {
            c if c < 0 => {
                return Err(DataException::error(
                    "22023",
                    "character number must be positive",
                ));
            }
            0 => return Err(limit("null character not permitted".into())),
            c if c > 0x10ffff => {
                return Err(limit(format!(
                    "requested character too large for encoding: {c}"
                )));
            }
            c => char::from_u32(c as u32)
                .ok_or_else(|| limit(format!("requested character not valid for encoding: {c}")))?,
        };
        out.append_value(c.to_string());
    }
    Ok(Arc::new(out.finish()))
}

/// Microseconds from 1970 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// `micros` (from 1970) rounded to `places` fractional digits of a second
/// as PostgreSQL rounds a `timestamp(p)`: half away from zero, on its own
/// epoch (so `1999-12-31 23:59:59.5` rounds down, to 23:59:59).
fn round_micros(micros: i64, places: i32) -> Option<i64> {
    if places >= 6 {
        return Some(micros);
    }
    let scale = 10i64.pow((6 - places.max(0)) as u32);
    let half = scale / 2;
    let t = micros.checked_sub(PG_EPOCH_MICROS)?;
    let rounded = match t >= 0 {
        true => t.checked_add(half)? / scale * scale,
        false => -(t.checked_neg()?.checked_add(half)? / scale * scale),
    };
    rounded.checked_add(PG_EPOCH_MICROS)
}

fn timestamp_round(ts: &ArrayRef, places: &ArrayRef) -> Result<ArrayRef> {
    let values = ts.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
    let places = places.as_primitive::<Int32Type>();
    let out: TimestampMicrosecondArray = values
        .iter()
        .zip(places.iter())
        .map(|(v, p)| match (v, p) {
            (Some(v), Some(p)) => round_micros(v, p)
                .map(Some)
                .ok_or_else(|| date_time_error("timestamp out of range".into())),
            _ => Ok(None),
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(out.with_data_type(ts.data_type().clone())))
}

fn date_time_error(message: String) -> datafusion::error::DataFusionError {
    DataException::error("22008", &message)
}

/// PostgreSQL's `make_timestamp` of one row.
fn timestamp_of(fields: [i32; 5], sec: f64) -> Result<i64> {
    let [year, month, day, hour, min] = fields;
    // Year 0 does not exist; a negative year is BC (-1 is 1 BC, chrono's 0).
    let chrono_year = match year {
        0 => None,
        y if y < 0 => Some(y + 1),
        y => Some(y),
    };
    let date = chrono_year
        .and_then(|y| {
            u32::try_from(month)
                .ok()
                .zip(u32::try_from(day).ok())
                .map(|(m, d)| (y, m, d))
        })
        .and_then(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d))
        .ok_or_else(|| {
            date_time_error(format!(
                "date field value out of range: {year}-{month:02}-{day:02}"
            ))
        })?;
    // PostgreSQL allows 60 seconds (the next minute) and 24:00:00 (the
    // next midnight), no more.
    let valid = (0..=24).contains(&hour)
        && (0..=59).contains(&min)
        && (0.0..=60.0).contains(&sec)
        && (hour < 24 || (min == 0 && sec == 0.0));
    if !valid {
        let sec = match sec.fract() == 0.0 {
            true => format!("{sec:02}"),
            false => sec.to_string(),
        };
        return Err(date_time_error(format!(
            "time field value out of range: {hour}:{min:02}:{sec}"
        )));
    }
    let micros = (sec * 1e6).round_ties_even();
    let day_micros = (i64::from(hour) * 60 + i64::from(min)) * 60_000_000 + micros as i64;
    let midnight = date.and_time(NaiveTime::MIN).and_utc().timestamp_micros();
    Ok(midnight + day_micros)
}

/// PostgreSQL's `make_time(hour, min, sec)`, `sec` a double (DataFusion's
/// took whole seconds only): the time of day [`timestamp_of`] makes on
/// any day, with its errors. PostgreSQL's `24:00:00` (`make_time(24, 0,
/// 0)`, `make_time(23, 59, 60)`) is refused by name: an Arrow time ends
/// before it.
fn make_time(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let day = timestamp_of([2000, 1, 1, 0, 0], 0.0)?;
    let out = each_row(arrays, |f, sec| {
        let micros = timestamp_of([2000, 1, 1, f[0], f[1]], sec)? - day;
        if micros >= 86_400_000_000 {
            return Err(DataException::error(
                "0A000",
                "the time 24:00:00 (make_time of the end of a day) is not supported",
            ));
        }
        Ok(micros)
    })?;
    Ok(Arc::new(
        datafusion::arrow::array::Time64MicrosecondArray::from(out),
    ))
}

fn make_timestamp(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let out = each_row(arrays, |f, sec| {
        timestamp_of([f[0], f[1], f[2], f[3], f[4]], sec)
    })?;
    Ok(Arc::new(TimestampMicrosecondArray::from(out)))
}

/// `f` of each row's integer arguments (all but the last) and seconds
/// (the last, a double); NULL where one is NULL.
fn each_row(
    arrays: &[ArrayRef],
    mut f: impl FnMut(&[i32], f64) -> Result<i64>,
) -> Result<Vec<Option<i64>>> {
    let (sec, ints) = arrays.split_last().expect("make_* has arguments");
    let ints: Vec<ArrayRef> = ints
        .iter()
        .map(|a| cast(a, &DataType::Int32))
        .collect::<std::result::Result<_, _>>()?;
    let ints: Vec<&Int32Array> = ints.iter().map(|a| a.as_primitive::<Int32Type>()).collect();
    let sec = cast(sec, &DataType::Float64)?;
    let sec = sec.as_primitive::<Float64Type>();
    let mut row = vec![0; ints.len()];
    (0..sec.len())
        .map(|i| {
            if sec.is_null(i) || ints.iter().any(|a| a.is_null(i)) {
                return Ok(None);
            }
            for (k, a) in ints.iter().enumerate() {
                row[k] = a.value(i);
            }
            f(&row, sec.value(i)).map(Some)
        })
        .collect()
}

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// PostgreSQL's `interval_justify_days`, `_hours` and `_interval`.
fn justify(kind: Kind, v: IntervalMonthDayNano) -> IntervalMonthDayNano {
    let (mut months, mut days, mut nanos) = (v.months, v.days, v.nanoseconds);
    if matches!(kind, Kind::JustifyHours | Kind::JustifyInterval) {
        let whole = nanos / NANOS_PER_DAY;
        nanos -= whole * NANOS_PER_DAY;
        days = days.saturating_add(whole as i32);
    }
    if matches!(kind, Kind::JustifyDays | Kind::JustifyInterval) {
        let whole = days / 30;
        days -= whole * 30;
        months = months.saturating_add(whole);
        let time_sign = if kind == Kind::JustifyInterval {
            nanos.signum()
        } else {
            0
        };
        if months > 0 && (days < 0 || (days == 0 && time_sign < 0)) {
            days += 30;
            months -= 1;
        } else if months < 0 && (days > 0 || (days == 0 && time_sign > 0)) {
            days -= 30;
            months += 1;
        }
    }
    if matches!(kind, Kind::JustifyHours | Kind::JustifyInterval) {
        if days > 0 && nanos < 0 {
            nanos += NANOS_PER_DAY;
            days -= 1;
        } else if days < 0 && nanos > 0 {
            nanos -= NANOS_PER_DAY;
            days += 1;
        }
    }
    IntervalMonthDayNano::new(months, days, nanos)
}

/// The regular expression of `pattern` with PostgreSQL's `flags`, for
/// the function `name`.
fn flagged_regex(name: &str, pattern: &str, flags: &str) -> Result<regex::Regex> {
    let mut insensitive = false;
    for f in flags.chars() {
        match f {
            'i' => insensitive = true,
            'c' => insensitive = false,
            'g' => {
                return Err(DataException::error(
                    "22023",
                    &format!("{name}() does not support the \"global\" option"),
                ));
            }
            other => {
                return Err(DataException::error(
                    "0A000",
                    &format!(
                        "{name} with the flag \"{other}\" is not supported (only \"i\" and \"c\")"
                    ),
                ));
            }
        }
    }
    regex::RegexBuilder::new(pattern)
        .case_insensitive(insensitive)
        .build()
        .map_err(|e| DataException::error("2201B", &format!("invalid regular expression: {e}")))
}

/// The groups of a match: each parenthesized group's text, NULL for one
/// that took no part; the whole match where there are no groups.
fn groups<'a>(caps: &regex::Captures<'a>) -> impl Iterator<Item = Option<&'a str>> {
    caps.iter()
        .skip(usize::from(caps.len() > 1))
        .map(|g| g.map(|m| m.as_str()))
}

/// `regexp_matches(s, pattern [, flags])` of each row: a list of every
/// match's groups (`g`), or of the first match's, or an empty list (no
/// rows, under `unnest`).
fn regexp_matches(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let inner = ListBuilder::new(StringBuilder::new());
    regexp_each(arrays, "regexp_matches", inner, |s, re, global, out| {
        for caps in re.captures_iter(s) {
            for g in groups(&caps) {
                out.values().values().append_option(g);
            }
            out.values().append(true);
            if !global {
                break;
            }
        }
        out.append(true);
    })
}

/// `regexp_substr(s, pattern [, start [, n [, flags [, subexpr]]]])`: the
/// `n`th match (from the `start`th character; both from 1), or its
/// `subexpr`th group (0: the whole match); NULL where there is none.
fn regexp_substr(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let s = arrays[0].as_string::<i32>();
    let p = arrays[1].as_string::<i32>();
    let int = |k: usize, i: usize, default: i64| -> Option<i64> {
        match arrays.get(k) {
            None => Some(default),
            Some(a) if a.is_null(i) => None,
            Some(a) => Some(
                a.as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                    .value(i),
            ),
        }
    };
    let mut out = StringBuilder::new();
    let mut regexes = LastRegex::default();
    for i in 0..s.len() {
        let flags = match arrays.get(4) {
            None => Some(""),
            Some(a) if a.is_null(i) => None,
            Some(a) => Some(a.as_string::<i32>().value(i)),
        };
        let (false, false, Some(start), Some(n), Some(flags), Some(sub)) = (
            s.is_null(i),
            p.is_null(i),
            int(2, i, 1),
            int(3, i, 1),
            flags,
            int(5, i, 0),
        ) else {
            out.append_null();
            continue;
        };
        for (value, name) in [(start, "start"), (n, "n"), (sub, "subexpr")] {
            if value < i64::from(name != "subexpr") {
                return Err(DataException::error(
                    "22023",
                    &format!("invalid value for parameter \"{name}\": {value}"),
                ));
            }
        }
        let re = regexes.get("regexp_substr", p.value(i), flags)?;
        let text = s.value(i);
        let from = text
            .char_indices()
            .nth((start - 1) as usize)
            .map_or(text.len(), |(b, _)| b);
        let found = re
            .captures_iter(&text[from..])
            .nth((n - 1) as usize)
            .and_then(|caps| caps.get(sub as usize).map(|m| m.as_str()));
        out.append_option(found);
    }
    Ok(Arc::new(out.finish()))
}

/// `s` split where `re` matches, as PostgreSQL splits: an empty match at
/// the start or end, or where the previous match ended, is no split.
pub fn split_pieces<'a>(s: &'a str, re: &regex::Regex) -> Vec<&'a str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut previous_end = 0;
    for m in re.find_iter(s) {
        let empty = m.start() == m.end();
        if empty && (m.start() == 0 || m.start() >= s.len() || m.end() <= previous_end) {
            continue;
        }
        pieces.push(&s[start..m.start()]);
        start = m.end();
        previous_end = m.end();
    }
    pieces.push(&s[start..]);
    pieces
}

/// A list (of `values`) per row of `arrays` (text, pattern and maybe
/// flags), written by `each` from the text, its regular expression and
/// whether every match is asked for (`g`); NULL where any argument is.
fn regexp_each<T: datafusion::arrow::array::ArrayBuilder>(
    arrays: &[ArrayRef],
    name: &str,
    values: T,
    each: impl Fn(&str, &regex::Regex, bool, &mut ListBuilder<T>),
) -> Result<ArrayRef> {
    let s = arrays[0].as_string::<i32>();
    let p = arrays[1].as_string::<i32>();
    let flags = arrays.get(2).map(|a| a.as_string::<i32>());
    let mut out = ListBuilder::new(values);
    let mut regexes = LastRegex::default();
    for i in 0..s.len() {
        let f = match flags {
            Some(f) if f.is_null(i) => None,
            Some(f) => Some(f.value(i)),
            None => Some(""),
        };
        let (Some(f), false, false) = (f, s.is_null(i), p.is_null(i)) else {
            out.append_null();
            continue;
        };
        // `g` (every match) is `regexp_matches`' only: `flagged_regex`
        // refuses it for the others.
        let global = name == "regexp_matches" && f.contains('g');
        let f: std::borrow::Cow<str> = match global {
            true => f.replace('g', "").into(),
            false => f.into(),
        };
        let re = regexes.get(name, p.value(i), &f)?;
        each(s.value(i), re, global, &mut out);
    }
    Ok(Arc::new(out.finish()))
}

/// The last pattern and flags compiled, with their expression: a column's
/// rows mostly share one pattern, compiled once.
#[derive(Default)]
struct LastRegex(Option<(String, String, regex::Regex)>);

impl LastRegex {
    fn get(&mut self, name: &str, pattern: &str, flags: &str) -> Result<&regex::Regex> {
        let fresh = !matches!(&self.0, Some((p, f, _)) if p == pattern && f == flags);
        if fresh {
            self.0 = Some((
                pattern.to_string(),
                flags.to_string(),
                flagged_regex(name, pattern, flags)?,
            ));
        }
        Ok(&self.0.as_ref().expect("compiled above").2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_half_away_from_zero_on_postgresqls_epoch() {
        let at = |text: &str| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
                .expect("a timestamp")
                .and_utc()
                .timestamp_micros()
        };
        // SELECT '2024-01-01 10:00:00.5'::timestamp(0): 10:00:01.
        assert_eq!(
            round_micros(at("2024-01-01 10:00:00.5"), 0),
            Some(at("2024-01-01 10:00:01"))
        );
        // Before 2000 PostgreSQL rounds away from its epoch: down.
        // '1999-12-31 23:59:59.5'::timestamp(0) is 23:59:59,
        // '1999-12-31 23:59:58.6'::timestamp(0) 23:59:59.
        assert_eq!(
            round_micros(at("1999-12-31 23:59:59.5"), 0),
            Some(at("1999-12-31 23:59:59"))
        );
        assert_eq!(
            round_micros(at("1999-12-31 23:59:58.6"), 0),
            Some(at("1999-12-31 23:59:59"))
        );
        // '2024-02-29 23:59:59.999999'::timestamp(2): 2024-03-01 00:00:00.
        assert_eq!(
            round_micros(at("2024-02-29 23:59:59.999999"), 2),
            Some(at("2024-03-01 00:00:00"))
        );
        assert_eq!(
            round_micros(at("2024-01-01 10:00:00.12345"), 3),
            Some(at("2024-01-01 10:00:00.123"))
        );
        assert_eq!(round_micros(7, 6), Some(7));
        assert_eq!(round_micros(i64::MAX, 0), None);
    }

    #[test]
    fn chr_refuses_what_postgresql_text_cannot_hold() {
        let codes: ArrayRef = Arc::new(datafusion::arrow::array::Int64Array::from(vec![
            Some(65),
            None,
            Some(0x1f999),
        ]));
        let out = chr(&codes).expect("characters");
        let out = out.as_string::<i32>();
        assert_eq!(out.value(0), "A");
        assert!(out.is_null(1));
        assert_eq!(out.value(2), "🦙");
        for (code, words) in [
            (0, "null character"),
            (-1, "must be positive"),
            (0x110000, "too large"),
            (0xd800, "not valid"),
        ] {
            let codes: ArrayRef = Arc::new(datafusion::arrow::array::Int64Array::from(vec![code]));
            let err = chr(&codes).expect_err("refused").to_string();
            assert!(err.contains(words), "{code}: {err}");
        }
    }

    #[test]
    fn width_bucket_is_postgresqls() {
        // SELECT width_bucket(5.35, 0.024, 10.06, 5): 3 (numeric);
        // width_bucket(-0.5, 0, 10, 5): 0; width_bucket(10, 0, 10, 5): 6;
        // width_bucket(3, 10, 0, 5): 4.
        assert_eq!(bucket_decimal(5350, 24, 10060, 5).ok(), Some(3));
        assert_eq!(bucket_float(-0.5, 0.0, 10.0, 5).ok(), Some(0));
        assert_eq!(bucket_float(10.0, 0.0, 10.0, 5).ok(), Some(6));
        assert_eq!(bucket_float(3.0, 10.0, 0.0, 5).ok(), Some(4));
        assert_eq!(bucket_float(2.0, 0.0, 10.0, 5).ok(), Some(2));
        assert!(bucket_float(1.0, 1.0, 1.0, 5).is_err());
        assert!(bucket_decimal(1, 0, 2, 0).is_err());
    }

    #[test]
    fn splits_skip_empty_matches_at_the_ends() {
        let re = regex::Regex::new(r"\s*").expect("a regex");
        // SELECT regexp_split_to_array('the quick', '\s*'): {t,h,e,q,u,i,c,k}
        assert_eq!(
            split_pieces("the quick", &re),
            ["t", "h", "e", "q", "u", "i", "c", "k"]
        );
        let comma = regex::Regex::new(",").expect("a regex");
        assert_eq!(split_pieces("", &comma), [""]);
        assert_eq!(split_pieces(",a,", &comma), ["", "a", ""]);
    }

    #[test]
    fn justify_is_postgresqls() {
        let h = 3_600_000_000_000i64;
        // justify_interval('1 mon -1 hour'): 29 days 23:00:00.
        assert_eq!(
            justify(Kind::JustifyInterval, IntervalMonthDayNano::new(1, 0, -h)),
            IntervalMonthDayNano::new(0, 29, 23 * h)
        );
        // justify_days('35 days'): 1 mon 5 days.
        assert_eq!(
            justify(Kind::JustifyDays, IntervalMonthDayNano::new(0, 35, 0)),
            IntervalMonthDayNano::new(1, 5, 0)
        );
        // justify_hours('27 hours'): 1 day 03:00:00.
        assert_eq!(
            justify(Kind::JustifyHours, IntervalMonthDayNano::new(0, 0, 27 * h)),
            IntervalMonthDayNano::new(0, 1, 3 * h)
        );
    }
}
