//! PostgreSQL functions DataFusion 55 does not have, with PostgreSQL's
//! types and values (issue 22; they were refused as `Invalid function`):
//!
//! - `sign(x)`: -1, 0 or 1; a `numeric` for a numeric argument, else a
//!   `double precision` (an integer argument too, as PostgreSQL resolves
//!   it), and 0 for NaN (PostgreSQL's `dsign` compares).
//! - `div(y, x)`: the integer quotient of two numerics (integers are read
//!   as numerics), cut toward zero, as a `numeric`; `div` of doubles does
//!   not exist in PostgreSQL and is refused here too.
//! - `age(a, b)` and `age(a)`: PostgreSQL's symbolic difference of two
//!   timestamps (years, months and days field by field, borrowing from the
//!   month of the earlier argument), `age(a)` from today's midnight.
//!   A `timestamptz` is broken down on its zone's wall clock, as
//!   PostgreSQL does in the session's zone.
//! - `pg_typeof(x)`: the name of the type of `x` as PostgreSQL prints it
//!   ([`pg_type_name`], the type a client is told), as text.

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Float64Array, IntervalMonthDayNanoArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, IntervalMonthDayNano, IntervalUnit, TimeUnit,
};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    Cast, ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::pg_numeric::scale_of;
use crate::error::DataException;

/// The functions, for the session's registry.
pub fn functions() -> Vec<ScalarUDF> {
    [Kind::Sign, Kind::Div, Kind::Age, Kind::TypeOf]
        .into_iter()
        .map(|kind| {
            ScalarUDF::new_from_impl(PgFunction {
                kind,
                signature: Signature::user_defined(Volatility::Immutable),
            })
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Kind {
    Sign,
    Div,
    Age,
    TypeOf,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgFunction {
    kind: Kind,
    signature: Signature,
}

/// PostgreSQL's name of the type a value of `t` is to a client, as
/// `pg_typeof` and PostgreSQL's errors print it (Arrow's name where
/// PostgreSQL has none).
pub fn pg_type_name(t: &DataType) -> String {
    match t {
        DataType::Null => "unknown".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => "numeric".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "bytea".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time without time zone".into(),
        DataType::Timestamp(_, None) => "timestamp without time zone".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone".into(),
        DataType::Interval(_) | DataType::Duration(_) => "interval".into(),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            format!("{}[]", pg_type_name(f.data_type()))
        }
        DataType::Struct(_) => "record".into(),
        DataType::Dictionary(_, v) => pg_type_name(v),
        t => t.to_string(),
    }
}

/// `inner`'s signature with the `forms` PostgreSQL's function takes
/// beside it (`date_trunc` of an interval, `length` of a `bytea`), for a
/// wrapper that computes those itself and leaves the rest to `inner`.
pub(super) fn signature_with(
    inner: &ScalarUDF,
    forms: impl IntoIterator<Item = datafusion::logical_expr::TypeSignature>,
) -> Signature {
    let mut all = match &inner.signature().type_signature {
        datafusion::logical_expr::TypeSignature::OneOf(forms) => forms.clone(),
        other => vec![other.clone()],
    };
    all.extend(forms);
    Signature::one_of(all, inner.signature().volatility)
}

/// No such function in PostgreSQL: its words (42883).
pub(super) fn no_function(name: &str, args: &[DataType]) -> Result<Vec<DataType>> {
    let names: Vec<String> = args.iter().map(pg_type_name).collect();
    plan_err!("function {name}({}) does not exist", names.join(", "))
}

/// An integer or decimal read as a decimal (None: neither).
fn as_decimal(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Decimal128(..) => Some(t.clone()),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Some(DataType::Decimal128(5, 0)),
        DataType::Int32 | DataType::UInt16 => Some(DataType::Decimal128(10, 0)),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 | DataType::Null => {
            Some(DataType::Decimal128(20, 0))
        }
        _ => None,
    }
}

/// A timestamp argument of `age` (None: not one).
fn as_timestamp(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Timestamp(_, tz) => Some(DataType::Timestamp(TimeUnit::Microsecond, tz.clone())),
        DataType::Date32 | DataType::Date64 | DataType::Null => {
            Some(DataType::Timestamp(TimeUnit::Microsecond, None))
        }
        _ => None,
    }
}

impl ScalarUDFImpl for PgFunction {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Sign => "sign",
            Kind::Div => "div",
            Kind::Age => "age",
            Kind::TypeOf => "pg_typeof",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.name();
        let coerced: Option<Vec<DataType>> = match (self.kind, args) {
            (Kind::Sign, [DataType::Decimal128(..)]) => Some(args.to_vec()),
            (Kind::Sign, [t]) if t.is_numeric() || *t == DataType::Null => {
                Some(vec![DataType::Float64])
            }
            (Kind::Div, [a, b]) => as_decimal(a).zip(as_decimal(b)).map(|(a, b)| vec![a, b]),
            (Kind::Age, [_] | [_, _]) => args.iter().map(as_timestamp).collect(),
            (Kind::TypeOf, [_]) => Some(args.to_vec()),
            _ => None,
        };
        match coerced {
            Some(c) => Ok(c),
            None => no_function(name, args),
        }
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match (self.kind, args.first()) {
            (Kind::Sign, Some(DataType::Decimal128(..))) => DataType::Decimal128(1, 0),
            (Kind::Sign, _) => DataType::Float64,
            (Kind::Div, _) => DataType::Decimal128(38, 0),
            (Kind::Age, _) => DataType::Interval(IntervalUnit::MonthDayNano),
            (Kind::TypeOf, _) => DataType::Utf8,
        })
    }

    /// `age(x)` is `age(today at midnight, x)`: today is the query's
    /// (DataFusion folds `current_date()` once per query).
    fn simplify(&self, args: Vec<Expr>, _: &SimplifyContext) -> Result<ExprSimplifyResult> {
        if self.kind != Kind::Age || args.len() != 1 {
            return Ok(ExprSimplifyResult::Original(args));
        }
        let today = datafusion::functions::expr_fn::current_date();
        let midnight = Expr::Cast(Cast::new(
            Box::new(today),
            DataType::Timestamp(TimeUnit::Microsecond, None),
        ));
        Ok(ExprSimplifyResult::Simplified(Expr::ScalarFunction(
            datafusion::logical_expr::expr::ScalarFunction::new_udf(
                Arc::new(ScalarUDF::new_from_impl(PgFunction {
                    kind: Kind::Age,
                    signature: self.signature.clone(),
                })),
                vec![midnight, args.into_iter().next().expect("one argument")],
            ),
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out = match self.kind {
            Kind::Sign => sign(&arrays[0])?,
            Kind::Div => div(&arrays[0], &arrays[1])?,
            Kind::Age => {
                let (a, b) = match arrays.as_slice() {
                    [a, b] => (a, b),
                    _ => return exec_err!("age takes two timestamps here"),
                };
                age(a, b)?
            }
            Kind::TypeOf => {
                let name = pg_type_name(arrays[0].data_type());
                return Ok(ColumnarValue::Scalar(
                    datafusion::common::ScalarValue::Utf8(Some(name)),
                ));
            }
        };
        super::pg_text::shaped_like(&args.args, out)
    }
}

fn sign(a: &ArrayRef) -> Result<ArrayRef> {
    Ok(match a.data_type() {
        DataType::Decimal128(..) => {
            let d = a.as_primitive::<Decimal128Type>();
            let out: Decimal128Array = d.iter().map(|v| v.map(|v| v.signum())).collect();
            Arc::new(out.with_precision_and_scale(1, 0)?)
        }
        _ => {
            let f = cast(a, &DataType::Float64)?;
            let f = f.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            let out: Float64Array = f
                .iter()
                .map(|v| {
                    v.map(|v| {
                        if v > 0.0 {
                            1.0
                        } else if v < 0.0 {
                            -1.0
                        } else {
                            0.0
                        }
                    })
                })
                .collect();
            Arc::new(out)
        }
    })
}

fn div(a: &ArrayRef, b: &ArrayRef) -> Result<ArrayRef> {
    let (sa, sb) = (scale_of(a), scale_of(b));
    let common = sa.max(sb);
    let out_of_range = || DataException::error("22003", "value out of range for div");
    // Both at one scale: the quotient of the scaled integers is the one of
    // the numbers.
    let rescale = |v: i128, s: i8| -> Result<i128> {
        10_i128
            .checked_pow((common - s) as u32)
            .and_then(|k| v.checked_mul(k))
            .ok_or_else(out_of_range)
    };
    let out = super::pg_numeric::decimal_pairs(a, b, 0, |x, y| {
        let (x, y) = (rescale(x, sa)?, rescale(y, sb)?);
        if y == 0 {
            return Err(DataException::error("22012", "division by zero"));
        }
        Ok(x / y)
    })?;
    Ok(Arc::new(out))
}

/// A timestamp's wall clock: a `timestamptz` on its zone's.
fn wall_clocks(a: &ArrayRef) -> Result<Vec<Option<NaiveDateTime>>> {
    let zone: Option<Tz> = match a.data_type() {
        DataType::Timestamp(_, Some(tz)) => Some(tz.parse()?),
        _ => None,
    };
    let micros = cast(a, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
    let micros = micros
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .expect("cast to Timestamp(us) gives a TimestampMicrosecondArray");
    micros
        .iter()
        .map(|v| {
            v.map(|v| {
                let utc = DateTime::from_timestamp_micros(v)
                    .ok_or_else(|| DataException::error("22008", "timestamp out of range"))?;
                Ok(match &zone {
                    Some(tz) => utc.with_timezone(tz).naive_local(),
                    None => utc.naive_utc(),
                })
            })
            .transpose()
        })
        .collect()
}

fn age(a: &ArrayRef, b: &ArrayRef) -> Result<ArrayRef> {
    let (a, b) = (wall_clocks(a)?, wall_clocks(b)?);
    let out: IntervalMonthDayNanoArray = a
        .iter()
        .zip(b.iter())
        .map(|(a, b)| Some(symbolic_difference((*a)?, (*b)?)))
        .collect();
    Ok(Arc::new(out))
}

/// PostgreSQL's `timestamp_age`: the fields' differences, negative ones
/// borrowed from the next larger field (a month borrows the days of the
/// earlier timestamp's month), the sign of the whole restored at the end.
pub fn symbolic_difference(a: NaiveDateTime, b: NaiveDateTime) -> IntervalMonthDayNano {
    let fields = |t: &NaiveDateTime| {
        [
            i64::from(t.year()),
            i64::from(t.month()),
            i64::from(t.day()),
            i64::from(t.hour()),
            i64::from(t.minute()),
            i64::from(t.second()),
            i64::from(t.nanosecond() / 1_000),
        ]
    };
    let (fa, fb) = (fields(&a), fields(&b));
    let flip = a < b;
    let mut d: Vec<i64> = fa.iter().zip(fb.iter()).map(|(x, y)| x - y).collect();
    if flip {
        d.iter_mut().for_each(|v| *v = -*v);
    }
    let [year, mon, mday, hour, min, sec, usec] = d.as_mut_slice() else {
        unreachable!("seven fields")
    };
    while *usec < 0 {
        *usec += 1_000_000;
        *sec -= 1;
    }
    while *sec < 0 {
        *sec += 60;
        *min -= 1;
    }
    while *min < 0 {
        *min += 60;
        *hour -= 1;
    }
    while *hour < 0 {
        *hour += 24;
        *mday -= 1;
    }
    while *mday < 0 {
        let earlier = if flip { &a } else { &b };
        *mday += i64::from(earlier.num_days_in_month());
        *mon -= 1;
    }
    while *mon < 0 {
        *mon += 12;
        *year -= 1;
    }
    let sign = if flip { -1 } else { 1 };
    let months = sign * (*year * 12 + *mon);
    let days = sign * *mday;
    let nanos = sign * (((*hour * 60 + *min) * 60 + *sec) * 1_000_000 + *usec) * 1_000;
    IntervalMonthDayNano::new(months as i32, days as i32, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn age_is_postgresqls_symbolic_difference() {
        let h = 3_600_000_000_000_i64;
        // SELECT age('2027-01-01', '2026-03-08 02:30'): 9 mons 23 days 21:30:00
        assert_eq!(
            symbolic_difference(ts("2027-01-01 00:00:00"), ts("2026-03-08 02:30:00")),
            IntervalMonthDayNano::new(9, 23, 21 * h + h / 2)
        );
        // SELECT age('2024-03-01', '2024-01-31'): 1 mon 1 day (January's
        // 31 days borrowed).
        assert_eq!(
            symbolic_difference(ts("2024-03-01 00:00:00"), ts("2024-01-31 00:00:00")),
            IntervalMonthDayNano::new(1, 1, 0)
        );
        // SELECT age('2024-01-31', '2024-03-01'): -1 mons -1 days.
        assert_eq!(
            symbolic_difference(ts("2024-01-31 00:00:00"), ts("2024-03-01 00:00:00")),
            IntervalMonthDayNano::new(-1, -1, 0)
        );
    }
}
