//! Timestamp text as PostgreSQL reads it, where Arrow's parser reads it
//! otherwise (issue 22): a time without seconds, an offset after a
//! `timestamp`, more than six fractional digits. `scheduler/src/zones.rs`
//! rewrites the literals of a plan with it, `syntax.rs` the bounds of a
//! `generate_series` in `FROM`, which DataFusion evaluates while it plans.

use datafusion::arrow::datatypes::DataType;

/// The text of a literal compared with a timestamp, as Arrow's parser
/// reads it: `YYYY-MM-DD HH:MM` gets its seconds (`:00`), before its
/// offset if it has one (`2024-01-31 00:00+05:30`).
pub fn with_seconds(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let minutes_only = b.len() >= 16
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b' ' || b[10] == b'T')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && offset(&text[16..]);
    minutes_only.then(|| format!("{}:00{}", &text[..16], &text[16..]))
}

/// The text of a literal read as a `timestamp` (without time zone) as
/// PostgreSQL reads it: an offset after the time is ignored
/// (`'2024-01-01 10:00+05'::timestamp` is 10:00; Arrow's parser converted
/// it to UTC, 05:00), and the seconds added where they are missing.
/// None when the text has no offset.
pub fn without_offset(text: &str) -> Option<String> {
    let text = with_seconds(text).unwrap_or_else(|| text.to_string());
    let b = text.as_bytes();
    // The offset begins at most 7 bytes from the end (` +05:30`), after a
    // clock (`HH:MM` at 11..16).
    let first = text.len().saturating_sub(7).max(16);
    let cut = (first..text.len()).find(|&i| {
        matches!(b[i], b'+' | b'-' | b'Z' | b' ')
            && text.is_char_boundary(i)
            && b[13] == b':'
            && offset(&text[i..])
    })?;
    Some(text[..cut].trim_end().to_string())
}

/// The text of a literal read as a value of `to` as PostgreSQL reads it,
/// where Arrow's parser reads it otherwise: [`without_offset`] for a
/// `timestamp`, [`with_seconds`] for a `timestamptz` (None: as it is, or
/// `to` is no timestamp).
pub fn as_written(text: &str, to: &DataType) -> Option<String> {
    if !matches!(to, DataType::Timestamp(..)) {
        return None;
    }
    let rounded = microseconds(text);
    let text = rounded.as_deref().unwrap_or(text);
    let fixed = match to {
        DataType::Timestamp(_, None) => without_offset(text).or_else(|| with_seconds(text)),
        _ => with_seconds(text),
    };
    fixed.or(rounded)
}

/// The text of a timestamp with more than six fractional digits, rounded
/// to six as PostgreSQL's input rounds them (`rint` of the fraction read
/// as a double, in microseconds: ties to even), the carry into the
/// seconds and on; Arrow's parser cut them (`10:00:00.1234567` was
/// `.123456`, PostgreSQL's `.123457`). None when it has no more than six.
pub fn microseconds(text: &str) -> Option<String> {
    let b = text.as_bytes();
    if b.len() < 27 || !matches!(b[10], b' ' | b'T') || b[16] != b':' || b[19] != b'.' {
        return None;
    }
    let end = 20 + b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
    if end - 20 <= 6 {
        return None;
    }
    let fraction: f64 = format!("0.{}", &text[20..end]).parse().ok()?;
    let micros = (fraction * 1e6).round_ties_even() as u32;
    let (seconds, micros) = match micros {
        1_000_000 => {
            let whole = chrono::NaiveDateTime::parse_from_str(&text[..19], "%Y-%m-%d %H:%M:%S")
                .or_else(|_| {
                    chrono::NaiveDateTime::parse_from_str(&text[..19], "%Y-%m-%dT%H:%M:%S")
                })
                .ok()?;
            let next = whole + chrono::TimeDelta::seconds(1);
            (next.format("%Y-%m-%d %H:%M:%S").to_string(), 0)
        }
        m => (text[..19].to_string(), m),
    };
    Some(format!("{seconds}.{micros:06}{}", &text[end..]))
}

/// Whether `rest` is nothing or an offset Arrow's parser reads after the
/// seconds: `Z`, `+05`, `-0330`, `+05:30`, with or without a space.
fn offset(rest: &str) -> bool {
    let r = rest.strip_prefix(' ').unwrap_or(rest).as_bytes();
    let d = |i: usize| r.get(i).is_some_and(u8::is_ascii_digit);
    match r {
        [] => rest.is_empty(),
        [b'Z'] => true,
        [b'+' | b'-', ..] => match r.len() {
            3 => d(1) && d(2),
            5 => d(1) && d(2) && d(3) && d(4),
            6 => d(1) && d(2) && r[3] == b':' && d(4) && d(5),
            _ => false,
        },
        _ => false,
    }
}

/// The name of [`time_text`].
pub const TIME_TEXT: &str = "quipu_time_text";

/// `quipu_time_text(s, to)`: each text of `s` as PostgreSQL reads it as a
/// value of `to` (`'timestamp'`, `'timestamptz'` or `'date'`), for
/// Arrow's cast after it, where a column (not a literal, which
/// `scheduler/src/zones.rs` rewrites once) is cast: a `timestamp` leaves
/// an offset out ([`as_written`]: `'2024-01-01 10:00:00+02'::timestamp`
/// is 10:00, Arrow's cast converted it to UTC, 08:00), a clock without
/// seconds gets them (`10:00+02` failed to parse), and a `date` is the
/// date of a text with a clock after it (`'2024-01-01 23:00-05'::date`
/// is 2024-01-01, Arrow refused it).
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

/// `text` read as a value of `to` as PostgreSQL reads it, where Arrow's
/// cast reads it otherwise.
fn read_as(text: &str, to: &str) -> Option<String> {
    use datafusion::arrow::datatypes::TimeUnit;
    match to {
        "timestamp" => as_written(text, &DataType::Timestamp(TimeUnit::Microsecond, None)),
        "timestamptz" => as_written(
            text,
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ),
        "date" => {
            let b = text.as_bytes();
            let dated = b.len() > 10
                && matches!(b[10], b' ' | b'T')
                && b[..10].iter().enumerate().all(|(i, c)| match i {
                    4 | 7 => *c == b'-',
                    _ => c.is_ascii_digit(),
                });
            dated.then(|| text[..10].to_string())
        }
        _ => None,
    }
}

/// The text of a literal cast to `to` as PostgreSQL reads it
/// ([`as_written`]), and for a `timestamptz` in a zone other than UTC a
/// text without an offset read on that zone's clock and written as the
/// instant in UTC ([`in_zone`]): Arrow's cast refused an hour a
/// daylight-saving change skips or repeats (`'2024-03-10
/// 02:30'::timestamptz` in America/New_York is 03:30-04, `'2024-11-03
/// 01:30'` 01:30-05). None where Arrow's cast reads the text as PostgreSQL.
pub fn literal_as_written(text: &str, to: &DataType) -> Option<String> {
    let written = as_written(text, to);
    let zone = match to {
        DataType::Timestamp(_, Some(tz)) if !super::utc_zone(tz) => {
            tz.parse::<datafusion::arrow::array::timezone::Tz>().ok()
        }
        _ => None,
    };
    match zone.and_then(|z| in_zone(written.as_deref().unwrap_or(text), &z)) {
        Some(utc) => Some(utc),
        None => written,
    }
}

/// A `timestamptz`'s text without an offset (`2024-03-10 02:30:00`), read
/// on `zone`'s clock as PostgreSQL reads it, as the instant's text in UTC:
/// an hour a daylight-saving change skips has the offset before it
/// (`at_time_zone::wall_clock_to_instant`); Arrow's cast refused it
/// ("error computing timezone offset"). None for text with an offset or
/// a zone, which Arrow's cast reads.
fn in_zone(text: &str, zone: &datafusion::arrow::array::timezone::Tz) -> Option<String> {
    let naive = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(text.trim(), f).ok())?;
    let micros = naive.and_utc().timestamp_micros();
    let instant = super::at_time_zone::wall_clock_to_instant(micros, zone)?;
    let utc = chrono::DateTime::from_timestamp_micros(instant)?;
    Some(utc.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string())
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
        let Some(to) = constant(1) else {
            return datafusion::common::exec_err!("{TIME_TEXT} takes a constant type");
        };
        let zone: Option<datafusion::arrow::array::timezone::Tz> =
            constant(2).and_then(|z| z.parse().ok());
        let arrays = ColumnarValue::values_to_arrays(&args.args[..1])?;
        let texts = datafusion::arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
        let out: StringArray = texts
            .as_string::<i32>()
            .iter()
            .map(|t| {
                t.map(|t| {
                    let read = read_as(t, &to);
                    let read = read.as_deref().unwrap_or(t);
                    match &zone {
                        Some(zone) => in_zone(read, zone).unwrap_or_else(|| read.to_string()),
                        None => read.to_string(),
                    }
                })
            })
            .collect();
        super::pg_text::shaped_like(&args.args[..1], std::sync::Arc::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::{microseconds, read_as, with_seconds, without_offset};

    #[test]
    fn text_without_an_offset_is_read_on_the_zone_s_clock() {
        let ny: datafusion::arrow::array::timezone::Tz = "America/New_York".parse().unwrap();
        for (text, read) in [
            // Skipped: the offset before the change (-05).
            (
                "2024-03-10 02:30:00",
                Some("2024-03-10 07:30:00.000000+00:00"),
            ),
            // Repeated: the offset after it (-05).
            (
                "2024-11-03 01:30:00",
                Some("2024-11-03 06:30:00.000000+00:00"),
            ),
            (
                "2024-07-01T10:00:00.5",
                Some("2024-07-01 14:00:00.500000+00:00"),
            ),
            ("2024-07-01 10:00:00+02", None),
            ("2024-07-01 10:00:00 Europe/Paris", None),
        ] {
            assert_eq!(super::in_zone(text, &ny).as_deref(), read, "{text}");
        }
    }

    #[test]
    fn a_column_of_text_is_read_as_postgresql_reads_it() {
        for (text, to, read) in [
            (
                "2024-01-01 10:00:00+02",
                "timestamp",
                Some("2024-01-01 10:00:00"),
            ),
            (
                "2024-01-01 10:00+02",
                "timestamptz",
                Some("2024-01-01 10:00:00+02"),
            ),
            ("2024-01-01 23:00-05", "date", Some("2024-01-01")),
            ("2024-01-01T10:00:00Z", "date", Some("2024-01-01")),
            ("2024-01-01", "date", None),
            ("Jan 1 2024 10:00", "date", None),
            ("2024-01-01 10:00:00", "timestamptz", None),
        ] {
            assert_eq!(read_as(text, to).as_deref(), read, "{text} as {to}");
        }
    }

    #[test]
    fn more_than_six_fractional_digits_round() {
        for (text, read) in [
            ("2024-01-01 10:00:00.1234567", "2024-01-01 10:00:00.123457"),
            ("2024-01-01 10:00:00.1234564", "2024-01-01 10:00:00.123456"),
            (
                "2024-01-01T10:00:00.0000005+05",
                "2024-01-01T10:00:00.000000+05",
            ),
            ("2024-12-31 23:59:59.9999999", "2025-01-01 00:00:00.000000"),
            (
                "2024-01-01 10:00:00.123456789 UTC",
                "2024-01-01 10:00:00.123457 UTC",
            ),
        ] {
            assert_eq!(microseconds(text).as_deref(), Some(read), "{text}");
        }
        for kept in ["2024-01-01 10:00:00.123456", "2024-01-01 10:00:00", "soon"] {
            assert_eq!(microseconds(kept), None, "{kept}");
        }
    }

    #[test]
    fn an_offset_read_as_a_timestamp_is_left_out() {
        for (text, read) in [
            ("2024-01-01 10:00+05", "2024-01-01 10:00:00"),
            ("2024-01-01 10:00:00-08", "2024-01-01 10:00:00"),
            ("2024-01-01 10:00:00.5Z", "2024-01-01 10:00:00.5"),
            ("2024-01-01 10:00:00 +0530", "2024-01-01 10:00:00"),
            ("2024-01-01T10:00:00+05:30", "2024-01-01T10:00:00"),
        ] {
            assert_eq!(without_offset(text).as_deref(), Some(read), "{text}");
        }
        // No offset, or no clock for one to follow (a date's own `-01`).
        for kept in [
            "2024-01-01",
            "2024-01-01 10:00:00",
            "2024-01-01 10:00:00.123456",
            "2024-01-01 10:00 America/Lima",
            "soon",
        ] {
            assert_eq!(without_offset(kept), None, "{kept}");
        }
    }

    #[test]
    fn a_clock_without_seconds_gets_them() {
        assert_eq!(
            with_seconds("2026-03-08 07:30").as_deref(),
            Some("2026-03-08 07:30:00")
        );
        assert_eq!(
            with_seconds("2026-03-08T07:30").as_deref(),
            Some("2026-03-08T07:30:00")
        );
        assert_eq!(
            with_seconds("2024-01-31 00:00+05:30").as_deref(),
            Some("2024-01-31 00:00:00+05:30")
        );
        assert_eq!(
            with_seconds("2024-01-31 00:00 -03").as_deref(),
            Some("2024-01-31 00:00:00 -03")
        );
        for kept in [
            "2026-03-08",
            "2026-03-08 07:30 ",
            "2026-03-08 07:30+5",
            "2026-03-08 07:30:00+05",
            "2026-03-08 7:30",
            "soon",
        ] {
            assert_eq!(with_seconds(kept), None, "{kept}");
        }
    }
}
