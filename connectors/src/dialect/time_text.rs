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

#[cfg(test)]
mod tests {
    use super::{microseconds, with_seconds, without_offset};

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
