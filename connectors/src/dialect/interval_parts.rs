//! `extract(field FROM interval)` and `date_part('field', interval)` with
//! PostgreSQL's values (issue 22; `interval_part` in PostgreSQL's
//! `utils/adt/timestamp.c`).
//!
//! DataFusion 55 counted a year of months as 360 days in the epoch
//! (`extract(epoch FROM interval '1 year')` was 31104000, PostgreSQL's is
//! 31557600: 365.25 days) and dropped the fraction of the seconds (`1` for
//! `interval '1.5 s'`). `quipu_interval_part(field, x)` gives the field
//! exactly, as a `numeric(38,6)`; `scheduler/src/extract.rs` casts it to
//! `extract`'s numeric or `date_part`'s double.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Decimal128Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, IntervalMonthDayNanoType, IntervalUnit};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::DataException;

/// The function's name in plans.
pub const INTERVAL_PART: &str = "quipu_interval_part";

/// `quipu_interval_part(field, x)`: PostgreSQL's `field` of the interval
/// `x`, a `numeric(38,6)`.
pub fn interval_part() -> ScalarUDF {
    ScalarUDF::new_from_impl(IntervalPart {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IntervalPart {
    signature: Signature,
}

const MICROS_PER_SECOND: i128 = 1_000_000;
const MICROS_PER_MINUTE: i128 = 60 * MICROS_PER_SECOND;
const MICROS_PER_HOUR: i128 = 60 * MICROS_PER_MINUTE;
const MICROS_PER_DAY: i128 = 24 * MICROS_PER_HOUR;

/// The places a field has in `extract`'s numeric: PostgreSQL's
/// `interval_part` gives the seconds and the epoch with six, the
/// milliseconds with three, every other field whole.
pub fn extract_places(field: &str) -> i8 {
    match field {
        "epoch" | "second" | "seconds" => 6,
        "millisecond" | "milliseconds" => 3,
        _ => 0,
    }
}

/// `field` of the interval (`months`, `days`, `micros`), in millionths.
fn part(field: &str, months: i32, days: i32, micros: i64) -> Result<i128> {
    let (months, days, micros) = (months as i128, days as i128, micros as i128);
    let year = months / 12;
    let whole = |v: i128| v * MICROS_PER_SECOND;
    Ok(match field {
        // 365.25 days a year of months, 30 days a month (C's truncating
        // division, as PostgreSQL's).
        "epoch" => {
            year * 31_557_600 * MICROS_PER_SECOND
                + (months % 12) * 30 * MICROS_PER_DAY
                + days * MICROS_PER_DAY
                + micros
        }
        "microsecond" | "microseconds" => whole(micros % MICROS_PER_MINUTE),
        "millisecond" | "milliseconds" => (micros % MICROS_PER_MINUTE) * 1000,
        "second" | "seconds" => micros % MICROS_PER_MINUTE,
        "minute" | "minutes" => whole(micros / MICROS_PER_MINUTE % 60),
        "hour" | "hours" => whole(micros / MICROS_PER_HOUR),
        "day" | "days" => whole(days),
        "month" | "months" => whole(months % 12),
        "quarter" => whole((months % 12) / 3 + 1),
        "year" | "years" => whole(year),
        "decade" | "decades" => whole(year / 10),
        "century" | "centuries" => whole(year / 100),
        "millennium" | "millennia" => whole(year / 1000),
        other => {
            return Err(DataException::error(
                "0A000",
                &format!("unit \"{other}\" not supported for type interval"),
            ));
        }
    })
}

impl ScalarUDFImpl for IntervalPart {
    fn name(&self) -> &str {
        INTERVAL_PART
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let interval = DataType::Interval(IntervalUnit::MonthDayNano);
        match args {
            [f, x]
                if (f.is_string() || f.is_null())
                    && matches!(
                        x,
                        DataType::Interval(_) | DataType::Duration(_) | DataType::Null
                    ) =>
            {
                Ok(vec![DataType::Utf8, interval])
            }
            _ => super::pg_functions::no_function(self.name(), args),
        }
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Decimal128(38, 6))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let field = match &args.args[0] {
            ColumnarValue::Scalar(s) => match s {
                ScalarValue::Utf8(Some(f)) => Some(f.to_ascii_lowercase()),
                _ => None,
            },
            ColumnarValue::Array(_) => None,
        };
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let fields = cast(&arrays[0], &DataType::Utf8)?;
        let fields = fields.as_string::<i32>();
        let x = arrays[1].as_primitive::<IntervalMonthDayNanoType>();
        let out = (0..x.len())
            .map(|r| {
                if x.is_null(r) || fields.is_null(r) {
                    return Ok(None);
                }
                let f = match &field {
                    Some(f) => f.clone(),
                    None => fields.value(r).to_ascii_lowercase(),
                };
                let v = x.value(r);
                part(&f, v.months, v.days, v.nanoseconds / 1000).map(Some)
            })
            .collect::<Result<Decimal128Array>>()?
            .with_precision_and_scale(38, 6)?;
        super::pg_text::shaped_like(&args.args, Arc::new(out))
    }
}

/// The name of [`interval_key`].
pub const INTERVAL_KEY: &str = "quipu_interval_key";

/// `quipu_interval_key(x)`: the span PostgreSQL compares, sorts and
/// groups intervals by (`interval_cmp_value`: a month is 30 days, a day
/// 24 hours), in nanoseconds, as a `numeric(38,0)`. Arrow compares an
/// interval field by field, so `INTERVAL '30 days' = INTERVAL '1 mon'`
/// was false and `INTERVAL '1 year' > INTERVAL '364 days'` true;
/// `scheduler/src/pg_types.rs` compares and sorts intervals by this key.
pub fn interval_key() -> ScalarUDF {
    ScalarUDF::new_from_impl(IntervalKey {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IntervalKey {
    signature: Signature,
}

/// An interval's span in nanoseconds, as PostgreSQL weighs its fields.
pub fn span(months: i32, days: i32, nanos: i64) -> i128 {
    const DAY: i128 = 86_400 * 1_000_000_000;
    (months as i128 * 30 + days as i128) * DAY + nanos as i128
}

impl ScalarUDFImpl for IntervalKey {
    fn name(&self) -> &str {
        INTERVAL_KEY
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match args {
            [DataType::Interval(_) | DataType::Duration(_) | DataType::Null] => {
                Ok(vec![DataType::Interval(IntervalUnit::MonthDayNano)])
            }
            _ => super::pg_functions::no_function(self.name(), args),
        }
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Decimal128(38, 0))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let x = arrays[0].as_primitive::<IntervalMonthDayNanoType>();
        let out: Decimal128Array = x
            .iter()
            .map(|v| v.map(|v| span(v.months, v.days, v.nanoseconds)))
            .collect::<Decimal128Array>()
            .with_precision_and_scale(38, 0)?;
        super::pg_text::shaped_like(&args.args, Arc::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::part;

    /// Expected values from PostgreSQL 15 (psql), in millionths.
    #[test]
    fn parts_are_postgresqls() {
        // extract(epoch from interval '1 year'): 31557600.000000
        assert_eq!(part("epoch", 12, 0, 0).unwrap(), 31_557_600_000_000);
        // extract(epoch from interval '-1 mon 1 day 1.5 s'): -2505598.500000
        assert_eq!(part("epoch", -1, 1, 1_500_000).unwrap(), -2_505_598_500_000);
        // extract(second from interval '1.5 s'): 1.500000
        assert_eq!(part("second", 0, 0, 1_500_000).unwrap(), 1_500_000);
        // extract(millisecond from interval '61.5 s'): 1500.000
        assert_eq!(
            part("milliseconds", 0, 0, 61_500_000).unwrap(),
            1_500_000_000
        );
        // extract(hour from interval '-50 hours'): -50
        assert_eq!(part("hour", 0, 0, -180_000_000_000).unwrap(), -50_000_000);
        // extract(quarter from interval '-5 mons'): -1+1 = 0
        assert_eq!(part("quarter", -5, 0, 0).unwrap(), 0);
        // extract(year from interval '-18 mons'): -1
        assert_eq!(part("year", -18, 0, 0).unwrap(), -1_000_000);
        assert!(part("dow", 0, 0, 0).is_err());
    }

    /// PostgreSQL: interval '30 days' = interval '1 mon' (true), '24
    /// hours' = '1 day' (true), '1 year' > '364 days' (true: 360 days).
    #[test]
    fn spans_weigh_as_postgresqls() {
        use super::span;
        let hour = 3_600_000_000_000i64;
        assert_eq!(span(0, 30, 0), span(1, 0, 0));
        assert_eq!(span(0, 0, 24 * hour), span(0, 1, 0));
        assert!(span(12, 0, 0) < span(0, 364, 0));
        assert!(span(-1, 31, 0) > span(0, 0, 0));
    }
}
