//! `extract` and `date_part` with PostgreSQL's values and types (issue 22).
//!
//! PostgreSQL's `extract(field FROM x)` is a `numeric` (`2024`, `59.999999`,
//! `1772937000.000000`), its `date_part('field', x)` a `double precision`
//! with the same value. DataFusion 55 plans both as one `date_part`, an
//! integer for most fields, and its seconds are whole (`59` for
//! `23:59:59.999999`). `syntax.rs` marks each `extract` as
//! `CAST(date_part(...) AS NUMERIC)`; here
//!
//! - a marked `extract` becomes the numeric PostgreSQL gives: scale 0 for
//!   whole fields, the seconds of a timestamp with their microseconds as a
//!   `numeric(8,6)` (`date_part('microsecond', ts)`, which counts the
//!   seconds too, times 0.000001), milliseconds at scale 3, the epoch of a
//!   timestamp at scale 6;
//! - any other `date_part` becomes a double of the same value;
//! - of an interval, both are `quipu_interval_part`'s (365.25 days a year
//!   in the epoch, the seconds with their fraction), as numeric or double;
//!   a `time`'s seconds keep their fraction as a timestamp's do.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, lit};
use quipu_connectors::dialect::interval_parts;

/// `plan` with PostgreSQL's `extract` and `date_part`.
pub fn rewrite(plan: LogicalPlan) -> Result<LogicalPlan> {
    crate::rounding::rewrite_typed_down(plan, rewrite_expr)
}

/// The field and argument of a `date_part` call.
fn date_part(e: &Expr) -> Option<(String, &Expr)> {
    let Expr::ScalarFunction(ScalarFunction { func, args }) = e else {
        return None;
    };
    match (func.name(), args.as_slice()) {
        ("date_part", [Expr::Literal(ScalarValue::Utf8(Some(f)), _), x]) => {
            Some((f.to_ascii_lowercase(), x))
        }
        _ => None,
    }
}

/// `date_part(unit, x)`, typed. The century, decade and millennium
/// (which DataFusion 55 refuses: "Date part 'century' not supported") are
/// reckoned from the year as PostgreSQL's `timestamp_part` does (year 0
/// is 1 BC): `(y + 99) / 100`, `y / 10`, `(y + 999) / 1000`, and below
/// year 1 the mirrored forms.
fn part(unit: &str, x: &Expr) -> Expr {
    let date_part =
        |unit: &str| datafusion::functions::datetime::date_part().call(vec![lit(unit), x.clone()]);
    let (span, positive_from) = match unit {
        "century" | "centuries" => (100i64, 1i64),
        "decade" | "decades" => (10, 0),
        "millennium" | "millennia" | "millenniums" => (1000, 1),
        _ => return date_part(unit),
    };
    let year = Expr::Cast(Cast::new(Box::new(date_part("year")), DataType::Int64));
    // Decades count from year 0 (`y / 10`); centuries and millennia from
    // year 1 (`(y + 99) / 100`). Below those, PostgreSQL's `-((k - (y -
    // 1)) / span)`, `k` being `span - 1` (`span - 2` for decades).
    let (up, k) = match positive_from {
        0 => (0, span - 2),
        _ => (span - 1, span - 1),
    };
    datafusion::logical_expr::when(
        year.clone().gt_eq(lit(positive_from)),
        (year.clone() + lit(up)) / lit(span),
    )
    .otherwise(-((lit(k) - (year - lit(1i64))) / lit(span)))
    .expect("a CASE with one WHEN")
}

/// `x` times ten to the power of `-scale`, exactly, as a decimal of
/// `scale` places.
fn scaled(x: Expr, scale: i8, schema: &DFSchema) -> Result<Expr> {
    let whole = x.cast_to(&DataType::Decimal128(20, 0), schema)?;
    let unit = lit(ScalarValue::Decimal128(Some(1), scale as u8 + 1, scale));
    (whole * unit).cast_to(&DataType::Decimal128(38, scale), schema)
}

/// Whether `x` is an interval (or a duration, which is planned as one).
fn interval(x: &Expr, schema: &DFSchema) -> bool {
    matches!(
        x.get_type(schema),
        Ok(DataType::Interval(_) | DataType::Duration(_))
    )
}

/// Whether `x` has a time of day whose seconds have a fraction: a
/// `timestamp` or a `time` (`extract(second FROM time '10:00:00.5')` is
/// 0.5 past, not 0).
fn has_clock(x: &Expr, schema: &DFSchema) -> bool {
    matches!(
        x.get_type(schema),
        Ok(DataType::Timestamp(..) | DataType::Time64(_) | DataType::Time32(_))
    )
}

/// The fields of a time of day, which `extract` refuses of a `date`.
const CLOCK_UNITS: [&str; 10] = [
    "hour",
    "hours",
    "minute",
    "minutes",
    "second",
    "seconds",
    "millisecond",
    "milliseconds",
    "microsecond",
    "microseconds",
];

/// The field and argument of an `extract` as `syntax.rs` marks it,
/// `CAST(date_part(...) AS NUMERIC)`, before [`rewrite`] gives its type.
pub(crate) fn marked(e: &Expr) -> Option<(String, &Expr)> {
    match e {
        Expr::Cast(Cast { expr, field }) if field.data_type() == &DataType::Decimal128(38, 10) => {
            date_part(expr)
        }
        _ => None,
    }
}

fn rewrite_expr(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    // A marked `extract`: its numeric, and nothing inside it rewritten
    // again.
    if let Some((unit, x)) = marked(&e) {
        if interval(x, schema) {
            let places = interval_parts::extract_places(&unit);
            let numeric = interval_parts::interval_part()
                .call(vec![lit(unit), x.clone()])
                .cast_to(&DataType::Decimal128(38, places), schema)?;
            return Ok(Transformed::new(numeric, true, TreeNodeRecursion::Jump));
        }
        let clockless = matches!(x.get_type(schema), Ok(DataType::Date32 | DataType::Date64));
        if clockless && CLOCK_UNITS.contains(&unit.as_str()) {
            // PostgreSQL's `extract` of a date has no clock (`date_part`
            // reads the date as a timestamp, below).
            return Err(quipu_connectors::error::DataException::error(
                "0A000",
                &format!("unit \"{unit}\" not supported for type date"),
            ));
        }
        let timestamp = has_clock(x, schema);
        let numeric = match unit.as_str() {
            "second" | "seconds" if timestamp => scaled(part("microsecond", x), 6, schema)?
                .cast_to(&DataType::Decimal128(8, 6), schema)?,
            "millisecond" | "milliseconds" if timestamp => {
                scaled(part("microsecond", x), 3, schema)?
            }
            "epoch" if timestamp => {
                part("epoch", x).cast_to(&DataType::Decimal128(38, 6), schema)?
            }
            _ => part(&unit, x).cast_to(&DataType::Decimal128(38, 0), schema)?,
        };
        return Ok(Transformed::new(numeric, true, TreeNodeRecursion::Jump));
    }
    // Any other `date_part`: a double.
    if let Some((unit, x)) = date_part(&e) {
        if interval(x, schema) {
            let double = interval_parts::interval_part()
                .call(vec![lit(unit), x.clone()])
                .cast_to(&DataType::Float64, schema)?;
            return Ok(Transformed::new(double, true, TreeNodeRecursion::Jump));
        }
        let timestamp = has_clock(x, schema);
        // Seconds and milliseconds keep their fraction (DataFusion's
        // milliseconds were whole: 59999 for PostgreSQL's 59999.999), the
        // quotient rounded once as PostgreSQL's numeric-to-double is.
        let double = if matches!(unit.as_str(), "second" | "seconds") && timestamp {
            part("microsecond", x).cast_to(&DataType::Float64, schema)? / lit(1_000_000f64)
        } else if matches!(unit.as_str(), "millisecond" | "milliseconds") && timestamp {
            part("microsecond", x).cast_to(&DataType::Float64, schema)? / lit(1_000f64)
        } else {
            part(&unit, x).cast_to(&DataType::Float64, schema)?
        };
        return Ok(Transformed::new(double, true, TreeNodeRecursion::Jump));
    }
    Ok(Transformed::no(e))
}
