//! `date_trunc(unit, interval)` as PostgreSQL's `interval_trunc` computes
//! it (issue 22): the interval's fields below `unit` set to zero, its
//! years cut to a whole decade, century or millennium (toward zero, as C
//! divides), its months to a whole quarter. DataFusion 55's `date_trunc`
//! takes only timestamps and times: "function date_trunc(text, interval)
//! does not exist" (the most frequent refusal of
//! `tests/tools/datetime_fuzz.py`). The wrapper keeps DataFusion's
//! function under its name for every other type.
//!
//! An interval is split as PostgreSQL splits one (`interval2itm`): years
//! and months from its months, its days as they are (never carried into
//! months), hours, minutes, seconds and the fraction from its time, each
//! keeping the sign of what it came from. `week` is PostgreSQL's `0A000`
//! ("Months usually have fractional weeks"), a word that names no unit its
//! `22023`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, IntervalMonthDayNanoArray};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit,
};
use datafusion::common::Result;
use datafusion::common::types::logical_string;
use datafusion::logical_expr::{
    Coercion, ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, TypeSignature, TypeSignatureClass, Volatility,
};

use crate::error::DataException;

const MDN: DataType = DataType::Interval(IntervalUnit::MonthDayNano);

/// DataFusion's `date_trunc`, and PostgreSQL's of an interval.
pub fn date_trunc() -> ScalarUDF {
    let inner = datafusion::functions::datetime::date_trunc();
    let forms = [TypeSignatureClass::Interval, TypeSignatureClass::Duration].map(|class| {
        TypeSignature::Coercible(vec![
            Coercion::new_exact(TypeSignatureClass::Native(logical_string())),
            Coercion::new_exact(class),
        ])
    });
    ScalarUDF::new_from_impl(PgDateTrunc {
        signature: super::pg_functions::signature_with(&inner, forms),
        inner,
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgDateTrunc {
    inner: Arc<ScalarUDF>,
    signature: Signature,
}

impl ScalarUDFImpl for PgDateTrunc {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args.get(1) {
            Some(DataType::Interval(_) | DataType::Duration(_)) => Ok(MDN),
            _ => self.inner.return_type(args),
        }
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        match args.arg_fields.get(1).map(|f| f.data_type()) {
            Some(DataType::Interval(_) | DataType::Duration(_)) => {
                Ok(Arc::new(Field::new(self.name(), MDN, true)))
            }
            _ => self.inner.inner().return_field_from_args(args),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !matches!(
            args.args[1].data_type(),
            DataType::Interval(_) | DataType::Duration(_)
        ) {
            return self.inner.invoke_with_args(args);
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let units = datafusion::arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
        let values = match arrays[1].data_type() {
            DataType::Duration(_) => days_and_time(&arrays[1])?,
            _ => datafusion::arrow::compute::cast(&arrays[1], &MDN)?,
        };
        let (units, values) = (
            units.as_string::<i32>(),
            values.as_primitive::<IntervalMonthDayNanoType>(),
        );
        let out = (0..values.len())
            .map(|i| {
                if units.is_null(i) || values.is_null(i) {
                    return Ok(None);
                }
                truncated(units.value(i), values.value(i)).map(Some)
            })
            .collect::<Result<IntervalMonthDayNanoArray>>()?;
        super::pg_text::shaped_like(&args.args, Arc::new(out))
    }
}

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// A duration (`timestamp - timestamp`) as the interval PostgreSQL's
/// subtraction gives: whole days, then the time (`intervals::justified`,
/// as `quipu_interval_of_duration`). Arrow's cast kept it all as time.
fn days_and_time(durations: &Arc<dyn Array>) -> Result<Arc<dyn Array>> {
    use datafusion::arrow::datatypes::{DurationNanosecondType, TimeUnit};
    let nanos =
        datafusion::arrow::compute::cast(durations, &DataType::Duration(TimeUnit::Nanosecond))?;
    let out: IntervalMonthDayNanoArray = nanos
        .as_primitive::<DurationNanosecondType>()
        .iter()
        .map(|d| d.map(super::intervals::justified))
        .collect();
    Ok(Arc::new(out))
}

/// PostgreSQL's `interval_trunc` of `v` to `unit` (any spelling
/// `date_trunc` reads).
fn truncated(unit: &str, v: IntervalMonthDayNano) -> Result<IntervalMonthDayNano> {
    let Some(name) = super::interval_input::trunc_unit(unit) else {
        return Err(DataException::error(
            "22023",
            &format!("unit \"{unit}\" not recognized for type interval"),
        ));
    };
    // How far up the truncation reaches, each level clearing the ones
    // below it, as `interval_trunc`'s cases fall through.
    let level = match name {
        "microsecond" => 0,
        "millisecond" => 1,
        "second" => 2,
        "minute" => 3,
        "hour" => 4,
        "day" => 5,
        "month" => 6,
        "quarter" => 7,
        "year" => 8,
        "decade" => 9,
        "century" => 10,
        "millennium" => 11,
        _ => {
            return Err(DataException::error(
                "0A000",
                &format!(
                    "unit \"{unit}\" not supported for type interval: months usually have \
                     fractional weeks"
                ),
            ));
        }
    };
    let (mut year, mut month) = (v.months / 12, v.months % 12);
    let mut day = v.days;
    let seconds = v.nanoseconds / NANOS_PER_SECOND;
    let mut fraction = v.nanoseconds % NANOS_PER_SECOND;
    let (mut hour, mut minute, mut second) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    if level >= 11 {
        year = year / 1000 * 1000;
    }
    if level >= 10 {
        year = year / 100 * 100;
    }
    if level >= 9 {
        year = year / 10 * 10;
    }
    if level >= 8 {
        month = 0;
    }
    if level >= 7 {
        month = month / 3 * 3;
    }
    if level >= 6 {
        day = 0;
    }
    if level >= 5 {
        hour = 0;
    }
    if level >= 4 {
        minute = 0;
    }
    if level >= 3 {
        second = 0;
    }
    fraction = match level {
        0 => fraction / 1_000 * 1_000,
        1 => fraction / 1_000_000 * 1_000_000,
        _ => 0,
    };
    Ok(IntervalMonthDayNano::new(
        year * 12 + month,
        day,
        ((hour * 60 + minute) * 60 + second) * NANOS_PER_SECOND + fraction,
    ))
}

/// The name of [`years_into`].
pub const YEARS_INTO: &str = "quipu_trunc_years";

/// `quipu_trunc_years(x, year, n)`: how many years `date_trunc` to a
/// decade (`n` 10), century (100) or millennium (1000) takes off `x`
/// after its truncation to the year, `year` being `x`'s (in the session's
/// zone, `extract(year FROM x)`): of a timestamp or a date, whose
/// centuries begin with year 1, `(year - 1) % n` (a decade's `year % 10`);
/// of an interval, whose are counted from zero, `year % n`, the remainder
/// of PostgreSQL's division toward zero. `scheduler`'s syntax rewrite of
/// these units writes `date_trunc('year', x) - quipu_trunc_years(...) *
/// INTERVAL '1 year'`, which knows no types.
pub fn years_into() -> ScalarUDF {
    ScalarUDF::new_from_impl(YearsInto {
        signature: Signature::any(3, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct YearsInto {
    signature: Signature,
}

impl ScalarUDFImpl for YearsInto {
    fn name(&self) -> &str {
        YEARS_INTO
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::array::Int32Array;
        use datafusion::arrow::datatypes::Int64Type;
        let interval = matches!(args.args[0].data_type(), DataType::Interval(_));
        let arrays = ColumnarValue::values_to_arrays(&args.args[1..])?;
        let years = datafusion::arrow::compute::cast(&arrays[0], &DataType::Int64)?;
        let period = datafusion::arrow::compute::cast(&arrays[1], &DataType::Int64)?;
        let (years, period) = (
            years.as_primitive::<Int64Type>(),
            period.as_primitive::<Int64Type>(),
        );
        let out: Int32Array = (0..years.len())
            .map(|i| {
                if years.is_null(i) || period.is_null(i) || period.value(i) == 0 {
                    return None;
                }
                let (y, n) = (years.value(i), period.value(i));
                let into = match interval || n == 10 {
                    true => y % n,
                    false => (y - 1) % n,
                };
                i32::try_from(into).ok()
            })
            .collect();
        super::pg_text::shaped_like(&args.args[1..2], Arc::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::truncated;
    use datafusion::arrow::datatypes::IntervalMonthDayNano;

    const H: i64 = 3_600_000_000_000;

    fn iv(months: i32, days: i32, nanos: i64) -> IntervalMonthDayNano {
        IntervalMonthDayNano::new(months, days, nanos)
    }

    /// Each checked against PostgreSQL 15 (`SELECT date_trunc(unit,
    /// interval '...')`).
    #[test]
    fn fields_below_the_unit_are_cleared() {
        // 1234 years 5 mons 6 days 07:08:09.123456
        let v = iv(1234 * 12 + 5, 6, 7 * H + 8 * 60_000_000_000 + 9_123_456_789);
        for (unit, want) in [
            ("millennium", iv(1000 * 12, 0, 0)),
            ("centuries", iv(1200 * 12, 0, 0)),
            ("decade", iv(1230 * 12, 0, 0)),
            ("year", iv(1234 * 12, 0, 0)),
            ("qtr", iv(1234 * 12 + 3, 0, 0)),
            ("month", iv(1234 * 12 + 5, 0, 0)),
            ("day", iv(1234 * 12 + 5, 6, 0)),
            ("hour", iv(1234 * 12 + 5, 6, 7 * H)),
            ("min", iv(1234 * 12 + 5, 6, 7 * H + 8 * 60_000_000_000)),
            (
                "seconds",
                iv(1234 * 12 + 5, 6, 7 * H + 8 * 60_000_000_000 + 9_000_000_000),
            ),
            (
                "ms",
                iv(1234 * 12 + 5, 6, 7 * H + 8 * 60_000_000_000 + 9_123_000_000),
            ),
            (
                "microseconds",
                iv(1234 * 12 + 5, 6, 7 * H + 8 * 60_000_000_000 + 9_123_456_000),
            ),
        ] {
            assert_eq!(truncated(unit, v).unwrap(), want, "{unit}");
        }
        // Toward zero: -1 year -5 mons -25:30 is -1 year -3 mons, -1 day
        // -25:00 by the hour (days are never carried).
        let v = iv(-17, -1, -(25 * H + H / 2));
        assert_eq!(truncated("quarter", v).unwrap(), iv(-15, 0, 0));
        assert_eq!(truncated("hour", v).unwrap(), iv(-17, -1, -25 * H));
        assert_eq!(
            truncated("decade", iv(-123 * 12, 0, 0)).unwrap(),
            iv(-120 * 12, 0, 0)
        );
    }

    #[test]
    fn weeks_and_other_words_are_refused() {
        let e = truncated("week", iv(1, 1, 1)).unwrap_err().to_string();
        assert!(
            e.contains("unit \"week\" not supported for type interval"),
            "{e}"
        );
        let e = truncated("fortnight", iv(1, 1, 1)).unwrap_err().to_string();
        assert!(
            e.contains("unit \"fortnight\" not recognized for type interval"),
            "{e}"
        );
    }
}
