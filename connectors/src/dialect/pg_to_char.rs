//! `to_char` as PostgreSQL's (issue 22): a date, timestamp, interval or
//! number printed through a PostgreSQL template.
//!
//! DataFusion 55's `to_char` reads the template as chrono's (`%Y-%m-%d`)
//! and has no form for numbers; Quipu used to translate the common date
//! patterns into chrono's and refuse the rest (`Month`, `Day`, `Q`, every
//! number format). Reports are written with exactly those
//! (`to_char(d, 'FMMonth YYYY')`, `to_char(revenue, 'FM999,999,990.00')`),
//! so this is PostgreSQL's template language itself: every date-time
//! pattern of PostgreSQL 15 (with the `FM`, `TM`, `TH`/`th` and `SP`
//! modifiers, double-quoted text and `\"`) and every number pattern (`9`,
//! `0`, `.`, `D`, `,`, `G`, `S`, `MI`, `PL`, `SG`, `PR`, `L`, `V`, `TH`,
//! `RN`, `EEEE`, `FM`, `B`, `C`, `SP`), in the C locale (decimal point
//! `.`, group separator `,`, currency symbol a blank), as a PostgreSQL
//! server with `lc_numeric = C` prints them. No text of PostgreSQL's was
//! copied: the rules below were written from its documentation and
//! checked value by value against a PostgreSQL 15 server
//! (`tests/it/expressions.rs`, and the unit tests below).
//!
//! Rules that are easy to get wrong and that PostgreSQL keeps:
//! - A number's sign takes a place of its own before the first digit
//!   unless `S`, `MI`, `PL`, `SG` or `PR` places it (`to_char(5, '999')` is
//!   `'   5'`), a number wider than the template is `#`s, a value is
//!   rounded to the template's decimals (half away from zero for numerics
//!   and integers, as printf rounds a double for `float8`, which keeps at
//!   most 15 significant digits, 6 for `real`).
//! - `EEEE` prints the number alone, whatever else the template holds.
//! - `Month` and `Day` are padded to nine characters unless `FM` (or
//!   `TM`) is before them; an empty template is NULL for a date and `''`
//!   for a number.
//! - A `timestamptz` is printed on the clock of its Arrow zone, which
//!   `scheduler/src/zones.rs` makes the session's; `TZ` is the zone's
//!   abbreviation there.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Datelike, Offset, TimeZone};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int64Type,
    IntervalMonthDayNanoType, IntervalUnit, Time64MicrosecondType, TimeUnit,
    TimestampMicrosecondType, UInt64Type,
};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::DataException;

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToChar {
    signature: Signature,
}

/// `to_char(value, template)`, registered under DataFusion's name.
pub fn to_char() -> ScalarUDF {
    ScalarUDF::new_from_impl(ToChar {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// What kind of value a `to_char` argument type is printed as.
#[derive(Clone, Copy, PartialEq)]
enum Input {
    Number,
    DateTime,
    Interval,
}

fn input_of(t: &DataType) -> Option<Input> {
    Some(match t {
        t if t.is_integer() || t.is_floating() => Input::Number,
        DataType::Decimal128(..) | DataType::Decimal256(..) => Input::Number,
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => Input::DateTime,
        DataType::Interval(_) | DataType::Duration(_) | DataType::Time32(_) => Input::Interval,
        DataType::Time64(_) => Input::Interval,
        _ => return None,
    })
}

impl ScalarUDFImpl for ToChar {
    fn name(&self) -> &str {
        "to_char"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match args {
            [v, f] if (input_of(v).is_some() || v.is_null()) && (f.is_string() || f.is_null()) => {
                Ok(vec![v.clone(), DataType::Utf8])
            }
            _ => super::pg_functions::no_function("to_char", args),
        }
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out = to_char_arrays(&arrays[0], &arrays[1])?;
        super::pg_text::shaped_like(&args.args, out)
    }
}

/// Each value of `values` printed through the template beside it.
fn to_char_arrays(values: &ArrayRef, templates: &ArrayRef) -> Result<ArrayRef> {
    let templates = cast(templates, &DataType::Utf8)?;
    let templates = templates.as_string::<i32>();
    let n = values.len();
    let Some(input) = input_of(values.data_type()) else {
        return Ok(Arc::new(StringArray::new_null(n)));
    };
    let mut numbers: HashMap<&str, NumFormat> = HashMap::new();
    let mut dates: HashMap<&str, Vec<DchNode>> = HashMap::new();
    let reader = Reader::new(values)?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        if values.is_null(i) || templates.is_null(i) {
            out.push(None);
            continue;
        }
        let template = templates.value(i);
        let text = match input {
            Input::Number => {
                if template.is_empty() {
                    out.push(Some(String::new()));
                    continue;
                }
                if !numbers.contains_key(template) {
                    numbers.insert(template, NumFormat::parse(template)?);
                }
                reader.number(i, &numbers[template])?
            }
            Input::DateTime | Input::Interval => {
                if template.is_empty() {
                    out.push(None);
                    continue;
                }
                let nodes = dates.entry(template).or_insert_with(|| parse_dch(template));
                let tm = reader.tm(i)?;
                dch_to_char(nodes, &tm)?
            }
        };
        out.push(Some(text));
    }
    Ok(Arc::new(StringArray::from(out)))
}

/// The values of one argument, read as what `to_char` prints.
enum Reader {
    /// `integer` (`smallint` too), `bigint`.
    Int(ArrayRef, Exact),
    UInt(ArrayRef),
    Decimal(ArrayRef, i8),
    Float(ArrayRef),
    Real(ArrayRef),
    Date(ArrayRef),
    Timestamp(ArrayRef, Option<chrono_tz::Tz>, Option<chrono::FixedOffset>),
    Interval(ArrayRef),
    Time(ArrayRef),
}

impl Reader {
    fn new(a: &ArrayRef) -> Result<Reader> {
        Ok(match a.data_type() {
            DataType::UInt64 => Reader::UInt(a.clone()),
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::UInt8
            | DataType::UInt16 => Reader::Int(cast(a, &DataType::Int64)?, Exact::Int4),
            t if t.is_integer() => Reader::Int(cast(a, &DataType::Int64)?, Exact::Int8),
            DataType::Float32 | DataType::Float16 => Reader::Real(cast(a, &DataType::Float32)?),
            DataType::Float64 => Reader::Float(a.clone()),
            DataType::Decimal128(_, s) => Reader::Decimal(a.clone(), *s),
            DataType::Decimal256(_, s) => {
                Reader::Decimal(cast(a, &DataType::Decimal128(38, *s))?, *s)
            }
            DataType::Date32 | DataType::Date64 => Reader::Date(cast(a, &DataType::Date32)?),
            DataType::Timestamp(_, zone) => {
                let (named, fixed) = match zone {
                    None => (None, None),
                    Some(z) => match z.parse::<chrono_tz::Tz>() {
                        Ok(tz) => (Some(tz), None),
                        Err(_) => {
                            let fixed = z.parse::<chrono::FixedOffset>().map_err(|_| {
                                DataException::error(
                                    "22023",
                                    &format!("time zone \"{z}\" not recognized"),
                                )
                            })?;
                            (None, Some(fixed))
                        }
                    },
                };
                let t = cast(a, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
                Reader::Timestamp(t, named, fixed)
            }
            DataType::Time32(_) | DataType::Time64(_) => {
                Reader::Time(cast(a, &DataType::Time64(TimeUnit::Microsecond))?)
            }
            DataType::Duration(_) | DataType::Interval(_) => {
                Reader::Interval(cast(a, &DataType::Interval(IntervalUnit::MonthDayNano))?)
            }
            other => {
                return Err(DataException::error(
                    "42883",
                    &format!("to_char of {other} is not supported"),
                ));
            }
        })
    }

    /// Row `i` printed through the number template `f`.
    fn number(&self, i: usize, f: &NumFormat) -> Result<String> {
        match self {
            Reader::Int(a, kind) => {
                let v = a.as_primitive::<Int64Type>().value(i);
                f.exact(v as i128, 0, *kind)
            }
            Reader::UInt(a) => {
                let v = a.as_primitive::<UInt64Type>().value(i);
                f.exact(v as i128, 0, Exact::Numeric)
            }
            Reader::Decimal(a, s) => {
                let v = a.as_primitive::<Decimal128Type>().value(i);
                f.exact(v, *s, Exact::Numeric)
            }
            Reader::Float(a) => f.float(a.as_primitive::<Float64Type>().value(i), 15),
            Reader::Real(a) => f.float(a.as_primitive::<Float32Type>().value(i) as f64, 6),
            _ => unreachable!("a number template is only read for numbers"),
        }
    }

    /// Row `i` as the fields the date-time patterns print.
    fn tm(&self, i: usize) -> Result<Tm> {
        match self {
            Reader::Date(a) => {
                // PostgreSQL prints a date as the `timestamptz` of its
                // midnight: `scheduler/src/zones.rs` makes it one in a
                // session with a zone; in UTC it is this.
                let days = a.as_primitive::<Date32Type>().value(i) as i64;
                Ok(Tm::of_clock(days * 86_400_000_000, 0, Some("UTC".into())))
            }
            Reader::Timestamp(a, named, fixed) => {
                let utc = a.as_primitive::<TimestampMicrosecondType>().value(i);
                let at = chrono::DateTime::from_timestamp_micros(utc)
                    .map(|t| t.naive_utc())
                    .ok_or_else(|| DataException::error("22008", "timestamp out of range"))?;
                let (offset, name) = match (named, fixed) {
                    (Some(tz), _) => {
                        let o = tz.offset_from_utc_datetime(&at);
                        use chrono_tz::OffsetName;
                        let secs = o.fix().local_minus_utc() as i64;
                        let name = o
                            .abbreviation()
                            .map(str::to_string)
                            .unwrap_or_else(|| offset_name(secs));
                        (secs, Some(name))
                    }
                    // `+00:00` (a UTC session reading a column so typed)
                    // is the session's UTC.
                    (None, Some(f)) if f.local_minus_utc() == 0 => (0, Some("UTC".into())),
                    (None, Some(f)) => {
                        let secs = f.local_minus_utc() as i64;
                        (secs, Some(offset_name(secs)))
                    }
                    (None, None) => (0, None),
                };
                Ok(Tm::of_clock(utc + offset * 1_000_000, offset, name))
            }
            Reader::Time(a) => {
                let us = a.as_primitive::<Time64MicrosecondType>().value(i);
                Ok(Tm::of_interval(0, 0, us))
            }
            Reader::Interval(a) => {
                let v = a.as_primitive::<IntervalMonthDayNanoType>().value(i);
                Ok(Tm::of_interval(v.months, v.days, v.nanoseconds / 1000))
            }
            _ => unreachable!("a date-time template is only read for dates and times"),
        }
    }
}

/// A zone's offset as PostgreSQL names a zone with no abbreviation:
/// `+05`, `-0330`.
fn offset_name(secs: i64) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let (h, m) = (secs.abs() / 3600, secs.abs() % 3600 / 60);
    match m {
        0 => format!("{sign}{h:02}"),
        m => format!("{sign}{h:02}{m:02}"),
    }
}

// ---------------------------------------------------------------------------
// Dates and times.
// ---------------------------------------------------------------------------

/// The fields of a date, timestamp or interval (PostgreSQL's `struct
/// pg_tm`: a year of 0 or less is BC, months count from 1, `wday` from
/// Sunday as 0).
#[derive(Debug, Default)]
struct Tm {
    year: i64,
    mon: i64,
    mday: i64,
    hour: i64,
    min: i64,
    sec: i64,
    usec: i64,
    wday: i64,
    yday: i64,
    gmtoff: i64,
    zone: Option<String>,
    interval: bool,
}

impl Tm {
    /// The fields of a wall-clock time `local` microseconds after
    /// 1970-01-01 00:00, in a zone `gmtoff` seconds east of UTC.
    fn of_clock(local: i64, gmtoff: i64, zone: Option<String>) -> Tm {
        let days = local.div_euclid(86_400_000_000);
        let us = local.rem_euclid(86_400_000_000);
        let at = chrono::DateTime::UNIX_EPOCH.naive_utc() + chrono::Duration::days(days);
        let (year, mon, mday) = (at.year() as i64, at.month() as i64, at.day() as i64);
        let jd = date2j(year, mon, mday);
        Tm {
            year,
            mon,
            mday,
            hour: us / 3_600_000_000,
            min: us / 60_000_000 % 60,
            sec: us / 1_000_000 % 60,
            usec: us % 1_000_000,
            wday: j2day(jd),
            yday: jd - date2j(year, 1, 1) + 1,
            gmtoff,
            zone,
            interval: false,
        }
    }

    /// The fields of an interval (a `time` is one): years and months from
    /// the months, hours that may pass 24, and `yday` the whole span in
    /// 30-day months, as PostgreSQL's `interval_to_char`.
    fn of_interval(months: i32, days: i32, micros: i64) -> Tm {
        let (year, mon) = (months as i64 / 12, months as i64 % 12);
        let mut tm = Tm {
            year,
            mon,
            mday: days as i64,
            hour: micros / 3_600_000_000,
            min: micros / 60_000_000 % 60,
            sec: micros / 1_000_000 % 60,
            usec: micros % 1_000_000,
            interval: true,
            ..Tm::default()
        };
        tm.yday = (year * 12 + mon) * 30 + tm.mday;
        tm
    }
}

/// The Julian day of a (proleptic Gregorian) date, for any field values
/// (PostgreSQL's `date2j`).
pub(super) fn date2j(year: i64, month: i64, day: i64) -> i64 {
    let (month, year) = if month > 2 {
        (month + 1, year + 4800)
    } else {
        (month + 13, year + 4799)
    };
    let century = year / 100;
    let mut julian = year * 365 - 32167;
    julian += year / 4 - century + century / 4;
    julian + 7834 * month / 256 + day
}

/// The day of the week of a Julian day, Sunday 0.
fn j2day(jd: i64) -> i64 {
    (jd + 1).rem_euclid(7)
}

/// The Julian day the ISO week 1 of `year` starts on (a Monday).
fn iso_week_one(year: i64) -> i64 {
    let day4 = date2j(year, 1, 4);
    day4 - j2day(day4 - 1)
}

/// The ISO year and week of a date.
fn iso_year_week(year: i64, mon: i64, mday: i64) -> (i64, i64) {
    let day = date2j(year, mon, mday);
    let mut year = year;
    let mut start = iso_week_one(year);
    if day < start {
        year -= 1;
        start = iso_week_one(year);
    }
    let mut week = (day - start) / 7 + 1;
    if week >= 52 {
        let next = iso_week_one(year + 1);
        if day >= next {
            year += 1;
            week = (day - next) / 7 + 1;
        }
    }
    (year, week)
}

/// The day of the ISO year of a date, from 1.
fn iso_year_day(year: i64, mon: i64, mday: i64) -> i64 {
    let (iso_year, _) = iso_year_week(year, mon, mday);
    date2j(year, mon, mday) - iso_week_one(iso_year) + 1
}

/// The date-time patterns, in the order they are tried at a position (a
/// longer pattern before the shorter one it begins with, as PostgreSQL
/// tries them). Variants are spelt as the patterns are: their case is what
/// they print in.
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq)]
enum Dch {
    ADDots,
    AMDots,
    AD,
    AM,
    BCDots,
    BC,
    CC,
    DAY,
    DDD,
    DD,
    DY,
    Day,
    Dy,
    D,
    FF(u8),
    FX,
    HH24,
    HH12,
    HH,
    IDDD,
    ID,
    IW,
    IYYY,
    IYY,
    IY,
    I,
    J,
    MI,
    MM,
    MONTH,
    MON,
    MS,
    Month,
    Mon,
    OF,
    PMDots,
    PM,
    Q,
    RM,
    SSSS,
    SS,
    TZH,
    TZM,
    TZ,
    US,
    WW,
    W,
    YCommaYYY,
    YYYY,
    YYY,
    YY,
    Y,
    adDots,
    amDots,
    ad,
    am,
    bcDots,
    bc,
    day,
    dy,
    month,
    mon,
    pmDots,
    pm,
    rm,
    tz,
}

const DCH_KEYWORDS: &[(&str, Dch)] = &[
    ("A.D.", Dch::ADDots),
    ("A.M.", Dch::AMDots),
    ("AD", Dch::AD),
    ("AM", Dch::AM),
    ("B.C.", Dch::BCDots),
    ("BC", Dch::BC),
    ("CC", Dch::CC),
    ("DAY", Dch::DAY),
    ("DDD", Dch::DDD),
    ("DD", Dch::DD),
    ("DY", Dch::DY),
    ("Day", Dch::Day),
    ("Dy", Dch::Dy),
    ("D", Dch::D),
    ("FF1", Dch::FF(1)),
    ("FF2", Dch::FF(2)),
    ("FF3", Dch::FF(3)),
    ("FF4", Dch::FF(4)),
    ("FF5", Dch::FF(5)),
    ("FF6", Dch::FF(6)),
    ("FX", Dch::FX),
    ("HH24", Dch::HH24),
    ("HH12", Dch::HH12),
    ("HH", Dch::HH),
    ("IDDD", Dch::IDDD),
    ("ID", Dch::ID),
    ("IW", Dch::IW),
    ("IYYY", Dch::IYYY),
    ("IYY", Dch::IYY),
    ("IY", Dch::IY),
    ("I", Dch::I),
    ("J", Dch::J),
    ("MI", Dch::MI),
    ("MM", Dch::MM),
    ("MONTH", Dch::MONTH),
    ("MON", Dch::MON),
    ("MS", Dch::MS),
    ("Month", Dch::Month),
    ("Mon", Dch::Mon),
    ("OF", Dch::OF),
    ("P.M.", Dch::PMDots),
    ("PM", Dch::PM),
    ("Q", Dch::Q),
    ("RM", Dch::RM),
    ("SSSSS", Dch::SSSS),
    ("SSSS", Dch::SSSS),
    ("SS", Dch::SS),
    ("TZH", Dch::TZH),
    ("TZM", Dch::TZM),
    ("TZ", Dch::TZ),
    ("US", Dch::US),
    ("WW", Dch::WW),
    ("W", Dch::W),
    ("Y,YYY", Dch::YCommaYYY),
    ("YYYY", Dch::YYYY),
    ("YYY", Dch::YYY),
    ("YY", Dch::YY),
    ("Y", Dch::Y),
];

/// One piece of a date-time template.
#[derive(Debug, Clone, PartialEq)]
enum DchNode {
    Text(String),
    Pattern {
        key: Dch,
        /// `FM`: no padding.
        fill: bool,
        /// `TM`: names as the locale spells them (the C locale's: the
        /// English names, unpadded).
        translate: bool,
        /// `TH` (upper case) or `th`: an ordinal suffix.
        ordinal: Option<bool>,
    },
}

/// Where `s` begins with a keyword of `table`, the keyword and its length
/// (only characters from `!` to `}` begin one, as in PostgreSQL). The
/// tables hold the upper-case and mixed-case spellings; PostgreSQL also
/// reads each all-upper-case one in lower case, in the same order (`dd`,
/// `hh24`, `y,yyy`), as the key `lower` gives (`day` prints in lower case).
fn keyword_at<T: Copy>(s: &str, table: &[(&str, T)], lower: fn(T) -> T) -> Option<(T, usize)> {
    let first = *s.as_bytes().first()?;
    if first <= b' ' || first >= b'~' {
        return None;
    }
    if !first.is_ascii_lowercase() {
        return table
            .iter()
            .find(|(name, _)| s.starts_with(name))
            .map(|(name, k)| (*k, name.len()));
    }
    table
        .iter()
        .filter(|(name, _)| !name.bytes().any(|b| b.is_ascii_lowercase()))
        .find(|(name, _)| {
            s.as_bytes()
                .get(..name.len())
                .is_some_and(|b| b == name.to_ascii_lowercase().as_bytes())
        })
        .map(|(name, k)| (lower(*k), name.len()))
}

/// The pattern a date-time pattern's lower-case spelling is: the same,
/// but for the names that print in the case they are written in.
fn dch_lower(key: Dch) -> Dch {
    match key {
        Dch::ADDots => Dch::adDots,
        Dch::AMDots => Dch::amDots,
        Dch::AD => Dch::ad,
        Dch::AM => Dch::am,
        Dch::BCDots => Dch::bcDots,
        Dch::BC => Dch::bc,
        Dch::DAY => Dch::day,
        Dch::DY => Dch::dy,
        Dch::MONTH => Dch::month,
        Dch::MON => Dch::mon,
        Dch::PMDots => Dch::pmDots,
        Dch::PM => Dch::pm,
        Dch::RM => Dch::rm,
        Dch::TZ => Dch::tz,
        other => other,
    }
}

/// The same for number patterns: `rn` and `th` print in lower case.
fn num_lower(key: Num) -> Num {
    match key {
        Num::RN => Num::RNLower,
        Num::TH => Num::THLower,
        other => other,
    }
}

/// The literal text at the start of `s` that is not a pattern (one
/// character, a `\"`, or a double-quoted string with its `\` escapes),
/// and the length it takes in `s`.
fn literal_at(s: &str) -> (String, usize) {
    if let Some(rest) = s.strip_prefix('"') {
        let mut text = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return (text, 1 + i + 1),
                '\\' => match chars.next() {
                    Some((_, next)) => text.push(next),
                    None => {
                        text.push('\\');
                        return (text, s.len());
                    }
                },
                c => text.push(c),
            }
        }
        return (text, s.len());
    }
    if s.starts_with("\\\"") {
        return ("\"".into(), 2);
    }
    let c = s.chars().next().expect("not empty");
    (c.to_string(), c.len_utf8())
}

/// A date-time template, read as PostgreSQL reads it (anything that is not
/// a pattern is printed as it is, so every template is valid).
fn parse_dch(template: &str) -> Vec<DchNode> {
    let mut nodes = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        // One prefix, then a pattern: a prefix without a pattern after it
        // is dropped, as PostgreSQL drops it.
        let (mut fill, mut translate) = (false, false);
        if let Some(p) = ["FM", "fm", "TM", "tm"]
            .iter()
            .find(|p| rest.starts_with(*p))
        {
            fill = p.eq_ignore_ascii_case("FM");
            translate = !fill;
            rest = &rest[2..];
        }
        if let Some((key, len)) = keyword_at(rest, DCH_KEYWORDS, dch_lower) {
            rest = &rest[len..];
            let mut ordinal = None;
            if let Some(p) = ["TH", "th", "SP"].iter().find(|p| rest.starts_with(*p)) {
                ordinal = match *p {
                    "TH" => Some(true),
                    "th" => Some(false),
                    _ => None,
                };
                rest = &rest[2..];
            }
            nodes.push(DchNode::Pattern {
                key,
                fill,
                translate,
                ordinal,
            });
            continue;
        }
        if rest.is_empty() {
            break;
        }
        let (text, len) = literal_at(rest);
        rest = &rest[len..];
        nodes.push(DchNode::Text(text));
    }
    nodes
}

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
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
/// Months in Roman numerals, December first.
const ROMAN_MONTHS: [&str; 12] = [
    "XII", "XI", "X", "IX", "VIII", "VII", "VI", "V", "IV", "III", "II", "I",
];

/// The ordinal suffix of a number printed as `digits` (`st`, `nd`, `rd`,
/// `th`; `th` for every teen), upper case if `upper`.
fn ordinal_suffix(digits: &str, upper: bool) -> Result<&'static str> {
    let b = digits.as_bytes();
    let Some(&last) = b.last().filter(|c| c.is_ascii_digit()) else {
        return Err(DataException::error(
            "22023",
            &format!("\"{digits}\" is not a number"),
        ));
    };
    let teen = b.len() > 1 && b[b.len() - 2] == b'1';
    let suffix = match (teen, last) {
        (false, b'1') => ["st", "ST"],
        (false, b'2') => ["nd", "ND"],
        (false, b'3') => ["rd", "RD"],
        _ => ["th", "TH"],
    };
    Ok(suffix[upper as usize])
}

/// `v` zero-padded to `width` characters (the sign among them), as C's
/// `%0*d`.
fn padded(v: i64, width: usize) -> String {
    format!("{v:0width$}")
}

/// A name padded with blanks to nine characters unless `FM` or `TM`.
fn name(out: &mut String, text: &str, fill: bool, translate: bool) {
    if fill || translate {
        out.push_str(text);
    } else {
        out.push_str(&format!("{text:<9}"));
    }
}

fn interval_error() -> datafusion::error::DataFusionError {
    DataException::error(
        "22007",
        "invalid format specification for an interval value (intervals are not tied to specific calendar dates)",
    )
}

/// `tm` printed through a parsed date-time template.
fn dch_to_char(nodes: &[DchNode], tm: &Tm) -> Result<String> {
    let mut out = String::new();
    // A year as printed: BC years count from 1 backwards (intervals' as
    // they are).
    let year = |y: i64| if tm.interval || y > 0 { y } else { 1 - y };
    for node in nodes {
        let (key, fill, translate, ordinal) = match node {
            DchNode::Text(t) => {
                out.push_str(t);
                continue;
            }
            DchNode::Pattern {
                key,
                fill,
                translate,
                ordinal,
            } => (*key, *fill, *translate, *ordinal),
        };
        let calendar_only = matches!(
            key,
            Dch::ADDots
                | Dch::AD
                | Dch::BCDots
                | Dch::BC
                | Dch::adDots
                | Dch::ad
                | Dch::bcDots
                | Dch::bc
                | Dch::MONTH
                | Dch::Month
                | Dch::month
                | Dch::MON
                | Dch::Mon
                | Dch::mon
                | Dch::DAY
                | Dch::Day
                | Dch::day
                | Dch::DY
                | Dch::Dy
                | Dch::dy
                | Dch::D
                | Dch::ID
                | Dch::TZ
                | Dch::tz
                | Dch::TZH
                | Dch::TZM
                | Dch::OF
        );
        if tm.interval && calendar_only {
            return Err(interval_error());
        }
        // Width of a zero-padded number (`FM`: none), one more when it is
        // negative.
        let width = |w: usize, v: i64| match (fill, v < 0) {
            (true, _) => 0,
            (false, true) => w + 1,
            (false, false) => w,
        };
        let number: Option<String> = match key {
            Dch::HH | Dch::HH12 => {
                let h = match tm.hour % 12 {
                    0 => 12,
                    h => h,
                };
                Some(padded(h, width(2, tm.hour)))
            }
            Dch::HH24 => Some(padded(tm.hour, width(2, tm.hour))),
            Dch::MI => Some(padded(tm.min, width(2, tm.min))),
            Dch::SS => Some(padded(tm.sec, width(2, tm.sec))),
            Dch::FF(digits) => {
                let digits = digits as u32;
                let v = tm.usec / 10i64.pow(6 - digits);
                Some(padded(v, digits as usize))
            }
            Dch::MS => Some(padded(tm.usec / 1000, 3)),
            Dch::US => Some(padded(tm.usec, 6)),
            Dch::SSSS => Some((tm.hour * 3600 + tm.min * 60 + tm.sec).to_string()),
            Dch::MM => Some(padded(tm.mon, width(2, tm.mon))),
            Dch::DDD => Some(padded(tm.yday, if fill { 0 } else { 3 })),
            Dch::IDDD => Some(padded(
                iso_year_day(tm.year, tm.mon, tm.mday),
                if fill { 0 } else { 3 },
            )),
            Dch::DD => Some(padded(tm.mday, if fill { 0 } else { 2 })),
            Dch::D => Some((tm.wday + 1).to_string()),
            Dch::ID => Some(if tm.wday == 0 { 7 } else { tm.wday }.to_string()),
            Dch::WW => Some(padded((tm.yday - 1) / 7 + 1, if fill { 0 } else { 2 })),
            Dch::IW => Some(padded(
                iso_year_week(tm.year, tm.mon, tm.mday).1,
                if fill { 0 } else { 2 },
            )),
            Dch::Q if tm.mon == 0 => None,
            Dch::Q => Some(((tm.mon - 1) / 3 + 1).to_string()),
            Dch::CC => {
                let c = if tm.interval {
                    tm.year / 100
                } else if tm.year > 0 {
                    (tm.year - 1) / 100 + 1
                } else {
                    tm.year / 100 - 1
                };
                Some(if (-99..=99).contains(&c) {
                    padded(c, width(2, c))
                } else {
                    c.to_string()
                })
            }
            Dch::YCommaYYY => {
                let y = year(tm.year);
                Some(format!("{},{:03}", y / 1000, y - y / 1000 * 1000))
            }
            Dch::YYYY | Dch::YYY | Dch::YY | Dch::Y | Dch::IYYY | Dch::IYY | Dch::IY | Dch::I => {
                let iso = matches!(key, Dch::IYYY | Dch::IYY | Dch::IY | Dch::I);
                let y = year(match iso {
                    true => iso_year_week(tm.year, tm.mon, tm.mday).0,
                    false => tm.year,
                });
                // The width follows the calendar year's sign, also for the
                // ISO year (an interval's "ISO year" can be -1 where its
                // year is 0), as in PostgreSQL.
                let sign = year(tm.year);
                Some(match key {
                    Dch::YYYY | Dch::IYYY => padded(y, width(4, sign)),
                    Dch::YYY | Dch::IYY => padded(y % 1000, width(3, sign)),
                    Dch::YY | Dch::IY => padded(y % 100, width(2, sign)),
                    _ => (y % 10).to_string(),
                })
            }
            Dch::W => Some(((tm.mday - 1) / 7 + 1).to_string()),
            Dch::J => Some(date2j(tm.year, tm.mon, tm.mday).to_string()),
            _ => None,
        };
        if let Some(number) = number {
            out.push_str(&number);
            if let Some(upper) = ordinal {
                out.push_str(ordinal_suffix(&number, upper)?);
            }
            continue;
        }
        let pm = tm.hour % 24 >= 12;
        let bc = tm.year <= 0;
        match key {
            Dch::AMDots | Dch::PMDots => out.push_str(if pm { "P.M." } else { "A.M." }),
            Dch::AM | Dch::PM => out.push_str(if pm { "PM" } else { "AM" }),
            Dch::amDots | Dch::pmDots => out.push_str(if pm { "p.m." } else { "a.m." }),
            Dch::am | Dch::pm => out.push_str(if pm { "pm" } else { "am" }),
            Dch::ADDots | Dch::BCDots => out.push_str(if bc { "B.C." } else { "A.D." }),
            Dch::AD | Dch::BC => out.push_str(if bc { "BC" } else { "AD" }),
            Dch::adDots | Dch::bcDots => out.push_str(if bc { "b.c." } else { "a.d." }),
            Dch::ad | Dch::bc => out.push_str(if bc { "bc" } else { "ad" }),
            Dch::MONTH | Dch::Month | Dch::month if tm.mon >= 1 => {
                let m = MONTHS[(tm.mon - 1) as usize];
                let m = match key {
                    Dch::MONTH => m.to_uppercase(),
                    Dch::month => m.to_lowercase(),
                    _ => m.to_string(),
                };
                name(&mut out, &m, fill, translate);
            }
            Dch::MON | Dch::Mon | Dch::mon if tm.mon >= 1 => {
                let m = &MONTHS[(tm.mon - 1) as usize][..3];
                out.push_str(&match key {
                    Dch::MON => m.to_uppercase(),
                    Dch::mon => m.to_lowercase(),
                    _ => m.to_string(),
                });
            }
            Dch::DAY | Dch::Day | Dch::day => {
                let d = DAYS[tm.wday as usize];
                let d = match key {
                    Dch::DAY => d.to_uppercase(),
                    Dch::day => d.to_lowercase(),
                    _ => d.to_string(),
                };
                name(&mut out, &d, fill, translate);
            }
            Dch::DY | Dch::Dy | Dch::dy => {
                let d = &DAYS[tm.wday as usize][..3];
                out.push_str(&match key {
                    Dch::DY => d.to_uppercase(),
                    Dch::dy => d.to_lowercase(),
                    _ => d.to_string(),
                });
            }
            Dch::RM | Dch::rm if tm.mon != 0 || tm.year != 0 => {
                let at = match tm.mon {
                    0 if tm.year >= 0 => 0,
                    0 => 11,
                    m if m < 0 => (-(m + 1)) as usize,
                    m => (12 - m) as usize,
                };
                let r = ROMAN_MONTHS[at];
                let r = match key {
                    Dch::rm => r.to_lowercase(),
                    _ => r.to_string(),
                };
                if fill {
                    out.push_str(&r);
                } else {
                    out.push_str(&format!("{r:<4}"));
                }
            }
            Dch::TZ | Dch::tz => {
                if let Some(zone) = &tm.zone {
                    out.push_str(&match key {
                        Dch::tz => zone.to_lowercase(),
                        _ => zone.clone(),
                    });
                }
            }
            Dch::TZH => {
                let sign = if tm.gmtoff >= 0 { '+' } else { '-' };
                out.push_str(&format!("{sign}{:02}", tm.gmtoff.abs() / 3600));
            }
            Dch::TZM => out.push_str(&format!("{:02}", tm.gmtoff.abs() % 3600 / 60)),
            Dch::OF => {
                let sign = if tm.gmtoff >= 0 { '+' } else { '-' };
                let hours = tm.gmtoff.abs() / 3600;
                out.push(sign);
                out.push_str(&padded(hours, if fill { 0 } else { 2 }));
                let minutes = tm.gmtoff.abs() % 3600 / 60;
                if tm.gmtoff.abs() % 3600 != 0 {
                    out.push_str(&format!(":{minutes:02}"));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Numbers.
// ---------------------------------------------------------------------------

/// The number patterns, in the order they are tried at a position.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Comma,
    Point,
    Zero,
    Nine,
    B,
    C,
    D,
    Eeee,
    FM,
    G,
    L,
    MI,
    PL,
    PR,
    RN,
    RNLower,
    SG,
    SP,
    S,
    TH,
    THLower,
    V,
}

const NUM_KEYWORDS: &[(&str, Num)] = &[
    (",", Num::Comma),
    (".", Num::Point),
    ("0", Num::Zero),
    ("9", Num::Nine),
    ("B", Num::B),
    ("C", Num::C),
    ("D", Num::D),
    ("EEEE", Num::Eeee),
    ("FM", Num::FM),
    ("G", Num::G),
    ("L", Num::L),
    ("MI", Num::MI),
    ("PL", Num::PL),
    ("PR", Num::PR),
    ("RN", Num::RN),
    ("SG", Num::SG),
    ("SP", Num::SP),
    ("S", Num::S),
    ("TH", Num::TH),
    ("V", Num::V),
];

/// What an exact number is in PostgreSQL, for the few rules that differ.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Exact {
    Int4,
    Int8,
    Numeric,
}

#[derive(Debug, Clone, PartialEq)]
enum NumNode {
    Key(Num),
    Text(String),
}

/// Where `S` puts the sign: before or after the digits.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
enum LocaleSign {
    #[default]
    None,
    Before,
    After,
}

/// A parsed number template: its pieces and what they add up to.
#[derive(Debug, Clone, Default)]
struct NumFormat {
    nodes: Vec<NumNode>,
    /// Digits (`9`, `0`) before and after the decimal point.
    pre: usize,
    post: usize,
    /// `V`'s digits: the value is multiplied by ten to their power.
    multi: usize,
    decimal: bool,
    /// Where the first `0` before the point is (1-based; 0: none), and the
    /// digit count up to the last `0`.
    zero: bool,
    zero_start: usize,
    zero_end: usize,
    fill: bool,
    lsign: LocaleSign,
    pre_lsign: usize,
    bracket: bool,
    minus: bool,
    plus: bool,
    roman: bool,
    eeee: bool,
    /// `B` before any digit (it only makes `EEEE` an error).
    blank: bool,
}

fn format_error(message: &str) -> datafusion::error::DataFusionError {
    DataException::error("42601", message)
}

impl NumFormat {
    /// A number template, read as PostgreSQL reads it, with its errors.
    fn parse(template: &str) -> Result<NumFormat> {
        let mut f = NumFormat::default();
        let mut rest = template;
        while !rest.is_empty() {
            if let Some((key, len)) = keyword_at(rest, NUM_KEYWORDS, num_lower) {
                rest = &rest[len..];
                f.add(key)?;
                f.nodes.push(NumNode::Key(key));
                continue;
            }
            let (text, len) = literal_at(rest);
            rest = &rest[len..];
            f.nodes.push(NumNode::Text(text));
        }
        Ok(f)
    }

    /// What one pattern adds to the template, or the error of a pattern
    /// that cannot be where it is.
    fn add(&mut self, key: Num) -> Result<()> {
        let sign_set = |f: &NumFormat| f.plus || f.minus || f.bracket;
        if self.eeee && key != Num::Eeee {
            return Err(format_error("\"EEEE\" must be the last pattern used"));
        }
        match key {
            Num::Nine | Num::Zero => {
                if self.bracket {
                    let d = if key == Num::Nine { 9 } else { 0 };
                    return Err(format_error(&format!("\"{d}\" must be ahead of \"PR\"")));
                }
                if key == Num::Nine && self.multi > 0 {
                    self.multi += 1;
                    return Ok(());
                }
                if key == Num::Zero && !self.zero && !self.decimal {
                    self.zero = true;
                    self.zero_start = self.pre + 1;
                }
                if self.decimal {
                    self.post += 1;
                } else {
                    self.pre += 1;
                }
                if key == Num::Zero {
                    self.zero_end = self.pre + self.post;
                }
            }
            Num::D | Num::Point => {
                if self.decimal {
                    return Err(format_error("multiple decimal points"));
                }
                if self.multi > 0 {
                    return Err(format_error("cannot use \"V\" and decimal point together"));
                }
                self.decimal = true;
            }
            Num::FM => self.fill = true,
            Num::B => self.blank |= self.pre == 0 && self.post == 0 && !self.zero,
            Num::S => {
                if self.lsign != LocaleSign::None {
                    return Err(format_error("cannot use \"S\" twice"));
                }
                if sign_set(self) {
                    return Err(format_error(
                        "cannot use \"S\" and \"PL\"/\"MI\"/\"SG\"/\"PR\" together",
                    ));
                }
                if !self.decimal {
                    self.lsign = LocaleSign::Before;
                    self.pre_lsign = self.pre;
                } else {
                    self.lsign = LocaleSign::After;
                }
            }
            Num::MI | Num::PL | Num::SG => {
                if self.lsign != LocaleSign::None {
                    let what = match key {
                        Num::MI => "MI",
                        Num::PL => "PL",
                        _ => "SG",
                    };
                    return Err(format_error(&format!(
                        "cannot use \"S\" and \"{what}\" together"
                    )));
                }
                self.minus |= key != Num::PL;
                self.plus |= key != Num::MI;
            }
            Num::PR => {
                if self.lsign != LocaleSign::None || self.plus || self.minus {
                    return Err(format_error(
                        "cannot use \"PR\" and \"S\"/\"PL\"/\"MI\"/\"SG\" together",
                    ));
                }
                self.bracket = true;
            }
            Num::RN | Num::RNLower => self.roman = true,
            Num::V => {
                if self.decimal {
                    return Err(format_error("cannot use \"V\" and decimal point together"));
                }
                // `multi` counts the `9`s after `V`; 1 marks `V` itself.
                self.multi = self.multi.max(1);
            }
            Num::Eeee => {
                if self.eeee {
                    return Err(format_error("cannot use \"EEEE\" twice"));
                }
                if self.blank
                    || self.fill
                    || self.lsign != LocaleSign::None
                    || sign_set(self)
                    || self.roman
                    || self.multi > 0
                {
                    return Err(format_error(
                        "\"EEEE\" is incompatible with other formats (\"EEEE\" may only be used together with digit and decimal point patterns)",
                    ));
                }
                self.eeee = true;
            }
            _ => {}
        }
        Ok(())
    }

    /// The power of ten `V` multiplies by.
    fn shift(&self) -> usize {
        self.multi.saturating_sub(1)
    }

    /// An exact value (`v` times ten to the power of `-scale`) printed
    /// through the template.
    fn exact(&self, v: i128, scale: i8, kind: Exact) -> Result<String> {
        let mut f = self.clone();
        // `V` multiplies an `integer` in 32-bit arithmetic that wraps
        // around, as PostgreSQL's does; a `bigint` that overflows is an
        // error.
        let v = match kind {
            Exact::Int4 if f.shift() > 0 && !f.eeee && !f.roman => {
                let times = 10i64
                    .checked_pow(f.shift() as u32)
                    .filter(|t| *t <= i32::MAX as i64);
                (v as i32).wrapping_mul(times.map_or(i32::MIN, |t| t as i32)) as i128
            }
            Exact::Int8 if f.shift() > 0 && !f.eeee && !f.roman => {
                let times = 10i64.checked_pow(f.shift() as u32);
                let out = times.and_then(|t| (v as i64).checked_mul(t));
                out.ok_or_else(|| DataException::error("22003", "bigint out of range"))? as i128
            }
            _ => v,
        };
        let shift = match kind {
            Exact::Numeric => f.shift(),
            _ => 0,
        };
        let negative = v < 0;
        let digits = v.unsigned_abs().to_string();
        let mut d = Decimal::new(digits, scale as i64);
        if f.roman {
            d.round(0);
            let n = d.int_digits().parse::<i64>().unwrap_or(i64::MAX);
            let n = if negative { -n } else { n };
            if n > i32::MAX as i64 || n < i32::MIN as i64 {
                return Err(DataException::error("22003", "integer out of range"));
            }
            return f.process(&roman(n), '+', 0);
        }
        if f.eeee {
            let text = if kind == Exact::Int4 {
                // PostgreSQL prints an `integer`'s through a double.
                let x: f64 = format!("{}{}", if negative { "-" } else { "" }, d.text())
                    .parse()
                    .unwrap_or(0.0);
                exponent_text(x, f.post)
            } else {
                d.scientific(f.post, negative)
            };
            return Ok(text);
        }
        d.shift(shift);
        f.pre += f.shift();
        d.round(f.post);
        let sign = if negative && !d.is_zero() { '-' } else { '+' };
        let text = d.text();
        f.fit(text, sign)
    }

    /// A `double precision` (`digits` 15) or `real` (6) printed through the
    /// template.
    fn float(&self, v: f64, digits: usize) -> Result<String> {
        let mut f = self.clone();
        if f.roman {
            let n = v.round_ties_even();
            let n = if n.is_finite() && n.abs() < 2_147_483_648.0 {
                n as i64
            } else {
                i64::MIN
            };
            return f.process(&roman(n), '+', 0);
        }
        if f.eeee {
            if !v.is_finite() {
                // Room for the sign, the point, `e`, the exponent's sign
                // and two digits, all `#`.
                let mut s: Vec<u8> = vec![b'#'; f.pre + f.post + 6];
                s[0] = b' ';
                s[f.pre + 1] = b'.';
                return Ok(String::from_utf8(s).expect("ascii"));
            }
            return Ok(exponent_text(v, f.post));
        }
        let mut v = v;
        if f.shift() > 0 {
            v *= 10f64.powi(f.shift() as i32);
            f.pre += f.shift();
        }
        let int_digits = c_fixed(v.abs(), 0).len();
        if int_digits >= digits {
            f.post = 0;
        } else if int_digits + f.post > digits {
            f.post = digits - int_digits;
        }
        let text = c_fixed(v, f.post);
        let (sign, text) = match text.strip_prefix('-') {
            Some(t) => ('-', t.to_string()),
            None => ('+', text),
        };
        f.fit(text, sign)
    }

    /// `text` (digits, maybe a point) fitted to the template: blanks before
    /// it, or `#`s when it has more digits before the point than the
    /// template.
    fn fit(&self, text: String, sign: char) -> Result<String> {
        let pre_len = text.find('.').unwrap_or(text.len());
        if pre_len > self.pre {
            let mut s = vec![b'#'; self.pre + self.post + 1];
            s[self.pre] = b'.';
            return self.process(&String::from_utf8(s).expect("ascii"), sign, 0);
        }
        self.process(&text, sign, self.pre - pre_len)
    }

    /// The template printed around `number` (its digits and point, its
    /// sign apart): `pre_spaces` digit places before it are blank.
    fn process(&self, number: &str, sign: char, pre_spaces: usize) -> Result<String> {
        let mut f = self.clone();
        f.zero_start = f.zero_start.saturating_sub(1);
        let (mut sign, mut pre_spaces) = (sign, pre_spaces);
        if f.roman {
            // A Roman numeral has no sign and no digit places.
            f = NumFormat {
                nodes: std::mem::take(&mut f.nodes),
                fill: f.fill,
                roman: true,
                ..NumFormat::default()
            };
            (sign, pre_spaces) = ('\0', 0);
        }
        let sign_wrote = if f.plus || f.minus {
            // `PL` alone leaves the sign to the digits.
            !f.plus || f.minus
        } else {
            // A number that is not negative gets no brackets in `FM`.
            if sign != '-' && f.fill {
                f.bracket = false;
            }
            if f.lsign == LocaleSign::Before && f.pre == f.pre_lsign {
                f.lsign = LocaleSign::After;
            }
            sign == '+' && f.fill && f.lsign == LocaleSign::None
        };
        let mut last = None;
        if f.fill && f.decimal {
            last = last_relevant(number);
            // The places of `0`s are printed even when they hold zeros.
            if let Some(lr) = last
                && f.zero_end > pre_spaces
            {
                let last_zero = (number.len() - 1).min(f.zero_end - pre_spaces);
                last = Some(lr.max(last_zero));
            }
        }
        let mut num_count = (f.post + f.pre) as i64 - 1;
        if !sign_wrote && pre_spaces == 0 {
            num_count += 1;
        }
        // The number with a NUL after it: a template with more decimals
        // than a `float8` keeps prints nothing from there on, as
        // PostgreSQL's C string ends there.
        let mut num: Vec<u8> = number.as_bytes().to_vec();
        num.push(0);
        let mut p = Processor {
            f: &f,
            num: &num,
            at: 0,
            out: Vec::new(),
            sign,
            sign_wrote,
            num_in: false,
            num_curr: 0,
            num_count,
            pre_spaces,
            last_relevant: last,
        };
        for node in &f.nodes {
            match node {
                NumNode::Text(t) => p.out.extend_from_slice(t.as_bytes()),
                NumNode::Key(k) => p.key(*k)?,
            }
        }
        let end = p.out.iter().position(|b| *b == 0).unwrap_or(p.out.len());
        Ok(String::from_utf8_lossy(&p.out[..end]).into_owned())
    }
}

/// The state of printing one number through a template.
struct Processor<'a> {
    f: &'a NumFormat,
    num: &'a [u8],
    /// The next character of `num` to print.
    at: usize,
    out: Vec<u8>,
    sign: char,
    sign_wrote: bool,
    /// Whether the last digit place printed a digit (for `,` and `G`).
    num_in: bool,
    num_curr: i64,
    num_count: i64,
    pre_spaces: usize,
    /// With `FM` and a point: the last character of `num` worth printing.
    last_relevant: Option<usize>,
}

/// The position of the point's last non-zero decimal in `num` (the point
/// itself when all are zeros), None without a point.
fn last_relevant(num: &str) -> Option<usize> {
    let point = num.find('.')?;
    let b = num.as_bytes();
    Some(
        (point + 1..b.len())
            .rev()
            .find(|&i| b[i] != b'0')
            .unwrap_or(point),
    )
}

impl Processor<'_> {
    fn cur(&self) -> u8 {
        self.num[self.at.min(self.num.len() - 1)]
    }

    fn predec_space(&self) -> bool {
        !self.f.zero && self.at == 0 && self.num[0] == b'0' && self.f.post != 0
    }

    fn last_is_point(&self) -> bool {
        self.last_relevant.is_some_and(|i| self.num[i] == b'.')
    }

    fn key(&mut self, k: Num) -> Result<()> {
        match k {
            Num::Nine | Num::Zero | Num::Point | Num::D => self.digit(k),
            Num::Comma | Num::G => {
                if self.num_in {
                    self.out.push(b',');
                } else if !self.f.fill {
                    self.out.push(b' ');
                }
            }
            Num::L => self.out.push(b' '),
            Num::RN | Num::RNLower => {
                let end = self.num.iter().position(|b| *b == 0).unwrap_or(0);
                let mut r = String::from_utf8_lossy(&self.num[self.at..end]).into_owned();
                if k == Num::RNLower {
                    r = r.to_lowercase();
                }
                if !self.f.fill {
                    r = format!("{r:>15}");
                }
                self.out.extend_from_slice(r.as_bytes());
            }
            Num::TH | Num::THLower => {
                if self.f.roman || self.num[0] == b'#' || self.sign == '-' || self.f.decimal {
                    return Ok(());
                }
                let end = self.num.iter().position(|b| *b == 0).unwrap_or(0);
                let digits = String::from_utf8_lossy(&self.num[..end]).into_owned();
                let suffix = ordinal_suffix(&digits, k == Num::TH)?;
                self.out.extend_from_slice(suffix.as_bytes());
            }
            Num::MI => match self.sign {
                '-' => self.out.push(b'-'),
                _ if self.f.fill => {}
                _ => self.out.push(b' '),
            },
            Num::PL => match self.sign {
                '+' => self.out.push(b'+'),
                _ if self.f.fill => {}
                _ => self.out.push(b' '),
            },
            Num::SG => self.out.push(self.sign as u8),
            _ => {}
        }
        Ok(())
    }

    /// A digit place or the point.
    fn digit(&mut self, k: Num) {
        if self.f.roman {
            return;
        }
        self.num_in = false;
        let f = self.f;
        // The sign, before the first digit that is printed.
        if !self.sign_wrote
            && (self.num_curr >= self.pre_spaces as i64
                || (f.zero && f.zero_start as i64 == self.num_curr))
            && (!self.predec_space() || self.last_is_point())
        {
            if f.lsign != LocaleSign::None {
                if f.lsign == LocaleSign::Before {
                    self.out.push(if self.sign == '-' { b'-' } else { b'+' });
                    self.sign_wrote = true;
                }
            } else if f.bracket {
                self.out.push(if self.sign == '+' { b' ' } else { b'<' });
                self.sign_wrote = true;
            } else if self.sign == '+' {
                if !f.fill {
                    self.out.push(b' ');
                }
                self.sign_wrote = true;
            } else if self.sign == '-' {
                self.out.push(b'-');
                self.sign_wrote = true;
            }
        }
        let curr = self.num_curr;
        if curr < self.pre_spaces as i64 && (f.zero_start as i64 > curr || !f.zero) {
            if !f.fill {
                self.out.push(b' ');
            }
        } else if f.zero && curr < self.pre_spaces as i64 && f.zero_start as i64 <= curr {
            self.out.push(b'0');
            self.num_in = true;
        } else {
            if self.cur() == b'.' {
                if !self.last_is_point() || f.fill {
                    self.out.push(b'.');
                }
            } else if self
                .last_relevant
                .is_some_and(|lr| self.at > lr && k != Num::Zero)
            {
            } else if self.predec_space() {
                if !f.fill {
                    self.out.push(b' ');
                } else if self.last_is_point() {
                    self.out.push(b'0');
                }
            } else {
                self.out.push(self.cur());
                self.num_in = true;
            }
            if self.cur() != 0 {
                self.at += 1;
            }
        }
        let mut end = self.num_count + (self.pre_spaces > 0) as i64 + f.decimal as i64;
        if self.last_relevant.is_some_and(|lr| lr == self.at) {
            end = self.num_curr;
        }
        if self.num_curr + 1 == end {
            if self.sign_wrote && f.bracket {
                self.out.push(if self.sign == '+' { b' ' } else { b'>' });
            } else if f.lsign == LocaleSign::After {
                self.out.push(if self.sign == '-' { b'-' } else { b'+' });
            }
        }
        self.num_curr += 1;
    }
}

/// `x` with `decimals` decimals, as PostgreSQL's `%.*f` prints it (the
/// exact binary value rounded half to even; `NaN`, `Infinity`).
fn c_fixed(x: f64, decimals: usize) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-Infinity" } else { "Infinity" }.into();
    }
    format!("{x:.decimals$}")
}

/// `x` as C's `%+.*e` prints it, a blank for the plus sign: ` 1.50e+03`.
fn exponent_text(x: f64, decimals: usize) -> String {
    let s = format!("{:.decimals$e}", x.abs());
    let (mantissa, exp) = s.split_once('e').expect("an exponent");
    let exp: i64 = exp.parse().unwrap_or(0);
    let sign = if x.is_sign_negative() { '-' } else { ' ' };
    let esign = if exp < 0 { '-' } else { '+' };
    format!("{sign}{mantissa}e{esign}{:02}", exp.abs())
}

/// The Roman numeral of `n` (1 to 3999; else fifteen `#`s).
fn roman(n: i64) -> String {
    if !(1..=3999).contains(&n) {
        return "#".repeat(15);
    }
    const ONES: [&str; 9] = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX"];
    const TENS: [&str; 9] = ["X", "XX", "XXX", "XL", "L", "LX", "LXX", "LXXX", "XC"];
    const HUNDREDS: [&str; 9] = ["C", "CC", "CCC", "CD", "D", "DC", "DCC", "DCCC", "CM"];
    let mut out = "M".repeat((n / 1000) as usize);
    for (digit, names) in [
        (n / 100 % 10, HUNDREDS),
        (n / 10 % 10, TENS),
        (n % 10, ONES),
    ] {
        if digit > 0 {
            out.push_str(names[(digit - 1) as usize]);
        }
    }
    out
}

/// A non-negative decimal as its digits and where its point is, for the
/// exact rounding and shifting `to_char` does on numerics.
struct Decimal {
    /// All digits, with at least one before the point.
    digits: Vec<u8>,
    /// How many of them are before the point.
    int_len: usize,
}

impl Decimal {
    /// `digits` (ASCII) times ten to the power of `-scale`.
    fn new(digits: String, scale: i64) -> Decimal {
        let mut digits = digits.into_bytes();
        if scale < 0 {
            digits.extend(std::iter::repeat_n(b'0', (-scale) as usize));
        }
        let scale = scale.max(0) as usize;
        while digits.len() <= scale {
            digits.insert(0, b'0');
        }
        let int_len = digits.len() - scale;
        let mut d = Decimal { digits, int_len };
        d.trim_leading();
        d
    }

    fn trim_leading(&mut self) {
        while self.int_len > 1 && self.digits[0] == b'0' {
            self.digits.remove(0);
            self.int_len -= 1;
        }
    }

    fn frac_len(&self) -> usize {
        self.digits.len() - self.int_len
    }

    /// Times ten to the power of `n`.
    fn shift(&mut self, n: usize) {
        let missing = (self.int_len + n).saturating_sub(self.digits.len());
        self.digits.extend(std::iter::repeat_n(b'0', missing));
        self.int_len += n;
        self.trim_leading();
    }

    /// Rounded half away from zero to `decimals` decimals, keeping that
    /// many.
    fn round(&mut self, decimals: usize) {
        if self.frac_len() > decimals {
            let cut = self.int_len + decimals;
            let up = self.digits[cut] >= b'5';
            self.digits.truncate(cut);
            if up {
                let mut i = cut;
                loop {
                    if i == 0 {
                        self.digits.insert(0, b'1');
                        self.int_len += 1;
                        break;
                    }
                    i -= 1;
                    if self.digits[i] == b'9' {
                        self.digits[i] = b'0';
                    } else {
                        self.digits[i] += 1;
                        break;
                    }
                }
            }
        } else {
            let more = decimals - self.frac_len();
            self.digits.extend(std::iter::repeat_n(b'0', more));
        }
    }

    fn is_zero(&self) -> bool {
        self.digits.iter().all(|d| *d == b'0')
    }

    fn int_digits(&self) -> String {
        String::from_utf8_lossy(&self.digits[..self.int_len]).into_owned()
    }

    /// The digits with the point (none when there are no decimals).
    fn text(&self) -> String {
        let mut s = self.int_digits();
        if self.frac_len() > 0 {
            s.push('.');
            s.push_str(&String::from_utf8_lossy(&self.digits[self.int_len..]));
        }
        s
    }

    /// Scientific notation with `decimals` decimals, as PostgreSQL's
    /// numeric prints it for `EEEE`: the exponent of the first significant
    /// digit, the rest rounded half away from zero (so `9.99` with one
    /// decimal is `10.0e+00`), a blank where a plus sign would be.
    fn scientific(&self, decimals: usize, negative: bool) -> String {
        let first = self.digits.iter().position(|d| *d != b'0');
        let Some(first) = first else {
            let zeros = "0".repeat(decimals);
            let point = if decimals > 0 { "." } else { "" };
            return format!(" 0{point}{zeros}e+00");
        };
        let exponent = self.int_len as i64 - first as i64 - 1;
        let mut m = Decimal {
            digits: self.digits[first..].to_vec(),
            int_len: 1,
        };
        m.round(decimals);
        let sign = if negative { '-' } else { ' ' };
        let esign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{}e{esign}{:02}", m.text(), exponent.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(v: i128, scale: i8, template: &str) -> String {
        NumFormat::parse(template)
            .unwrap()
            .exact(v, scale, Exact::Numeric)
            .unwrap()
    }

    fn date(y: i32, m: u32, d: u32, template: &str) -> String {
        let at = chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let days = (at - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days();
        let tm = Tm::of_clock(days * 86_400_000_000 + 13 * 3_600_000_000, 0, None);
        dch_to_char(&parse_dch(template), &tm).unwrap()
    }

    /// Each answer is PostgreSQL 15's (`SELECT to_char(...)`).
    #[test]
    fn numbers_print_as_postgresql() {
        assert_eq!(num(5, 0, "999"), "   5");
        assert_eq!(num(-5, 0, "999"), "  -5");
        assert_eq!(num(1234567, 3, "FM9,999.00"), "1,234.57");
        assert_eq!(num(5, 1, "9.99"), "  .50");
        assert_eq!(num(5, 1, "0.99"), " 0.50");
        assert_eq!(num(-5, 1, "FM0.00"), "-0.50");
        assert_eq!(num(12345, 0, "999"), " ###");
        assert_eq!(num(-5, 0, "S999"), "  -5");
        assert_eq!(num(5, 0, "999S"), "  5+");
        assert_eq!(num(-5, 0, "999MI"), "  5-");
        assert_eq!(num(-5, 0, "999PR"), "  <5>");
        assert_eq!(num(5, 0, "999PR"), "   5 ");
        assert_eq!(num(12345, 1, "9.99EEEE"), " 1.23e+03");
        assert_eq!(num(485, 0, "RN"), "        CDLXXXV");
        assert_eq!(num(12, 0, "99TH"), " 12TH");
        assert_eq!(num(1245, 2, "99V9"), " 125");
    }

    #[test]
    fn dates_print_as_postgresql() {
        assert_eq!(date(2024, 2, 29, "YYYY-MM-DD"), "2024-02-29");
        assert_eq!(date(2024, 3, 1, "Month YYYY"), "March     2024");
        assert_eq!(date(2024, 3, 1, "FMMonth FMDDth"), "March 1st");
        assert_eq!(date(2024, 3, 1, "Day Dy Q"), "Friday    Fri 1");
        assert_eq!(date(2024, 12, 30, "IYYY-IW-ID"), "2025-01-1");
        assert_eq!(date(2024, 3, 1, "HH12:MI AM"), "01:00 PM");
        assert_eq!(date(2024, 3, 1, "\"Q\"Q \\\"RM"), "Q1 \"III ");
        // An interval's ISO year is padded by its year's sign (found by
        // tests/tools/to_char_fuzz.py).
        let tm = Tm::of_interval(0, -6, 2_675_000_000);
        assert_eq!(dch_to_char(&parse_dch("IYY-IW"), &tm).unwrap(), "-01-47");
    }
}
