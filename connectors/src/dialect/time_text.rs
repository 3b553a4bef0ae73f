//! Date and timestamp text as PostgreSQL reads it (issue 22), where
//! Arrow's parser refuses it or reads it otherwise: it is read by
//! `datetime_input` (PostgreSQL's `date_in`, `timestamp_in`,
//! `timestamptz_in`) and written again as the ISO text Arrow's cast reads
//! the same way. `scheduler/src/zones.rs` rewrites the literals of a plan
//! with it and wraps a cast of a text column in [`time_text`];
//! `syntax.rs` rewrites the bounds of a `generate_series` in `FROM`,
//! which DataFusion evaluates while it plans.
//!
//! What Arrow's parser read otherwise: an offset after a `timestamp`
//! (`'2024-01-01 10:00+05'::timestamp` is 10:00 in PostgreSQL, Arrow
//! converted it to UTC), more than six fractional digits (cut, where
//! PostgreSQL rounds), and an hour a daylight-saving change skips or
//! repeats in the session's zone (refused). What it refused: everything
//! but ISO's `YYYY-MM-DD[ hh:mm:ss]` (`datetime_input` lists it).

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;

use super::datetime_input::{self, DateOrder, Fail, Read, Stamp, Zone};
use crate::error::DataException;

/// PostgreSQL's name of `to` in its input errors; None for a type that
/// is no date or timestamp.
fn type_name(to: &DataType) -> Option<&'static str> {
    match to {
        DataType::Date32 => Some("date"),
        DataType::Timestamp(_, None) => Some("timestamp"),
        DataType::Timestamp(_, Some(_)) => Some("timestamp with time zone"),
        _ => None,
    }
}

/// Whether Arrow's cast reads `text` as a value of `to` as PostgreSQL
/// does: ISO's `YYYY-MM-DD`, or for a timestamp `YYYY-MM-DD hh:mm:ss`
/// with up to six fractional digits and no zone (a `timestamptz` only
/// where the session's zone is UTC: `zone` is None), each field in
/// range.
fn plain_iso(text: &str, to: &DataType, zone: Option<&Tz>) -> bool {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let date = b.len() >= 10
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && &text[..4] != "0000"
        && chrono::NaiveDate::parse_from_str(&text[..10], "%Y-%m-%d").is_ok();
    // A `timestamptz` in a session zone other than UTC is read on its
    // clock here, even at midnight (which a change skips in some zones).
    let clock = matches!(to, DataType::Timestamp(_, None) | DataType::Date32)
        || (matches!(to, DataType::Timestamp(..)) && zone.is_none());
    if !date || b.len() == 10 {
        return date && clock;
    }
    let fraction = b.len() == 19 || (b.len() > 20 && b.len() <= 26 && b[19] == b'.');
    fraction
        && clock
        && !matches!(to, DataType::Date32)
        && matches!(b[10], b' ' | b'T')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (b.len() == 19 || digits(20..b.len()))
        && &text[11..13] < "24"
        && &text[14..16] < "60"
        && &text[17..19] < "60"
}

/// `text` read as a value of `to` (a `date`, `timestamp` or
/// `timestamptz`) as PostgreSQL reads it, as the ISO text Arrow's cast
/// reads the same way: `YYYY-MM-DD`, `YYYY-MM-DD hh:mm:ss.ffffff`, and
/// for a `timestamptz` written with a zone, or without one where the
/// session's `zone` is given, the instant in UTC (`...+00:00`; a wall
/// clock a daylight-saving change skips is read with the offset before
/// it, one it repeats with the offset after it, as PostgreSQL does).
/// None where Arrow's cast reads the text as it is, or `to` is no date or
/// timestamp; PostgreSQL's error where it refuses the text. An interval's
/// text is always rewritten (`interval_input::arrow_text`).
pub fn read_as(
    text: &str,
    to: &DataType,
    zone: Option<&Tz>,
    order: DateOrder,
) -> Result<Option<String>> {
    if matches!(to, DataType::Interval(_)) {
        return super::interval_input::arrow_text(text).map(Some);
    }
    let Some(type_name) = type_name(to) else {
        return Ok(None);
    };
    if plain_iso(text, to, zone) {
        return Ok(None);
    }
    let unsupported = |why: &str| {
        DataException::error(
            "0A000",
            &format!("date/time value \"{text}\" is not supported: {why}"),
        )
    };
    let Stamp {
        year,
        month,
        day,
        micros,
        zone: written,
    } = match datetime_input::read(text, order) {
        Ok(Read::At(stamp)) => stamp,
        Ok(Read::Epoch) => Stamp {
            year: 1970,
            month: 1,
            day: 1,
            micros: 0,
            zone: Zone::East(0),
        },
        Ok(Read::Infinity | Read::NegativeInfinity) => {
            return Err(unsupported("Quipu's dates and timestamps have no infinity"));
        }
        Ok(Read::Relative(word)) => {
            return Err(unsupported(&format!(
                "Quipu reads '{word}' only alone, in a literal"
            )));
        }
        Err(fail) => return Err(input_error(fail, text, type_name)),
    };
    let out_of_range =
        || unsupported("Quipu's dates and timestamps are within the years 1 to 9999");
    let date = u32::try_from(month)
        .ok()
        .zip(u32::try_from(day).ok())
        .and_then(|(m, d)| chrono::NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, m, d))
        .filter(|d| (1..=9999).contains(&chrono::Datelike::year(d)))
        .ok_or_else(out_of_range)?;
    if matches!(to, DataType::Date32) {
        return Ok(Some(date.format("%Y-%m-%d").to_string()));
    }
    let wall = date.and_time(chrono::NaiveTime::MIN) + chrono::TimeDelta::microseconds(micros);
    let in_range = |t: chrono::NaiveDateTime| {
        (1..=9999)
            .contains(&chrono::Datelike::year(&t))
            .then_some(t)
            .ok_or_else(out_of_range)
    };
    let wall = in_range(wall)?;
    let wall_micros = wall.and_utc().timestamp_micros();
    // The instant, where the text is read as one (None: its wall clock);
    // a zone's rules that cannot place it are out of range.
    let instant = match (to, written, zone) {
        (DataType::Timestamp(_, None), ..) | (_, Zone::Session, None) => None,
        (_, Zone::Session, Some(zone)) => Some(
            super::at_time_zone::wall_clock_to_instant(wall_micros, zone)
                .ok_or_else(out_of_range)?,
        ),
        (_, Zone::East(east), _) => Some(wall_micros - east * 1_000_000),
        (_, Zone::Named(tz), _) => Some(
            tz.name()
                .parse::<Tz>()
                .ok()
                .and_then(|tz| super::at_time_zone::wall_clock_to_instant(wall_micros, &tz))
                .ok_or_else(out_of_range)?,
        ),
    };
    Ok(Some(match instant {
        None => wall.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        Some(utc) => {
            let utc = chrono::DateTime::from_timestamp_micros(utc).ok_or_else(out_of_range)?;
            in_range(utc.naive_utc())?
                .format("%Y-%m-%d %H:%M:%S%.6f+00:00")
                .to_string()
        }
    }))
}

/// PostgreSQL's error (`DateTimeParseError`) for `text` it does not read
/// as a value of `type_name`.
fn input_error(fail: Fail, text: &str, type_name: &str) -> datafusion::error::DataFusionError {
    match fail {
        Fail::Format => DataException::error(
            "22007",
            &format!("invalid input syntax for type {type_name}: \"{text}\""),
        ),
        Fail::FieldOverflow | Fail::MonthDayOverflow => DataException::error(
            "22008",
            &format!("date/time field value out of range: \"{text}\""),
        ),
        Fail::ZoneDisplacement => DataException::error(
            "22009",
            &format!("time zone displacement out of range: \"{text}\""),
        ),
        Fail::Zone(name) => {
            DataException::error("22023", &format!("time zone \"{name}\" not recognized"))
        }
    }
}

/// The text of a literal read as a value of `to` ([`read_as`]), a
/// `timestamptz` without a zone on the clock of `to`'s zone.
pub fn literal_as_written(text: &str, to: &DataType, order: DateOrder) -> Result<Option<String>> {
    let zone = match to {
        DataType::Timestamp(_, Some(tz)) if !super::utc_zone(tz) => tz.parse::<Tz>().ok(),
        _ => None,
    };
    read_as(text, to, zone.as_ref(), order)
}

/// The name of [`time_text`].
pub const TIME_TEXT: &str = "quipu_time_text";

/// `quipu_time_text(s, to[, zone[, order]])`: each text of `s` read as
/// PostgreSQL reads a value of `to` (`'timestamp'`, `'timestamptz'`,
/// `'date'` or `'interval'`, `interval_input`),
/// written for Arrow's cast after it ([`read_as`]), where a column (not a
/// literal, which `scheduler/src/zones.rs` rewrites once) is cast; a
/// `timestamptz` without a zone is read on the clock of `zone`, the
/// session's (UTC where it is not given or empty), a date's numbers in
/// `order` (`'DMY'`; `DateOrder::named`, MDY where it is not given). A
/// text PostgreSQL refuses is PostgreSQL's error.
pub fn time_text() -> datafusion::logical_expr::ScalarUDF {
    datafusion::logical_expr::ScalarUDF::new_from_impl(TimeText {
        signature: datafusion::logical_expr::Signature::user_defined(
            datafusion::logical_expr::Volatility::Immutable,
        ),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TimeText {
    signature: datafusion::logical_expr::Signature,
}

/// The type [`time_text`]'s second argument names.
fn named_type(to: &str) -> Option<DataType> {
    use datafusion::arrow::datatypes::{IntervalUnit, TimeUnit};
    match to {
        "timestamp" => Some(DataType::Timestamp(TimeUnit::Microsecond, None)),
        "timestamptz" => Some(DataType::Timestamp(
            TimeUnit::Microsecond,
            Some("UTC".into()),
        )),
        "date" => Some(DataType::Date32),
        "interval" => Some(DataType::Interval(IntervalUnit::MonthDayNano)),
        _ => None,
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for TimeText {
    fn name(&self) -> &str {
        TIME_TEXT
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> datafusion::common::Result<Vec<DataType>> {
        match args {
            [t, _] if t.is_string() || t.is_null() => Ok(vec![DataType::Utf8, DataType::Utf8]),
            [t, _, _] if t.is_string() || t.is_null() => Ok(vec![DataType::Utf8; 3]),
            [t, _, _, _] if t.is_string() || t.is_null() => Ok(vec![DataType::Utf8; 4]),
            _ => super::pg_functions::no_function(self.name(), args),
        }
    }

    fn return_type(&self, _: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::common::Result<datafusion::logical_expr::ColumnarValue> {
        use datafusion::arrow::array::{AsArray, StringArray};
        use datafusion::common::ScalarValue;
        use datafusion::logical_expr::ColumnarValue;
        let constant = |i: usize| match args.args.get(i) {
            Some(ColumnarValue::Scalar(ScalarValue::Utf8(Some(v)))) => Some(v.clone()),
            _ => None,
        };
        let Some(to) = constant(1).as_deref().and_then(named_type) else {
            return datafusion::common::exec_err!("{TIME_TEXT} takes a constant type");
        };
        let zone: Option<Tz> = constant(2).and_then(|z| z.parse().ok());
        let order = match constant(3) {
            None => DateOrder::Mdy,
            Some(o) => DateOrder::named(&o).ok_or_else(|| {
                datafusion::error::DataFusionError::Execution(format!(
                    "{TIME_TEXT}: no date order {o}"
                ))
            })?,
        };
        let arrays = ColumnarValue::values_to_arrays(&args.args[..1])?;
        let texts = datafusion::arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
        let out = texts
            .as_string::<i32>()
            .iter()
            .map(|t| {
                t.map(|t| {
                    Ok(read_as(t, &to, zone.as_ref(), order)?.unwrap_or_else(|| t.to_string()))
                })
                .transpose()
            })
            .collect::<Result<StringArray>>()?;
        super::pg_text::shaped_like(&args.args[..1], std::sync::Arc::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::{DateOrder, read_as};
    use datafusion::arrow::array::timezone::Tz;
    use datafusion::arrow::datatypes::{DataType, TimeUnit};

    const TS: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

    fn tz() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    }

    fn read(text: &str, to: &DataType, zone: Option<&Tz>) -> Option<String> {
        read_as(text, to, zone, DateOrder::Mdy).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn text_without_a_zone_is_read_on_the_session_s_clock() {
        let ny: Tz = "America/New_York".parse().unwrap();
        for (text, want) in [
            // Skipped: the offset before the change (-05).
            ("2024-03-10 02:30:00", "2024-03-10 07:30:00.000000+00:00"),
            // Repeated: the offset after it (-05).
            ("2024-11-03 01:30:00", "2024-11-03 06:30:00.000000+00:00"),
            ("2024-07-01T10:00:00.5", "2024-07-01 14:00:00.500000+00:00"),
            ("2024-07-01", "2024-07-01 04:00:00.000000+00:00"),
            // A zone written is the text's own.
            ("2024-07-01 10:00:00+02", "2024-07-01 08:00:00.000000+00:00"),
            (
                "2024-07-01 10:00:00 Europe/Paris",
                "2024-07-01 08:00:00.000000+00:00",
            ),
            (
                "Jul 1 2024 10:00 PM EST",
                "2024-07-02 03:00:00.000000+00:00",
            ),
        ] {
            assert_eq!(
                read(text, &tz(), Some(&ny)).as_deref(),
                Some(want),
                "{text}"
            );
        }
    }

    #[test]
    fn text_is_written_as_arrow_reads_it() {
        for (text, to, want) in [
            (
                "2024-01-01 10:00:00+02",
                TS,
                Some("2024-01-01 10:00:00.000000"),
            ),
            (
                "2024-01-01 10:00+02",
                tz(),
                Some("2024-01-01 08:00:00.000000+00:00"),
            ),
            ("2024-01-01 10:00", tz(), Some("2024-01-01 10:00:00.000000")),
            ("2024-01-01 23:00-05", DataType::Date32, Some("2024-01-01")),
            ("2024-01-01T10:00:00Z", DataType::Date32, Some("2024-01-01")),
            ("Jan 1 2024 10:00", DataType::Date32, Some("2024-01-01")),
            (" 2024-1-5 ", DataType::Date32, Some("2024-01-05")),
            (
                "2024-01-05 24:00:00",
                TS,
                Some("2024-01-06 00:00:00.000000"),
            ),
            (
                "2024-12-31 23:59:59.9999999",
                TS,
                Some("2025-01-01 00:00:00.000000"),
            ),
            (
                "2024-01-01 10:00:00.1234567",
                TS,
                Some("2024-01-01 10:00:00.123457"),
            ),
            ("epoch", TS, Some("1970-01-01 00:00:00.000000")),
            (
                "-1 days +02:00:00",
                DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano),
                Some("0 mons -1 days 7200000000 microseconds"),
            ),
            // Read by Arrow's cast as they are.
            ("2024-01-01", DataType::Date32, None),
            ("2024-01-01", TS, None),
            ("2024-01-01 10:00:00.123456", TS, None),
            ("2024-01-01T10:00:00", tz(), None),
        ] {
            assert_eq!(read(text, &to, None).as_deref(), want, "{text} as {to}");
        }
    }

    #[test]
    fn text_postgresql_refuses_is_its_error() {
        for (text, to, sqlstate, message) in [
            (
                "soon",
                TS,
                "22007",
                "invalid input syntax for type timestamp: \"soon\"",
            ),
            (
                "2024-02-30",
                DataType::Date32,
                "22008",
                "date/time field value out of range: \"2024-02-30\"",
            ),
            (
                "2024-01-01 10:00+16",
                tz(),
                "22009",
                "time zone displacement out of range: \"2024-01-01 10:00+16\"",
            ),
            (
                "2024-01-01 10:00 Mars/Olympus",
                tz(),
                "22023",
                "time zone \"mars/olympus\" not recognized",
            ),
            (
                "infinity",
                TS,
                "0A000",
                "date/time value \"infinity\" is not supported",
            ),
            (
                "today 10:00",
                TS,
                "0A000",
                "date/time value \"today 10:00\" is not supported",
            ),
            (
                "10000-01-01",
                DataType::Date32,
                "0A000",
                "within the years 1 to 9999",
            ),
            (
                "Jan 1 44 BC",
                DataType::Date32,
                "0A000",
                "within the years 1 to 9999",
            ),
        ] {
            let e = read_as(text, &to, None, DateOrder::Mdy).expect_err(text);
            let datafusion::error::DataFusionError::External(e) = e else {
                panic!("{text}: {e}")
            };
            let e = e
                .downcast_ref::<crate::error::DataException>()
                .unwrap_or_else(|| panic!("{text}: {e}"));
            assert!(e.message.contains(message), "{text}: {}", e.message);
            assert_eq!(e.sqlstate, sqlstate, "{text}");
        }
    }
}
