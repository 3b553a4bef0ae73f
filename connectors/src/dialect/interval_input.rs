//! An interval's text read as PostgreSQL 15's `interval_in` reads it
//! (`ParseDateTime`, `DecodeInterval`, then `DecodeISO8601Interval`),
//! for interval literals (`INTERVAL '...'`, `CAST('...' AS interval)`,
//! `syntax.rs`).
//!
//! Arrow's parser, which DataFusion 55 reads them with, refused much of
//! what PostgreSQL reads (clock times after a number, `1 2:03`, SQL's
//! `1-2` years-months, ISO 8601 `P1Y2M`, `P0001-02-03T04:05:06`, `@ ...`,
//! `ago`, `+` signs, units written against their numbers) and read some
//! of the rest otherwise: a fraction of a year or decade truncated to
//! months where PostgreSQL rounds (`-100.2415 decades` was `-1002 years
//! -4 mons`, PostgreSQL's `-5 mons`), a fraction of a month kept in days
//! without the rest of the day, seconds' seventh digit cut where
//! PostgreSQL rounds. Found by `tests/tools/interval_fuzz.py`.
//!
//! The same steps as PostgreSQL's, in the same order, with its rounding
//! (`rint`) and its errors: `22007` "invalid input syntax for type
//! interval", `22015` "interval field value out of range", `22008`
//! "interval out of range". (PostgreSQL 16 also refuses a unit without a
//! number, `'1 day day'`; 15, which the tests run, reads it.)

use crate::error::DataException;

/// An interval as PostgreSQL keeps it: months, days and microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

/// Why text is not an interval (PostgreSQL's `DTERR_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bad {
    Format,
    FieldOverflow,
}

/// `text` read as PostgreSQL reads an interval, or its error.
pub fn parse(text: &str) -> datafusion::common::Result<Interval> {
    let read = tokens(text, 256)
        .and_then(|fields| decode(&fields))
        .or_else(|bad| match bad {
            Bad::Format => iso8601(text),
            other => Err(other),
        });
    let parts = read.map_err(|bad| match bad {
        Bad::Format => DataException::error(
            "22007",
            &format!("invalid input syntax for type interval: \"{text}\""),
        ),
        Bad::FieldOverflow => DataException::error(
            "22015",
            &format!("interval field value out of range: \"{text}\""),
        ),
    })?;
    let months = i64::from(parts.years) * 12 + i64::from(parts.months);
    let months = i32::try_from(months)
        .map_err(|_| DataException::error("22008", "interval out of range"))?;
    Ok(Interval {
        months,
        days: parts.days,
        micros: parts.micros,
    })
}

/// `text` read as PostgreSQL reads an interval, written as the text
/// Arrow's parser reads as the same months, days and microseconds
/// (`M mons D days U microseconds`); an error where PostgreSQL refuses
/// it, or where its time part is past what 64-bit nanoseconds hold.
pub fn arrow_text(text: &str) -> datafusion::common::Result<String> {
    let i = parse(text)?;
    if i.micros.checked_mul(1_000).is_none() {
        return Err(DataException::error(
            "22008",
            "interval out of range: an interval's hours, minutes and seconds \
             hold at most about 292 years here (64-bit nanoseconds)",
        ));
    }
    Ok(format!(
        "{} mons {} days {} microseconds",
        i.months, i.days, i.micros
    ))
}

/// What a token of `ParseDateTime` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Number,
    Time,
    Date,
    Text,
    /// A sign and a number (PostgreSQL's `DTK_TZ`).
    Signed,
    /// A sign and a word.
    Special,
}

/// PostgreSQL's date words a word followed by a digit or `+` may be
/// (`1d2h` is one day two hours; `1day2h` is not an interval).
const DATE_WORDS: &[&str] = &[
    "d",
    "h",
    "m",
    "s",
    "y",
    "j",
    "t",
    "z",
    "mm",
    "am",
    "pm",
    "ad",
    "bc",
    "at",
    "on",
    "now",
    "today",
    "tomorrow",
    "yesterday",
    "epoch",
    "allballs",
    "zulu",
    "infinity",
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "mon",
    "tue",
    "tues",
    "wed",
    "wednesday",
    "thu",
    "thur",
    "thurs",
    "fri",
    "sat",
    "sun",
];

/// `ParseDateTime`: the text's fields, words in lower case, in a buffer
/// of `room` bytes (256 for an interval, 153 for a date or time).
pub(super) fn tokens(text: &str, room: usize) -> Result<Vec<(String, Kind)>, Bad> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut out: Vec<(String, Kind)> = vec![];
    // PostgreSQL's fields and their ends share a buffer of `room` bytes,
    // and there are at most 25 of them.
    let mut used = 0;
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let mut f = String::new();
        let take = |i: &mut usize, f: &mut String| {
            f.push(b[*i].to_ascii_lowercase() as char);
            *i += 1;
        };
        let kind;
        if c.is_ascii_digit() {
            while at(i).is_ascii_digit() {
                take(&mut i, &mut f);
            }
            if at(i) == b':' {
                kind = Kind::Time;
                while at(i).is_ascii_digit() || matches!(at(i), b':' | b'.') {
                    take(&mut i, &mut f);
                }
            } else if matches!(at(i), b'-' | b'/' | b'.') {
                let delim = at(i);
                take(&mut i, &mut f);
                if at(i).is_ascii_digit() {
                    let mut k = if delim == b'.' {
                        Kind::Number
                    } else {
                        Kind::Date
                    };
                    while at(i).is_ascii_digit() {
                        take(&mut i, &mut f);
                    }
                    if at(i) == delim {
                        k = Kind::Date;
                        while at(i).is_ascii_digit() || at(i) == delim {
                            take(&mut i, &mut f);
                        }
                    }
                    kind = k;
                } else {
                    kind = Kind::Date;
                    while at(i).is_ascii_alphanumeric() || at(i) == delim {
                        take(&mut i, &mut f);
                    }
                }
            } else {
                kind = Kind::Number;
            }
        } else if c == b'.' {
            take(&mut i, &mut f);
            while at(i).is_ascii_digit() {
                take(&mut i, &mut f);
            }
            kind = Kind::Number;
        } else if c.is_ascii_alphabetic() {
            while at(i).is_ascii_alphabetic() {
                take(&mut i, &mut f);
            }
            let date = matches!(at(i), b'-' | b'/' | b'.')
                || ((at(i) == b'+' || at(i).is_ascii_digit()) && !DATE_WORDS.contains(&f.as_str()));
            if date {
                while matches!(at(i), b'+' | b'-' | b'/' | b'_' | b'.' | b':')
                    || at(i).is_ascii_alphanumeric()
                {
                    take(&mut i, &mut f);
                }
                kind = Kind::Date;
            } else {
                kind = Kind::Text;
            }
        } else if c == b'+' || c == b'-' {
            take(&mut i, &mut f);
            while at(i).is_ascii_whitespace() {
                i += 1;
            }
            if at(i).is_ascii_digit() {
                while at(i).is_ascii_digit() || matches!(at(i), b':' | b'.' | b'-') {
                    take(&mut i, &mut f);
                }
                kind = Kind::Signed;
            } else if at(i).is_ascii_alphabetic() {
                while at(i).is_ascii_alphabetic() {
                    take(&mut i, &mut f);
                }
                kind = Kind::Special;
            } else {
                return Err(Bad::Format);
            }
        } else if c.is_ascii_punctuation() {
            i += 1;
            continue;
        } else {
            return Err(Bad::Format);
        }
        used += f.len() + 1;
        if used >= room || out.len() == 25 {
            return Err(Bad::Format);
        }
        out.push((f, kind));
    }
    Ok(out)
}

/// PostgreSQL's `pg_itm_in`: the parts an interval is read into.
#[derive(Debug, Default, Clone, Copy)]
struct Parts {
    micros: i64,
    days: i32,
    months: i32,
    years: i32,
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;
const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

impl Parts {
    /// `AdjustMicroseconds`.
    fn micros(&mut self, val: i64, frac: f64, scale: i64) -> Result<(), Bad> {
        self.micros = val
            .checked_mul(scale)
            .and_then(|p| self.micros.checked_add(p))
            .ok_or(Bad::FieldOverflow)?;
        self.fract_micros(frac, scale)
    }

    /// `AdjustFractMicroseconds`: the fraction's whole microseconds, the
    /// rest rounded half to even (`rint`).
    fn fract_micros(&mut self, frac: f64, scale: i64) -> Result<(), Bad> {
        if frac == 0.0 {
            return Ok(());
        }
        let frac = frac * scale as f64;
        let whole = frac as i64;
        let micros = whole + (frac - whole as f64).round_ties_even() as i64;
        self.micros = self.micros.checked_add(micros).ok_or(Bad::FieldOverflow)?;
        Ok(())
    }

    /// `val` and `frac` of `unit`, as `DecodeInterval` and
    /// `DecodeISO8601Interval` add them.
    fn add(&mut self, unit: Unit, val: i64, frac: f64) -> Result<(), Bad> {
        match unit {
            Unit::Microsecond => self.micros(val, frac, 1),
            Unit::Millisecond => self.micros(val, frac, 1000),
            Unit::Second => self.micros(val, frac, MICROS_PER_SECOND),
            Unit::Minute => self.micros(val, frac, MICROS_PER_MINUTE),
            Unit::Hour => self.micros(val, frac, MICROS_PER_HOUR),
            Unit::Day => {
                self.days(val, 1)?;
                self.fract_micros(frac, MICROS_PER_DAY)
            }
            Unit::Week => {
                self.days(val, 7)?;
                self.fract_days(frac, 7)
            }
            Unit::Month => {
                self.months(val)?;
                self.fract_days(frac, 30)
            }
            Unit::Year | Unit::Decade | Unit::Century | Unit::Millennium => {
                let scale = match unit {
                    Unit::Year => 1,
                    Unit::Decade => 10,
                    Unit::Century => 100,
                    _ => 1000,
                };
                self.years(val, scale)?;
                self.fract_years(frac, scale)
            }
            Unit::Other => Err(Bad::Format),
        }
    }

    /// `AdjustDays`.
    fn days(&mut self, val: i64, scale: i32) -> Result<(), Bad> {
        self.days = add_scaled(self.days, val, scale)?;
        Ok(())
    }

    /// `AdjustFractDays`: whole days, the rest of a day in microseconds.
    fn fract_days(&mut self, frac: f64, scale: i32) -> Result<(), Bad> {
        if frac == 0.0 {
            return Ok(());
        }
        let frac = frac * f64::from(scale);
        let extra = frac as i32;
        self.days = add_scaled(self.days, extra.into(), 1)?;
        self.fract_micros(frac - f64::from(extra), MICROS_PER_DAY)
    }

    /// `AdjustMonths`.
    fn months(&mut self, val: i64) -> Result<(), Bad> {
        self.months = add_scaled(self.months, val, 1)?;
        Ok(())
    }

    /// `AdjustYears`.
    fn years(&mut self, val: i64, scale: i32) -> Result<(), Bad> {
        self.years = add_scaled(self.years, val, scale)?;
        Ok(())
    }

    /// `AdjustFractYears`: the fraction in whole months, rounded.
    fn fract_years(&mut self, frac: f64, scale: i32) -> Result<(), Bad> {
        let extra = (frac * f64::from(scale) * 12.0).round_ties_even() as i32;
        self.months = add_scaled(self.months, extra.into(), 1)?;
        Ok(())
    }
}

/// `to + val * scale` within 32 bits (PostgreSQL's checks of `int`).
fn add_scaled(to: i32, val: i64, scale: i32) -> Result<i32, Bad> {
    i32::try_from(val)
        .ok()
        .and_then(|v| v.checked_mul(scale))
        .and_then(|v| to.checked_add(v))
        .ok_or(Bad::FieldOverflow)
}

/// A unit of `DecodeInterval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Microsecond,
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
    Decade,
    Century,
    Millennium,
    /// A unit PostgreSQL knows and an interval does not take (`quarter`).
    Other,
}

impl Unit {
    /// Its bit in the mask of units seen (each once).
    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

const TIME_BITS: u32 = (1 << Unit::Hour as u32)
    | (1 << Unit::Minute as u32)
    | (1 << Unit::Second as u32)
    | (1 << Unit::Millisecond as u32)
    | (1 << Unit::Microsecond as u32);
const SECOND_BITS: u32 =
    (1 << Unit::Second as u32) | (1 << Unit::Millisecond as u32) | (1 << Unit::Microsecond as u32);

/// What a word is (`DecodeUnits` over `deltatktbl`, by its first ten
/// letters): a unit, `ago` (None), or nothing known (Err).
fn unit_word(word: &str) -> Result<Option<Unit>, Bad> {
    let key: String = word.chars().take(10).collect();
    use Unit::*;
    Ok(Some(match key.as_str() {
        "microsecon" | "us" | "usec" | "useconds" | "usecs" => Microsecond,
        "millisecon" | "ms" | "msec" | "mseconds" | "msecs" => Millisecond,
        "s" | "sec" | "second" | "seconds" | "secs" => Second,
        "m" | "min" | "mins" | "minute" | "minutes" => Minute,
        "h" | "hour" | "hours" | "hr" | "hrs" => Hour,
        "d" | "day" | "days" => Day,
        "w" | "week" | "weeks" => Week,
        "mon" | "mons" | "month" | "months" => Month,
        "y" | "year" | "years" | "yr" | "yrs" => Year,
        "dec" | "decade" | "decades" | "decs" => Decade,
        "c" | "cent" | "centuries" | "century" => Century,
        "mil" | "millennia" | "millennium" | "mils" => Millennium,
        "qtr" | "quarter" | "timezone" | "timezone_h" | "timezone_m" => Other,
        "ago" => return Ok(None),
        _ => return Err(Bad::Format),
    }))
}

/// The unit `date_trunc` reads `word` as (PostgreSQL's `DecodeUnits`,
/// by its first ten letters: `microseconds`, `msec`, `hrs`, `qtr`,
/// `centuries`, ...), by DataFusion's name of it; None for a word that
/// names no unit.
pub fn trunc_unit(word: &str) -> Option<&'static str> {
    let word = word.to_ascii_lowercase();
    let key: String = word.chars().take(10).collect();
    if matches!(key.as_str(), "qtr" | "quarter") {
        return Some("quarter");
    }
    Some(match unit_word(&word).ok()?? {
        Unit::Microsecond => "microsecond",
        Unit::Millisecond => "millisecond",
        Unit::Second => "second",
        Unit::Minute => "minute",
        Unit::Hour => "hour",
        Unit::Day => "day",
        Unit::Week => "week",
        Unit::Month => "month",
        Unit::Year => "year",
        Unit::Decade => "decade",
        Unit::Century => "century",
        Unit::Millennium => "millennium",
        Unit::Other => return None,
    })
}

/// C's `strtol` over `s`: optional spaces and sign, digits; the value and
/// the rest (all of `s` when there are no digits).
pub(super) fn strtol(s: &str) -> Result<(i64, &str), Bad> {
    let t = s.trim_start();
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits = body.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Ok((0, s));
    }
    let mut v: i64 = 0;
    for d in body[..digits].bytes() {
        let d = i64::from(d - b'0');
        v = v
            .checked_mul(10)
            .and_then(|v| match negative {
                true => v.checked_sub(d),
                false => v.checked_add(d),
            })
            .ok_or(Bad::FieldOverflow)?;
    }
    Ok((v, &body[digits..]))
}

/// `strtoint`: `strtol` within 32 bits.
pub(super) fn strtoint(s: &str) -> Result<(i64, &str), Bad> {
    let (v, rest) = strtol(s)?;
    match i32::try_from(v) {
        Ok(_) => Ok((v, rest)),
        Err(_) => Err(Bad::FieldOverflow),
    }
}

/// `ParseFraction`: `.` and digits (or `.` alone) as a fraction.
pub(super) fn fraction(s: &str) -> Result<f64, Bad> {
    if s == "." {
        return Ok(0.0);
    }
    let digits = &s[1..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Bad::Format);
    }
    s.parse::<f64>().map_err(|_| Bad::Format)
}

/// `ParseFractionalSecond`: `.ddd` in microseconds, rounded (`rint`).
pub(super) fn fractional_second(s: &str) -> Result<i64, Bad> {
    Ok((fraction(s)? * 1e6).round_ties_even() as i64)
}

/// `DecodeTimeCommon`: `h:mm[:ss[.f]]` or `mm:ss.f` (`.f` rounded to
/// microseconds), as hours, minutes, seconds and microseconds; timestamps
/// and intervals read a clock with it.
pub(super) fn clock_fields(s: &str) -> Result<(i64, i64, i64, i64), Bad> {
    let (mut hour, rest) = strtol(s)?;
    let Some(rest) = rest.strip_prefix(':') else {
        return Err(Bad::Format);
    };
    let (mut min, rest) = strtoint(rest)?;
    let mut sec = 0;
    let mut fsec = 0;
    if rest.is_empty() {
    } else if rest.starts_with('.') {
        // mm:ss.fff
        fsec = fractional_second(rest)?;
        if i32::try_from(hour).is_err() {
            return Err(Bad::FieldOverflow);
        }
        sec = min;
        min = hour;
        hour = 0;
    } else if let Some(rest) = rest.strip_prefix(':') {
        let (s, rest) = strtoint(rest)?;
        sec = s;
        if rest.starts_with('.') {
            fsec = fractional_second(rest)?;
        } else if !rest.is_empty() {
            return Err(Bad::Format);
        }
    } else {
        return Err(Bad::Format);
    }
    if hour < 0
        || !(0..=59).contains(&min)
        || !(0..=60).contains(&sec)
        || !(0..=MICROS_PER_SECOND).contains(&fsec)
    {
        return Err(Bad::FieldOverflow);
    }
    Ok((hour, min, sec, fsec))
}

/// `DecodeTimeForInterval`: a clock ([`clock_fields`]) in microseconds.
fn clock(s: &str) -> Result<i64, Bad> {
    let (hour, min, sec, fsec) = clock_fields(s)?;
    fsec.checked_add(
        hour.checked_mul(MICROS_PER_HOUR)
            .ok_or(Bad::FieldOverflow)?,
    )
    .and_then(|u| u.checked_add(min * MICROS_PER_MINUTE))
    .and_then(|u| u.checked_add(sec * MICROS_PER_SECOND))
    .ok_or(Bad::FieldOverflow)
}

/// `DecodeInterval` (IntervalStyle `postgres`): the fields read from the
/// right, so a number's unit is known when it is read.
fn decode(fields: &[(String, Kind)]) -> Result<Parts, Bad> {
    let mut p = Parts::default();
    let mut seen: u32 = 0;
    let mut before = false;
    // None: no unit yet (a number is seconds); Some(None): after `ago`.
    let mut unit: Option<Option<Unit>> = None;
    for (field, kind) in fields.iter().rev() {
        let mut bits = 0;
        let number = match kind {
            Kind::Time => {
                p.micros = clock(field)?;
                bits = TIME_BITS;
                unit = Some(Some(Unit::Day));
                false
            }
            // A signed clock; otherwise a signed number.
            Kind::Signed => match field[1..].contains(':') {
                true => match clock(&field[1..]) {
                    Ok(micros) => {
                        p.micros = if field.starts_with('-') {
                            -micros
                        } else {
                            micros
                        };
                        bits = TIME_BITS;
                        unit = Some(Some(Unit::Day));
                        false
                    }
                    Err(_) => true,
                },
                false => true,
            },
            Kind::Date | Kind::Number => true,
            Kind::Text | Kind::Special => {
                unit = Some(unit_word(field)?);
                false
            }
        };
        if number {
            let mut this = unit.unwrap_or(Some(Unit::Second));
            let (val, rest) = strtol(field)?;
            let mut val = val;
            let mut frac = 0.0;
            if let Some(months) = rest.strip_prefix('-') {
                // SQL's years-months.
                let (m, rest) = strtoint(months)?;
                if !(0..12).contains(&m) {
                    return Err(Bad::FieldOverflow);
                }
                if !rest.is_empty() {
                    return Err(Bad::Format);
                }
                let m = if field.starts_with('-') { -m } else { m };
                this = Some(Unit::Month);
                val = val
                    .checked_mul(12)
                    .and_then(|v| v.checked_add(m))
                    .ok_or(Bad::FieldOverflow)?;
            } else if rest.starts_with('.') {
                frac = fraction(rest)?;
                if field.starts_with('-') {
                    frac = -frac;
                }
            } else if !rest.is_empty() {
                return Err(Bad::Format);
            }
            let Some(u) = this else {
                // A number right before `ago`.
                return Err(Bad::Format);
            };
            bits = u.bit();
            p.add(u, val, frac)?;
            match u {
                Unit::Second if frac != 0.0 => bits = SECOND_BITS,
                Unit::Hour => this = Some(Unit::Day),
                _ => {}
            }
            unit = Some(this);
        } else if matches!(kind, Kind::Text | Kind::Special) && unit == Some(None) {
            before = true;
        }
        if bits & seen != 0 {
            return Err(Bad::Format);
        }
        seen |= bits;
    }
    if seen == 0 {
        return Err(Bad::Format);
    }
    if before {
        p.micros = p.micros.checked_neg().ok_or(Bad::FieldOverflow)?;
        p.days = p.days.checked_neg().ok_or(Bad::FieldOverflow)?;
        p.months = p.months.checked_neg().ok_or(Bad::FieldOverflow)?;
        p.years = p.years.checked_neg().ok_or(Bad::FieldOverflow)?;
    }
    Ok(p)
}

/// `ParseISO8601Number`: a number as `strtod` reads it (a sign, digits,
/// a fraction, an exponent), cut into its whole part (towards zero) and
/// its fraction; the rest of the text.
fn iso_number(s: &str) -> Result<(i64, f64, &str), Bad> {
    let b = s.as_bytes();
    if !b
        .first()
        .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'-' | b'.'))
    {
        return Err(Bad::Format);
    }
    let mut i = usize::from(b[0] == b'-');
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let mut n = digits(&mut i);
    if b.get(i) == Some(&b'.') {
        i += 1;
        n += digits(&mut i);
    }
    if n == 0 {
        // `-inf`, `-nan` read by strtod are out of range.
        let rest = s[usize::from(b[0] == b'-')..].to_ascii_lowercase();
        if b[0] == b'-' && (rest.starts_with("inf") || rest.starts_with("nan")) {
            return Err(Bad::FieldOverflow);
        }
        return Err(Bad::Format);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if digits(&mut j) > 0 {
            i = j;
        }
    }
    let val: f64 = s[..i].parse().map_err(|_| Bad::Format)?;
    if !val.is_finite() || val < i64::MIN as f64 || val > i64::MAX as f64 {
        return Err(Bad::FieldOverflow);
    }
    let whole = val.trunc() as i64;
    Ok((whole, val - whole as f64, &s[i..]))
}

/// `ISO8601IntegerWidth`: the digits a field starts with (after a `-`).
fn integer_width(s: &str) -> usize {
    s.strip_prefix('-')
        .unwrap_or(s)
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count()
}

/// `DecodeISO8601Interval`: `P1Y2M3W4DT5H6M7S` (any of the parts,
/// fractions and signs), or the alternative `P0001-02-03T04:05:06` and
/// `P00010203T040506`.
fn iso8601(text: &str) -> Result<Parts, Bad> {
    let mut p = Parts::default();
    if text.len() < 2 || !text.starts_with('P') {
        return Err(Bad::Format);
    }
    let mut s = &text[1..];
    let mut date = true;
    let mut field = false;
    while !s.is_empty() {
        if let Some(rest) = s.strip_prefix('T') {
            date = false;
            field = false;
            s = rest;
            continue;
        }
        let start = s;
        let (val, frac, rest) = iso_number(s)?;
        let unit = rest.as_bytes().first().copied().unwrap_or(0);
        s = rest.get(1..).unwrap_or("");
        if date {
            match unit {
                b'Y' => p.add(Unit::Year, val, frac)?,
                b'M' => p.add(Unit::Month, val, frac)?,
                b'W' => p.add(Unit::Week, val, frac)?,
                b'D' => p.add(Unit::Day, val, frac)?,
                b'T' | 0 if integer_width(start) == 8 && !field => {
                    p.years(val / 10000, 1)?;
                    p.months((val / 100) % 100)?;
                    p.days(val % 100, 1)?;
                    p.fract_micros(frac, MICROS_PER_DAY)?;
                    if unit == 0 {
                        return Ok(p);
                    }
                    date = false;
                    field = false;
                    continue;
                }
                b'T' | 0 | b'-' => {
                    if field {
                        return Err(Bad::Format);
                    }
                    p.add(Unit::Year, val, frac)?;
                    if unit == 0 {
                        return Ok(p);
                    }
                    if unit == b'T' {
                        date = false;
                        field = false;
                        continue;
                    }
                    let (val, frac, rest) = iso_number(s)?;
                    p.add(Unit::Month, val, frac)?;
                    s = rest;
                    match s.as_bytes().first() {
                        None => return Ok(p),
                        Some(b'T') => {
                            date = false;
                            field = false;
                            continue;
                        }
                        Some(b'-') => s = &s[1..],
                        Some(_) => return Err(Bad::Format),
                    }
                    let (val, frac, rest) = iso_number(s)?;
                    p.add(Unit::Day, val, frac)?;
                    s = rest;
                    match s.as_bytes().first() {
                        None => return Ok(p),
                        Some(b'T') => {
                            date = false;
                            field = false;
                            continue;
                        }
                        Some(_) => return Err(Bad::Format),
                    }
                }
                _ => return Err(Bad::Format),
            }
        } else {
            match unit {
                b'H' => p.add(Unit::Hour, val, frac)?,
                b'M' => p.add(Unit::Minute, val, frac)?,
                b'S' => p.add(Unit::Second, val, frac)?,
                0 if integer_width(start) == 6 && !field => {
                    p.micros(val / 10000, 0.0, MICROS_PER_HOUR)?;
                    p.micros((val / 100) % 100, 0.0, MICROS_PER_MINUTE)?;
                    p.micros(val % 100, 0.0, MICROS_PER_SECOND)?;
                    p.fract_micros(frac, 1)?;
                    return Ok(p);
                }
                0 | b':' => {
                    if field {
                        return Err(Bad::Format);
                    }
                    p.add(Unit::Hour, val, frac)?;
                    if unit == 0 {
                        return Ok(p);
                    }
                    let (val, frac, rest) = iso_number(s)?;
                    p.add(Unit::Minute, val, frac)?;
                    s = rest;
                    match s.as_bytes().first() {
                        None => return Ok(p),
                        Some(b':') => s = &s[1..],
                        Some(_) => return Err(Bad::Format),
                    }
                    let (val, frac, rest) = iso_number(s)?;
                    p.add(Unit::Second, val, frac)?;
                    return match rest.is_empty() {
                        true => Ok(p),
                        false => Err(Bad::Format),
                    };
                }
                _ => return Err(Bad::Format),
            }
        }
        field = true;
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &str) -> (i32, i32, i64) {
        let i = parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        (i.months, i.days, i.micros)
    }

    fn refused(s: &str) -> String {
        parse(s).expect_err(s).to_string()
    }

    #[test]
    fn reads_what_postgresql_15_reads() {
        // Each answer is PostgreSQL 15's.
        let h = MICROS_PER_HOUR;
        assert_eq!(read("1 day"), (0, 1, 0));
        assert_eq!(read("1 day day"), (0, 1, 0));
        assert_eq!(read("1 day ago"), (0, -1, 0));
        assert_eq!(read("1d2h"), (0, 1, 2 * h));
        assert_eq!(read("1 week 1 day"), (0, 8, 0));
        assert_eq!(read("01:00 1.5 days"), (0, 1, h));
        assert_eq!(read("1-"), (12, 0, 0));
        assert_eq!(read("-1-2"), (-14, 0, 0));
        assert_eq!(read("1:05.5"), (0, 0, 65_500_000));
        assert_eq!(read("0:0:0.9999999"), (0, 0, 1_000_000));
        assert_eq!(read("@ 1 minute ago"), (0, 0, -MICROS_PER_MINUTE));
        assert_eq!(read("1 days 2"), (0, 1, 2_000_000));
        assert_eq!(read("- 1 day"), (0, -1, 0));
        assert_eq!(read("1. day"), (0, 1, 0));
        assert_eq!(read(".5"), (0, 0, 500_000));
        assert_eq!(read("1::2"), (0, 0, h + 2_000_000));
        assert_eq!(
            read("1:7:01.1234567"),
            (0, 0, h + 7 * 60_000_000 + 1_123_457)
        );
        assert_eq!(read("-100.2415 decades"), (-12029, 0, 0));
        assert_eq!(read("2 25:59"), (0, 2, 25 * h + 59 * 60_000_000));
        assert_eq!(read("+60-11 100 24:7:01"), (731, 100, 24 * h + 421_000_000));
        assert_eq!(read("1000.69863 months"), (1000, 20, 23 * h + 48_960_000));
        assert_eq!(read("1.5 weeks"), (0, 10, 12 * h));
        assert_eq!(read("P1e3D"), (0, 1000, 0));
        assert_eq!(read("PT"), (0, 0, 0));
        assert_eq!(read("P1"), (12, 0, 0));
        assert_eq!(
            read("P0012-05-06T14:45:59"),
            (149, 6, 14 * h + 2_759_000_000)
        );
        assert_eq!(
            read("P-60WT30H-100M100S"),
            (0, -420, 30 * h - 6_000_000_000 + 100_000_000)
        );
        assert_eq!(read("P31W3.29D"), (0, 220, 25_056_000_000));
        assert_eq!(read("P00010203T040506"), (14, 3, 4 * h + 306_000_000));
        assert_eq!(read("1 mon 2147483647 days"), (1, i32::MAX, 0));
    }

    #[test]
    fn refuses_what_postgresql_15_refuses() {
        for bad in [
            "day",
            "1 ago",
            "1day2hours",
            "+.5 seconds",
            "P+1D",
            "P",
            "1 y 1 yr",
            "1 quarter",
            "1 h 1:00",
            "1 ago day",
            "",
            "1,5 days",
            "1e3 days",
            "infinity",
            "1:2:3:4",
            "1 d a y",
            "--1 day",
        ] {
            assert!(
                refused(bad).contains("invalid input syntax for type interval"),
                "{bad}"
            );
        }
        for overflow in ["2147483648 days", "10:60", "1:00:61", "3000000000 years"] {
            assert!(
                refused(overflow).contains("interval field value out of range"),
                "{overflow}"
            );
        }
        // 178000000 years is PostgreSQL's; 179000000 are too many months.
        assert_eq!(read("178000000 years").0, 2_136_000_000);
        assert!(refused("179000000 years").ends_with("interval out of range"));
    }
}
