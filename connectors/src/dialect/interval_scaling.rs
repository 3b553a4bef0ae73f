//! An interval times or divided by a number, as in PostgreSQL (issue 22).
//!
//! DataFusion 55 refuses `INTERVAL '1 day' * 2` and `i * INTERVAL '1
//! hour'` ("Cannot get result type for temporal operation"), and arrow
//! has no kernel for it. PostgreSQL multiplies the months, days and time
//! of the interval each by the number (a double), and cascades the
//! fraction of a month into days (30 to a month) and of a day into time
//! (`interval_mul`, `interval_div`): `INTERVAL '1 month' * 1.5` is `1 mon
//! 15 days`, `INTERVAL '1 day' / 3` is `08:00:00`.
//!
//! An expression planner plans `interval * number` (either order) as
//! `quipu_interval_mul(interval, number)` and `interval / number` as
//! `quipu_interval_div(interval, number)`; the functions are registered in
//! every session, so executors know them.
//!
//! The same planner subtracts two `timestamptz` stamped with different
//! zones (a source's column is UTC, a literal the session's zone), which
//! DataFusion refused while planning: the right one is cast to the left
//! one's type, the same instant.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, IntervalMonthDayNanoArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Float64Type, IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit,
};
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, Operator, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;

use crate::error::DataException;

const MUL: &str = "quipu_interval_mul";
const DIV: &str = "quipu_interval_div";

/// The two functions, for the session's registry.
pub fn functions() -> Vec<ScalarUDF> {
    vec![scaled(MUL), scaled(DIV)]
}

/// `quipu_interval_mul` or `quipu_interval_div`.
fn scaled(name: &'static str) -> ScalarUDF {
    ScalarUDF::new_from_impl(Scaled {
        name,
        signature: Signature::exact(
            vec![
                DataType::Interval(IntervalUnit::MonthDayNano),
                DataType::Float64,
            ],
            Volatility::Immutable,
        ),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Scaled {
    name: &'static str,
    signature: Signature,
}

impl ScalarUDFImpl for Scaled {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Interval(IntervalUnit::MonthDayNano))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let spans = cast(&arrays[0], &DataType::Interval(IntervalUnit::MonthDayNano))?;
        let spans = spans.as_primitive::<IntervalMonthDayNanoType>();
        let factors = cast(&arrays[1], &DataType::Float64)?;
        let factors = factors.as_primitive::<Float64Type>();
        let divide = self.name == DIV;
        let out = spans
            .iter()
            .zip(factors.iter())
            .map(|(s, f)| match (s, f) {
                (Some(s), Some(f)) => scale(s, f, divide).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<IntervalMonthDayNanoArray>>()?;
        super::pg_text::shaped_like(&args.args, Arc::new(out) as ArrayRef)
    }
}

/// PostgreSQL's `TSROUND`: to a microsecond's precision.
fn ts_round(x: f64) -> f64 {
    (x * 1e6).round_ties_even() / 1e6
}

fn out_of_range() -> datafusion::error::DataFusionError {
    DataException::error("22008", "interval out of range")
}

/// `span * factor` (or `/ factor`) as PostgreSQL's `interval_mul` /
/// `interval_div` compute it.
pub fn scale(
    span: IntervalMonthDayNano,
    factor: f64,
    divide: bool,
) -> Result<IntervalMonthDayNano> {
    if divide && factor == 0.0 {
        return Err(DataException::error("22012", "division by zero"));
    }
    let times = |x: f64| if divide { x / factor } else { x * factor };
    let fits_i32 = |x: f64| !x.is_nan() && x <= i32::MAX as f64 && x >= i32::MIN as f64;
    let (month, day) = (times(span.months as f64), times(span.days as f64));
    if !fits_i32(month) || !fits_i32(day) {
        return Err(out_of_range());
    }
    let (r_month, mut r_day) = (month as i32, day as i32);
    // The fractions cascade down: of a month into days (30 each), of a
    // day into seconds.
    let month_days = ts_round((month - r_month as f64) * 30.0);
    let mut secs = ts_round((day - r_day as f64 + month_days - month_days.trunc()) * 86_400.0);
    if secs.abs() >= 86_400.0 {
        let whole = (secs / 86_400.0) as i32;
        r_day = r_day.checked_add(whole).ok_or_else(out_of_range)?;
        secs -= whole as f64 * 86_400.0;
    }
    r_day = r_day
        .checked_add(month_days as i32)
        .ok_or_else(out_of_range)?;
    let micros = (times((span.nanoseconds / 1_000) as f64) + secs * 1e6).round_ties_even();
    if micros.is_nan() || micros >= i64::MAX as f64 || micros < i64::MIN as f64 {
        return Err(out_of_range());
    }
    // PostgreSQL keeps the time in microseconds; arrow in nanoseconds,
    // which hold about 292 years: beyond them Quipu refuses, and says so.
    let nanos = (micros as i64).checked_mul(1_000).ok_or_else(|| {
        DataException::error(
            "22008",
            "interval out of range: an interval's hours, minutes and seconds \
             hold at most about 292 years here (64-bit nanoseconds)",
        )
    })?;
    Ok(IntervalMonthDayNano::new(r_month, r_day, nanos))
}

/// Plans `interval * number`, `number * interval` and `interval /
/// number` as the functions above: DataFusion's SQL planner would refuse
/// them while typing the binary expression, so this runs where it plans
/// one (an expression planner, consulted before its own).
#[derive(Debug, Default)]
pub struct IntervalTimesNumber;

impl ExprPlanner for IntervalTimesNumber {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let ty = |e: &Expr| e.get_type(schema).ok();
        let interval = |e: &Expr| matches!(ty(e), Some(DataType::Interval(_)));
        let number = |e: &Expr| ty(e).is_some_and(|t| t.is_numeric());
        let call = |name, span: Expr, factor: Expr| {
            Ok(PlannerResult::Planned(Expr::ScalarFunction(
                ScalarFunction::new_udf(Arc::new(scaled(name)), vec![span, factor]),
            )))
        };
        let RawBinaryExpr { op, left, right } = expr;
        match op {
            BinaryOperator::Multiply if interval(&left) && number(&right) => call(MUL, left, right),
            BinaryOperator::Multiply if number(&left) && interval(&right) => call(MUL, right, left),
            BinaryOperator::Divide if interval(&left) && number(&right) => call(DIV, left, right),
            // Two instants stamped with different zones (a source's
            // `timestamptz` is UTC, a `TIMESTAMPTZ '...'` literal the
            // session's): DataFusion refused to subtract them ("Cannot
            // coerce arithmetic expression"). The right one is read as the
            // left one's type, the same instant.
            BinaryOperator::Minus => match (ty(&left), ty(&right)) {
                (
                    Some(DataType::Timestamp(unit, Some(lz))),
                    Some(DataType::Timestamp(_, Some(rz))),
                ) if lz != rz => {
                    let to = DataType::Timestamp(unit, Some(lz));
                    Ok(PlannerResult::Planned(Expr::BinaryExpr(
                        datafusion::logical_expr::BinaryExpr::new(
                            Box::new(left),
                            datafusion::logical_expr::Operator::Minus,
                            Box::new(Expr::Cast(datafusion::logical_expr::expr::Cast::new(
                                Box::new(right),
                                to,
                            ))),
                        ),
                    )))
                }
                _ => Ok(PlannerResult::Original(RawBinaryExpr { op, left, right })),
            },
            // A boolean compared with a text literal that is a boolean
            // (`b = 't'`, `(x > 3) = 'yes'`): DataFusion's planner refused
            // it while typing a select list's expression ("Cannot infer
            // common argument type for comparison operation Boolean =
            // Utf8"); a filter's reached `float_literals`, which reads it.
            BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq => {
                let boolean = |e: &Expr| ty(e) == Some(DataType::Boolean);
                let (left, right) = match (
                    super::float_literals::boolean_literal(&left),
                    super::float_literals::boolean_literal(&right),
                ) {
                    (Some(l), _) if boolean(&right) => (l, right),
                    (_, Some(r)) if boolean(&left) => (left, r),
                    _ => {
                        // Text no boolean is spelt as: PostgreSQL's error.
                        for (b, t) in [(&left, &right), (&right, &left)] {
                            if let Expr::Literal(
                                datafusion::common::ScalarValue::Utf8(Some(text)),
                                _,
                            ) = t
                                && boolean(b)
                            {
                                return Err(DataException::error(
                                    "22P02",
                                    &format!("invalid input syntax for type boolean: \"{text}\""),
                                ));
                            }
                        }
                        return Ok(PlannerResult::Original(RawBinaryExpr { op, left, right }));
                    }
                };
                let op = match op {
                    BinaryOperator::Eq => Operator::Eq,
                    BinaryOperator::NotEq => Operator::NotEq,
                    BinaryOperator::Lt => Operator::Lt,
                    BinaryOperator::LtEq => Operator::LtEq,
                    BinaryOperator::Gt => Operator::Gt,
                    _ => Operator::GtEq,
                };
                Ok(PlannerResult::Planned(Expr::BinaryExpr(
                    datafusion::logical_expr::BinaryExpr::new(Box::new(left), op, Box::new(right)),
                )))
            }
            op => Ok(PlannerResult::Original(RawBinaryExpr { op, left, right })),
        }
    }
}

/// `avg` of intervals, as PostgreSQL's `interval_avg`: the months, days
/// and time summed apart, then the sum divided by the count as
/// `interval_div` divides (the fractions cascade down: `avg` of `1 mon`
/// and `0` is `15 days`). DataFusion has no `avg` of an interval
/// (`function avg(interval) does not exist`). `pg_numeric::avg` hands
/// intervals here.
#[derive(Debug, Default)]
pub(super) struct IntervalAvg {
    months: i64,
    days: i64,
    nanos: i128,
    count: i64,
}

impl IntervalAvg {
    /// Its state's fields (count, months, days, nanoseconds), named for
    /// the aggregate `name`, in the order its `state` gives them.
    pub(super) fn state_fields(name: &str) -> Vec<datafusion::arrow::datatypes::FieldRef> {
        use datafusion::arrow::datatypes::Field;
        [
            ("count", DataType::Int64),
            ("months", DataType::Int64),
            ("days", DataType::Int64),
            ("nanoseconds", DataType::Decimal128(38, 0)),
        ]
        .into_iter()
        .map(|(part, t)| {
            Arc::new(Field::new(
                datafusion::logical_expr::utils::format_state_name(name, part),
                t,
                true,
            ))
        })
        .collect()
    }

    fn add(&mut self, values: &ArrayRef, sign: i64) {
        for v in values
            .as_primitive::<IntervalMonthDayNanoType>()
            .iter()
            .flatten()
        {
            self.months += sign * v.months as i64;
            self.days += sign * v.days as i64;
            self.nanos += sign as i128 * v.nanoseconds as i128;
            self.count += sign;
        }
    }
}

impl datafusion::logical_expr::Accumulator for IntervalAvg {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], 1);
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], -1);
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<datafusion::common::ScalarValue> {
        use datafusion::common::ScalarValue;
        if self.count == 0 {
            return Ok(ScalarValue::IntervalMonthDayNano(None));
        }
        let sum = match (
            i32::try_from(self.months),
            i32::try_from(self.days),
            i64::try_from(self.nanos),
        ) {
            (Ok(m), Ok(d), Ok(n)) => IntervalMonthDayNano::new(m, d, n),
            _ => return Err(out_of_range()),
        };
        Ok(ScalarValue::IntervalMonthDayNano(Some(scale(
            sum,
            self.count as f64,
            true,
        )?)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<datafusion::common::ScalarValue>> {
        use datafusion::common::ScalarValue;
        Ok(vec![
            ScalarValue::Int64(Some(self.count)),
            ScalarValue::Int64(Some(self.months)),
            ScalarValue::Int64(Some(self.days)),
            ScalarValue::Decimal128(Some(self.nanos), 38, 0),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        use datafusion::arrow::datatypes::{Decimal128Type, Int64Type};
        let int = |k: usize| states[k].as_primitive::<Int64Type>();
        let (count, months, days) = (int(0), int(1), int(2));
        let nanos = states[3].as_primitive::<Decimal128Type>();
        for r in 0..states[0].len() {
            self.count += count.value(r);
            self.months += months.value(r);
            self.days += days.value(r);
            self.nanos += nanos.value(r);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000_000_000;

    #[test]
    fn fractions_cascade_down_as_in_postgresql() {
        let month = IntervalMonthDayNano::new(1, 0, 0);
        // SELECT interval '1 month' * 1.5: 1 mon 15 days
        assert_eq!(
            scale(month, 1.5, false).unwrap(),
            IntervalMonthDayNano::new(1, 15, 0)
        );
        // SELECT interval '1 day' / 3: 08:00:00
        assert_eq!(
            scale(IntervalMonthDayNano::new(0, 1, 0), 3.0, true).unwrap(),
            IntervalMonthDayNano::new(0, 0, 8 * HOUR)
        );
        // SELECT interval '1 mon 2 days 03:00' * 2
        assert_eq!(
            scale(IntervalMonthDayNano::new(1, 2, 3 * HOUR), 2.0, false).unwrap(),
            IntervalMonthDayNano::new(2, 4, 6 * HOUR)
        );
        assert!(scale(month, 0.0, true).is_err());
        assert!(scale(IntervalMonthDayNano::new(0, 1, 0), 3e9, false).is_err());
    }
}
