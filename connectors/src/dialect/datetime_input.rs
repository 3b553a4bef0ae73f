//! A date's or a timestamp's text read as PostgreSQL 15's `date_in`,
//! `timestamp_in` and `timestamptz_in` read it (`ParseDateTime`, then
//! `DecodeDateTime` with `DecodeDate`, `DecodeNumber`,
//! `DecodeNumberField`, `DecodeTime`, `DecodeTimezone` and
//! `ValidateDate`), under the session's `DateStyle` order ([`DateOrder`]:
//! `MDY`, PostgreSQL's default, `DMY` or `YMD`).
//!
//! Arrow's parser, which DataFusion casts text with, reads only ISO's
//! `YYYY-MM-DD[ hh:mm:ss[.f]][offset]` with two-digit months and days. It
//! refused what PostgreSQL reads every day: spaces around the text,
//! `2024-1-5`, `1/31/2000`, `Jan 5 2024`, `5-Jan-2024`, `20240105`,
//! `Wed Jan 03 10:00:00 2024`, `10:00 PM`, `24:00:00`, a zone name or
//! abbreviation after the time (`America/Lima`, `EST`). Found by
//! `tests/tools/cast_fuzz.py`. `time_text.rs` turns what is read here
//! into the ISO text Arrow's cast reads the same way.
//!
//! The steps are PostgreSQL's, in its order, with its errors: `22007`
//! "invalid input syntax for type ...", `22008` "date/time field value
//! out of range", `22009` "time zone displacement out of range", `22023`
//! "time zone ... not recognized". The zone abbreviations are those of
//! PostgreSQL's `Default` set with a fixed offset; a zone name is looked
//! up in the IANA database without regard to case, as `pg_tzset` does.
//! Labelled fields (`y2024m01d05h10mm30`) are read as 15 reads them.

use super::interval_input::{
    Bad, Kind, clock_fields, fraction, fractional_second, strtoint, tokens,
};
use super::pg_to_char::date2j;

/// Why text is not a date or time (PostgreSQL's `DTERR_*`), or what
/// Quipu does not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fail {
    Format,
    FieldOverflow,
    /// A month or day out of range (PostgreSQL hints at `DateStyle`).
    MonthDayOverflow,
    ZoneDisplacement,
    Zone(String),
}

impl From<Bad> for Fail {
    fn from(b: Bad) -> Self {
        match b {
            Bad::Format => Fail::Format,
            Bad::FieldOverflow => Fail::FieldOverflow,
        }
    }
}

/// The order of a date's numeric fields where the text does not settle
/// it (`05/01/2024`), PostgreSQL's `DateOrder`: the second part of
/// `DateStyle` (`SET DateStyle = 'ISO, DMY'`), `quipu.date_order` in
/// Quipu's settings. Four-digit years first, ISO dates and month names
/// read the same under every order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum DateOrder {
    /// Month, day, year (`US`, `NonEuropean`): PostgreSQL's default.
    #[default]
    Mdy,
    /// Day, month, year (`European`, `Euro`).
    Dmy,
    /// Year, month, day.
    Ymd,
}

impl DateOrder {
    /// The order's name as `DateStyle` shows it (`MDY`).
    pub fn name(self) -> &'static str {
        match self {
            DateOrder::Mdy => "MDY",
            DateOrder::Dmy => "DMY",
            DateOrder::Ymd => "YMD",
        }
    }

    /// An order named as `DateStyle` names it, in any case: `MDY`, `US`,
    /// `NonEuro`, `NonEuropean`; `DMY`, `Euro`, `European`; `YMD`.
    pub fn named(name: &str) -> Option<DateOrder> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "mdy" | "us" | "noneuro" | "noneuropean" => DateOrder::Mdy,
            "dmy" | "euro" | "european" => DateOrder::Dmy,
            "ymd" => DateOrder::Ymd,
            _ => return None,
        })
    }
}

/// Why a `DateStyle` value is refused, as PostgreSQL's
/// `check_datestyle` says it (its `DETAIL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StyleError {
    /// `iso dmy`, `iso,`: not a comma list of words.
    ListSyntax,
    Unrecognized(String),
    /// `dmy, mdy`, `iso, sql`.
    Conflicting,
    /// An output style other than ISO (`SQL`, `Postgres`, `German`),
    /// which Quipu does not write.
    Style(String),
}

impl std::fmt::Display for StyleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StyleError::ListSyntax => f.write_str("List syntax is invalid."),
            StyleError::Unrecognized(w) => write!(f, "Unrecognized key word: \"{w}\"."),
            StyleError::Conflicting => f.write_str("Conflicting \"datestyle\" specifications."),
            StyleError::Style(s) => write!(f, "Quipu writes dates in ISO form, not {s}."),
        }
    }
}

/// The order a `DateStyle` value (`'ISO, DMY'`, `euro`, `YMD`,
/// `DEFAULT`) sets, read as PostgreSQL's `check_datestyle` reads it: a
/// comma list of an output style and an order, each optional; the order
/// stays `now` where the list names none (`German` alone is day first,
/// `DEFAULT` is `ISO, MDY` for what the list does not name). The output
/// style must be ISO, the only one Quipu writes.
pub fn date_style(value: &str, now: DateOrder) -> Result<DateOrder, StyleError> {
    let mut order = now;
    let mut style = "iso".to_string();
    let (mut have_style, mut have_order, mut conflict) = (false, false, false);
    // `SplitIdentifierString`: words between commas, blanks around them.
    let words: Vec<&str> = value.split(',').map(str::trim).collect();
    if !value.trim().is_empty()
        && words
            .iter()
            .any(|w| w.is_empty() || w.contains(char::is_whitespace))
    {
        return Err(StyleError::ListSyntax);
    }
    for word in words.into_iter().filter(|w| !w.is_empty()) {
        let lower = word.trim_matches('"').to_ascii_lowercase();
        match lower.as_str() {
            "iso" | "sql" | "postgres" | "german" => {
                conflict |= have_style && style != lower;
                if lower == "german" && !have_order {
                    order = DateOrder::Dmy;
                }
                style = lower;
                have_style = true;
            }
            "default" => {
                if !have_style {
                    style = "iso".into();
                }
                if !have_order {
                    order = DateOrder::Mdy;
                }
            }
            other => {
                let o = DateOrder::named(other)
                    .ok_or_else(|| StyleError::Unrecognized(word.to_string()))?;
                conflict |= have_order && order != o;
                order = o;
                have_order = true;
            }
        }
    }
    if conflict {
        return Err(StyleError::Conflicting);
    }
    if style != "iso" {
        return Err(StyleError::Style(style));
    }
    Ok(order)
}

/// The zone a time was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// None written: the session's.
    Session,
    /// Seconds east of UTC.
    East(i64),
    /// A zone of the IANA database, resolved on the date's wall clock.
    Named(chrono_tz::Tz),
}

/// A day (proleptic Gregorian year, month, day) and a time of day in
/// microseconds (`24:00:00` is a whole day), in `zone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub micros: i64,
    pub zone: Zone,
}

/// What the text stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    At(Stamp),
    Epoch,
    Infinity,
    NegativeInfinity,
    /// `now`, `today`, `tomorrow`, `yesterday` (with other fields or
    /// not): a time of the statement.
    Relative(&'static str),
}

// PostgreSQL's field kinds, as bits of the masks of fields seen.
const RESERV: u32 = 0;
const MONTH: u32 = 1;
const YEAR: u32 = 2;
const DAY: u32 = 3;
const TZ: u32 = 5;
const DTZ: u32 = 6;
const AMPM: u32 = 9;
const HOUR: u32 = 10;
const MINUTE: u32 = 11;
const SECOND: u32 = 12;
const MILLISECOND: u32 = 13;
const MICROSECOND: u32 = 14;
const DOY: u32 = 15;
const DOW: u32 = 16;
const ADBC: u32 = 18;
const DTZMOD: u32 = 28;

const fn m(kind: u32) -> u32 {
    1 << kind
}

const DATE_M: u32 = m(YEAR) | m(MONTH) | m(DAY);
const TIME_M: u32 = m(HOUR) | m(MINUTE) | m(SECOND) | m(MILLISECOND) | m(MICROSECOND);

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// A word of `datetktbl` (`DecodeSpecial`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    Month(i64),
    Weekday,
    Am,
    Pm,
    Ad,
    Bc,
    Ignore,
    /// `dst`: an hour more east.
    Dst,
    /// `t` before an ISO time.
    IsoTime,
    /// A label for the number after it: `j` (a Julian day), `y`, `m`,
    /// `d`, `h`, `mm`, `s`.
    Label(Label),
    /// A unit label no date takes (`dow`, `doy`, `isodow`, `isoyear`).
    Unit,
    Epoch,
    Infinity,
    NegativeInfinity,
    Zulu,
    Relative(&'static str),
}

fn special(word: &str) -> Option<Word> {
    use Word::*;
    let month = |w: &str| {
        Some(match w {
            "jan" | "january" => 1,
            "feb" | "february" => 2,
            "mar" | "march" => 3,
            "apr" | "april" => 4,
            "may" => 5,
            "jun" | "june" => 6,
            "jul" | "july" => 7,
            "aug" | "august" => 8,
            "sep" | "sept" | "september" => 9,
            "oct" | "october" => 10,
            "nov" | "november" => 11,
            "dec" | "december" => 12,
            _ => return None,
        })
    };
    if let Some(m) = month(word) {
        return Some(Month(m));
    }
    Some(match word {
        "sun" | "sunday" | "mon" | "monday" | "tue" | "tues" | "tuesday" | "wed" | "weds"
        | "wednesday" | "thu" | "thur" | "thurs" | "thursday" | "fri" | "friday" | "sat"
        | "saturday" => Weekday,
        "am" => Am,
        "pm" => Pm,
        "ad" => Ad,
        "bc" => Bc,
        "at" | "on" => Ignore,
        "dst" => Dst,
        "t" => IsoTime,
        "j" | "jd" | "julian" => Label(self::Label::Julian),
        "y" => Label(self::Label::Year),
        "m" => Label(self::Label::Month),
        "d" => Label(self::Label::Day),
        "h" => Label(self::Label::Hour),
        "mm" => Label(self::Label::Minute),
        "s" => Label(self::Label::Second),
        "dow" | "doy" | "isodow" | "isoyear" => Unit,
        "epoch" => Epoch,
        "infinity" => Infinity,
        "-infinity" => NegativeInfinity,
        "allballs" => Zulu,
        "now" => Relative("now"),
        "today" => Relative("today"),
        "tomorrow" => Relative("tomorrow"),
        "yesterday" => Relative("yesterday"),
        _ => return None,
    })
}

/// The fixed-offset abbreviations of PostgreSQL's `Default` set
/// (`DecodeTimezoneAbbrev`, which is asked before `DecodeSpecial`): the
/// offset in seconds east, and whether it is daylight time.
fn abbreviation(word: &str) -> Option<(i64, bool)> {
    Some(match word {
        "gmt" | "ut" | "utc" | "z" | "zulu" | "wet" => (0, false),
        "west" | "bst" => (3600, true),
        "cet" | "met" => (3600, false),
        "cest" | "mest" => (7200, true),
        "eet" | "ist" => (7200, false),
        "msk" => (10800, false),
        "eest" => (10800, true),
        "est" => (-18000, false),
        "edt" => (-14400, true),
        "cst" => (-21600, false),
        "cdt" => (-18000, true),
        "mst" => (-25200, false),
        "mdt" => (-21600, true),
        "pst" => (-28800, false),
        "pdt" => (-25200, true),
        "akst" => (-32400, false),
        "akdt" => (-28800, true),
        "hst" => (-36000, false),
        "jst" | "kst" => (32400, false),
        "awst" => (28800, false),
        "acst" => (34200, false),
        "acdt" => (37800, true),
        "aest" => (36000, false),
        "aedt" => (39600, true),
        "nzst" => (43200, false),
        "nzdt" => (46800, true),
        _ => return None,
    })
}

/// A zone named as `pg_tzset` reads the name: a zone of the IANA
/// database without regard to case (chrono-tz's own such lookup needs a
/// feature that rebuilds Arrow), else a POSIX zone without daylight time,
/// letters and an offset in hours *west* (`gmt+5`, `est5`, `abc-3:30`).
pub fn zone_named(name: &str) -> Option<Zone> {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static ZONES: OnceLock<HashMap<String, chrono_tz::Tz>> = OnceLock::new();
    let zones = ZONES.get_or_init(|| {
        chrono_tz::TZ_VARIANTS
            .iter()
            .map(|z| (z.name().to_ascii_lowercase(), *z))
            .collect()
    });
    if let Some(tz) = zones.get(&name.to_ascii_lowercase()) {
        return Some(Zone::Named(*tz));
    }
    let offset = name.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    if offset.len() == name.len() {
        return None;
    }
    let (west, clock) = match offset.as_bytes().first() {
        Some(b'-') => (false, &offset[1..]),
        Some(b'+') => (true, &offset[1..]),
        _ => (true, offset),
    };
    let mut parts = clock.split(':');
    let mut seconds = 0;
    // tzcode's `getsecs`: hours to 167, minutes to 59, seconds to 60.
    for (scale, most) in [(3600, 167), (60, 59), (1, 60)] {
        let Some(part) = parts.next() else { break };
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v = part.parse::<i64>().ok().filter(|v| *v <= most)?;
        seconds += scale * v;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Zone::East(if west { -seconds } else { seconds }))
}

/// `j2date`, in PostgreSQL's unsigned 32-bit arithmetic.
fn j2date(jd: i64) -> (i64, i64, i64) {
    let mut julian = (jd as i32 as u32).wrapping_add(32044);
    let mut quad = julian / 146097;
    let extra = julian
        .wrapping_sub(quad.wrapping_mul(146097))
        .wrapping_mul(4)
        .wrapping_add(3);
    julian = julian.wrapping_add(60 + quad.wrapping_mul(3) + extra / 146097);
    quad = julian / 1461;
    julian = julian.wrapping_sub(quad.wrapping_mul(1461));
    let mut y = (julian.wrapping_mul(4) / 1461) as i32;
    julian = if y != 0 {
        (julian + 305) % 365
    } else {
        (julian + 306) % 366
    } + 123;
    y = y.wrapping_add(quad.wrapping_mul(4) as i32);
    let quad = julian.wrapping_mul(2141) / 65536;
    let day = julian.wrapping_sub(7834u32.wrapping_mul(quad) / 256);
    let month = (quad + 10) % 12 + 1;
    (i64::from(y) - 4800, i64::from(month), i64::from(day))
}

fn leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// The fields read so far (`struct pg_tm` and `fsec`).
#[derive(Debug, Default)]
struct Tm {
    year: i64,
    mon: i64,
    mday: i64,
    yday: i64,
    hour: i64,
    min: i64,
    sec: i64,
    fsec: i64,
}

/// C's `atoi` of digits (saturating where C's would overflow).
fn atoi(s: &str) -> i64 {
    s.bytes().take_while(u8::is_ascii_digit).fold(0i64, |v, d| {
        v.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    })
}

/// `DecodeTimezone`: `+hh[:mm[:ss]]` or `+hhmm`, in seconds east.
fn decode_timezone(s: &str) -> Result<i64, Fail> {
    let negative = match s.as_bytes().first() {
        Some(b'+') => false,
        Some(b'-') => true,
        _ => return Err(Fail::Format),
    };
    let overflow = |_| Fail::ZoneDisplacement;
    let (mut hr, rest) = strtoint(&s[1..]).map_err(overflow)?;
    let mut sec = 0;
    let (min, rest) = if let Some(r) = rest.strip_prefix(':') {
        let (min, r) = strtoint(r).map_err(overflow)?;
        let r = match r.strip_prefix(':') {
            Some(r) => {
                let (s, r) = strtoint(r).map_err(overflow)?;
                sec = s;
                r
            }
            None => r,
        };
        (min, r)
    } else if rest.is_empty() && s.len() > 3 {
        let min = hr % 100;
        hr /= 100;
        (min, rest)
    } else {
        (0, rest)
    };
    if !(0..=15).contains(&hr) || !(0..60).contains(&min) || !(0..60).contains(&sec) {
        return Err(Fail::ZoneDisplacement);
    }
    if !rest.is_empty() {
        return Err(Fail::Format);
    }
    let east = (hr * 60 + min) * 60 + sec;
    Ok(if negative { -east } else { east })
}

/// `DecodeTime` (a timestamp's): a clock (`DecodeTimeCommon`) whose
/// hours fit 32 bits.
fn decode_time(s: &str, tm: &mut Tm) -> Result<u32, Fail> {
    let (hour, min, sec, fsec) = clock_fields(s)?;
    if hour > i64::from(i32::MAX) {
        return Err(Fail::FieldOverflow);
    }
    (tm.hour, tm.min, tm.sec, tm.fsec) = (hour, min, sec, fsec);
    Ok(TIME_M)
}

/// `time_overflows`: a time past `24:00:00`, or a field out of range.
fn time_overflows(tm: &Tm) -> bool {
    if !(0..=24).contains(&tm.hour)
        || !(0..60).contains(&tm.min)
        || !(0..=60).contains(&tm.sec)
        || !(0..=MICROS_PER_SECOND).contains(&tm.fsec)
    {
        return true;
    }
    ((tm.hour * 60 + tm.min) * 60 + tm.sec) * MICROS_PER_SECOND + tm.fsec > MICROS_PER_DAY
}

/// `DecodeNumberField`: a run of digits as a date (`yyyymmdd`,
/// `yymmdd`) or a time (`hhmmss`, `hhmm`), with a fraction of a second.
fn number_field(s: &str, fmask: u32, tm: &mut Tm, is2digits: &mut bool) -> Result<u32, Fail> {
    if !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(Fail::Format);
    }
    let mut s = s;
    if let Some(dot) = s.find('.') {
        tm.fsec = fractional_second(&s[dot..])?;
        s = &s[..dot];
    } else if fmask & DATE_M != DATE_M && s.len() >= 6 {
        let len = s.len();
        tm.mday = atoi(&s[len - 2..]);
        tm.mon = atoi(&s[len - 4..len - 2]);
        tm.year = atoi(&s[..len - 4]);
        if len - 4 == 2 {
            *is2digits = true;
        }
        return Ok(DATE_M);
    }
    if fmask & TIME_M != TIME_M {
        match s.len() {
            6 => {
                (tm.hour, tm.min, tm.sec) = (atoi(&s[..2]), atoi(&s[2..4]), atoi(&s[4..]));
                return Ok(TIME_M);
            }
            4 => {
                (tm.hour, tm.min, tm.sec) = (atoi(&s[..2]), atoi(&s[2..]), 0);
                return Ok(TIME_M);
            }
            _ => {}
        }
    }
    Err(Fail::Format)
}

/// `DecodeNumber`: one number of a date, placed by what is known so far
/// and by `order`; the mask of what it is.
fn decode_number(
    s: &str,
    text_month: bool,
    order: DateOrder,
    fmask: u32,
    tm: &mut Tm,
    is2digits: &mut bool,
) -> Result<u32, Fail> {
    let flen = s.len();
    let (val, rest) = strtoint(s)?;
    if rest.len() == s.len() {
        return Err(Fail::Format);
    }
    if rest.starts_with('.') {
        if s.len() - rest.len() > 2 {
            return number_field(s, fmask | DATE_M, tm, is2digits);
        }
        tm.fsec = fractional_second(rest)?;
    } else if !rest.is_empty() {
        return Err(Fail::Format);
    }
    if flen == 3 && fmask & DATE_M == m(YEAR) && (1..=366).contains(&val) {
        tm.yday = val;
        return Ok(m(DOY) | m(MONTH) | m(DAY));
    }
    let tmask = match fmask & DATE_M {
        0 if flen >= 3 || order == DateOrder::Ymd => {
            tm.year = val;
            m(YEAR)
        }
        0 if order == DateOrder::Dmy => {
            tm.mday = val;
            m(DAY)
        }
        0 => {
            tm.mon = val;
            m(MONTH)
        }
        f if f == m(YEAR) => {
            tm.mon = val;
            m(MONTH)
        }
        f if f == m(MONTH) => {
            // The first number beside a month's name: a year where it has
            // three digits or more (or the order puts the year first),
            // else the day (`Jan-05-2024`, `05-Jan-2024`).
            if text_month && (flen >= 3 || order == DateOrder::Ymd) {
                tm.year = val;
                m(YEAR)
            } else {
                tm.mday = val;
                m(DAY)
            }
        }
        f if f == m(YEAR) | m(MONTH) => {
            if text_month && flen >= 3 && *is2digits {
                tm.mday = tm.year;
                tm.year = val;
                *is2digits = false;
            } else {
                tm.mday = val;
            }
            m(DAY)
        }
        f if f == m(DAY) => {
            tm.mon = val;
            m(MONTH)
        }
        f if f == m(MONTH) | m(DAY) => {
            tm.year = val;
            m(YEAR)
        }
        DATE_M => return number_field(s, fmask, tm, is2digits),
        _ => return Err(Fail::Format),
    };
    if tmask == m(YEAR) {
        *is2digits = flen <= 2;
    }
    Ok(tmask)
}

/// `DecodeDate`: a date written with separators (`2024-01-05`,
/// `1/31/2000`, `5-jan-2024`).
fn decode_date(
    s: &str,
    order: DateOrder,
    fmask: u32,
    is2digits: &mut bool,
    tm: &mut Tm,
) -> Result<u32, Fail> {
    let b = s.as_bytes();
    let mut fields: Vec<&str> = vec![];
    let mut i = 0;
    while i < b.len() && fields.len() < 25 {
        while i < b.len() && !b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if i == b.len() {
            return Err(Fail::Format);
        }
        let start = i;
        if b[i].is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        } else {
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
        }
        fields.push(&s[start..i]);
        // The character after a field ends it, whatever it is.
        if i < b.len() {
            i += 1;
        }
    }
    let mut fmask = fmask;
    let mut tmask = 0;
    let mut text_month = false;
    let mut numbers = vec![];
    for f in fields {
        if !f.as_bytes()[0].is_ascii_alphabetic() {
            numbers.push(f);
            continue;
        }
        let dmask = match special(f) {
            Some(Word::Ignore) => continue,
            Some(Word::Month(v)) => {
                tm.mon = v;
                text_month = true;
                m(MONTH)
            }
            _ => return Err(Fail::Format),
        };
        if fmask & dmask != 0 {
            return Err(Fail::Format);
        }
        fmask |= dmask;
        tmask |= dmask;
    }
    for f in numbers {
        let dmask = decode_number(f, text_month, order, fmask, tm, is2digits)?;
        if fmask & dmask != 0 {
            return Err(Fail::Format);
        }
        fmask |= dmask;
        tmask |= dmask;
    }
    if fmask & !(m(DOY) | m(TZ)) != DATE_M {
        return Err(Fail::Format);
    }
    Ok(tmask)
}

/// `ValidateDate`: the year's era and two digits, the day of the year,
/// the month's and the day's ranges.
fn validate_date(
    fmask: u32,
    julian: bool,
    is2digits: bool,
    bc: bool,
    tm: &mut Tm,
) -> Result<(), Fail> {
    if fmask & m(YEAR) != 0 {
        if julian {
        } else if bc {
            if tm.year <= 0 {
                return Err(Fail::FieldOverflow);
            }
            tm.year = -(tm.year - 1);
        } else if is2digits {
            if tm.year < 0 {
                return Err(Fail::FieldOverflow);
            }
            if tm.year < 70 {
                tm.year += 2000;
            } else if tm.year < 100 {
                tm.year += 1900;
            }
        } else if tm.year <= 0 {
            return Err(Fail::FieldOverflow);
        }
    }
    if fmask & m(DOY) != 0 {
        (tm.year, tm.mon, tm.mday) = j2date(date2j(tm.year, 1, 1) + tm.yday - 1);
    }
    if fmask & m(MONTH) != 0 && !(1..=12).contains(&tm.mon) {
        return Err(Fail::MonthDayOverflow);
    }
    if fmask & m(DAY) != 0 && !(1..=31).contains(&tm.mday) {
        return Err(Fail::MonthDayOverflow);
    }
    if fmask & DATE_M == DATE_M {
        const DAYS: [i64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let last = DAYS[(tm.mon - 1) as usize] + i64::from(tm.mon == 2 && leap(tm.year));
        if tm.mday > last {
            return Err(Fail::FieldOverflow);
        }
    }
    Ok(())
}

/// `text` read as PostgreSQL reads a date or a timestamp, its numeric
/// fields in `order` where the text does not settle it.
pub fn read(text: &str, order: DateOrder) -> Result<Read, Fail> {
    // `timestamp_in`'s buffer: MAXDATELEN + MAXDATEFIELDS bytes.
    let fields = tokens(text, 128 + 25)?;
    decode(&fields, order)
}

/// A label waiting for its field (`ptype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Julian,
    Time,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

/// `DecodeDateTime`.
fn decode(fields: &[(String, Kind)], order: DateOrder) -> Result<Read, Fail> {
    let mut fmask: u32 = 0;
    let mut label: Option<Label> = None;
    let mut tm = Tm::default();
    // None: 24-hour clock; Some(true): PM.
    let mut pm: Option<bool> = None;
    let mut text_month = false;
    let mut julian = false;
    let mut is2digits = false;
    let mut bc = false;
    // Seconds east, where a zone was written as an offset.
    let mut east: i64 = 0;
    let mut named: Option<Zone> = None;
    let mut special_value: Option<Read> = None;
    let mut relative: Option<&'static str> = None;
    for (f, kind) in fields {
        let tmask = match kind {
            Kind::Date if label == Some(Label::Julian) => {
                let (jday, rest) = strtoint(f)?;
                if jday < 0 {
                    return Err(Fail::FieldOverflow);
                }
                (tm.year, tm.mon, tm.mday) = j2date(jday);
                julian = true;
                east = decode_timezone(rest)?;
                label = None;
                DATE_M | TIME_M | m(TZ)
            }
            Kind::Date if label.is_some() || fmask & (m(MONTH) | m(DAY)) == m(MONTH) | m(DAY) => {
                if f.as_bytes()[0].is_ascii_digit() || label.is_some() {
                    if label.take().is_some_and(|l| l != Label::Time) {
                        return Err(Fail::Format);
                    }
                    if fmask & TIME_M == TIME_M {
                        return Err(Fail::Format);
                    }
                    let Some(cut) = f.find('-') else {
                        return Err(Fail::Format);
                    };
                    east = decode_timezone(&f[cut..])?;
                    number_field(&f[..cut], fmask, &mut tm, &mut is2digits)? | m(TZ)
                } else {
                    named = Some(zone_named(f).ok_or_else(|| Fail::Zone(f.clone()))?);
                    m(TZ)
                }
            }
            Kind::Date => decode_date(f, order, fmask, &mut is2digits, &mut tm)?,
            Kind::Time => {
                if label.take().is_some_and(|l| l != Label::Time) {
                    return Err(Fail::Format);
                }
                let tmask = decode_time(f, &mut tm)?;
                if time_overflows(&tm) {
                    return Err(Fail::FieldOverflow);
                }
                tmask
            }
            Kind::Signed => {
                east = decode_timezone(f)?;
                m(TZ)
            }
            Kind::Number if label.is_some() => {
                let (value, rest) = strtoint(f)?;
                let fractional = matches!(label, Some(Label::Julian | Label::Time | Label::Second));
                if !(rest.is_empty() || fractional && rest.starts_with('.')) {
                    return Err(Fail::Format);
                }
                let tmask = match label {
                    Some(Label::Year) => {
                        tm.year = value;
                        m(YEAR)
                    }
                    // `m` after a month and an hour is minutes.
                    Some(Label::Month) if fmask & m(MONTH) != 0 && fmask & m(HOUR) != 0 => {
                        tm.min = value;
                        m(MINUTE)
                    }
                    Some(Label::Month) => {
                        tm.mon = value;
                        m(MONTH)
                    }
                    Some(Label::Day) => {
                        tm.mday = value;
                        m(DAY)
                    }
                    Some(Label::Hour) => {
                        tm.hour = value;
                        m(HOUR)
                    }
                    Some(Label::Minute) => {
                        tm.min = value;
                        m(MINUTE)
                    }
                    Some(Label::Second) if rest.starts_with('.') => {
                        tm.sec = value;
                        tm.fsec = fractional_second(rest)?;
                        m(SECOND) | m(MILLISECOND) | m(MICROSECOND)
                    }
                    Some(Label::Second) => {
                        tm.sec = value;
                        m(SECOND)
                    }
                    Some(Label::Julian) => {
                        if value < 0 {
                            return Err(Fail::FieldOverflow);
                        }
                        (tm.year, tm.mon, tm.mday) = j2date(value);
                        julian = true;
                        if rest.starts_with('.') {
                            let time = (fraction(rest)? * MICROS_PER_DAY as f64) as i64;
                            tm.hour = time / 3_600_000_000;
                            let time = time - tm.hour * 3_600_000_000;
                            tm.min = time / 60_000_000;
                            let time = time - tm.min * 60_000_000;
                            tm.sec = time / MICROS_PER_SECOND;
                            tm.fsec = time - tm.sec * MICROS_PER_SECOND;
                            DATE_M | TIME_M
                        } else {
                            DATE_M
                        }
                    }
                    _ => {
                        let tmask = number_field(f, fmask | DATE_M, &mut tm, &mut is2digits)?;
                        if tmask != TIME_M {
                            return Err(Fail::Format);
                        }
                        tmask
                    }
                };
                label = None;
                tmask
            }
            Kind::Number => {
                let dot = f.find('.');
                if dot.is_some() && fmask & DATE_M == 0 {
                    decode_date(f, order, fmask, &mut is2digits, &mut tm)?
                } else if dot.is_some_and(|d| d > 2)
                    || (f.len() >= 6 && (fmask & DATE_M == 0 || fmask & TIME_M == 0))
                {
                    number_field(f, fmask, &mut tm, &mut is2digits)?
                } else {
                    decode_number(f, text_month, order, fmask, &mut tm, &mut is2digits)?
                }
            }
            Kind::Text | Kind::Special => {
                if let Some((offset, dst)) = abbreviation(f) {
                    east = offset;
                    if dst { m(DTZ) | m(TZ) } else { m(TZ) }
                } else {
                    match special(f) {
                        Some(Word::Ignore) => continue,
                        Some(Word::Relative(word)) => {
                            // A date for the checks below; the caller
                            // gives the statement's.
                            relative = Some(word);
                            (tm.year, tm.mon, tm.mday) = (2000, 1, 1);
                            match word {
                                "now" => DATE_M | TIME_M | m(TZ),
                                _ => DATE_M,
                            }
                        }
                        Some(Word::Zulu) => {
                            (tm.hour, tm.min, tm.sec) = (0, 0, 0);
                            east = 0;
                            TIME_M | m(TZ)
                        }
                        // PostgreSQL 15 lets other fields stand beside these
                        // (`'infinity 10:00'`); 16 and later refuse them.
                        Some(w @ (Word::Epoch | Word::Infinity | Word::NegativeInfinity)) => {
                            special_value = Some(match w {
                                Word::Epoch => Read::Epoch,
                                Word::Infinity => Read::Infinity,
                                _ => Read::NegativeInfinity,
                            });
                            m(RESERV)
                        }
                        Some(Word::Month(v)) => {
                            let mut tmask = m(MONTH);
                            if fmask & m(MONTH) != 0
                                && !text_month
                                && fmask & m(DAY) == 0
                                && (1..=31).contains(&tm.mon)
                            {
                                tm.mday = tm.mon;
                                tmask = m(DAY);
                            }
                            text_month = true;
                            tm.mon = v;
                            tmask
                        }
                        Some(Word::Dst) => {
                            east += 3600;
                            m(DTZMOD) | m(DTZ)
                        }
                        Some(Word::Am | Word::Pm) => {
                            pm = Some(special(f) == Some(Word::Pm));
                            m(AMPM)
                        }
                        Some(w @ (Word::Ad | Word::Bc)) => {
                            bc = w == Word::Bc;
                            m(ADBC)
                        }
                        Some(Word::Weekday) => m(DOW),
                        Some(Word::IsoTime) => {
                            if fmask & DATE_M != DATE_M || label.is_some() {
                                return Err(Fail::Format);
                            }
                            label = Some(Label::Time);
                            0
                        }
                        Some(Word::Label(l)) => {
                            if label.is_some() {
                                return Err(Fail::Format);
                            }
                            label = Some(l);
                            0
                        }
                        Some(Word::Unit) => return Err(Fail::Format),
                        None => {
                            named = Some(zone_named(f).ok_or(Fail::Format)?);
                            m(TZ)
                        }
                    }
                }
            }
        };
        if tmask & fmask != 0 {
            return Err(Fail::Format);
        }
        fmask |= tmask;
    }
    if label.is_some() {
        return Err(Fail::Format);
    }
    if let Some(special) = special_value {
        return Ok(special);
    }
    validate_date(fmask, julian, is2digits, bc, &mut tm)?;
    if pm.is_some() && tm.hour > 12 {
        return Err(Fail::FieldOverflow);
    }
    match pm {
        Some(false) if tm.hour == 12 => tm.hour = 0,
        Some(true) if tm.hour != 12 => tm.hour += 12,
        _ => {}
    }
    if fmask & DATE_M != DATE_M {
        // A time without a date (PostgreSQL's 1) is no timestamp either.
        return Err(Fail::Format);
    }
    if let Some(word) = relative {
        return Ok(Read::Relative(word));
    }
    let zone = if let Some(zone) = named {
        if fmask & m(DTZMOD) != 0 {
            return Err(Fail::Format);
        }
        zone
    } else if fmask & m(TZ) == 0 {
        if fmask & m(DTZMOD) != 0 {
            return Err(Fail::Format);
        }
        Zone::Session
    } else {
        Zone::East(east)
    };
    let micros = ((tm.hour * 60 + tm.min) * 60 + tm.sec)
        .saturating_mul(MICROS_PER_SECOND)
        .saturating_add(tm.fsec);
    Ok(Read::At(Stamp {
        year: tm.year,
        month: tm.mon,
        day: tm.mday,
        micros,
        zone,
    }))
}

#[cfg(test)]
mod tests {
    use super::{DateOrder, Fail, Read, Zone};

    fn read(text: &str) -> Result<Read, Fail> {
        super::read(text, DateOrder::Mdy)
    }

    fn at(text: &str) -> (i64, i64, i64, i64, Zone) {
        match read(text) {
            Ok(Read::At(t)) => (t.year, t.month, t.day, t.micros, t.zone),
            other => panic!("{text}: {other:?}"),
        }
    }

    const H: i64 = 3_600_000_000;

    /// Each checked against PostgreSQL 15 (`SELECT '...'::timestamptz`
    /// under UTC, `DateStyle` ISO, MDY).
    #[test]
    fn forms_postgresql_reads() {
        use Zone::*;
        for (text, want) in [
            ("2024-01-05", (2024, 1, 5, 0, Session)),
            ("  2024-01-05  ", (2024, 1, 5, 0, Session)),
            ("2024-1-5", (2024, 1, 5, 0, Session)),
            ("1/31/2000", (2000, 1, 31, 0, Session)),
            ("Jan 5 2024", (2024, 1, 5, 0, Session)),
            ("5-Jan-2024", (2024, 1, 5, 0, Session)),
            ("January 5, 2024", (2024, 1, 5, 0, Session)),
            ("20240105", (2024, 1, 5, 0, Session)),
            ("240105", (2024, 1, 5, 0, Session)),
            ("2024.005", (2024, 1, 5, 0, Session)),
            ("Wed Jan 03 10:00:00 2024", (2024, 1, 3, 10 * H, Session)),
            ("2024-01-05 24:00:00", (2024, 1, 5, 24 * H, Session)),
            ("2024-01-05 10:00 PM", (2024, 1, 5, 22 * H, Session)),
            ("2024-01-05 12:30 am", (2024, 1, 5, H / 2, Session)),
            ("2024-01-05T10:00:00Z", (2024, 1, 5, 10 * H, East(0))),
            (
                "2024-01-05 10:00:00+05:30",
                (2024, 1, 5, 10 * H, East(19800)),
            ),
            (
                "2024-01-05 10:00:00 -0800",
                (2024, 1, 5, 10 * H, East(-28800)),
            ),
            ("2024-01-05 10:00 EST", (2024, 1, 5, 10 * H, East(-18000))),
            ("20240105T103000", (2024, 1, 5, 10 * H + H / 2, Session)),
            (
                "2024-01-05 10:00:00.1234567",
                (2024, 1, 5, 10 * H + 123_457, Session),
            ),
            ("1/5/69", (2069, 1, 5, 0, Session)),
            ("1/5/70", (1970, 1, 5, 0, Session)),
            ("J2451545", (2000, 1, 1, 0, Session)),
            ("2000-01-01 allballs", (2000, 1, 1, 0, East(0))),
            ("2024-01-05 10:00 met dst", (2024, 1, 5, 10 * H, East(7200))),
            ("2024-01-05 ist", (2024, 1, 5, 0, East(7200))),
            (
                "y2024m01d05h10mm30s15.5",
                (2024, 1, 5, 10 * H + 1815 * 1_000_000 + 500_000, Session),
            ),
            (
                "y2024 m01 d05 t103000",
                (2024, 1, 5, 10 * H + H / 2, Session),
            ),
            ("y24m1d5", (24, 1, 5, 0, Session)),
            (
                "2024-01-05 10:00 utc+3",
                (2024, 1, 5, 10 * H, East(-3 * 3600)),
            ),
            (
                "2024-01-05 10:00 EST5",
                (2024, 1, 5, 10 * H, East(-5 * 3600)),
            ),
            (
                "2024-01-05 10:00 abc-3:30",
                (2024, 1, 5, 10 * H, East(12600)),
            ),
            (
                "Jan 5 2024 10:00 PM-08",
                (2024, 1, 5, 10 * H, East(8 * 3600)),
            ),
            (
                "2024-01-05 10:00 Etc/GMT-3",
                (2024, 1, 5, 10 * H, Named(chrono_tz::Etc::GMTMinus3)),
            ),
            (
                "2024-01-05 10:00:00.5+05:30:15",
                (2024, 1, 5, 10 * H + 500_000, East(19815)),
            ),
        ] {
            assert_eq!(at(text), want, "{text}");
        }
        let (y, m, d, t, zone) = at("2024-07-01 10:00 America/New_York");
        assert_eq!((y, m, d, t), (2024, 7, 1, 10 * H));
        assert_eq!(zone, Named(chrono_tz::America::New_York));
        assert_eq!(read("epoch"), Ok(Read::Epoch));
        assert_eq!(read("epoch+0530"), Ok(Read::Epoch));
        assert_eq!(read("infinity 10:00"), Ok(Read::Infinity));
        assert_eq!(read("today epoch"), Ok(Read::Epoch));
        assert_eq!(read("-infinity"), Ok(Read::NegativeInfinity));
        assert_eq!(read("today"), Ok(Read::Relative("today")));
    }

    /// Each checked against PostgreSQL 15 (`SET DateStyle = 'ISO, DMY'`
    /// or `'ISO, YMD'`, then `SELECT '...'::timestamp`); None where it
    /// says "date/time field value out of range".
    #[test]
    fn orders_postgresql_reads_in() {
        type Day = Option<(i64, i64, i64)>;
        let dmy: &[(&str, Day)] = &[
            ("05/01/2024", Some((2024, 1, 5))),
            ("1/2/03", Some((2003, 2, 1))),
            ("02-Jan-03", Some((2003, 1, 2))),
            ("Jan-02-03", Some((2003, 1, 2))),
            ("03-01-02", Some((2002, 1, 3))),
            ("1.2.2003", Some((2003, 2, 1))),
            ("24-Jan-05", Some((2005, 1, 24))),
            ("24 Jan 5", Some((2005, 1, 24))),
            ("5 Jan 24", Some((2024, 1, 5))),
            ("13/01/2024", Some((2024, 1, 13))),
            ("01/13/2024", None),
            ("2024/01/05", Some((2024, 1, 5))),
            ("050124", Some((2005, 1, 24))),
            ("99-12-31", None),
            ("31.12.99", Some((1999, 12, 31))),
            ("5 1 2024", Some((2024, 1, 5))),
        ];
        let ymd: &[(&str, Day)] = &[
            ("05/01/2024", None),
            ("1/2/03", Some((2001, 2, 3))),
            ("02-Jan-03", Some((2002, 1, 3))),
            ("Jan-02-03", Some((2002, 1, 3))),
            ("03-01-02", Some((2003, 1, 2))),
            ("1.2.2003", None),
            ("24-Jan-05", Some((2024, 1, 5))),
            ("05-Jan-2024", Some((2024, 1, 5))),
            ("Jan 5 24", Some((2005, 1, 24))),
            ("5 Jan 24", Some((2005, 1, 24))),
            ("24 Jan 5", Some((2024, 1, 5))),
            ("2024/01/05", Some((2024, 1, 5))),
            ("99-12-31", Some((1999, 12, 31))),
            ("31.12.99", None),
            ("5 1 2024", None),
        ];
        for (order, cases) in [(DateOrder::Dmy, dmy), (DateOrder::Ymd, ymd)] {
            for (text, want) in cases {
                let got = match super::read(text, order) {
                    Ok(Read::At(t)) => Some((t.year, t.month, t.day)),
                    Err(Fail::FieldOverflow | Fail::MonthDayOverflow) => None,
                    other => panic!("{text} ({order:?}): {other:?}"),
                };
                assert_eq!(got, *want, "{text} ({order:?})");
            }
        }
        // ISO text and four-digit years first read alike in every order.
        for order in [DateOrder::Mdy, DateOrder::Dmy, DateOrder::Ymd] {
            let Ok(Read::At(t)) = super::read("2024-01-05 10:00", order) else {
                panic!("{order:?}")
            };
            assert_eq!((t.year, t.month, t.day), (2024, 1, 5));
        }
    }

    /// `check_datestyle`'s reading, each checked against PostgreSQL 15
    /// (`SET DateStyle = '...'; SHOW DateStyle`).
    #[test]
    fn date_styles_postgresql_takes() {
        use super::{StyleError, date_style};
        for (value, now, want) in [
            ("dmy", DateOrder::Mdy, DateOrder::Dmy),
            ("ISO, DMY", DateOrder::Mdy, DateOrder::Dmy),
            ("ymd, iso", DateOrder::Mdy, DateOrder::Ymd),
            ("Euro", DateOrder::Mdy, DateOrder::Dmy),
            ("NonEuropean", DateOrder::Dmy, DateOrder::Mdy),
            ("iso", DateOrder::Dmy, DateOrder::Dmy),
            ("", DateOrder::Ymd, DateOrder::Ymd),
            ("DEFAULT", DateOrder::Dmy, DateOrder::Mdy),
            ("ymd, default", DateOrder::Dmy, DateOrder::Ymd),
            ("\"ISO\", euro", DateOrder::Mdy, DateOrder::Dmy),
        ] {
            assert_eq!(date_style(value, now), Ok(want), "{value}");
        }
        for (value, want) in [
            ("iso dmy", StyleError::ListSyntax),
            ("iso,", StyleError::ListSyntax),
            ("dmy,mdy", StyleError::Conflicting),
            ("iso, sql", StyleError::Conflicting),
            ("foo", StyleError::Unrecognized("foo".into())),
            ("SQL, DMY", StyleError::Style("sql".into())),
            ("German", StyleError::Style("german".into())),
        ] {
            assert_eq!(date_style(value, DateOrder::Mdy), Err(want), "{value}");
        }
    }

    #[test]
    fn errors_postgresql_gives() {
        for (text, fail) in [
            ("", Fail::Format),
            ("soon", Fail::Format),
            ("2024-13-01", Fail::MonthDayOverflow),
            ("31/1/2000", Fail::MonthDayOverflow),
            ("2024-02-30", Fail::FieldOverflow),
            ("2023-02-29", Fail::FieldOverflow),
            ("2024-01-05 24:00:01", Fail::FieldOverflow),
            ("2024-01-05 10:60", Fail::FieldOverflow),
            ("2024-01-05 13:00 pm", Fail::FieldOverflow),
            ("2024-01-05 10:00+16", Fail::ZoneDisplacement),
            ("10:00", Fail::Format),
            ("Fri 2024-01-05", Fail::Format),
            ("epoch 2024-01-01", Fail::Format),
            ("epoch epoch", Fail::Format),
            ("10:00 2024-01-05", Fail::Format),
            ("2024-01-05 10:00 dst", Fail::Format),
            ("2024-01-05 10:00:00 +053015", Fail::ZoneDisplacement),
            ("1-01-31 ADT12:60:59", Fail::Zone("adt12:60:59".into())),
            ("2024-01-05 2024-01-06", Fail::Format),
            ("0000-01-01", Fail::FieldOverflow),
            ("69-01-05", Fail::MonthDayOverflow),
            (
                "2024-01-05 10:00 Mars/Olympus",
                Fail::Zone("mars/olympus".into()),
            ),
        ] {
            assert_eq!(read(text), Err(fail), "{text}");
        }
    }
}

#[cfg(test)]
mod property {
    /// Text of every shape (digits, words, signs, separators, zones,
    /// non-ASCII, huge numbers) is read or refused, never a panic, and
    /// what `time_text` writes of it is read back as the same value.
    #[test]
    fn any_text_is_read_or_refused_and_what_is_written_reads_back() {
        use super::super::time_text::read_as;
        use super::DateOrder;
        use datafusion::arrow::datatypes::{DataType, TimeUnit};
        const PIECES: &[&str] = &[
            "0",
            "1",
            "9",
            "12",
            "24",
            "31",
            "60",
            "99",
            "2024",
            "00012",
            "99999999999999999999",
            "-",
            "+",
            ":",
            ".",
            "/",
            ",",
            " ",
            "\t",
            "T",
            "t",
            "Z",
            "J",
            "y",
            "m",
            "d",
            "h",
            "mm",
            "s",
            "jan",
            "Sept",
            "wed",
            "am",
            "PM",
            "bc",
            "ad",
            "epoch",
            "allballs",
            "today",
            "infinity",
            "-infinity",
            "dst",
            "met",
            "est",
            "utc+3",
            "America/New_York",
            "europe/paris",
            "ñ",
            "🦙",
            "\u{a0}",
            "0x1",
            "e5",
            "'",
            "\"",
            "\\",
        ];
        let types = [
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut read = 0;
        for _ in 0..200_000 {
            let text: String = (0..1 + next(10))
                .map(|_| PIECES[next(PIECES.len())])
                .collect();
            let order = [DateOrder::Mdy, DateOrder::Dmy, DateOrder::Ymd][next(3)];
            let _ = super::read(&text, order);
            let to = &types[next(types.len())];
            if let Ok(Some(written)) = read_as(&text, to, None, order) {
                read += 1;
                // ISO text reads the same under every order.
                let again = read_as(&written, to, None, DateOrder::Mdy)
                    .unwrap_or_else(|e| panic!("{text:?} wrote {written:?}: {e}"));
                assert!(
                    again.is_none() || again.as_deref() == Some(written.as_str()),
                    "{text:?} wrote {written:?}, read back as {again:?}"
                );
            }
        }
        assert!(read > 1_000, "only {read} texts read");
    }
}
