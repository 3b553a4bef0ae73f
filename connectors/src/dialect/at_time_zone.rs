//! `x AT TIME ZONE zone` as PostgreSQL reads it (issue 22).
//!
//! PostgreSQL's `AT TIME ZONE` goes both ways: a `timestamp` (no zone)
//! read as a wall-clock time in `zone` is a `timestamptz`, and a
//! `timestamptz` shown on `zone`'s wall clock is a `timestamp`. DataFusion
//! 55 plans both as a cast to a timestamp in `zone`, which is right for
//! the first and, for the second, only relabels the same instant: `tz AT
//! TIME ZONE 'Asia/Tokyo'` stayed a `timestamptz` and printed in the
//! session's zone (`2026-03-08 02:30:00+00` where PostgreSQL answers
//! `2026-03-08 11:30:00`). `connectors/src/dialect/syntax.rs` writes every
//! `AT TIME ZONE` as `quipu_at_time_zone(x, zone)`, this function. The
//! zone may be a column (each row's own; NULL gives NULL), and the
//! instant it gives is labelled UTC: later steps read it in the session's
//! zone, as PostgreSQL does.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit, TimestampMicrosecondType};
use datafusion::arrow::temporal_conversions::as_datetime_with_timezone;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

/// The function's name in plans.
pub const AT_TIME_ZONE: &str = "quipu_at_time_zone";

#[derive(Debug, PartialEq, Eq, Hash)]
struct AtTimeZone {
    signature: Signature,
}

/// `quipu_at_time_zone(x, zone)`.
pub fn at_time_zone() -> ScalarUDF {
    ScalarUDF::new_from_impl(AtTimeZone {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// A zone written as a bare offset (`+05`, `-03:30`, `5`), which
/// PostgreSQL reads as a POSIX zone: hours *west* of UTC, so `'+05'` is
/// five hours behind it. Arrow reads the same text as ISO (east), so it is
/// given back with its sign turned (`-05:00`); None for any other name.
pub fn posix_offset(name: &str) -> Option<String> {
    let n = name.trim();
    let (sign, rest) = match n.as_bytes().first()? {
        b'+' => (1, &n[1..]),
        b'-' => (-1, &n[1..]),
        _ => (1, n),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let ok = |p: &str| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit());
    if !ok(h) || !ok(m) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 15 || m > 59 {
        return None;
    }
    let east = if sign > 0 { '-' } else { '+' };
    Some(format!("{east}{h:02}:{m:02}"))
}

/// The zone named by `name` (a bare offset read as PostgreSQL's POSIX
/// zone, [`posix_offset`]), or PostgreSQL's error.
fn zone(name: &str) -> Result<Tz> {
    let posix = posix_offset(name);
    let name = posix.as_deref().unwrap_or(name);
    match name.parse::<Tz>() {
        Ok(tz) => Ok(tz),
        Err(_) => Err(crate::error::DataException::error(
            "22023",
            &format!("time zone \"{name}\" not recognized"),
        )),
    }
}

/// The instant (microseconds since the epoch, UTC) of wall-clock time
/// `micros` in `tz`, as PostgreSQL resolves one a daylight-saving change
/// skips or repeats: in a skipped hour the offset in force before the
/// change (New York's `2026-03-08 02:30` is `07:30` UTC, shown `03:30-04`),
/// in a repeated hour the offset after it (`2026-11-01 01:30` is `-05`).
/// Arrow's cast refused both ("Cannot cast timezone to different
/// timezone").
pub fn wall_clock_to_instant(micros: i64, tz: &Tz) -> Option<i64> {
    use chrono::{LocalResult, Offset, TimeZone};
    let naive = chrono::DateTime::from_timestamp_micros(micros)?.naive_utc();
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(d) => Some(d.timestamp_micros()),
        LocalResult::Ambiguous(_, after) => Some(after.timestamp_micros()),
        LocalResult::None => {
            // The offset a day earlier is the one before the change (no
            // zone changes twice within a day).
            let before = tz
                .offset_from_local_datetime(&(naive - chrono::Duration::days(1)))
                .earliest()?
                .fix()
                .local_minus_utc();
            Some(micros - i64::from(before) * 1_000_000)
        }
    }
}

/// A constant zone name (None: NULL or not a constant).
fn zone_argument(v: Option<&ScalarValue>) -> Option<&str> {
    match v {
        Some(ScalarValue::Utf8(Some(z)) | ScalarValue::LargeUtf8(Some(z))) => Some(z),
        Some(ScalarValue::Utf8View(Some(z))) => Some(z),
        _ => None,
    }
}

/// The zone of each row: one constant, or a column's names (each read
/// once); None for a NULL name, which makes the value NULL as in
/// PostgreSQL.
fn zones_of(z: &ColumnarValue, rows: usize) -> Result<Vec<Option<Tz>>> {
    if let ColumnarValue::Scalar(v) = z {
        let tz = zone_argument(Some(v)).map(zone).transpose()?;
        return Ok(vec![tz; rows]);
    }
    let names = cast(&z.to_array(rows)?, &DataType::Utf8)?;
    let names = names.as_string::<i32>();
    let mut seen: HashMap<&str, Tz> = HashMap::new();
    names
        .iter()
        .map(|n| {
            n.map(|n| match seen.get(n) {
                Some(tz) => Ok(*tz),
                None => {
                    let tz = zone(n)?;
                    seen.insert(n, tz);
                    Ok(tz)
                }
            })
            .transpose()
        })
        .collect()
}

const MICROS: TimeUnit = TimeUnit::Microsecond;

impl ScalarUDFImpl for AtTimeZone {
    fn name(&self) -> &str {
        AT_TIME_ZONE
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let [x, _] = args else {
            return plan_err!("AT TIME ZONE takes a time and a zone");
        };
        let x = match x {
            DataType::Timestamp(_, tz) => DataType::Timestamp(MICROS, tz.clone()),
            // A date or text is a `timestamp`, as DataFusion read it.
            DataType::Date32
            | DataType::Date64
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Null => DataType::Timestamp(MICROS, None),
            other => return plan_err!("AT TIME ZONE takes a timestamp, not {other}"),
        };
        Ok(vec![x, DataType::Utf8])
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        // The type depends on the zone, a constant: see
        // `return_field_from_args`.
        plan_err!("{AT_TIME_ZONE}: the return type is read from its arguments")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let to = match args.arg_fields[0].data_type() {
            // A wall-clock time in the zone: the instant.
            // Labelled UTC: an instant has no zone in PostgreSQL, and what
            // is done with it next (`date_trunc`, a cast to `date`) is done
            // in the session's zone (`scheduler/src/zones.rs`), not in this
            // one (a label of the zone made `date_trunc('day', ts AT TIME
            // ZONE 'Asia/Tokyo')` Tokyo's day in a UTC session).
            DataType::Timestamp(_, None) => {
                if let Some(z) = zone_argument(args.scalar_arguments.get(1).copied().flatten()) {
                    zone(z)?;
                }
                DataType::Timestamp(MICROS, Some("UTC".into()))
            }
            // An instant: its wall-clock time in the zone.
            DataType::Timestamp(_, Some(_)) => DataType::Timestamp(MICROS, None),
            other => return plan_err!("AT TIME ZONE takes a timestamp, not {other}"),
        };
        Ok(Arc::new(Field::new(self.name(), to, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let zones = zones_of(&args.args[1], rows)?;
        let values = args.args[0].to_array(rows)?;
        // Each value as microseconds in `zone` (None: zone-less), mapped
        // with its row's zone.
        let micros = |zone: Option<&str>, f: &dyn Fn(i64, &Tz) -> Option<i64>| {
            let a = cast(&values, &DataType::Timestamp(MICROS, zone.map(Into::into)))?;
            let a = a
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .expect("cast to Timestamp(us) gives a TimestampMicrosecondArray");
            Ok::<_, datafusion::error::DataFusionError>(
                a.iter()
                    .zip(zones.iter())
                    .map(|(v, tz)| f(v?, tz.as_ref()?))
                    .collect::<TimestampMicrosecondArray>(),
            )
        };
        let out: ArrayRef = match values.data_type() {
            DataType::Timestamp(_, None) => {
                Arc::new(micros(None, &wall_clock_to_instant)?.with_timezone("UTC"))
            }
            DataType::Timestamp(_, Some(_)) => Arc::new(micros(Some("UTC"), &|v, tz| {
                as_datetime_with_timezone::<TimestampMicrosecondType>(v, *tz)
                    .map(|d| d.naive_local().and_utc().timestamp_micros())
            })?),
            other => return exec_err!("AT TIME ZONE takes a timestamp, not {other}"),
        };
        super::pg_text::shaped_like(&args.args, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_offsets_are_posix_zones() {
        // PostgreSQL 15: timestamp '2024-01-01 10:00' AT TIME ZONE '+05'
        // is 15:00 UTC; AT TIME ZONE '-03:30' is 06:30 UTC.
        assert_eq!(posix_offset("+05").as_deref(), Some("-05:00"));
        assert_eq!(posix_offset("-03:30").as_deref(), Some("+03:30"));
        assert_eq!(posix_offset("5").as_deref(), Some("-05:00"));
        assert_eq!(posix_offset("America/Lima"), None);
        assert_eq!(posix_offset("+5:3x"), None);
    }

    #[test]
    fn an_instant_is_shown_on_the_zones_wall_clock() {
        let f = at_time_zone();
        // 2026-03-08 02:30:00 UTC is 11:30 in Tokyo.
        let instant =
            ScalarValue::TimestampMicrosecond(Some(1_772_937_000_000_000), Some("UTC".into()));
        let arg_fields: Vec<FieldRef> = vec![
            Arc::new(Field::new("x", instant.data_type(), true)),
            Arc::new(Field::new("z", DataType::Utf8, true)),
        ];
        let out = f
            .invoke_with_args(ScalarFunctionArgs {
                args: vec![
                    ColumnarValue::Scalar(instant),
                    ColumnarValue::Scalar(ScalarValue::Utf8(Some("Asia/Tokyo".into()))),
                ],
                arg_fields,
                number_rows: 1,
                return_field: Arc::new(Field::new("r", DataType::Timestamp(MICROS, None), true)),
                config_options: Arc::new(Default::default()),
            })
            .unwrap();
        let ColumnarValue::Scalar(v) = out else {
            panic!("one value in, one out");
        };
        // The wall-clock time, as microseconds of a timestamp without zone.
        let wall = 1_772_937_000_000_000 + 9 * 3_600 * 1_000_000;
        assert_eq!(v, ScalarValue::TimestampMicrosecond(Some(wall), None));
        assert!(zone("Mars/Olympus").is_err());
    }

    #[test]
    fn skipped_and_repeated_hours_resolve_as_in_postgresql() {
        let ny = zone("America/New_York").unwrap();
        let micros = |s: &str| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
                .unwrap()
                .and_utc()
                .timestamp_micros()
        };
        for (wall, utc) in [
            // Skipped: the offset before the change, -05.
            ("2026-03-08 02:30:00", "2026-03-08 07:30:00"),
            // Repeated: the offset after it, -05.
            ("2026-11-01 01:30:00", "2026-11-01 06:30:00"),
            // Ordinary times on either side.
            ("2026-03-08 01:59:59", "2026-03-08 06:59:59"),
            ("2026-03-08 03:00:00", "2026-03-08 07:00:00"),
            ("2026-07-01 12:00:00", "2026-07-01 16:00:00"),
        ] {
            assert_eq!(
                wall_clock_to_instant(micros(wall), &ny),
                Some(micros(utc)),
                "{wall}"
            );
        }
    }
}
