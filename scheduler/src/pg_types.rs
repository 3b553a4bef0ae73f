//! PostgreSQL's result types for date arithmetic and numeric rounding
//! (issue 22), where DataFusion 55 answers the same value in another type
//! or another form:
//!
//! - `date ± interval` is a `timestamp` (`2024-03-29 00:00:00`), not a
//!   `date`: the date is cast to a timestamp first, so an interval with a
//!   time part keeps it (`d + INTERVAL '12 hours'` is noon, not `d`);
//! - `timestamp - timestamp` is an `interval` (`9563 days 02:30:00`), not
//!   an Arrow duration no client knows (`quipu_interval_of_duration`,
//!   `connectors/src/dialect/intervals.rs`);
//! - `date - date` is an `integer`, not a `bigint`;
//! - `ceil`, `floor` and `trunc` of a `numeric` have scale 0 (`trunc(n, k)`
//!   scale `k`), not the argument's (`1`, not `1.000000`);
//! - `regexp_count` is an `integer`, not a `bigint`;
//! - intervals compare, sort and take `min`/`max` by PostgreSQL's span
//!   (`quipu_interval_key`: a month is 30 days, a day 24 hours), not
//!   field by field;
//! - text cast to `numeric` without a scale keeps its places or is
//!   refused (`quipu_numeric_text`), not rounded to 10;
//! - doubles sort, partition a window and count as distinct with `-0`
//!   equal to `0` (`quipu_float8_key`), not before it;
//! - `round(integer)` is a `double precision` and `round(integer, k)` a
//!   `numeric` of k places, not an integer; `round(numeric, k)` has k
//!   places even where its argument has fewer (`round(1.5, 2)` is `1.50`);
//! - an array subscript below 1 is NULL, and a slice's bounds are cut to
//!   the array (`a[-1:2]` is `a[1:2]`), not counted from the end;
//!
//! and PostgreSQL's refusals where DataFusion answers something: `min`/
//! `max` of booleans (42883: no such function; `bool_and`/`bool_or` are
//! PostgreSQL's) and `date_bin` by months or years (0A000).
//! `round(double precision, integer)`, which PostgreSQL does not have, is
//! DataFusion's (half away from zero), as most engines have it and
//! analysts write it (the Yachay-Shop demo does).

use datafusion::arrow::datatypes::{DataType, IntervalMonthDayNano, TimeUnit};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator, lit, when};
use datafusion::scalar::ScalarValue;
use quipu_connectors::dialect::float_errors;
use quipu_connectors::error::DataException;

/// `plan` with PostgreSQL's result types (subqueries included).
pub fn rewrite(plan: LogicalPlan) -> Result<LogicalPlan> {
    // A recursive query keeps a bare numeric `decimal(38,10)`: its
    // recursive term must have its static term's type, and a quotient
    // there is typed before this rewrite could follow it.
    let recursive = plan
        .exists(|p| Ok(matches!(p, LogicalPlan::RecursiveQuery(_))))
        .unwrap_or(true);
    let plan =
        crate::rounding::rewrite_retyped(plan, |e, schema| rewrite_expr(e, schema, !recursive))?;
    interval_sorts(plan)
}

fn is_interval(t: &Option<DataType>) -> bool {
    matches!(t, Some(DataType::Interval(_)))
}

/// `name(args)` of Quipu's double functions, registered in every session.
fn float8_call(name: &str, args: Vec<Expr>) -> Expr {
    quipu_connectors::session::scalar_function(name).call(args)
}

/// `quipu_float8_key(e)`.
fn float8_key(e: Expr) -> Expr {
    float8_call(float_errors::KEY, vec![e])
}

/// `e` as the key PostgreSQL orders its type by, where Arrow's order
/// differs: an interval by its span (`quipu_interval_key`), a double with
/// `-0` equal to `0` (`quipu_float8_key`).
fn order_key(e: Expr, t: &Option<DataType>, intervals: bool) -> Transformed<Expr> {
    match t {
        Some(DataType::Interval(_)) if intervals => Transformed::yes(
            quipu_connectors::dialect::interval_parts::interval_key().call(vec![e]),
        ),
        Some(DataType::Float64) => Transformed::yes(float8_key(e)),
        Some(DataType::Float32 | DataType::Float16) => {
            Transformed::yes(float8_key(cast(e, DataType::Float64)))
        }
        _ => Transformed::no(e),
    }
}

/// `ORDER BY` an interval sorts by PostgreSQL's span, a double with `-0`
/// equal to `0` ([`order_key`]).
fn interval_sorts(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| match node {
        LogicalPlan::Sort(mut sort) => {
            let schema = sort.input.schema().clone();
            let mut changed = false;
            for s in &mut sort.expr {
                let t = s.expr.get_type(&schema).ok();
                let key = order_key(s.expr.clone(), &t, true);
                changed |= key.transformed;
                s.expr = key.data;
            }
            Ok(match changed {
                true => Transformed::yes(LogicalPlan::Sort(sort)),
                false => Transformed::no(LogicalPlan::Sort(sort)),
            })
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

fn is_date(t: &Option<DataType>) -> bool {
    matches!(t, Some(DataType::Date32 | DataType::Date64))
}

/// Whether `e` divides a numeric (`a / b` with a decimal side).
fn numeric_quotient(e: &Expr, schema: &DFSchema) -> bool {
    let decimal = |e: &Expr| matches!(e.get_type(schema), Ok(DataType::Decimal128(..)));
    matches!(e, Expr::BinaryExpr(BinaryExpr { left, op: Operator::Divide, right })
        if decimal(left) || decimal(right))
}

/// The scale of a decimal type of more than a bare numeric's 10 places.
fn more_places(t: Option<DataType>) -> Option<i8> {
    match t {
        Some(DataType::Decimal128(_, s)) if s > 10 => Some(s),
        _ => None,
    }
}

fn cast(e: Expr, to: DataType) -> Expr {
    Expr::Cast(Cast::new(Box::new(e), to))
}

/// A literal integer (None: not one).
pub(crate) fn literal_int(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(v, _) => match v.cast_to(&DataType::Int64) {
            Ok(ScalarValue::Int64(k)) => k,
            _ => None,
        },
        _ => None,
    }
}

/// An interval written as a constant: a literal, or text cast to one.
fn constant_interval(e: &Expr) -> Option<IntervalMonthDayNano> {
    let interval = DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano);
    let v = match e {
        // Text, before DataFusion's coercion casts it.
        Expr::Literal(v, _) => v.cast_to(&interval).ok()?,
        Expr::Cast(Cast { expr, .. }) => match expr.as_ref() {
            Expr::Literal(v, _) => v.cast_to(&interval).ok()?,
            _ => return None,
        },
        _ => return None,
    };
    match v {
        ScalarValue::IntervalMonthDayNano(v) => v,
        _ => None,
    }
}

/// `round(x, k)` with PostgreSQL's places (see the module doc): `x` as
/// the numeric that holds `k` places (None: leave the call as it is).
fn rounded_operand(x: &Expr, t: &DataType, k: Option<i64>) -> Option<Expr> {
    let places = k.unwrap_or(0).clamp(0, 38) as u8;
    let (integer, scale) = match t {
        t if t.is_integer() => (20u8, 0u8),
        DataType::Decimal128(p, s) if *s >= 0 => (p.saturating_sub(*s as u8), *s as u8),
        _ => return None,
    };
    if t.is_integer() || scale < places {
        let places = places.max(scale);
        let precision = (integer + places).clamp(1, 38);
        Some(cast(
            x.clone(),
            DataType::Decimal128(precision, places as i8),
        ))
    } else {
        None
    }
}

/// Rewrites of calls (see the module doc).
fn rewrite_call(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let ty = |e: &Expr| e.get_type(schema).ok();
    let no_function = |name: &str, args: &[Expr]| {
        let types: Vec<String> = args
            .iter()
            .map(|a| match (a, ty(a)) {
                // A literal whole number is an `integer` where it fits.
                (Expr::Literal(..), Some(DataType::Int64))
                    if literal_int(a).is_some_and(|k| i32::try_from(k).is_ok()) =>
                {
                    "integer".into()
                }
                (_, t) => t.map_or("unknown".into(), |t| {
                    quipu_connectors::dialect::pg_functions::pg_type_name(&t)
                }),
            })
            .collect();
        Err(DataException::error(
            "42883",
            &format!("function {name}({}) does not exist", types.join(", ")),
        ))
    };
    match e {
        // `GREATEST`/`LEAST` that PostgreSQL reckons in doubles (a double
        // among numbers): of equal values the first (`-0`).
        Expr::ScalarFunction(f)
            if matches!(f.name(), "greatest" | "least")
                && f.args
                    .iter()
                    .any(|a| ty(a).is_some_and(|t| t.is_floating()))
                && f.args
                    .iter()
                    .all(|a| ty(a).is_some_and(|t| t.is_numeric() || t == DataType::Null)) =>
        {
            let name = match f.name() {
                "greatest" => float_errors::GREATEST,
                _ => float_errors::LEAST,
            };
            let args = f
                .args
                .iter()
                .map(|a| cast(a.clone(), DataType::Float64))
                .collect();
            Ok(Transformed::yes(float8_call(name, args)))
        }
        Expr::ScalarFunction(mut f) if f.name() == "round" => {
            let t = f.args.first().and_then(ty);
            match (f.args.len(), &t) {
                (1, Some(t)) if t.is_integer() => {
                    f.args[0] = cast(f.args[0].clone(), DataType::Float64);
                    Ok(Transformed::yes(Expr::ScalarFunction(f)))
                }
                (2, Some(t)) => match rounded_operand(&f.args[0], t, literal_int(&f.args[1])) {
                    Some(x) => {
                        f.args[0] = x;
                        Ok(Transformed::yes(Expr::ScalarFunction(f)))
                    }
                    None => Ok(Transformed::no(Expr::ScalarFunction(f))),
                },
                _ => Ok(Transformed::no(Expr::ScalarFunction(f))),
            }
        }
        Expr::ScalarFunction(f)
            if f.name() == "date_bin"
                && f.args
                    .first()
                    .and_then(constant_interval)
                    .is_some_and(|v| v.months != 0) =>
        {
            Err(DataException::error(
                "0A000",
                "timestamps cannot be binned into intervals containing months or years",
            ))
        }
        // A subscript below 1 is NULL (DataFusion counts a negative one
        // from the end).
        Expr::ScalarFunction(mut f) if f.name() == "array_element" && f.args.len() == 2 => {
            let index = f.args[1].clone();
            let Some(t) = ty(&index) else {
                return Ok(Transformed::no(Expr::ScalarFunction(f)));
            };
            let null = Expr::Literal(ScalarValue::try_from(&t)?, None);
            f.args[1] = when(index.clone().lt(lit(1)), null).otherwise(index)?;
            Ok(Transformed::yes(Expr::ScalarFunction(f)))
        }
        // A slice's bounds cut to the array (below 1 is 1), never counted
        // from the end; an upper bound below the lower one is empty.
        Expr::ScalarFunction(mut f)
            if f.name() == "array_slice" && matches!(f.args.len(), 3 | 4) =>
        {
            let (from, to) = (f.args[1].clone(), f.args[2].clone());
            let from =
                when(from.clone().lt(lit(1)), lit(1i64)).otherwise(cast(from, DataType::Int64))?;
            let to = when(to.clone().lt(from.clone()), lit(0i64))
                .otherwise(cast(to, DataType::Int64))?;
            f.args[1] = from;
            f.args[2] = to;
            Ok(Transformed::yes(Expr::ScalarFunction(f)))
        }
        Expr::AggregateFunction(mut a) => {
            let t = a.params.args.first().and_then(ty);
            let name = a.func.name().to_string();
            if matches!(name.as_str(), "min" | "max") && t == Some(DataType::Boolean) {
                return no_function(&name, &a.params.args);
            }
            // `max`/`min` of intervals by PostgreSQL's span: the first
            // value in the span's order (Arrow's compared field by field,
            // so `max` of `1 mon` and `40 days` was `1 mon`).
            if matches!(name.as_str(), "min" | "max")
                && is_interval(&t)
                && a.params.order_by.is_empty()
            {
                let key = quipu_connectors::dialect::interval_parts::interval_key()
                    .call(vec![a.params.args[0].clone()]);
                a.func = datafusion::functions_aggregate::first_last::first_value_udaf();
                a.params.order_by = vec![datafusion::logical_expr::SortExpr::new(
                    key,
                    name == "min",
                    false,
                )];
                return Ok(Transformed::yes(Expr::AggregateFunction(a)));
            }
            if name == "count" && a.params.distinct && a.params.args.len() == 1 {
                let key = order_key(a.params.args[0].clone(), &t, true);
                if key.transformed {
                    a.params.args[0] = key.data;
                    return Ok(Transformed::yes(Expr::AggregateFunction(a)));
                }
            }
            Ok(Transformed::no(Expr::AggregateFunction(a)))
        }
        // A window's partitions and order by PostgreSQL's keys.
        Expr::WindowFunction(mut w) => {
            let mut changed = false;
            for p in &mut w.params.partition_by {
                let key = order_key(p.clone(), &ty(p), true);
                changed |= key.transformed;
                *p = key.data;
            }
            // An interval orders by its span; a RANGE frame's offsets
            // along it are measured in spans too (the span of `x -
            // offset` is the span of `x` less the offset's), as Arrow
            // cannot range over intervals.
            use datafusion::logical_expr::WindowFrameBound;
            let span_of = |b: &mut WindowFrameBound| {
                let interval =
                    DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano);
                // The offset as written (text, before the analyzer casts
                // it; the statement's interval text was already respelt
                // for Arrow's parser) or as an interval.
                if let WindowFrameBound::Preceding(v) | WindowFrameBound::Following(v) = b
                    && let Ok(ScalarValue::IntervalMonthDayNano(x)) = v.cast_to(&interval)
                {
                    let span = x.map(|x| {
                        quipu_connectors::dialect::interval_parts::span(
                            x.months,
                            x.days,
                            x.nanoseconds,
                        )
                    });
                    *v = ScalarValue::Decimal128(span, 38, 0);
                }
            };
            for o in &mut w.params.order_by {
                let t = ty(&o.expr);
                if is_interval(&t) {
                    let frame = &mut w.params.window_frame;
                    span_of(&mut frame.start_bound);
                    span_of(&mut frame.end_bound);
                }
                let key = order_key(o.expr.clone(), &t, true);
                changed |= key.transformed;
                o.expr = key.data;
            }
            Ok(Transformed::new_transformed(
                Expr::WindowFunction(w),
                changed,
            ))
        }
        e => Ok(Transformed::no(e)),
    }
}

/// `integers`: whether an integer cast to a bare `numeric` may be given
/// scale 0.
fn rewrite_expr(e: Expr, schema: &DFSchema, integers: bool) -> Result<Transformed<Expr>> {
    match e {
        Expr::ScalarFunction(_) | Expr::AggregateFunction(_) | Expr::WindowFunction(_) => {
            let called = rewrite_call(e, schema)?;
            if called.transformed {
                return Ok(called);
            }
            rewrite_other(called.data, schema, integers)
        }
        e => rewrite_other(e, schema, integers),
    }
}

fn rewrite_other(e: Expr, schema: &DFSchema, integers: bool) -> Result<Transformed<Expr>> {
    let ty = |e: &Expr| e.get_type(schema).ok();
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(op, Operator::Plus | Operator::Minus) =>
        {
            let (lt, rt) = (ty(&left), ty(&right));
            let interval = |t: &Option<DataType>| matches!(t, Some(DataType::Interval(_)));
            let timestamp = DataType::Timestamp(TimeUnit::Nanosecond, None);
            if is_date(&lt) && interval(&rt) {
                let left = Box::new(cast(*left, timestamp));
                return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                    left,
                    op,
                    right,
                })));
            }
            if op == Operator::Plus && interval(&lt) && is_date(&rt) {
                let right = Box::new(cast(*right, timestamp));
                return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                    left,
                    op,
                    right,
                })));
            }
            let e = Expr::BinaryExpr(BinaryExpr { left, op, right });
            match ty(&e) {
                Some(DataType::Duration(_)) if op == Operator::Minus => {
                    let f = quipu_connectors::session::scalar_function(
                        quipu_connectors::dialect::intervals::INTERVAL_OF_DURATION,
                    );
                    Ok(Transformed::yes(f.call(vec![e])))
                }
                Some(DataType::Int64) if op == Operator::Minus && is_date(&lt) && is_date(&rt) => {
                    // Days between two dates fit an integer (PostgreSQL's
                    // dates span 5.9 million years).
                    Ok(Transformed::yes(cast(e, DataType::Int32)))
                }
                _ => Ok(Transformed::no(e)),
            }
        }
        Expr::ScalarFunction(f) if matches!(f.name(), "ceil" | "floor" | "trunc") => {
            let Some(DataType::Decimal128(p, s)) = f.args.first().and_then(ty) else {
                return Ok(Transformed::no(Expr::ScalarFunction(f)));
            };
            // The places kept: `trunc(n, k)`'s literal k (none below 0),
            // else none. A k that is not a literal leaves the type as is.
            let places: i8 = match f.args.get(1) {
                None => 0,
                Some(Expr::Literal(v, _)) => match v.cast_to(&DataType::Int64) {
                    Ok(ScalarValue::Int64(Some(k))) => k.clamp(0, 38) as i8,
                    _ => return Ok(Transformed::no(Expr::ScalarFunction(f))),
                },
                Some(_) => return Ok(Transformed::no(Expr::ScalarFunction(f))),
            };
            if places == s {
                return Ok(Transformed::no(Expr::ScalarFunction(f)));
            }
            // Integer digits, one more for a carry (`ceil(9.5)` is 10).
            let integer = p as i16 - s as i16 + 1;
            let precision = (integer + places as i16).min(38) as u8;
            if precision as i16 - (places as i16) < integer {
                return Ok(Transformed::no(Expr::ScalarFunction(f)));
            }
            Ok(Transformed::yes(cast(
                Expr::ScalarFunction(f),
                DataType::Decimal128(precision, places),
            )))
        }
        // Intervals compare by PostgreSQL's span (a month is 30 days, a
        // day 24 hours), not field by field.
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if quipu_connectors::dialect::float_literals::comparison(op)
                && is_interval(&ty(&left))
                && is_interval(&ty(&right)) =>
        {
            use quipu_connectors::dialect::interval_parts::interval_key;
            Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                left: Box::new(interval_key().call(vec![*left])),
                op,
                right: Box::new(interval_key().call(vec![*right])),
            })))
        }
        Expr::Between(b) if is_interval(&ty(&b.expr)) => {
            use quipu_connectors::dialect::interval_parts::interval_key;
            let key = |e: Box<Expr>| Box::new(interval_key().call(vec![*e]));
            Ok(Transformed::yes(Expr::Between(
                datafusion::logical_expr::expr::Between {
                    expr: key(b.expr),
                    negated: b.negated,
                    low: key(b.low),
                    high: key(b.high),
                },
            )))
        }
        // An integer cast to a `numeric` without a scale (`decimal(38,10)`)
        // has no places, as in PostgreSQL (a `decimal(38,0)`): a quotient of it is rounded at
        // PostgreSQL's places (`i::numeric / 3` is 715827666.66666667,
        // not 715827666.6666666667), a product keeps the other's.
        Expr::Cast(Cast { expr, field })
            if integers
                && *field.data_type() == DataType::Decimal128(38, 10)
                && ty(&expr).is_some_and(|t| t.is_integer())
                // Not `extract`'s mark, `CAST(date_part(...) AS numeric)`,
                // which `crate::extract` reads later.
                && !matches!(expr.as_ref(), Expr::ScalarFunction(f) if f.name() == "date_part") =>
        {
            Ok(Transformed::yes(cast(*expr, DataType::Decimal128(38, 0))))
        }
        // A numeric of more places cast to a `numeric` without a scale
        // keeps them, as PostgreSQL's cast does: `1e-20::numeric` was
        // rounded to 0 (`decimal(38,10)`). A quotient of numerics, whose
        // places are chosen later (`quipu_numeric_div`), keeps its own:
        // the cast is dropped (`(1.0 / 3)::numeric` was 0.3333333333).
        Expr::Cast(Cast { expr, field })
            if integers
                && *field.data_type() == DataType::Decimal128(38, 10)
                && numeric_quotient(&expr, schema) =>
        {
            Ok(Transformed::yes(*expr))
        }
        Expr::Cast(Cast { expr, field })
            if integers
                && *field.data_type() == DataType::Decimal128(38, 10)
                && more_places(ty(&expr)).is_some() =>
        {
            let places = more_places(ty(&expr)).unwrap_or(10);
            Ok(Transformed::yes(cast(
                *expr,
                DataType::Decimal128(38, places),
            )))
        }
        // Text to a `numeric` reads an exponent. Without a scale
        // (`decimal(38,10)`) it keeps its places or is refused
        // (`quipu_numeric_text`), never rounded; of a scale, it is rounded
        // to it by the cast (`quipu_numeric_plain`).
        Expr::Cast(Cast { expr, field })
            if matches!(field.data_type(), DataType::Decimal128(..))
                && ty(&expr).is_some_and(|t| t.is_string())
                && !read_as_numeric(&expr) =>
        {
            use quipu_connectors::dialect::pg_numeric::{numeric_plain, numeric_text};
            let read = match *field.data_type() == DataType::Decimal128(38, 10) {
                true => numeric_text(),
                false => numeric_plain(),
            };
            Ok(Transformed::yes(Expr::Cast(Cast {
                expr: Box::new(read.call(vec![*expr])),
                field,
            })))
        }
        // PostgreSQL's `regexp_count` is an `integer`, DataFusion's a
        // `bigint`.
        Expr::ScalarFunction(f)
            if f.name() == "regexp_count"
                && ty(&Expr::ScalarFunction(f.clone())) == Some(DataType::Int64) =>
        {
            Ok(Transformed::yes(cast(
                Expr::ScalarFunction(f),
                DataType::Int32,
            )))
        }
        _ => Ok(Transformed::no(e)),
    }
}

/// Whether `e` is text already on its way to a `numeric` (a plan analysed
/// again, on the cluster, is not wrapped twice).
fn read_as_numeric(e: &Expr) -> bool {
    use quipu_connectors::dialect::pg_numeric::{NUMERIC_PLAIN, NUMERIC_TEXT};
    matches!(e, Expr::ScalarFunction(f) if [NUMERIC_PLAIN, NUMERIC_TEXT].contains(&f.name()))
}
