//! The difference of two timestamps is an `interval`, as in PostgreSQL
//! (issue 22).
//!
//! DataFusion 55 answers `ts1 - ts2` with an Arrow `Duration`, a type no
//! PostgreSQL client knows. PostgreSQL's `timestamp_mi` gives an interval
//! whose whole 24-hour spans are days (`justify_hours`): `9563 days
//! 02:30:00`, days and time of one sign. `scheduler/src/pg_types.rs` plans
//! such differences as `quipu_interval_of_duration(ts1 - ts2)`, this
//! function, which is registered in every session (so executors know it).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, DurationNanosecondArray, IntervalMonthDayNanoArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, IntervalMonthDayNano, IntervalUnit, TimeUnit};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The function's name in plans.
pub const INTERVAL_OF_DURATION: &str = "quipu_interval_of_duration";

const DAY_NANOS: i64 = 86_400 * 1_000_000_000;

#[derive(Debug, PartialEq, Eq, Hash)]
struct IntervalOfDuration {
    signature: Signature,
}

/// `quipu_interval_of_duration(d)`: a duration as PostgreSQL's interval.
pub fn interval_of_duration() -> ScalarUDF {
    ScalarUDF::new_from_impl(IntervalOfDuration {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

/// `nanos` as days and the rest, both toward zero (one sign), as
/// PostgreSQL's `justify_hours`.
pub fn justified(nanos: i64) -> IntervalMonthDayNano {
    IntervalMonthDayNano::new(0, (nanos / DAY_NANOS) as i32, nanos % DAY_NANOS)
}

impl ScalarUDFImpl for IntervalOfDuration {
    fn name(&self) -> &str {
        INTERVAL_OF_DURATION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match &args[0] {
            DataType::Duration(_) | DataType::Null => {
                Ok(DataType::Interval(IntervalUnit::MonthDayNano))
            }
            other => exec_err!("{INTERVAL_OF_DURATION} takes a duration, not {other}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let one = |a: &ArrayRef| -> Result<ArrayRef> {
            // Every unit as nanoseconds: a duration of seconds beyond
            // i64 nanoseconds (292 years) is an overflow error here.
            let a = cast(a, &DataType::Duration(TimeUnit::Nanosecond))?;
            let d = a
                .as_any()
                .downcast_ref::<DurationNanosecondArray>()
                .expect("cast to Duration(ns) gives a DurationNanosecondArray");
            let out: IntervalMonthDayNanoArray = d.iter().map(|v| v.map(justified)).collect();
            Ok(Arc::new(out))
        };
        super::pg_text::unary(&args.args[0], one)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_days_are_days_and_both_parts_share_the_sign() {
        let h = 3_600 * 1_000_000_000_i64;
        assert_eq!(justified(50 * h), IntervalMonthDayNano::new(0, 2, 2 * h));
        assert_eq!(justified(-50 * h), IntervalMonthDayNano::new(0, -2, -2 * h));
        assert_eq!(justified(h), IntervalMonthDayNano::new(0, 0, h));
    }
}
